// Elementwise operators with numpy broadcasting: arithmetic, comparisons,
// logic, Where, unary math, Clip and Cast.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/isa_kernels.h"
#include "ops/op_def.h"

namespace sparta {
namespace {

// How an operand repeats over the output (both right-aligned): the fast
// loops cover an operand equal to the output, a scalar, a block repeated
// over leading dims (bias [N] over [M, N]), and a value per row repeated
// over trailing dims (mean [M, 1] over [M, N]).
struct Pattern {
  enum Kind { full, scalar, suffix, prefix, other } kind = other;
  int64_t inner = 1;  // suffix: block length; prefix: repeat count
};

Pattern pattern_of(const std::vector<int64_t>& x, const std::vector<int64_t>& out) {
  int64_t n = 1;
  for (int64_t d : x) n *= d;
  const size_t r = out.size();
  std::vector<int64_t> xd(r - x.size(), 1);
  xd.insert(xd.end(), x.begin(), x.end());
  if (xd == out) return {Pattern::full, 1};
  if (n == 1) return {Pattern::scalar, 1};
  size_t lead = 0;  // leading 1s, then the rest equals out
  while (lead < r && xd[lead] == 1 && out[lead] != 1) ++lead;
  if (std::equal(xd.begin() + lead, xd.end(), out.begin() + lead)) return {Pattern::suffix, n};
  size_t keep = r;  // trailing 1s, before them equal to out
  while (keep > 0 && xd[keep - 1] == 1) --keep;
  if (std::equal(xd.begin(), xd.begin() + keep, out.begin())) {
    int64_t inner = 1;
    for (size_t i = keep; i < r; ++i) inner *= out[i];
    return {Pattern::prefix, inner};
  }
  return {};
}

// out[i] = f(x[i], y[map(i)]) over i in [b, e), for an operand y with a
// fast pattern p (not Pattern::other). Runs of contiguous indices keep the
// inner loops simple enough to vectorize.
template <typename T, typename R, typename F, bool SWAP>
void fast_loop(const T* full, const T* other, R* py, int64_t b, int64_t e, Pattern p, F f) {
  auto op = [&](T a, T c) { return SWAP ? f(c, a) : f(a, c); };
  switch (p.kind) {
    case Pattern::full:
      for (int64_t i = b; i < e; ++i) py[i] = op(full[i], other[i]);
      return;
    case Pattern::scalar: {
      const T c = other[0];
      for (int64_t i = b; i < e; ++i) py[i] = op(full[i], c);
      return;
    }
    case Pattern::suffix:  // other repeats every p.inner elements
    case Pattern::prefix:  // other[row] over rows of p.inner elements
      for (int64_t i = b; i < e;) {
        const int64_t row = i / p.inner, j0 = i - row * p.inner, len = std::min(p.inner - j0, e - i);
        if (p.kind == Pattern::suffix) {
          const T* o = other + j0;
          for (int64_t t = 0; t < len; ++t) py[i + t] = op(full[i + t], o[t]);
        } else {
          const T c = other[row];
          for (int64_t t = 0; t < len; ++t) py[i + t] = op(full[i + t], c);
        }
        i += len;
      }
      return;
    case Pattern::other: return;
  }
}

// A blocked (channels-last or channel-blocked) x with a per-channel s
// (layout pass, LayoutRole::binary): y = f(x, s[n, c]) (or f(s, x)) in x's
// layout.
template <typename T, typename R, typename F>
void per_channel_blocked(OpCall& c, const Tensor& x, const Tensor& s, bool x_first, Layout l, F f, R* py) {
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
  const int64_t B = layout_block(l, C);
  const T* px = static_cast<const T*>(x.raw());
  std::vector<T> repeated;  // a single value: one block of copies
  if (s.numel() == 1) repeated.assign(size_t(B), static_cast<const T*>(s.raw())[0]);
  const T* ps = s.numel() == 1 ? repeated.data() : static_cast<const T*>(s.raw());
  const int64_t sn = s.numel() == 1 || s.dim(0) == 1 ? 0 : C, cs = s.numel() == 1 ? 0 : 1;
  parallel_for(c.threads, N * (C / B), 1, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {  // one block of B channels of one image: HW rows of B values
      const int64_t n = q / (C / B), cb = q % (C / B);
      const T* sv = ps + n * sn + cb * B * cs;
      const T* xv = px + q * HW * B;
      R* yv = py + q * HW * B;
      if (x_first) {
        for (int64_t p = 0; p < HW; ++p)
          for (int64_t j = 0; j < B; ++j) yv[p * B + j] = f(xv[p * B + j], sv[j]);
      } else {
        for (int64_t p = 0; p < HW; ++p)
          for (int64_t j = 0; j < B; ++j) yv[p * B + j] = f(sv[j], xv[p * B + j]);
      }
    }
  });
}

template <typename T, typename R, typename F>
void binary_typed(OpCall& c, DType out_type, F f) {
  const Tensor &a = c.input(0), &b = c.input(1);
  const Layout la = c.node.inputs.size() > 0 && c.node.inputs[0] ? c.node.inputs[0]->layout : Layout::plain;
  const Layout lb = c.node.inputs.size() > 1 && c.node.inputs[1] ? c.node.inputs[1]->layout : Layout::plain;
  const bool out_blocked = !c.node.outputs.empty() && c.node.outputs[0] && c.node.outputs[0]->layout != Layout::plain;
  if (out_blocked && a.shape() != b.shape()) {  // blocked data with a per-channel value (layout pass)
    const bool a_blocked = la != Layout::plain && per_channel_of(c.node.inputs[1], c.node.inputs[0]);
    SPARTA_ASSERT(a_blocked || (lb != Layout::plain && per_channel_of(c.node.inputs[0], c.node.inputs[1])), "node '",
                  c.node.name, "': a blocked binary operation needs equal shapes or a per-channel operand");
    const Tensor& x = a_blocked ? a : b;
    Tensor y(out_type, x.shape(), Uninitialized{});
    per_channel_blocked<T, R>(c, x, a_blocked ? b : a, a_blocked, a_blocked ? la : lb, f, static_cast<R*>(y.raw()));
    return c.out.push_back(std::move(y));
  }
  const auto dims = broadcast_dims(a.shape().dims(), b.shape().dims(), c);
  Tensor y(out_type, Shape(dims), Uninitialized{});
  const T* pa = static_cast<const T*>(a.raw());
  const T* pb = static_cast<const T*>(b.raw());
  R* py = static_cast<R*>(y.raw());
  const Pattern qa = pattern_of(a.shape().dims(), dims), qb = pattern_of(b.shape().dims(), dims);
  const int64_t total = y.numel();
  // f32 only on several threads: integer ops may throw (division by zero),
  // which must not happen inside a parallel region.
  const int threads = std::is_same_v<T, float> && std::is_same_v<R, float> ? c.threads : 1;
  if (qa.kind == Pattern::full && qb.kind != Pattern::other) {
    parallel_for(threads, total, 1 << 15,
                 [&](int64_t s, int64_t e) { fast_loop<T, R, F, false>(pa, pb, py, s, e, qb, f); });
  } else if (qb.kind == Pattern::full && qa.kind != Pattern::other) {
    parallel_for(threads, total, 1 << 15,
                 [&](int64_t s, int64_t e) { fast_loop<T, R, F, true>(pb, pa, py, s, e, qa, f); });
  } else {
    for_each_broadcast<2>(dims, {a.shape().dims(), b.shape().dims()},
                          [&](int64_t e, const std::array<int64_t, 2>& o) { py[e] = f(pa[o[0]], pb[o[1]]); });
  }
  c.out.push_back(std::move(y));
}

// Arithmetic on f32, i64, i32 (and u8/i8 for the conformance tests).
template <typename F>
void arith(OpCall& c, F f) {
  const Tensor &a = c.input(0), &b = c.input(1);
  if (a.dtype() != b.dtype()) c.fail("input types differ: " + std::string(dtype_name(a.dtype())) + " and " +
                                     std::string(dtype_name(b.dtype())));
  switch (a.dtype()) {
    case DType::f32: return binary_typed<float, float>(c, DType::f32, f);
    case DType::i64: return binary_typed<int64_t, int64_t>(c, DType::i64, f);
    case DType::i32: return binary_typed<int32_t, int32_t>(c, DType::i32, f);
    case DType::u8: return binary_typed<uint8_t, uint8_t>(c, DType::u8, f);
    case DType::i8: return binary_typed<int8_t, int8_t>(c, DType::i8, f);
    default: c.fail("unsupported type " + std::string(dtype_name(a.dtype())));
  }
}

// Min, Max, Sum, Mean: the binary operator folded over every input (numpy
// broadcasting at each step), then divided by the count for Mean.
template <typename F>
void variadic(OpCall& c, F f, bool mean) {
  if (c.in.empty() || !c.in[0]) c.fail("needs at least one input");
  Tensor acc = c.input(0);
  for (size_t i = 1; i < c.in.size(); ++i) {
    OpCall step{c.node, {&acc, &c.input(i)}, {}, c.threads};
    arith(step, f);
    acc = std::move(step.out[0]);
  }
  if (mean) {
    if (acc.dtype() != DType::f32) c.fail("Mean expects f32");
    Tensor y(DType::f32, acc.shape(), Uninitialized{});
    const float inv = 1.f / static_cast<float>(c.in.size());
    for (int64_t i = 0; i < acc.numel(); ++i) y.data<float>()[i] = acc.data<float>()[i] * inv;
    acc = std::move(y);
  } else if (c.in.size() == 1) {
    Tensor y(acc.dtype(), acc.shape(), Uninitialized{});  // a copy: outputs never alias inputs
    if (y.nbytes()) std::memcpy(y.raw(), acc.raw(), y.nbytes());
    acc = std::move(y);
  }
  c.out.push_back(std::move(acc));
}

template <typename F>
void compare(OpCall& c, F f) {
  const Tensor &a = c.input(0), &b = c.input(1);
  if (a.dtype() != b.dtype()) c.fail("input types differ");
  switch (a.dtype()) {
    case DType::f32: return binary_typed<float, uint8_t>(c, DType::boolean, f);
    case DType::i64: return binary_typed<int64_t, uint8_t>(c, DType::boolean, f);
    case DType::i32: return binary_typed<int32_t, uint8_t>(c, DType::boolean, f);
    case DType::boolean: return binary_typed<uint8_t, uint8_t>(c, DType::boolean, f);
    default: c.fail("unsupported type " + std::string(dtype_name(a.dtype())));
  }
}

template <typename F>
void unary_f32(OpCall& c, F f) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::f32) c.fail("expects f32, got " + std::string(dtype_name(x.dtype())));
  Tensor y(DType::f32, x.shape(), Uninitialized{});
  const float* px = x.data<float>();
  float* py = y.data<float>();
  parallel_for(c.threads, x.numel(), 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) py[i] = f(px[i]);
  });
  c.out.push_back(std::move(y));
}

// f on f32, i64, i32 or i8 elements (f generic: Neg, Abs, Sign).
template <typename F>
void unary_numeric(OpCall& c, F f) {
  const Tensor& x = c.input(0);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    Tensor y(x.dtype(), x.shape(), Uninitialized{});
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = static_cast<T>(f(px[i]));
    c.out.push_back(std::move(y));
  };
  switch (x.dtype()) {
    case DType::f32: return unary_f32(c, [f](float v) { return static_cast<float>(f(v)); });
    case DType::i64: return run(int64_t{});
    case DType::i32: return run(int32_t{});
    case DType::i8: return run(int8_t{});
    default: c.fail("expects f32, i64, i32 or i8, got " + std::string(dtype_name(x.dtype())));
  }
}

void where(OpCall& c) {
  const Tensor &cond = c.input(0), &a = c.input(1), &b = c.input(2);
  if (cond.dtype() != DType::boolean) c.fail("condition must be bool");
  if (a.dtype() != b.dtype()) c.fail("value types differ");
  auto dims = broadcast_dims(broadcast_dims(cond.shape().dims(), a.shape().dims(), c), b.shape().dims(), c);
  Tensor y(a.dtype(), Shape(dims));
  const size_t es = dtype_size(a.dtype());
  const auto* pc = static_cast<const uint8_t*>(cond.raw());
  const auto* pa = static_cast<const char*>(a.raw());
  const auto* pb = static_cast<const char*>(b.raw());
  auto* py = static_cast<char*>(y.raw());
  for_each_broadcast<3>(dims, {cond.shape().dims(), a.shape().dims(), b.shape().dims()},
                        [&](int64_t e, const std::array<int64_t, 3>& o) {
                          std::memcpy(py + e * es, pc[o[0]] ? pa + o[1] * es : pb + o[2] * es, es);
                        });
  c.out.push_back(std::move(y));
}

float to_f32(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::f32: return t.data<float>()[i];
    case DType::i64: return static_cast<float>(t.data<int64_t>()[i]);
    case DType::i32: return static_cast<float>(t.data<int32_t>()[i]);
    case DType::i8: return t.data<int8_t>()[i];
    case DType::u8:
    case DType::boolean: return static_cast<const uint8_t*>(t.raw())[i];
    case DType::bf16: {
      uint32_t bits = uint32_t{t.data<bf16>()[i].bits} << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
  }
  return 0;
}

void cast(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t to = c.node.attr_int("to", 0);
  const std::optional<DType> target = dtype_from_onnx(to);
  if (!target) c.fail("cannot cast to ONNX type " + std::to_string(to));
  const DType t = *target;
  if (t == x.dtype()) return c.out.push_back(x);  // nothing to convert: the same tensor
  // The common numeric pairs in one typed loop each.
  const auto typed = [&](auto from, auto to) {
    using F = decltype(from);
    using T = decltype(to);
    Tensor y(t, x.shape(), Uninitialized{});
    const F* px = static_cast<const F*>(x.raw());
    T* py = static_cast<T*>(y.raw());
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = static_cast<T>(px[i]);
    c.out.push_back(std::move(y));
  };
  if (x.dtype() == DType::i64 && t == DType::f32) return typed(int64_t{}, float{});
  if (x.dtype() == DType::i32 && t == DType::f32) return typed(int32_t{}, float{});
  if (x.dtype() == DType::i64 && t == DType::i32) return typed(int64_t{}, int32_t{});
  if (x.dtype() == DType::i32 && t == DType::i64) return typed(int32_t{}, int64_t{});
  if (x.dtype() == DType::f32 && t == DType::i64) return typed(float{}, int64_t{});
  Tensor y(t, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    // Integer to integer goes through int64 to stay exact.
    const bool int_src = x.dtype() == DType::i64 || x.dtype() == DType::i32;
    const int64_t iv = x.dtype() == DType::i64 ? x.data<int64_t>()[i] : x.dtype() == DType::i32 ? x.data<int32_t>()[i] : 0;
    const float f = int_src ? static_cast<float>(iv) : to_f32(x, i);
    switch (t) {
      case DType::f32: y.data<float>()[i] = f; break;
      case DType::i64: y.data<int64_t>()[i] = int_src ? iv : static_cast<int64_t>(f); break;
      case DType::i32: y.data<int32_t>()[i] = static_cast<int32_t>(int_src ? iv : static_cast<int64_t>(f)); break;
      case DType::i8: y.data<int8_t>()[i] = static_cast<int8_t>(int_src ? iv : static_cast<int64_t>(f)); break;
      case DType::u8: static_cast<uint8_t*>(y.raw())[i] = static_cast<uint8_t>(int_src ? iv : static_cast<int64_t>(f)); break;
      case DType::boolean: static_cast<uint8_t*>(y.raw())[i] = int_src ? iv != 0 : f != 0.f; break;
      case DType::bf16: {
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        bits += 0x7FFF + ((bits >> 16) & 1);  // round to nearest even
        y.data<bf16>()[i].bits = static_cast<uint16_t>(bits >> 16);
        break;
      }
    }
  }
  c.out.push_back(std::move(y));
}

// Pow: the result has the base's type; the exponent may be any numeric type.
void pow_op(OpCall& c) {
  const Tensor &a = c.input(0), &b = c.input(1);
  if (a.dtype() == DType::f32 && b.dtype() == DType::f32 && b.numel() == 1) {  // x^2 of a decomposed LayerNorm
    const float e = b.data<float>()[0];
    return unary_f32(c, [e](float v) { return e == 2.f ? v * v : std::pow(v, e); });
  }
  auto value = [&](const Tensor& t, int64_t i) -> double {
    switch (t.dtype()) {
      case DType::f32: return t.data<float>()[i];
      case DType::i64: return static_cast<double>(t.data<int64_t>()[i]);
      case DType::i32: return t.data<int32_t>()[i];
      default: c.fail("unsupported type " + std::string(dtype_name(t.dtype())));
    }
  };
  const auto dims = broadcast_dims(a.shape().dims(), b.shape().dims(), c);
  Tensor y(a.dtype(), Shape(dims));
  for_each_broadcast<2>(dims, {a.shape().dims(), b.shape().dims()}, [&](int64_t e, const std::array<int64_t, 2>& o) {
    const double base = value(a, o[0]), ex = value(b, o[1]);
    const double r = ex == 2.0 ? base * base : std::pow(base, ex);
    switch (a.dtype()) {
      case DType::f32: y.data<float>()[e] = static_cast<float>(r); break;
      case DType::i64: y.data<int64_t>()[e] = static_cast<int64_t>(r); break;
      case DType::i32: y.data<int32_t>()[e] = static_cast<int32_t>(r); break;
      default: break;
    }
  });
  c.out.push_back(std::move(y));
}

void clip(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::f32) c.fail("expects f32");
  float lo = -INFINITY, hi = INFINITY;
  if (c.has_input(1)) lo = c.input(1).data<float>()[0];
  if (c.has_input(2)) hi = c.input(2).data<float>()[0];
  if (const Attribute* a = c.node.attr("min")) lo = a->f;  // opset < 11
  if (const Attribute* a = c.node.attr("max")) hi = a->f;
  unary_f32(c, [=](float v) { return std::min(std::max(v, lo), hi); });
}

// Cast on one element: zero stays zero; a known value converts as the
// runtime converts it (truncation to integers, != 0 to bool).
TesaRule cast_rule() {
  return tesa_rules::elementwise_by_node([](const Node& n) -> tesa_rules::ElementFn {
    const auto to = dtype_from_onnx(n.attr_int("to", 0));
    return [to](const float* v) {
      if (to == DType::boolean) return v[0] != 0.f ? 1.f : 0.f;
      if (to == DType::f32 || to == DType::bf16) return v[0];
      return std::trunc(v[0]);
    };
  });
}

// Clip on one element, its bounds from inputs 1 and 2 (opset 11+) or the
// min/max attributes (older models); an absent bound is no bound.
TesaRule clip_rule() {
  return tesa_rules::elementwise_by_node([](const Node& n) -> tesa_rules::ElementFn {
    const float lo = n.attr_float("min", NAN), hi = n.attr_float("max", NAN);
    return [lo, hi](const float* v) {
      float x = v[0];
      const float l = std::isnan(v[1]) ? lo : v[1], h = std::isnan(v[2]) ? hi : v[2];
      if (!std::isnan(l)) x = std::max(x, l);
      if (!std::isnan(h)) x = std::min(x, h);
      return x;
    };
  });
}

// Definitions shared by families of elementwise operators.
OpDef same_shape(RunFn run) {
  return {.shape = same_shape_as_input, .run = std::move(run), .dims_kept = DimsKept::all, .elementwise = true};
}
OpDef broadcast(RunFn run, bool boolean_out) {
  ShapeFn shape = boolean_out ? ShapeFn([](const ShapeCtx& c) { broadcast_inputs(c, DType::boolean); })
                              : ShapeFn([](const ShapeCtx& c) { broadcast_inputs(c, c.dtype(0)); });
  return {.shape = std::move(shape), .run = std::move(run), .dims_kept = DimsKept::all, .elementwise = true};
}
// `f` is the operator on one element, for the runtime and for TeSA
// propagation (which folds elements whose operands are all known).
template <typename F>
OpDef arithmetic(F f, std::vector<tesa_rules::Absorb> absorb = {}) {
  OpDef d = broadcast([f](OpCall& c) { arith(c, f); }, false);
  d.tesa = tesa_rules::elementwise([f](const float* v) { return static_cast<float>(f(v[0], v[1])); }, std::move(absorb));
  d.layout = LayoutRole::binary;  // same-shape blocked operands combine elementwise in any layout
  return d;
}
// fold(acc, value) over the inputs' elements; Mean divides by their count.
template <typename F>
OpDef variadic_op(F f, bool mean) {
  OpDef d = broadcast([f, mean](OpCall& c) { variadic(c, f, mean); }, false);
  d.tesa = tesa_rules::elementwise_by_node([f, mean](const Node& n) -> tesa_rules::ElementFn {
    const size_t count = n.inputs.size();
    return [f, mean, count](const float* v) {
      float acc = v[0];
      for (size_t i = 1; i < count; ++i) acc = f(acc, v[i]);
      return mean ? acc / static_cast<float>(count) : acc;
    };
  });
  return d;
}
template <typename F>
OpDef comparison(F f) {
  OpDef d = broadcast([f](OpCall& c) { compare(c, f); }, true);
  d.tesa = tesa_rules::elementwise([f](const float* v) { return static_cast<float>(f(v[0], v[1])); });
  return d;
}
template <typename F>
OpDef unary_any_number(F f) {
  OpDef d = same_shape([f](OpCall& c) { unary_numeric(c, f); });
  d.tesa = tesa_rules::elementwise([f](const float* v) { return static_cast<float>(f(v[0])); }, {}, true);
  d.layout = LayoutRole::passthrough;  // element by element: any layout
  return d;
}
template <typename F>
OpDef unary(F f, bool zero_safe = true) {
  OpDef d = same_shape([f](OpCall& c) { unary_f32(c, f); });
  d.tesa = tesa_rules::elementwise([f](const float* v) { return f(v[0]); }, {}, zero_safe);
  d.layout = LayoutRole::passthrough;  // element by element: any layout
  return d;
}

// A unary op with a vectorized kernel of the host's ISA (RowOps::*array)
// for f32 data; `f` is its scalar form, for TeSA propagation.
template <typename F>
OpDef unary_vectorized(F f, void (*RowOps::*array)(const float*, float*, int64_t)) {
  OpDef d = unary(f);
  d.run = [array](OpCall& c) {
    const Tensor& x = c.input(0);
    if (x.dtype() != DType::f32) c.fail("expects f32, got " + std::string(dtype_name(x.dtype())));
    Tensor y(DType::f32, x.shape(), Uninitialized{});
    const float* px = x.data<float>();
    float* py = y.data<float>();
    const auto kernel = row_ops().*array;
    parallel_for(c.threads, x.numel(), 1 << 14, [&](int64_t b, int64_t e) { kernel(px + b, py + b, e - b); });
    c.out.push_back(std::move(y));
  };
  return d;
}

// The same where the function depends on the node's attributes: make(node)
// returns it (attributes read once per call, the function inlined).
template <class Make>
OpDef unary_by_node(Make make, bool zero_safe = true) {
  OpDef d = same_shape([make](OpCall& c) { unary_f32(c, make(c.node)); });
  d.layout = LayoutRole::passthrough;  // element by element: any layout
  d.tesa = tesa_rules::elementwise_by_node(
      [make](const Node& n) -> tesa_rules::ElementFn {
        auto f = make(n);
        return [f](const float* v) { return f(v[0]); };
      },
      {}, zero_safe);
  return d;
}

}  // namespace

void define_elementwise_ops() {
  define_op({"Add"}, arithmetic([](auto a, auto b) { return static_cast<decltype(a)>(a + b); }));
  define_op({"Sub"}, arithmetic([](auto a, auto b) { return static_cast<decltype(a)>(a - b); }));
  using tesa_rules::Absorb;
  define_op({"Mul"}, arithmetic([](auto a, auto b) { return static_cast<decltype(a)>(a * b); },
                                {Absorb::always, Absorb::always}));
  OpDef div = broadcast(
      [](OpCall& c) {
        arith(c, [&c](auto a, auto b) {
          if constexpr (std::is_integral_v<decltype(a)>) {
            if (b == 0) c.fail("integer division by zero");
          }
          return static_cast<decltype(a)>(a / b);
        });
      },
      false);
  div.tesa = tesa_rules::elementwise([](const float* v) { return v[0] / v[1]; },
                                     {Absorb::if_others_nonzero, Absorb::never},  // 0 / x = 0 for x != 0
                                     /*zero_safe=*/false);
  div.layout = LayoutRole::binary;
  define_op({"Div"}, div);
  OpDef pow_def = broadcast(pow_op, false);
  pow_def.tesa = tesa_rules::elementwise([](const float* v) { return std::pow(v[0], v[1]); }, {},
                                         /*zero_safe=*/false);  // 0 ^ -1 is inf
  define_op({"Pow"}, pow_def);
  define_op({"Equal"}, comparison([](auto a, auto b) -> uint8_t { return a == b; }));
  define_op({"Less"}, comparison([](auto a, auto b) -> uint8_t { return a < b; }));
  define_op({"Greater"}, comparison([](auto a, auto b) -> uint8_t { return a > b; }));
  define_op({"And"}, comparison([](auto a, auto b) -> uint8_t { return a && b; }));
  define_op({"Or"}, comparison([](auto a, auto b) -> uint8_t { return a || b; }));
  OpDef not_op = broadcast(
      [](OpCall& c) {
        const Tensor& x = c.input(0);
        if (x.dtype() != DType::boolean) c.fail("expects bool");
        Tensor y(DType::boolean, x.shape());
        for (int64_t i = 0; i < x.numel(); ++i)
          static_cast<uint8_t*>(y.raw())[i] = !static_cast<const uint8_t*>(x.raw())[i];
        c.out.push_back(std::move(y));
      },
      true);
  not_op.tesa = tesa_rules::elementwise([](const float* v) { return v[0] == 0.f ? 1.f : 0.f; });
  define_op({"Not"}, not_op);
  // IsNaN and IsInf: f32 in, bool out.
  const auto predicate = [](auto pred) {
    return broadcast(
        [pred](OpCall& c) {
          const Tensor& x = c.input(0);
          if (x.dtype() != DType::f32) c.fail("expects f32");
          const auto test = pred(c.node);
          Tensor y(DType::boolean, x.shape(), Uninitialized{});
          const float* px = x.data<float>();
          uint8_t* py = static_cast<uint8_t*>(y.raw());
          for (int64_t i = 0; i < x.numel(); ++i) py[i] = test(px[i]) ? 1 : 0;
          c.out.push_back(std::move(y));
        },
        true);
  };
  define_op({"IsNaN"}, predicate([](const Node&) { return [](float v) { return std::isnan(v); }; }));
  define_op({"IsInf"}, predicate([](const Node& n) {
              const bool neg = n.attr_int("detect_negative", 1) != 0, pos = n.attr_int("detect_positive", 1) != 0;
              return [neg, pos](float v) { return std::isinf(v) && ((v > 0 && pos) || (v < 0 && neg)); };
            }));
  define_op({"Where"}, {.shape = [](const ShapeCtx& c) { broadcast_inputs(c, c.dtype(1)); },
                        .tesa = tesa_rules::elementwise([](const float* v) { return v[0] != 0.f ? v[1] : v[2]; }),
                        .run = where,
                        .dims_kept = DimsKept::all,
                        .elementwise = true});
  OpDef relu = unary([](float v) { return v > 0.f ? v : 0.f; });
  relu.layout = LayoutRole::passthrough;
  define_op({"Relu"}, relu);
  define_op({"Erf"}, unary_vectorized([](float v) { return std::erf(v); }, &RowOps::erf));
  define_op({"Sqrt"}, unary([](float v) { return std::sqrt(v); }));
  define_op({"Tanh"}, unary([](float v) { return std::tanh(v); }));
  define_op({"Sigmoid"}, unary_vectorized([](float v) { return 1.f / (1.f + std::exp(-v)); }, &RowOps::sigmoid));
  define_op({"Exp"}, unary_vectorized([](float v) { return std::exp(v); }, &RowOps::exp));
  define_op({"Log"}, unary([](float v) { return std::log(v); }, /*zero_safe=*/false));
  define_op({"Abs"}, unary_any_number([](auto v) { return v < 0 ? -v : v; }));
  define_op({"Sin"}, unary([](float v) { return std::sin(v); }));
  define_op({"Cos"}, unary([](float v) { return std::cos(v); }, /*zero_safe=*/false));
  define_op({"Tan"}, unary([](float v) { return std::tan(v); }));
  define_op({"Asin"}, unary([](float v) { return std::asin(v); }));
  define_op({"Acos"}, unary([](float v) { return std::acos(v); }, /*zero_safe=*/false));
  define_op({"Atan"}, unary([](float v) { return std::atan(v); }));
  define_op({"Sinh"}, unary([](float v) { return std::sinh(v); }));
  define_op({"Cosh"}, unary([](float v) { return std::cosh(v); }, /*zero_safe=*/false));
  define_op({"Asinh"}, unary([](float v) { return std::asinh(v); }));
  define_op({"Acosh"}, unary([](float v) { return std::acosh(v); }, /*zero_safe=*/false));
  define_op({"Atanh"}, unary([](float v) { return std::atanh(v); }));
  define_op({"Neg"}, unary_any_number([](auto v) { return -v; }));
  define_op({"Reciprocal"}, unary([](float v) { return 1.f / v; }, /*zero_safe=*/false));
  OpDef clip_def = same_shape(clip);
  clip_def.tesa = clip_rule();
  clip_def.layout = LayoutRole::passthrough;
  define_op({"Clip"}, clip_def);
  define_op({"Cast"}, {.shape =
                           [](const ShapeCtx& c) {
                             const auto t = dtype_from_onnx(c.n.attr_int("to", 0));
                             c.require(t.has_value(),
                                       "casts to an unsupported type " + std::to_string(c.n.attr_int("to", 0)));
                             c.set(0, c.dims(0) ? std::optional<ShapeCtx::Dims>(*c.dims(0)) : std::nullopt, t);
                           },
                       .tesa = cast_rule(),
                       .run = cast,
                       .dims_kept = DimsKept::all,
                       .elementwise = true});
  define_op({"HardSigmoid"}, unary_by_node([](const Node& n) {
              const float alpha = n.attr_float("alpha", 0.2f), beta = n.attr_float("beta", 0.5f);
              return [alpha, beta](float v) { return std::max(0.f, std::min(1.f, alpha * v + beta)); };
            }));
  define_op({"HardSwish"}, unary([](float v) { return v * std::max(0.f, std::min(1.f, v / 6.f + 0.5f)); }));
  define_op({"LeakyRelu"}, unary_by_node([](const Node& n) {
              const float alpha = n.attr_float("alpha", 0.01f);
              return [alpha](float v) { return v >= 0.f ? v : alpha * v; };
            }));
  define_op({"Elu"}, unary_by_node([](const Node& n) {
              const float alpha = n.attr_float("alpha", 1.f);
              return [alpha](float v) { return v > 0.f ? v : alpha * std::expm1(v); };
            }));
  define_op({"Selu"}, unary_by_node([](const Node& n) {
              const float alpha = n.attr_float("alpha", 1.67326319217681884765625f);
              const float gamma = n.attr_float("gamma", 1.05070102214813232421875f);
              return [alpha, gamma](float v) { return gamma * (v > 0.f ? v : alpha * std::expm1(v)); };
            }));
  define_op({"Softplus"}, unary([](float v) { return v > 20.f ? v : std::log1p(std::exp(v)); }));
  define_op({"Softsign"}, unary([](float v) { return v / (1.f + std::fabs(v)); }));
  define_op({"Floor"}, unary([](float v) { return std::floor(v); }));
  define_op({"Ceil"}, unary([](float v) { return std::ceil(v); }));
  define_op({"Round"}, unary([](float v) { return std::nearbyint(v); }));  // halves to even
  define_op({"Sign"}, unary_any_number([](auto v) { return decltype(v)(v > 0 ? 1 : v < 0 ? -1 : 0); }));
  // Known shapes without a kernel yet: shape inference (sparta inspect)
  // follows them; the Executor names them as unsupported.
  define_op({"Gelu"}, same_shape(nullptr));
  define_op({"LogSoftmax"}, {.shape = same_shape_as_input, .dims_kept = DimsKept::all});
  // x where x >= 0, else slope * x: a zero stays zero whatever the slope.
  // The slope broadcasts to X from the right; a 1-D slope of X's channel
  // count that does not (models from before opset 7, upgraded) is per
  // channel, as it meant then. The output has X's shape.
  {
    const auto f = [](auto x, auto slope) { return static_cast<decltype(x)>(x < 0 ? slope * x : x); };
    OpDef prelu = arithmetic(f, {Absorb::always, Absorb::never});
    prelu.shape = same_shape_as_input;
    prelu.run = [f](OpCall& c) {
      const Tensor& x = c.input(0);
      Tensor slope = c.input(1);
      if (slope.rank() == 1 && x.rank() >= 2 && slope.dim(0) == x.dim(1) && slope.dim(0) != x.dim(x.rank() - 1)) {
        std::vector<int64_t> d(static_cast<size_t>(x.rank() - 1), 1);
        d[0] = slope.dim(0);
        slope = Tensor(slope.dtype(), Shape(d), slope.storage());
      }
      OpCall step{c.node, {&x, &slope}, {}, c.threads};
      arith(step, f);
      c.out.push_back(std::move(step.out[0]));
    };
    define_op({"PRelu"}, prelu);
  }
  for (bool is_max : {true, false}) {
    OpDef d = is_max ? variadic_op([](auto a, auto b) { return a > b ? a : b; }, false)
                     : variadic_op([](auto a, auto b) { return a < b ? a : b; }, false);
    d.layout = LayoutRole::binary;  // two operands: blocked with the same shape, a per-channel value or a scalar
    d.can_block = [](const Node& n) { return n.inputs.size() == 2; };
    define_op({is_max ? "Max" : "Min"}, d);
  }
  define_op({"Sum"}, variadic_op([](auto a, auto b) { return static_cast<decltype(a)>(a + b); }, false));
  define_op({"Mean"}, variadic_op([](auto a, auto b) { return static_cast<decltype(a)>(a + b); }, true));
  define_op({"LessOrEqual"}, comparison([](auto a, auto b) -> uint8_t { return a <= b; }));
  define_op({"GreaterOrEqual"}, comparison([](auto a, auto b) -> uint8_t { return a >= b; }));
  define_op({"Xor"}, comparison([](auto a, auto b) -> uint8_t { return (a != 0) != (b != 0); }));
}

}  // namespace sparta
