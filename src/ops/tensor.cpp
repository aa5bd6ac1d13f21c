// Data-movement operators: shape manipulation, indexing and constants. All
// work on any dtype by element size.
#include <algorithm>
#include <functional>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ops/op_def.h"

namespace sparta {
namespace {

Tensor with_shape(const Tensor& x, std::vector<int64_t> dims, const OpCall& c) {
  Shape s(std::move(dims));
  if (s.numel() != x.numel()) c.fail("cannot reshape " + x.shape().str() + " to " + s.str());
  return x.reshape(s);  // shares storage: inputs are never written
}

void reshape(OpCall& c) {
  const Tensor& x = c.input(0);
  std::vector<int64_t> d = int_values(c.input(1), c);
  const bool allowzero = c.node.attr_int("allowzero", 0) != 0;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == 0 && !allowzero) {
      if (i >= static_cast<size_t>(x.rank())) c.fail("0 in the target shape beyond the input rank");
      d[i] = x.dim(static_cast<int>(i));
    }
    if (d[i] == -1) {
      if (infer >= 0) c.fail("more than one -1 in the target shape");
      infer = static_cast<int64_t>(i);
    } else if (d[i] < 0) {
      c.fail("negative extent in the target shape");
    } else {
      known *= d[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known) c.fail("cannot infer -1 for " + x.shape().str());
    d[static_cast<size_t>(infer)] = x.numel() / known;
  }
  c.out.push_back(with_shape(x, d, c));
}

void flatten(OpCall& c) {
  const Tensor& x = c.input(0);
  int64_t axis = c.node.attr_int("axis", 1);
  if (axis < -x.rank() || axis > x.rank()) c.fail("axis outside the rank");
  if (axis < 0) axis += x.rank();
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dim(static_cast<int>(i));
  c.out.push_back(with_shape(x, {outer, outer ? x.numel() / outer : 0}, c));
}

std::vector<int64_t> axes_input(const OpCall& c, size_t input) {
  if (const Attribute* a = c.node.attr("axes")) return a->is;
  if (c.has_input(input)) return int_values(c.input(input), c);
  return {};
}

void unsqueeze(OpCall& c) {
  const Tensor& x = c.input(0);
  const auto axes = axes_input(c, 1);
  const int64_t rank = x.rank() + static_cast<int64_t>(axes.size());
  std::vector<int64_t> d(static_cast<size_t>(rank), -1);
  for (int64_t a : axes) {
    const int64_t n = normalize_axis(a, rank, c);
    if (d[static_cast<size_t>(n)] == 1) c.fail("repeated axis");
    d[static_cast<size_t>(n)] = 1;
  }
  int j = 0;
  for (auto& v : d)
    if (v == -1) v = x.dim(j++);
  c.out.push_back(with_shape(x, d, c));
}

void squeeze(OpCall& c) {
  const Tensor& x = c.input(0);
  const auto axes = axes_input(c, 1);
  std::vector<bool> drop(static_cast<size_t>(x.rank()), axes.empty());
  for (int i = 0; i < x.rank() && axes.empty(); ++i) drop[static_cast<size_t>(i)] = x.dim(i) == 1;
  for (int64_t a : axes) {
    const int64_t n = normalize_axis(a, x.rank(), c);
    if (x.dim(static_cast<int>(n)) != 1) c.fail("cannot squeeze an axis of extent " + std::to_string(x.dim(static_cast<int>(n))));
    drop[static_cast<size_t>(n)] = true;
  }
  std::vector<int64_t> d;
  for (int i = 0; i < x.rank(); ++i)
    if (!drop[static_cast<size_t>(i)]) d.push_back(x.dim(i));
  c.out.push_back(with_shape(x, d, c));
}

void transpose(OpCall& c) {
  const Tensor& x = c.input(0);
  const int r = x.rank();
  std::vector<int64_t> perm = c.node.attr_ints("perm");
  if (perm.empty()) {
    perm.resize(static_cast<size_t>(r));
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  if (static_cast<int>(perm.size()) != r) c.fail("perm has the wrong length");
  std::vector<int64_t> od(static_cast<size_t>(r)), st(static_cast<size_t>(r));
  const std::vector<int64_t> in_stride = contiguous_strides(x.shape().dims());
  for (int i = 0; i < r; ++i) {
    const int64_t p = normalize_axis(perm[static_cast<size_t>(i)], r, c);
    od[static_cast<size_t>(i)] = x.dim(static_cast<int>(p));
    st[static_cast<size_t>(i)] = in_stride[static_cast<size_t>(p)];
  }
  Tensor y(x.dtype(), Shape(od), Uninitialized{});
  copy_view(x.raw(), dtype_size(x.dtype()), 0, od, st, y.raw());
  c.out.push_back(std::move(y));
}

void concat(OpCall& c) {
  const Tensor& first = c.input(0);
  const int64_t axis = normalize_axis(c.node.attr_int("axis", 0), first.rank(), c);
  std::vector<int64_t> d = first.shape().dims();
  d[static_cast<size_t>(axis)] = 0;
  for (size_t i = 0; i < c.in.size(); ++i) {
    const Tensor& t = c.input(i);
    if (t.rank() != first.rank() || t.dtype() != first.dtype()) c.fail("inputs differ in rank or type");
    for (int k = 0; k < t.rank(); ++k)
      if (k != axis && t.dim(k) != first.dim(k)) c.fail("inputs differ outside the concat axis");
    d[static_cast<size_t>(axis)] += t.dim(static_cast<int>(axis));
  }
  Tensor y(first.dtype(), Shape(d));
  const int64_t es = static_cast<int64_t>(dtype_size(first.dtype()));
  int64_t outer = 1, inner = es;
  for (int64_t k = 0; k < axis; ++k) outer *= d[static_cast<size_t>(k)];
  for (size_t k = static_cast<size_t>(axis) + 1; k < d.size(); ++k) inner *= d[k];
  // Channels of blocked data (layout pass, LayoutRole::nary): nChw8c/16c
  // chunks are whole blocks, as plain; channels-last ones are per pixel.
  if (!c.node.outputs.empty() && c.node.outputs[0] && c.node.outputs[0]->layout == Layout::nhwc) {
    SPARTA_ASSERT(axis == 1 && first.rank() == 4, "node '", c.node.name, "': channels-last Concat along channels only");
    outer = d[0] * d[2] * d[3];
    inner = es;
  }
  char* py = static_cast<char*>(y.raw());
  int64_t at = 0;
  for (size_t i = 0; i < c.in.size(); ++i) {
    const Tensor& t = c.input(i);
    const int64_t chunk = t.dim(static_cast<int>(axis)) * inner;
    const char* pt = static_cast<const char*>(t.raw());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(py + o * d[static_cast<size_t>(axis)] * inner + at, pt + o * chunk, static_cast<size_t>(chunk));
    at += chunk;
  }
  c.out.push_back(std::move(y));
}

void gather(OpCall& c) {
  const Tensor& x = c.input(0);
  const auto idx = int_values(c.input(1), c);
  const int64_t axis = normalize_axis(c.node.attr_int("axis", 0), x.rank(), c);
  std::vector<int64_t> d(x.shape().dims().begin(), x.shape().dims().begin() + axis);
  for (int64_t v : c.input(1).shape().dims()) d.push_back(v);
  for (int k = static_cast<int>(axis) + 1; k < x.rank(); ++k) d.push_back(x.dim(k));
  Tensor y(x.dtype(), Shape(d));
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype()));
  const int64_t n = x.dim(static_cast<int>(axis));
  int64_t outer = 1, inner = es;
  for (int64_t k = 0; k < axis; ++k) outer *= x.dim(static_cast<int>(k));
  for (int k = static_cast<int>(axis) + 1; k < x.rank(); ++k) inner *= x.dim(k);
  const char* px = static_cast<const char*>(x.raw());
  char* py = static_cast<char*>(y.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (size_t j = 0; j < idx.size(); ++j) {
      int64_t i = idx[j] < 0 ? idx[j] + n : idx[j];
      if (i < 0 || i >= n) c.fail("index " + std::to_string(idx[j]) + " is outside [" + std::to_string(-n) + ", " +
                                  std::to_string(n) + ")");
      std::memcpy(py + (o * static_cast<int64_t>(idx.size()) + static_cast<int64_t>(j)) * inner,
                  px + (o * n + i) * inner, static_cast<size_t>(inner));
    }
  c.out.push_back(std::move(y));
}

void shape(OpCall& c) {
  const std::vector<int64_t> d = shape_op_dims(c.node, c.input(0).shape().dims());
  Tensor y(DType::i64, Shape{static_cast<int64_t>(d.size())});
  std::copy(d.begin(), d.end(), y.data<int64_t>());
  c.out.push_back(std::move(y));
}

// A Constant node's value from whichever attribute holds it.
Tensor constant_value(const Node& n, const std::function<void(const std::string&)>& fail) {
  if (const Attribute* a = n.attr("value")) {
    if (a->kind != Attribute::Kind::t || !a->t.defined()) fail("'value' must be a tensor");
    return a->t.clone();
  }
  if (const Attribute* f = n.attr("value_float")) {
    Tensor t(DType::f32, Shape{});
    t.data<float>()[0] = f->f;
    return t;
  }
  if (const Attribute* i = n.attr("value_int")) {
    Tensor t(DType::i64, Shape{});
    t.data<int64_t>()[0] = i->i;
    return t;
  }
  if (const Attribute* fs = n.attr("value_floats")) {
    Tensor t(DType::f32, Shape{static_cast<int64_t>(fs->fs.size())});
    std::copy(fs->fs.begin(), fs->fs.end(), t.data<float>());
    return t;
  }
  if (const Attribute* is = n.attr("value_ints")) {
    Tensor t(DType::i64, Shape{static_cast<int64_t>(is->is.size())});
    std::copy(is->is.begin(), is->is.end(), t.data<int64_t>());
    return t;
  }
  fail("has no supported value attribute (value, value_float(s), value_int(s))");
  return Tensor();
}

void constant(OpCall& c) { c.out.push_back(constant_value(c.node, [&c](const std::string& m) { c.fail(m); })); }

void constant_of_shape(OpCall& c) {
  const auto d = int_values(c.input(0), c);
  for (int64_t v : d)
    if (v < 0) c.fail("negative extent");
  const Attribute* a = c.node.attr("value");
  if (a && (a->kind != Attribute::Kind::t || !a->t.defined() || a->t.numel() != 1))
    c.fail("'value' must be a one-element tensor");
  const DType t = a ? a->t.dtype() : DType::f32;
  Tensor y(t, Shape(d));
  if (a && a->t.numel() == 1) {
    const size_t es = dtype_size(t);
    char* py = static_cast<char*>(y.raw());
    for (int64_t i = 0; i < y.numel(); ++i) std::memcpy(py + i * static_cast<int64_t>(es), a->t.raw(), es);
  }
  c.out.push_back(std::move(y));
}

// Range(start, limit, delta): scalars of one numeric type; the output has
// max(ceil((limit - start) / delta), 0) elements start, start + delta, ...
int64_t range_count(double start, double limit, double delta, const std::function<void(const std::string&)>& fail) {
  if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta))
    fail("delta must be non-zero and the bounds finite");
  const double n = std::ceil((limit - start) / delta);
  if (n > double(int64_t{1} << 32)) fail("would have " + std::to_string(n) + " elements");
  return n > 0 ? static_cast<int64_t>(n) : 0;
}

void range(OpCall& c) {
  const DType t = c.input(0).dtype();
  for (int i = 0; i < 3; ++i) {
    if (c.input(static_cast<size_t>(i)).dtype() != t) c.fail("start, limit and delta must have one type");
    if (c.input(static_cast<size_t>(i)).numel() != 1) c.fail("start, limit and delta must be scalars");
  }
  auto fail = [&c](const std::string& m) { c.fail(m); };
  auto fill = [&](auto tag) {
    using T = decltype(tag);
    const T s = c.input(0).data<T>()[0], l = c.input(1).data<T>()[0], d = c.input(2).data<T>()[0];
    const int64_t n = range_count(double(s), double(l), double(d), fail);
    Tensor y(t, Shape{n}, Uninitialized{});
    T* p = y.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(s + static_cast<T>(i) * d);
    c.out.push_back(std::move(y));
  };
  switch (t) {
    case DType::i64: return fill(int64_t{});
    case DType::i32: return fill(int32_t{});
    case DType::f32: return fill(float{});
    default: c.fail("supports int64, int32 and float");
  }
}

void expand(OpCall& c) {
  const Tensor& x = c.input(0);
  const auto dims = broadcast_dims(x.shape().dims(), int_values(c.input(1), c), c);
  Tensor y(x.dtype(), Shape(dims));
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype()));
  const char* px = static_cast<const char*>(x.raw());
  char* py = static_cast<char*>(y.raw());
  for_each_broadcast<1>(dims, {x.shape().dims()}, [&](int64_t e, const std::array<int64_t, 1>& o) {
    std::memcpy(py + e * es, px + o[0] * es, static_cast<size_t>(es));
  });
  c.out.push_back(std::move(y));
}

// Copies the box [begin, begin + extent) with per-axis steps from x into a
// new tensor (any dtype).
Tensor strided_copy(const Tensor& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& step,
                    const std::vector<int64_t>& extent) {
  Tensor y(x.dtype(), Shape(extent), Uninitialized{});
  const std::vector<int64_t> st = contiguous_strides(x.shape().dims());
  std::vector<int64_t> vst(st.size());
  int64_t offset = 0;
  for (size_t i = 0; i < st.size(); ++i) {
    offset += begin[i] * st[i];
    vst[i] = step[i] * st[i];
  }
  copy_view(x.raw(), dtype_size(x.dtype()), offset, extent, vst, y.raw());
  return y;
}

void slice(OpCall& c) {
  const Tensor& x = c.input(0);
  // Opset 10+: starts, ends, axes, steps are inputs.
  const SliceBox box = slice_box(x.shape().dims(), int_values(c.input(1), c), int_values(c.input(2), c),
                                 c.has_input(3) ? int_values(c.input(3), c) : std::vector<int64_t>{},
                                 c.has_input(4) ? int_values(c.input(4), c) : std::vector<int64_t>{},
                                 [&c](const std::string& m) { c.fail(m); });
  c.out.push_back(strided_copy(x, box.begin, box.step, box.extent));
}

void split(OpCall& c) {
  const Tensor& x = c.input(0);
  const int64_t axis = normalize_axis(c.node.attr_int("axis", 0), x.rank(), c);
  std::vector<int64_t> given;
  if (c.has_input(1)) given = int_values(c.input(1), c);
  const std::vector<int64_t> sizes = split_sizes(c.node, x.dim(static_cast<int>(axis)), c.has_input(1) ? &given : nullptr,
                                                 [&c](const std::string& m) { c.fail(m); });
  std::vector<int64_t> begin(static_cast<size_t>(x.rank()), 0), step(static_cast<size_t>(x.rank()), 1);
  for (int64_t v : sizes) {
    std::vector<int64_t> extent = x.shape().dims();
    extent[static_cast<size_t>(axis)] = v;
    c.out.push_back(strided_copy(x, begin, step, extent));
    begin[static_cast<size_t>(axis)] += v;
  }
}

void identity(OpCall& c) {
  if (c.node.op_type == "Dropout" && c.has_input(2)) {
    const Tensor& training = c.input(2);
    const bool zero_ratio = c.has_input(1) && c.input(1).dtype() == DType::f32 && c.input(1).data<float>()[0] == 0.f;
    if (training.numel() == 1 && static_cast<const uint8_t*>(training.raw())[0] && !zero_ratio)
      c.fail("training mode is not supported (sparta runs inference)");
  }
  c.out.push_back(c.input(0));
  if (c.node.op_type == "Dropout" && c.node.outputs.size() > 1 && c.node.outputs[1]) {
    Tensor mask(DType::boolean, c.input(0).shape());
    std::memset(mask.raw(), 1, mask.nbytes());
    c.out.push_back(std::move(mask));
  }
}

// Shape rules (the run functions above compute the same extents from
// tensors; Slice and Split share analysis/onnx_rules with them).
namespace shape_rule {

using Dims = ShapeCtx::Dims;

int64_t mul_dims(const Dims& d, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) {
    if (d[i] < 0 || __builtin_mul_overflow(p, d[i], &p)) return -1;  // unknown, or past int64: unknown too
  }
  return p;
}

void reshape(const ShapeCtx& c) {
  const auto target = c.ints(1);
  const Dims* x = c.dims(0);
  if (!target) return c.set(0, std::nullopt, c.dtype(0));
  Dims out = *target;
  const bool allowzero = c.n.attr_int("allowzero", 0) != 0;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && !allowzero) out[i] = x && i < x->size() ? (*x)[i] : -1;
    else if (out[i] == -1) {
      c.require(infer < 0, "more than one -1 in the target shape");
      infer = static_cast<int>(i);
    } else {
      c.require(out[i] >= 0, "negative extent in the target shape");
    }
  }
  if (infer >= 0) {
    // The -1 extent is the element count divided by the other extents,
    // when all of them are known.
    const size_t at = static_cast<size_t>(infer);
    const int64_t total = x ? mul_dims(*x, 0, x->size()) : -1;
    int64_t known = 1;
    bool all_known = true;
    for (size_t i = 0; i < out.size(); ++i)
      if (i != at) {
        if (out[i] < 0) all_known = false;
        else known *= out[i];
      }
    out[at] = -1;
    if (total >= 0 && all_known && known > 0) {
      c.require(total % known == 0, "cannot reshape " + std::to_string(total) + " elements to the target shape");
      out[at] = total / known;
    }
  }
  c.set(0, out, c.dtype(0));
}

void transpose(const ShapeCtx& c) {
  const Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  Dims perm = c.n.attr_ints("perm");
  if (perm.empty()) {
    perm.resize(x->size());
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  c.require(perm.size() == x->size(), "perm has the wrong length");
  Dims out;
  for (int64_t p : perm) out.push_back((*x)[static_cast<size_t>(c.axis(p, static_cast<int64_t>(x->size())))]);
  c.set(0, out, c.dtype(0));
}

void unsqueeze(const ShapeCtx& c) {
  const Dims* x = c.dims(0);
  const auto axes = c.axes_arg(1);
  if (!x || !axes) return c.set(0, std::nullopt, c.dtype(0));
  const int64_t rank = static_cast<int64_t>(x->size() + axes->size());
  Dims out(static_cast<size_t>(rank), -2);
  for (int64_t a : *axes) out[static_cast<size_t>(c.axis(a, rank))] = 1;
  size_t j = 0;
  for (auto& d : out)
    if (d == -2) d = (*x)[j++];
  c.set(0, out, c.dtype(0));
}

void squeeze(const ShapeCtx& c) {
  const Dims* x = c.dims(0);
  const auto axes = c.axes_arg(1);
  if (!x || !axes) return c.set(0, std::nullopt, c.dtype(0));
  std::vector<bool> drop(x->size(), false);
  if (axes->empty()) {
    for (size_t i = 0; i < x->size(); ++i) {
      if ((*x)[i] < 0) return c.set(0, std::nullopt, c.dtype(0));
      drop[i] = (*x)[i] == 1;
    }
  }
  for (int64_t a : *axes) drop[static_cast<size_t>(c.axis(a, static_cast<int64_t>(x->size())))] = true;
  Dims out;
  for (size_t i = 0; i < x->size(); ++i)
    if (!drop[i]) out.push_back((*x)[i]);
  c.set(0, out, c.dtype(0));
}

void concat(const ShapeCtx& c) {
  std::optional<Dims> out;
  for (int i = 0; i < c.inputs(); ++i) {
    const Dims* d = c.dims(i);
    if (!d) return c.set(0, std::nullopt, c.dtype(0));
    if (!out) {
      out = *d;
      continue;
    }
    c.require(d->size() == out->size(), "inputs have different ranks");
    const int64_t axis = c.axis(c.n.attr_int("axis", 0), static_cast<int64_t>(d->size()));
    for (size_t j = 0; j < d->size(); ++j) {
      int64_t& o = (*out)[j];
      if (static_cast<int64_t>(j) == axis) o = o < 0 || (*d)[j] < 0 ? -1 : o + (*d)[j];
      else if (o < 0) o = (*d)[j];
    }
  }
  c.set(0, out, c.dtype(0));
}

void gather(const ShapeCtx& c) {
  const Dims *x = c.dims(0), *idx = c.dims(1);
  if (!x || !idx) return c.set(0, std::nullopt, c.dtype(0));
  const int64_t axis = c.axis(c.n.attr_int("axis", 0), static_cast<int64_t>(x->size()));
  Dims out(x->begin(), x->begin() + axis);
  out.insert(out.end(), idx->begin(), idx->end());
  out.insert(out.end(), x->begin() + axis + 1, x->end());
  c.set(0, out, c.dtype(0));
}

void flatten(const ShapeCtx& c) {
  const Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  const int64_t r = static_cast<int64_t>(x->size());
  int64_t axis = c.n.attr_int("axis", 1);
  c.require(axis >= -r && axis <= r, "axis outside the rank");
  if (axis < 0) axis += r;
  c.set(0, Dims{mul_dims(*x, 0, static_cast<size_t>(axis)), mul_dims(*x, static_cast<size_t>(axis), x->size())},
        c.dtype(0));
}

void constant_node(const ShapeCtx& c) {
  Value* out = c.n.outputs.empty() ? nullptr : c.n.outputs[0];
  const Tensor t = constant_value(c.n, [&c](const std::string& m) { c.require(false, m); });
  if (!out) return;
  out->constant = t;
  out->dtype = t.dtype();
  out->dims = t.shape().dims();
}

void shape_node(const ShapeCtx& c) {
  const Dims* x = c.dims(0);
  c.set(0, x ? std::optional<Dims>(Dims{static_cast<int64_t>(x->size())}) : std::nullopt, DType::i64);
}


void dropout(const ShapeCtx& c) {
  same_shape_as_input(c);
  c.set(1, c.dims(0) ? std::optional<Dims>(*c.dims(0)) : std::nullopt, DType::boolean);
}

void constant_of_shape(const ShapeCtx& c) {
  const Attribute* v = c.n.attr("value");
  c.set(0, c.ints(0), v && v->kind == Attribute::Kind::t ? std::optional<DType>(v->t.dtype()) : DType::f32);
}

void range(const ShapeCtx& c) {
  const auto s = c.ints(0), l = c.ints(1), d = c.ints(2);
  if (!s || !l || !d || s->size() != 1 || l->size() != 1 || d->size() != 1) return c.set(0, Dims{-1}, c.dtype(0));
  c.set(0, Dims{range_count(double((*s)[0]), double((*l)[0]), double((*d)[0]), [&c](const std::string& m) { c.require(false, m); })},
        c.dtype(0));
}

void expand(const ShapeCtx& c) {
  const auto target = c.ints(1);
  if (!target || !c.dims(0)) return c.set(0, std::nullopt, c.dtype(0));
  c.set(0, broadcast_shapes(*c.dims(0), *target, c.where()), c.dtype(0));
}

// Slice and Split: extents from constant starts/ends/axes/steps or split
// sizes (the runtime's own rules); otherwise only the rank.
void slice(const ShapeCtx& c) {
  if (!c.dims(0)) return c.set(0, std::nullopt, c.dtype(0));
  const auto starts = c.ints(1), ends = c.ints(2), axes = c.ints(3), steps = c.ints(4);
  if (!starts || !ends || (c.in(3) && !axes) || (c.in(4) && !steps))
    return c.set(0, Dims(c.dims(0)->size(), -1), c.dtype(0));
  const SliceBox box = slice_box(*c.dims(0), *starts, *ends, axes ? *axes : Dims{}, steps ? *steps : Dims{},
                                 [&c](const std::string& m) { c.require(false, m); });
  c.set(0, box.extent, c.dtype(0));
}

void split(const ShapeCtx& c) {
  if (!c.dims(0)) return;
  const Dims& d = *c.dims(0);
  const int64_t axis = c.axis(c.n.attr_int("axis", 0), static_cast<int64_t>(d.size()));
  const auto given = c.ints(1);
  if (d[static_cast<size_t>(axis)] < 0 || (c.in(1) && !given)) {
    for (size_t o = 0; o < c.n.outputs.size(); ++o) c.set(static_cast<int>(o), Dims(d.size(), -1), c.dtype(0));
    return;
  }
  const Dims sizes = split_sizes(c.n, d[static_cast<size_t>(axis)], given ? &*given : nullptr,
                                 [&c](const std::string& m) { c.require(false, m); });
  for (size_t o = 0; o < c.n.outputs.size(); ++o) {
    Dims out = d;
    out[static_cast<size_t>(axis)] = sizes[o];
    c.set(static_cast<int>(o), out, c.dtype(0));
  }
}

}  // namespace shape_rule

}  // namespace

void define_tensor_ops() {
  namespace sr = shape_rule;
  define_op({"Reshape"}, {.shape = sr::reshape, .tesa = tesa_rules::same_order(), .run = reshape});
  define_op({"Flatten"}, {.shape = sr::flatten, .tesa = tesa_rules::same_order(), .run = flatten});
  define_op({"Unsqueeze"}, {.shape = sr::unsqueeze, .tesa = tesa_rules::same_order(), .run = unsqueeze});
  define_op({"Squeeze"}, {.shape = sr::squeeze, .tesa = tesa_rules::same_order(), .run = squeeze});
  define_op({"Transpose"}, {.shape = sr::transpose, .tesa = tesa_rules::transpose(), .run = transpose});
  define_op({"Concat"}, {.shape = sr::concat,
                         .tesa = tesa_rules::concat(),
                         .run = concat,
                         .layout = LayoutRole::nary,
                         .can_block = [](const Node& n) {  // along channels of rank-4 data
                           if (n.inputs.empty() || !n.inputs[0] || !n.inputs[0]->static_rank(4)) return false;
                           const int64_t a = n.attr_int("axis", 0);
                           return a == 1 || a == -3;
                         }});
  define_op({"Gather"}, {.shape = sr::gather, .tesa = tesa_rules::gather(), .run = gather});
  define_op({"Shape"}, {.shape = sr::shape_node, .run = shape});
  define_op({"Size"}, {.shape = [](const ShapeCtx& c) { c.set(0, ShapeCtx::Dims{}, DType::i64); },
                       .run = [](OpCall& c) {
                         Tensor y(DType::i64, Shape(std::vector<int64_t>{}));
                         y.data<int64_t>()[0] = c.input(0).numel();
                         c.out.push_back(std::move(y));
                       }});
  define_op({"Constant"}, {.shape = sr::constant_node, .run = constant});
  define_op({"ConstantOfShape"}, {.shape = sr::constant_of_shape, .run = constant_of_shape});
  define_op({"Range"}, {.shape = sr::range, .run = range});
  define_op({"Expand"}, {.shape = sr::expand, .tesa = tesa_rules::expand(), .run = expand});
  define_op({"Identity"}, {.shape = same_shape_as_input, .tesa = tesa_rules::same_order(), .run = identity, .dims_kept = DimsKept::all});
  define_op({"Dropout"}, {.shape = sr::dropout, .tesa = tesa_rules::same_order(), .run = identity, .dims_kept = DimsKept::all});
  define_op({"Slice"}, {.shape = sr::slice, .tesa = tesa_rules::slice(), .run = slice});
  define_op({"Split"}, {.shape = sr::split, .tesa = tesa_rules::split(), .run = split});
}

}  // namespace sparta
