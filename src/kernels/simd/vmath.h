// Vector math shared by every ISA instance: exp, erf and GELU built from the
// primitive operations of a Vec type S (VecAvx512, VecAvx2, VecPortable).
#pragma once

#include <cmath>

// exp(x) for x in about [-87, 88]: range reduction x = n ln2 + r, then a
// degree-6 polynomial for e^r (relative error ~2e-7). Past the float range
// the result is inf (x > 88.72) or 0 (x < -87.34, below the smallest normal
// float); a NaN stays NaN (max, min and the selects return their second
// operand, or take the else branch, when a comparison meets NaN).
template <class S>
inline typename S::V vexp(typename S::V x0) {
  using V = typename S::V;
  V x = S::min(S::set1(88.f), S::max(S::set1(-87.f), x0));
  V n = S::round(S::mul(x, S::set1(1.44269504088896341f)));
  V r = S::fmadd(n, S::set1(-0.693359375f), x);
  r = S::fmadd(n, S::set1(2.12194440e-4f), r);
  V p = S::set1(1.f / 720.f);
  p = S::fmadd(p, r, S::set1(1.f / 120.f));
  p = S::fmadd(p, r, S::set1(1.f / 24.f));
  p = S::fmadd(p, r, S::set1(1.f / 6.f));
  p = S::fmadd(p, r, S::set1(0.5f));
  p = S::fmadd(p, r, S::set1(1.f));
  p = S::fmadd(p, r, S::set1(1.f));
  const V e = S::mul(p, S::pow2n(n));
  return S::select_lt(S::set1(88.7228394f), x0, S::set1(INFINITY),
                      S::select_lt(x0, S::set1(-87.3365479f), S::zero(), e));
}

// |erf(x)| by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7).
// a is clamped to 10 (erf is 1 in float long before): the reciprocal's
// Newton step would make inf into NaN. A NaN stays NaN (min returns its
// second operand then).
template <class S>
inline typename S::V verf_abs_as(typename S::V a) {
  using V = typename S::V;
  a = S::min(S::set1(10.f), a);
  V t = S::recip(S::fmadd(a, S::set1(0.3275911f), S::set1(1.f)));
  V p = S::set1(1.061405429f);
  p = S::fmadd(p, t, S::set1(-1.453152027f));
  p = S::fmadd(p, t, S::set1(1.421413741f));
  p = S::fmadd(p, t, S::set1(-0.284496736f));
  p = S::fmadd(p, t, S::set1(0.254829592f));
  p = S::mul(p, t);
  V e = vexp<S>(S::sub(S::zero(), S::mul(a, a)));
  return S::sub(S::set1(1.f), S::mul(p, e));
}

// erf(x): an odd Taylor polynomial for |x| < 0.75 (relative error ~2e-8,
// so tiny inputs keep their relative accuracy) and Abramowitz & Stegun
// 7.1.26 above (absolute error <= 1.5e-7 where |erf| >= 0.71).
template <class S>
inline typename S::V verf(typename S::V x) {
  using V = typename S::V;
  V a = S::abs(x);
  V big = verf_abs_as<S>(a);
  // 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), n = 0..8.
  V x2 = S::mul(x, x);
  V q = S::set1(1.f / 685440.f);
  q = S::fmadd(q, x2, S::set1(-1.f / 75600.f));
  q = S::fmadd(q, x2, S::set1(1.f / 9360.f));
  q = S::fmadd(q, x2, S::set1(-1.f / 1320.f));
  q = S::fmadd(q, x2, S::set1(1.f / 216.f));
  q = S::fmadd(q, x2, S::set1(-1.f / 42.f));
  q = S::fmadd(q, x2, S::set1(1.f / 10.f));
  q = S::fmadd(q, x2, S::set1(-1.f / 3.f));
  q = S::fmadd(q, x2, S::set1(1.f));
  V small = S::mul(S::mul(q, a), S::set1(1.12837916709551257f));
  return S::copysign(S::select_lt(a, S::set1(0.75f), small, big), x);
}

// GELU with the exact erf form: 0.5 x (1 + erf(x / sqrt 2)). The erf
// needs no Taylor branch here: its absolute error (1.5e-7) becomes at most
// 0.75e-7 |x| in the result, within float rounding of 0.5 x. (A fused
// epilogue of BERT-base's FFN spent 0.11 ms of 0.6 on GELU with both.)
template <class S>
inline typename S::V vgelu(typename S::V x) {
  using V = typename S::V;
  const V xs = S::mul(x, S::set1(0.70710678118654752f));
  const V e = S::copysign(verf_abs_as<S>(S::abs(xs)), xs);
  return S::mul(S::mul(x, S::set1(0.5f)), S::add(S::set1(1.f), e));
}

