// Reductions over axes (ReduceMean, ReduceSum, ReduceMax, ReduceMin,
// ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum,
// ReduceLogSumExp) and ArgMax / ArgMin. One generic loop over the input
// maps each element to its output slot: correct for any axes, not yet
// vectorized (none is on a hot path of the models measured so far).
#include <cmath>
#include <limits>

#include "ops/op_def.h"

namespace sparta {
namespace {

enum class Red { mean, sum, max, min, prod, l1, l2, sum_square, log_sum, log_sum_exp };

// The reduced axes (opset 13+ ReduceSum and 18+ others: the `axes` input;
// before: the attribute) and the output dims; false for a no-op.
struct Plan {
  std::vector<bool> red;
  std::vector<int64_t> kept_dims;  // the input's dims with reduced ones as 1
  std::vector<int64_t> out_dims;
};

bool plan(OpCall& c, const Tensor& x, Plan& p) {
  std::vector<int64_t> axes;
  if (const Attribute* a = c.node.attr("axes")) axes = a->is;
  else if (c.has_input(1)) axes = int_values(c.input(1), c);
  if (axes.empty() && c.node.attr_int("noop_with_empty_axes", 0)) return false;
  const bool keep = c.node.attr_int("keepdims", 1) != 0;
  p.red.assign(static_cast<size_t>(x.rank()), axes.empty());
  for (int64_t a : axes) p.red[static_cast<size_t>(normalize_axis(a, x.rank(), c))] = true;
  for (int i = 0; i < x.rank(); ++i) {
    const bool r = p.red[static_cast<size_t>(i)];
    p.kept_dims.push_back(r ? 1 : x.dim(i));
    if (!r) p.out_dims.push_back(x.dim(i));
    else if (keep) p.out_dims.push_back(1);
  }
  return true;
}

// f(slot, element) for every element of x, slot its output position.
template <typename F>
void for_each_slot(const Tensor& x, const Plan& p, F f) {
  std::vector<int64_t> idx(static_cast<size_t>(x.rank()), 0);
  for (int64_t e = 0; e < x.numel(); ++e) {
    int64_t o = 0;
    for (int i = 0; i < x.rank(); ++i)
      o = o * p.kept_dims[static_cast<size_t>(i)] + (p.red[static_cast<size_t>(i)] ? 0 : idx[static_cast<size_t>(i)]);
    f(o, e);
    for (int d = x.rank(); d-- > 0;) {
      if (++idx[static_cast<size_t>(d)] < x.dim(d)) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
}

template <typename T>
void reduce_typed(OpCall& c, const Tensor& x, const Plan& p, Red r) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
  const size_t slots = static_cast<size_t>(Shape(p.kept_dims).numel());
  Acc init = 0;
  if (r == Red::prod) init = 1;
  if (r == Red::max) init = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
  if (r == Red::min) init = std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
  std::vector<Acc> acc(slots, init);
  const T* px = static_cast<const T*>(x.raw());
  std::vector<Acc> top;
  if (r == Red::log_sum_exp) {  // the max first, for a stable exp
    top.assign(slots, -std::numeric_limits<Acc>::infinity());
    for_each_slot(x, p, [&](int64_t o, int64_t e) { top[size_t(o)] = std::max<Acc>(top[size_t(o)], px[e]); });
    for (auto& t : top)
      if (!std::isfinite(double(t))) t = 0;
  }
  for_each_slot(x, p, [&](int64_t o, int64_t e) {
    Acc& a = acc[size_t(o)];
    const Acc v = px[e];
    switch (r) {
      case Red::mean: case Red::sum: case Red::log_sum: a += v; break;
      case Red::max: a = std::max(a, v); break;
      case Red::min: a = std::min(a, v); break;
      case Red::prod: a *= v; break;
      case Red::l1: a += v < 0 ? -v : v; break;
      case Red::l2: case Red::sum_square: a += v * v; break;
      case Red::log_sum_exp: a += static_cast<Acc>(std::exp(double(v - top[size_t(o)]))); break;
    }
  });
  Tensor y(x.dtype(), Shape(p.out_dims), Uninitialized{});
  T* py = static_cast<T*>(y.raw());
  const double count = x.numel() ? double(x.numel()) / double(slots) : 1.0;  // elements per slot
  for (size_t i = 0; i < slots; ++i) {
    double v = double(acc[i]);
    if (r == Red::mean) v /= count;
    if (r == Red::l2) v = std::sqrt(v);
    if (r == Red::log_sum) v = std::log(v);
    if (r == Red::log_sum_exp) v = std::log(v) + double(top[i]);
    py[i] = static_cast<T>(r == Red::mean || r == Red::l2 || r == Red::log_sum || r == Red::log_sum_exp ? v : acc[i]);
  }
  c.out.push_back(std::move(y));
}

RunFn reduction(Red r) {
  return [r](OpCall& c) {
    const Tensor& x = c.input(0);
    Plan p;
    if (!plan(c, x, p)) return c.out.push_back(x);
    if (r == Red::mean && x.dtype() != DType::f32) c.fail("supports f32");
    switch (x.dtype()) {
      case DType::f32: return reduce_typed<float>(c, x, p, r);
      case DType::i64: return reduce_typed<int64_t>(c, x, p, r);
      case DType::i32: return reduce_typed<int32_t>(c, x, p, r);
      default: c.fail("supports f32, i64 and i32, not " + std::string(dtype_name(x.dtype())));
    }
  };
}

template <typename T>
void arg_typed(OpCall& c, const Tensor& x, int64_t axis, bool keep, bool last, bool is_max) {
  int64_t outer = 1, inner = 1;
  const int64_t n = x.dim(static_cast<int>(axis));
  for (int i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int i = static_cast<int>(axis) + 1; i < x.rank(); ++i) inner *= x.dim(i);
  std::vector<int64_t> dims;
  for (int i = 0; i < x.rank(); ++i)
    if (i != axis) dims.push_back(x.dim(i));
    else if (keep) dims.push_back(1);
  if (n == 0) c.fail("reduces an empty axis");
  Tensor y(DType::i64, Shape(dims), Uninitialized{});
  const T* px = static_cast<const T*>(x.raw());
  int64_t* py = y.data<int64_t>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* p = px + o * n * inner + i;
      int64_t best = 0;
      for (int64_t k = 1; k < n; ++k) {
        const T v = p[k * inner], b = p[best * inner];
        const bool better = is_max ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
        if (better) best = k;
      }
      py[o * inner + i] = best;
    }
  c.out.push_back(std::move(y));
}

RunFn arg(bool is_max) {
  return [is_max](OpCall& c) {
    const Tensor& x = c.input(0);
    const int64_t axis = normalize_axis(c.node.attr_int("axis", 0), x.rank(), c);
    const bool keep = c.node.attr_int("keepdims", 1) != 0, last = c.node.attr_int("select_last_index", 0) != 0;
    switch (x.dtype()) {
      case DType::f32: return arg_typed<float>(c, x, axis, keep, last, is_max);
      case DType::i64: return arg_typed<int64_t>(c, x, axis, keep, last, is_max);
      case DType::i32: return arg_typed<int32_t>(c, x, axis, keep, last, is_max);
      case DType::u8: return arg_typed<uint8_t>(c, x, axis, keep, last, is_max);
      case DType::i8: return arg_typed<int8_t>(c, x, axis, keep, last, is_max);
      default: c.fail("supports f32 and integer types, not " + std::string(dtype_name(x.dtype())));
    }
  };
}

void arg_shape(const ShapeCtx& c) {
  const ShapeCtx::Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, DType::i64);
  const int64_t axis = c.axis(c.n.attr_int("axis", 0), static_cast<int64_t>(x->size()));
  const bool keep = c.n.attr_int("keepdims", 1) != 0;
  ShapeCtx::Dims out;
  for (size_t i = 0; i < x->size(); ++i)
    if (int64_t(i) != axis) out.push_back((*x)[i]);
    else if (keep) out.push_back(1);
  c.set(0, out, DType::i64);
}

void reduce_shape(const ShapeCtx& c) {
  const ShapeCtx::Dims* x = c.dims(0);
  const auto axes = c.axes_arg(1);
  if (!x || !axes) return c.set(0, std::nullopt, c.dtype(0));
  if (axes->empty() && c.n.attr_int("noop_with_empty_axes", 0)) return c.set(0, *x, c.dtype(0));
  const bool keep = c.n.attr_int("keepdims", 1) != 0;
  std::vector<bool> red(x->size(), axes->empty());
  for (int64_t a : *axes) red[static_cast<size_t>(c.axis(a, static_cast<int64_t>(x->size())))] = true;
  ShapeCtx::Dims out;
  for (size_t i = 0; i < x->size(); ++i)
    if (!red[i]) out.push_back((*x)[i]);
    else if (keep) out.push_back(1);
  c.set(0, out, c.dtype(0));
}

}  // namespace

void define_reduce_ops() {
  using tesa_rules::RowKind;
  const std::pair<const char*, Red> ops[] = {
      {"ReduceMean", Red::mean}, {"ReduceSum", Red::sum},   {"ReduceMax", Red::max},
      {"ReduceMin", Red::min},   {"ReduceProd", Red::prod}, {"ReduceL1", Red::l1},
      {"ReduceL2", Red::l2},     {"ReduceSumSquare", Red::sum_square}, {"ReduceLogSum", Red::log_sum},
      {"ReduceLogSumExp", Red::log_sum_exp}};
  for (const auto& [name, r] : ops) {
    OpDef d{.shape = reduce_shape, .run = reduction(r)};
    // The row rules of the reductions they fit (a group all pruned stays
    // pruned; all known folds).
    if (r == Red::mean) d.tesa = tesa_rules::rows(RowKind::reduce_mean);
    if (r == Red::sum) d.tesa = tesa_rules::rows(RowKind::reduce_sum);
    if (r == Red::max) d.tesa = tesa_rules::rows(RowKind::reduce_max);
    define_op({name}, d);
  }
  define_op({"ArgMax"}, {.shape = arg_shape, .run = arg(true)});
  define_op({"ArgMin"}, {.shape = arg_shape, .run = arg(false)});
}

}  // namespace sparta
