// Data-movement operators: shape manipulation, indexing and constants. All
// work on any dtype by element size.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "runtime/ops.h"

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

void constant(OpCall& c) {
  if (const Attribute* a = c.node.attr("value")) {
    c.out.push_back(a->t.clone());
  } else if (const Attribute* f = c.node.attr("value_float")) {
    Tensor t(DType::f32, Shape{});
    t.data<float>()[0] = f->f;
    c.out.push_back(t);
  } else if (const Attribute* i = c.node.attr("value_int")) {
    Tensor t(DType::i64, Shape{});
    t.data<int64_t>()[0] = i->i;
    c.out.push_back(t);
  } else if (const Attribute* fs = c.node.attr("value_floats")) {
    Tensor t(DType::f32, Shape{static_cast<int64_t>(fs->fs.size())});
    std::copy(fs->fs.begin(), fs->fs.end(), t.data<float>());
    c.out.push_back(t);
  } else if (const Attribute* is = c.node.attr("value_ints")) {
    Tensor t(DType::i64, Shape{static_cast<int64_t>(is->is.size())});
    std::copy(is->is.begin(), is->is.end(), t.data<int64_t>());
    c.out.push_back(t);
  } else {
    c.fail("has no supported value attribute");
  }
}

void constant_of_shape(OpCall& c) {
  const auto d = int_values(c.input(0), c);
  for (int64_t v : d)
    if (v < 0) c.fail("negative extent");
  const Attribute* a = c.node.attr("value");
  const DType t = a ? a->t.dtype() : DType::f32;
  Tensor y(t, Shape(d));
  if (a && a->t.numel() == 1) {
    const size_t es = dtype_size(t);
    char* py = static_cast<char*>(y.raw());
    for (int64_t i = 0; i < y.numel(); ++i) std::memcpy(py + i * static_cast<int64_t>(es), a->t.raw(), es);
  }
  c.out.push_back(std::move(y));
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

}  // namespace

void register_tensor_ops() {
  add_op({"Reshape"}, reshape);
  add_op({"Flatten"}, flatten);
  add_op({"Unsqueeze"}, unsqueeze);
  add_op({"Squeeze"}, squeeze);
  add_op({"Transpose"}, transpose);
  add_op({"Concat"}, concat);
  add_op({"Gather"}, gather);
  add_op({"Shape"}, shape);
  add_op({"Constant"}, constant);
  add_op({"ConstantOfShape"}, constant_of_shape);
  add_op({"Expand"}, expand);
  add_op({"Identity", "Dropout"}, identity);
  add_op({"Slice"}, slice);
  add_op({"Split"}, split);
}

}  // namespace sparta
