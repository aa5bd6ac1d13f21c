// The product and channel rule families (tesa_rules.h): MatMul, Gemm,
// sparta.Linear, Conv, BatchNormalization and pooling. Products work on
// bitsets over K: an output element is zero when no k has both operands
// non-zero, a constant when every such k has both operands known.
#include <algorithm>
#include <cmath>

#include "analysis/tesa_rules.h"
#include "analysis/tesa_rules_util.h"

namespace sparta::tesa_rules {
namespace {

// One bitset over K per row (of A) or column (of B), in one flat array:
// rows of `words` 64-bit words.
struct BitRows {
  int64_t words = 0;
  std::vector<uint64_t> v;
  void reset(int64_t rows, int64_t k, uint64_t fill) {
    words = (k + 63) / 64;
    v.assign(static_cast<size_t>(rows * words), fill);
    if (fill && k % 64)  // bits past K stay clear
      for (int64_t r = 0; r < rows; ++r) v[static_cast<size_t>(r * words + words - 1)] = (uint64_t{1} << (k % 64)) - 1;
  }
  uint64_t* operator[](int64_t r) { return v.data() + r * words; }
  const uint64_t* operator[](int64_t r) const { return v.data() + r * words; }
  void set(int64_t r, int64_t k) { v[static_cast<size_t>(r * words + k / 64)] |= uint64_t{1} << (k % 64); }
  bool get(int64_t r, int64_t k) const { return (v[static_cast<size_t>(r * words + k / 64)] >> (k % 64)) & 1; }
};

bool intersects(const uint64_t* a, const uint64_t* b, int64_t words) {
  for (int64_t w = 0; w < words; ++w)
    if (a[w] & b[w]) return true;
  return false;
}

bool none(const uint64_t* a, int64_t words) {
  for (int64_t w = 0; w < words; ++w)
    if (a[w]) return false;
  return true;
}

// A batched product's geometry: Y[b, i, j] = sum_k A[b, i, k] B[b, k, j],
// with each operand's element index (transposes and a B shared by every
// batch handled by strides).
struct Geometry {
  bool ok = false;
  int64_t batch = 1, m = 0, k = 0, n = 0;
  int64_t a_bs = 0, a_is = 0, a_ks = 0;  // strides of A over b, i, k
  int64_t b_bs = 0, b_ks = 0, b_js = 0;  // of B over b, k, j
  int64_t a(int64_t b, int64_t i, int64_t kk) const { return b * a_bs + i * a_is + kk * a_ks; }
  int64_t w(int64_t b, int64_t kk, int64_t j) const { return b * b_bs + kk * b_ks + j * b_js; }
};

Geometry geometry(const Node& n, const std::vector<Facts>& in, ProductKind kind) {
  Geometry g;
  if (in.size() < 2 || !in[0].present || !in[1].present) return g;
  // A zero times inf is NaN: with a non-finite constant operand no product
  // is proven zero (run-time operands are taken to be finite).
  if (in[0].any_nonfinite || in[1].any_nonfinite) return g;
  const std::vector<int64_t>&ad = in[0].dims, &bd = in[1].dims;
  if (ad.size() < 2 || bd.size() < 2) return g;
  const bool ta = kind == ProductKind::gemm && n.attr_int("transA", 0) != 0;
  const bool tb = (kind == ProductKind::gemm && n.attr_int("transB", 0) != 0) ||
                  (kind == ProductKind::linear && n.attr_int("trans_w", 0) != 0);
  if (bd.size() == 2) {  // a weight (or any 2-D B) shared by every row of A
    g.k = tb ? bd[1] : bd[0];
    g.n = tb ? bd[0] : bd[1];
    if (kind == ProductKind::gemm) {
      g.m = ta ? ad[1] : ad[0];
      if ((ta ? ad[0] : ad[1]) != g.k) return g;
      g.a_is = ta ? 1 : g.k;
      g.a_ks = ta ? g.m : 1;
    } else {
      if (ad.back() != g.k) return g;
      g.m = g.k ? in[0].numel() / g.k : 0;
      g.a_is = g.k;
      g.a_ks = 1;
    }
    g.b_ks = tb ? 1 : g.n;
    g.b_js = tb ? g.k : 1;
  } else {  // two batched operands with equal batch dims
    if (kind != ProductKind::matmul || ad.size() != bd.size() ||
        !std::equal(ad.begin(), ad.end() - 2, bd.begin()) || ad.back() != bd[bd.size() - 2])
      return g;
    for (size_t i = 0; i + 2 < ad.size(); ++i) g.batch *= ad[i];
    g.m = ad[ad.size() - 2];
    g.k = ad.back();
    g.n = bd.back();
    g.a_bs = g.m * g.k;
    g.a_is = g.k;
    g.a_ks = 1;
    g.b_bs = g.k * g.n;
    g.b_ks = g.n;
    g.b_js = 1;
  }
  g.ok = true;
  return g;
}

// Per row i of A, or per column j of B (per batch): which k are non-zero,
// which are not known. A constant without zeros, or a value with nothing
// known, fills whole rows at once; otherwise elements are read in memory
// order.
void row_bits(const Facts& f, const Geometry& g, int64_t b, bool of_a, BitRows& nonzero, BitRows& var) {
  const int64_t rows = of_a ? g.m : g.n;
  if (!f.any_zero && (f.constant || f.all_var)) {
    nonzero.reset(rows, g.k, ~uint64_t{0});
    var.reset(rows, g.k, f.all_var ? ~uint64_t{0} : 0);
    return;
  }
  nonzero.reset(rows, g.k, 0);
  var.reset(rows, g.k, 0);
  const int64_t r_stride = of_a ? g.a_is : g.b_js, k_stride = of_a ? g.a_ks : g.b_ks;
  const int64_t base = of_a ? g.a(b, 0, 0) : g.w(b, 0, 0);
  const bool r_inner = r_stride < k_stride;
  const int64_t outer_n = r_inner ? g.k : rows, inner_n = r_inner ? rows : g.k;
  for (int64_t o = 0; o < outer_n; ++o) {
    const int64_t first = base + o * (r_inner ? k_stride : r_stride), step = r_inner ? r_stride : k_stride;
    for (int64_t in = 0; in < inner_n; ++in) {
      const int64_t e = first + in * step;
      if (f.zero(e)) continue;
      const int64_t r = r_inner ? in : o, kk = r_inner ? o : in;
      nonzero.set(r, kk);
      if (!f.constant && !f.known(e)) var.set(r, kk);
    }
  }
}

float activation(const Node& n, ProductKind kind, float v) {
  if (kind != ProductKind::linear) return v;
  const Attribute* a = n.attr("act");
  if (!a || a->s == "none") return v;
  if (a->s == "relu") return v > 0.f ? v : 0.f;
  return static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));  // gelu
}

}  // namespace

TesaRule product(ProductKind kind) {
  TesaRule r;
  r.zero_dead_constants = false;
  r.forward = [kind](TesaForward& t) {
    const Geometry g = geometry(t.n, t.in, kind);
    if (!g.ok) return;  // every output element kept
    // The product P alone, as facts over the output's elements.
    Tesa p(t.out[0].shape(), ElemCode::bits32);
    BitRows an, av, bn, bv;
    for (int64_t b = 0; b < g.batch; ++b) {
      row_bits(t.in[0], g, b, true, an, av);
      row_bits(t.in[1], g, b, false, bn, bv);
      const int64_t w = an.words;
      // A side with nothing known: P[i, j] varies unless A's row i or B's
      // column j is all zero (then P is exactly zero there).
      if (t.in[0].all_var || t.in[1].all_var) {
        std::vector<uint8_t> zero_i(static_cast<size_t>(g.m)), zero_j(static_cast<size_t>(g.n));
        for (int64_t i = 0; i < g.m; ++i) zero_i[static_cast<size_t>(i)] = none(an[i], w);
        for (int64_t j = 0; j < g.n; ++j) zero_j[static_cast<size_t>(j)] = none(bn[j], w);
        for (int64_t i = 0; i < g.m; ++i)
          for (int64_t j = 0; j < g.n; ++j)
            if (zero_i[static_cast<size_t>(i)] || zero_j[static_cast<size_t>(j)]) p.set((b * g.m + i) * g.n + j, ElemCode::pruned);
        continue;
      }
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t j = 0; j < g.n; ++j) {
          if (intersects(av[i], bn[j], w) || intersects(an[i], bv[j], w)) continue;  // varies
          // Every k with both operands non-zero has both known: visit those.
          double acc = 0;
          for (int64_t x = 0; x < w; ++x)
            for (uint64_t bits = an[i][x] & bn[j][x]; bits; bits &= bits - 1) {
              const int64_t kk = x * 64 + __builtin_ctzll(bits);
              acc += double(t.in[0].value(g.a(b, i, kk))) * t.in[1].value(g.w(b, kk, j));
            }
          p.set_constant((b * g.m + i) * g.n + j, static_cast<float>(acc));
        }
    }
    // Every product element varies: so does every output (the dense case).
    const uint8_t* pc = p.codes();
    if (std::all_of(pc, pc + p.numel(), [](uint8_t c) { return c == 32; })) return;
    // The epilogue: Gemm's alpha P + beta C, Linear's act(P + bias + residual).
    const float alpha = kind == ProductKind::gemm ? t.n.attr_float("alpha", 1.f) : 1.f;
    const float beta = kind == ProductKind::gemm ? t.n.attr_float("beta", 1.f) : 1.f;
    std::vector<Facts> terms(1);
    terms[0].tesa = &p;
    terms[0].dims = t.out[0].shape().dims();
    terms[0].present = true;
    terms[0].prepare();
    for (size_t i = 2; i < t.in.size(); ++i) terms.push_back(t.in[i]);
    if (kind == ProductKind::linear && terms.size() > 1 && terms[1].present)
      terms[1].dims = {terms[1].numel()};  // the bias is [N] whatever its stored rank
    for_each_output(t.out[0].shape().dims(), terms, [&](int64_t e, const std::vector<int64_t>& off) {
      bool known = true, zero = true;
      double v = 0;
      for (size_t j = 0; j < terms.size(); ++j) {
        if (!terms[j].present) continue;
        const float scale = j == 0 ? alpha : beta;
        if (scale == 0.f) continue;
        zero = zero && terms[j].zero(off[j]);
        if (terms[j].known(off[j])) v += double(scale) * terms[j].value(off[j]);
        else known = false;
      }
      if (zero) t.out[0].set(e, ElemCode::pruned);  // relu(0) = gelu(0) = 0
      else if (known) t.out[0].set_constant(e, activation(t.n, kind, static_cast<float>(v)));
    });
  };
  r.backward = [kind](TesaBackward& b) {
    const Geometry g = geometry(b.n, b.in, kind);
    if (!g.ok) {
      all_needed_if_any(b, 0);
      return;
    }
    const LiveMask* live = b.out_live[0];
    const bool every = all_live(live);
    BitRows an, av, bn, bv, need_a, need_b;
    for (int64_t bb = 0; bb < g.batch; ++bb) {
      row_bits(b.in[0], g, bb, true, an, av);
      row_bits(b.in[1], g, bb, false, bn, bv);
      const int64_t words = an.words;
      // A[i, k] is needed where some needed output (i, j) has B[k, j] != 0;
      // B[k, j] where some needed (i, j) has A[i, k] != 0.
      need_a.reset(g.m, g.k, 0);
      need_b.reset(g.n, g.k, 0);
      if (every) {  // the same OR for every row, and for every column
        std::vector<uint64_t> or_b(static_cast<size_t>(words), 0), or_a(static_cast<size_t>(words), 0);
        for (int64_t j = 0; j < g.n; ++j)
          for (int64_t w = 0; w < words; ++w) or_b[static_cast<size_t>(w)] |= bn[j][w];
        for (int64_t i = 0; i < g.m; ++i)
          for (int64_t w = 0; w < words; ++w) or_a[static_cast<size_t>(w)] |= an[i][w];
        for (int64_t i = 0; i < g.m && g.n > 0; ++i) std::copy(or_b.begin(), or_b.end(), need_a[i]);
        for (int64_t j = 0; j < g.n && g.m > 0; ++j) std::copy(or_a.begin(), or_a.end(), need_b[j]);
      } else {
        // Rows of the output with the same liveness (dead columns, the usual
        // case) share their need: computed for row 0 and copied.
        const int64_t base = bb * g.m * g.n;
        bool uniform = true;
        for (int64_t i = 1; i < g.m && uniform; ++i)
          for (int64_t j = 0; j < g.n && uniform; ++j)
            uniform = live_at(live, base + i * g.n + j) == live_at(live, base + j);
        std::vector<uint64_t> or_a(static_cast<size_t>(words), 0);
        if (uniform)
          for (int64_t i = 0; i < g.m; ++i)
            for (int64_t w = 0; w < words; ++w) or_a[static_cast<size_t>(w)] |= an[i][w];
        for (int64_t i = 0; i < (uniform ? std::min<int64_t>(g.m, 1) : g.m); ++i)
          for (int64_t j = 0; j < g.n; ++j) {
            if (!live_at(live, base + i * g.n + j)) continue;
            for (int64_t w = 0; w < words; ++w) {
              need_a[i][w] |= bn[j][w];
              need_b[j][w] |= uniform ? or_a[static_cast<size_t>(w)] : an[i][w];
            }
          }
        if (uniform)
          for (int64_t i = 1; i < g.m; ++i) std::copy(need_a[0], need_a[0] + words, need_a[i]);
      }
      // A's zeros are needed wherever its row is: a zero A[i, k] is what
      // makes the term vanish (B[k, j] is then the one not needed). One
      // absorber per term, not both: two zeros that excused each other could
      // both change.
      for (int64_t i = 0; i < g.m; ++i) {
        bool row_live = every;
        for (int64_t j = 0; j < g.n && !row_live; ++j) row_live = live_at(live, (bb * g.m + i) * g.n + j);
        if (!row_live) continue;
        for (int64_t w = 0; w < words; ++w) need_a[i][w] |= ~an[i][w];
        if (g.k % 64) need_a[i][words - 1] &= (uint64_t{1} << (g.k % 64)) - 1;
      }
      // Where every row (column) needs every k, the operand's part for this
      // batch is needed whole: filled at once (the dense case).
      BitRows full;
      full.reset(1, g.k, ~uint64_t{0});
      auto whole = [&](const BitRows& x, int64_t rows) {
        for (int64_t r = 0; r < rows; ++r)
          if (!std::equal(x[r], x[r] + words, full[0])) return false;
        return true;
      };
      const bool a_whole = whole(need_a, g.m), b_whole = whole(need_b, g.n);
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t kk = 0; kk < g.k; ++kk)
          if (a_whole || need_a.get(i, kk)) b.in_live[0].set(g.a(bb, i, kk));
      if (b_whole) {
        if (g.b_bs == 0 || b.in[1].dims.size() == 2) b.in_live[1].fill();
        else b.in_live[1].set_range(bb * g.b_bs, (bb + 1) * g.b_bs);
      } else {
        for (int64_t j = 0; j < g.n; ++j)
          for (int64_t kk = 0; kk < g.k; ++kk)
            if (need_b.get(j, kk)) b.in_live[1].set(g.w(bb, kk, j));
      }
    }
    // Bias, C and residual: needed where an output they reach is.
    std::vector<Facts> terms;
    for (size_t i = 2; i < b.in.size(); ++i) terms.push_back(b.in[i]);
    if (kind == ProductKind::linear && !terms.empty() && terms[0].present) terms[0].dims = {terms[0].numel()};
    std::vector<int64_t> od = b.in[0].dims;  // the output's dims
    if (kind == ProductKind::gemm) od = {g.m, g.n};
    else od.back() = g.n;
    if (every) {
      for (size_t j = 0; j < terms.size(); ++j)
        if (terms[j].present) b.in_live[j + 2].fill();
      return;
    }
    for_each_output(od, terms, [&](int64_t e, const std::vector<int64_t>& off) {
      if (!live_at(live, e)) return;
      for (size_t j = 0; j < terms.size(); ++j)
        if (terms[j].present) b.in_live[j + 2].set(off[j]);
    });
  };
  return r;
}

namespace {

// N x C x (plane) geometry of a channel operator's input and output.
struct Planes {
  int64_t n = 0, c = 0, plane = 0;
};
Planes planes(const std::vector<int64_t>& d) {
  Planes p;
  if (d.size() < 2) return p;
  p.n = d[0];
  p.c = d[1];
  p.plane = 1;
  for (size_t i = 2; i < d.size(); ++i) p.plane *= d[i];
  return p;
}

bool zero_range(const Facts& f, int64_t begin, int64_t count) {
  for (int64_t i = begin; i < begin + count; ++i)
    if (!f.zero(i)) return false;
  return true;
}

bool any_live(const LiveMask* l, int64_t begin, int64_t count) {
  if (!l || l->all()) return true;
  for (int64_t i = begin; i < begin + count; ++i)
    if ((*l)[i]) return true;
  return false;
}

void mark(LiveMask& l, int64_t begin, int64_t count) { l.set_range(begin, begin + count); }

// BatchNormalization as the elementwise rule over (x, scale, B, mean, var),
// its parameters seen as [C, 1, ..., 1] so that they broadcast per channel.
TesaRule batch_norm() {
  auto as_channels = [](std::vector<Facts> in) {
    if (in.size() != 5 || in[0].dims.size() < 2) return in;  // the rule then keeps everything
    for (size_t i = 1; i < in.size(); ++i)
      SPARTA_CHECK(in[i].present && in[i].numel() == in[0].dims[1], "a parameter without one value per channel");
    const size_t r = in[0].dims.size();
    for (size_t i = 1; i < in.size(); ++i)
      if (in[i].present) {
        in[i].dims = std::vector<int64_t>(r - 1, 1);
        in[i].dims[0] = in[i].numel() ? in[0].dims[1] : 0;
      }
    return in;
  };
  const TesaRule e = elementwise_by_node([](const Node& n) -> ElementFn {
    const double eps = n.attr_float("epsilon", 1e-5f);
    return [eps](const float* v) {
      return static_cast<float>((double(v[0]) - v[3]) / std::sqrt(double(v[4]) + eps) * v[1] + v[2]);
    };
  });
  TesaRule r;
  r.forward = [e, as_channels](TesaForward& t) {
    TesaForward f{t.n, t.opset, as_channels(t.in), t.out};
    if (f.in.size() == 5 && f.in[0].dims.size() >= 2) e.forward(f);
  };
  r.backward = [e, as_channels](TesaBackward& b) {
    if (b.in.size() != 5 || b.in[0].dims.size() < 2) return all_needed_if_any(b, 0);
    TesaBackward f{b.n, b.opset, as_channels(b.in), b.out_live, b.in_live};
    e.backward(f);
  };
  return r;
}

}  // namespace

TesaRule channels(ChannelKind kind) {
  if (kind == ChannelKind::batch_norm) return batch_norm();
  TesaRule r;
  r.zero_dead_constants = false;
  // Only the plain forms: a fused residual or activation (added by the
  // fusion passes, after propagation) keeps everything.
  auto plain = [kind](const Node& n, const std::vector<Facts>& in) {
    if (in.empty() || in[0].dims.size() < 3) return false;
    if (kind == ChannelKind::conv)
      return in.size() >= 2 && in.size() <= 3 && !n.attr("sparta.act") && in[1].dims.size() == in[0].dims.size();
    return true;
  };
  r.forward = [kind, plain](TesaForward& t) {
    if (!plain(t.n, t.in)) return;
    const Planes x = planes(t.in[0].dims), y = planes(t.out[0].shape().dims());
    if (kind == ChannelKind::pool) {
      for (int64_t p = 0; p < x.n * x.c; ++p)
        if (zero_range(t.in[0], p * x.plane, x.plane))
          for (int64_t i = 0; i < y.plane; ++i) t.out[0].set(p * y.plane + i, ElemCode::pruned);
      return;
    }
    const Facts &w = t.in[1];
    const int64_t groups = std::max<int64_t>(1, t.n.attr_int("group", 1)), cig = w.dims[1];
    SPARTA_CHECK(w.dims[0] == y.c && y.c % groups == 0 && x.c == cig * groups && y.n == x.n, "inconsistent channels");
    const int64_t taps = w.numel() / std::max<int64_t>(1, w.dims[0] * cig), cog = std::max<int64_t>(1, y.c / groups);
    const bool has_bias = t.in.size() > 2 && t.in[2].present;
    SPARTA_CHECK(!has_bias || t.in[2].numel() == y.c, "a bias without one value per output channel");
    for (int64_t n = 0; n < x.n; ++n)
      for (int64_t co = 0; co < y.c; ++co) {
        bool zero = true;
        for (int64_t cl = 0; cl < cig && zero; ++cl) {
          const int64_t ci = (co / cog) * cig + cl;
          zero = zero_range(w, (co * cig + cl) * taps, taps) || zero_range(t.in[0], (n * x.c + ci) * x.plane, x.plane);
        }
        if (!zero) continue;
        const int64_t base = (n * y.c + co) * y.plane;
        for (int64_t i = 0; i < y.plane; ++i) {
          if (!has_bias) t.out[0].set(base + i, ElemCode::pruned);
          else if (t.in[2].known(co)) t.out[0].set_constant(base + i, t.in[2].value(co));
        }
      }
  };
  r.backward = [kind, plain](TesaBackward& b) {
    if (!plain(b.n, b.in)) return all_needed_if_any(b, 0);
    const Planes x = planes(b.in[0].dims);
    const LiveMask* live = b.out_live[0];
    if (kind == ChannelKind::pool) {
      const int64_t out_plane = live ? static_cast<int64_t>(live->size()) / std::max<int64_t>(1, x.n * x.c) : 0;
      for (int64_t p = 0; p < x.n * x.c; ++p)
        if (!live || any_live(live, p * out_plane, out_plane)) mark(b.in_live[0], p * x.plane, x.plane);
      return;
    }
    const Facts& w = b.in[1];
    const int64_t co_n = w.dims[0], cig = w.dims[1], groups = std::max<int64_t>(1, b.n.attr_int("group", 1));
    SPARTA_CHECK(co_n % groups == 0 && x.c == cig * groups, "inconsistent channels");
    const int64_t taps = w.numel() / std::max<int64_t>(1, co_n * cig), cog = std::max<int64_t>(1, co_n / groups);
    const int64_t y_plane = live ? static_cast<int64_t>(live->size()) / std::max<int64_t>(1, x.n * co_n) : 0;
    for (int64_t n = 0; n < x.n; ++n)
      for (int64_t co = 0; co < co_n; ++co) {
        if (live && !any_live(live, (n * co_n + co) * y_plane, y_plane)) continue;
        if (b.in.size() > 2 && b.in[2].present) {
          SPARTA_CHECK(b.in[2].numel() == co_n, "a bias without one value per output channel");
          b.in_live[2].set(co);
        }
        for (int64_t cl = 0; cl < cig; ++cl) {
          const int64_t ci = (co / cog) * cig + cl;
          const bool w_zero = zero_range(w, (co * cig + cl) * taps, taps);
          const bool x_zero = zero_range(b.in[0], (n * x.c + ci) * x.plane, x.plane);
          if (!w_zero) mark(b.in_live[0], (n * x.c + ci) * x.plane, x.plane);
          if (!x_zero) mark(b.in_live[1], (co * cig + cl) * taps, taps);
        }
      }
  };
  return r;
}

}  // namespace sparta::tesa_rules
