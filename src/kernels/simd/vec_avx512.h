// 16-lane fp32 vector for AVX-512 (F, DQ, VL, BW). Included by an ISA
// translation unit inside its own namespace and target region.
#pragma once

#include "kernels/simd/vec_avx2.h"  // the 8x8 transpose

struct VecAvx512 {
  using V = __m512;
  static constexpr int W = 16;
  static constexpr const char* isa = "avx512";

  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 tail_mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V load_partial(const float* p, int n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
  static void store_partial(float* p, V v, int n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  using VI = __m512i;
  static VI load_idx(const int32_t* p) { return _mm512_loadu_si512(p); }
  static V permute(V x, VI idx) { return _mm512_permutexvar_ps(idx, x); }
  static V bcast4(const float* p) { return _mm512_broadcast_f32x4(_mm_loadu_ps(p)); }
  static V permute4(V x, VI idx) { return _mm512_permutevar_ps(x, idx); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  // 1 / a for a >= 1: the 14-bit estimate and one Newton step (~2^-27).
  static V recip(V a) {
    const V r = _mm512_rcp14_ps(a);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(a, r, _mm512_set1_ps(2.f)));
  }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V copysign(V a, V s) {
    const __m512i sign = _mm512_set1_epi32(INT32_MIN);
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(sign, _mm512_castps_si512(a)),
                                               _mm512_and_si512(sign, _mm512_castps_si512(s))));
  }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static float hsum(V v) {
    return VecAvx2::hsum(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
  }
  static float hmax(V v) {
    return VecAvx2::hmax(_mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
  }
  static V select_lt(V a, V b, V x, V y) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x); }
  static V pow2n(V n) {
    __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(i, 23));
  }

  // 16x16 transpose as four 8x8 ones: reuses the AVX2 tile that the tests
  // check on every x86-64 host.
  static void transpose_tile(const float* src, int64_t lds, float* dst, int64_t ldd) {
    VecAvx2::transpose_tile(src, lds, dst, ldd);
    VecAvx2::transpose_tile(src + 8, lds, dst + 8 * ldd, ldd);
    VecAvx2::transpose_tile(src + 8 * lds, lds, dst + 8, ldd);
    VecAvx2::transpose_tile(src + 8 * lds + 8, lds, dst + 8 * ldd + 8, ldd);
  }
};

