// Pad: constant, reflect, edge and wrap padding of any rank and dtype, with
// negative pads cropping. Opsets 2-10 take pads and value as attributes,
// 11+ as inputs (18+ with an optional axes input).
#include <cstring>

#include "ops/op_def.h"

namespace sparta {
namespace {

enum class PadMode { constant, reflect, edge, wrap };

PadMode pad_mode(const Node& n, const std::function<void(const std::string&)>& fail) {
  const Attribute* m = n.attr("mode");
  const std::string s = m ? m->s : "constant";
  if (s == "constant") return PadMode::constant;
  if (s == "reflect") return PadMode::reflect;
  if (s == "edge") return PadMode::edge;
  if (s == "wrap") return PadMode::wrap;
  fail("unknown mode '" + s + "' (constant, reflect, edge, wrap)");
  return PadMode::constant;
}

// Begin and end pads per axis of a rank-r input, from the attribute
// (opset < 11) or the pads input with optional axes (opset 11+).
std::vector<int64_t> pads_of(const std::vector<int64_t>& raw, const std::vector<int64_t>* axes, int64_t r,
                             const std::function<void(const std::string&)>& fail) {
  std::vector<int64_t> p(size_t(2 * r), 0);
  if (!axes) {
    if (static_cast<int64_t>(raw.size()) != 2 * r)
      fail("pads has " + std::to_string(raw.size()) + " values, expected " + std::to_string(2 * r) + " (two per axis)");
    return raw;
  }
  const int64_t na = static_cast<int64_t>(axes->size());
  if (static_cast<int64_t>(raw.size()) != 2 * na) fail("pads must have two values per listed axis");
  for (int64_t i = 0; i < na; ++i) {
    int64_t a = (*axes)[size_t(i)];
    if (a < -r || a >= r) fail("axis " + std::to_string(a) + " out of range");
    if (a < 0) a += r;
    p[size_t(a)] = raw[size_t(i)];
    p[size_t(a + r)] = raw[size_t(i + na)];
  }
  return p;
}

// Input index read for output index o along an axis of n input elements
// with `before` pads (negative: cropped), or -1 for the constant.
int64_t source_index(int64_t o, int64_t n, int64_t before, PadMode m) {
  int64_t i = o - before;
  if (i >= 0 && i < n) return i;
  switch (m) {
    case PadMode::constant: return -1;
    case PadMode::edge: return i < 0 ? 0 : n - 1;
    case PadMode::wrap: return ((i % n) + n) % n;
    case PadMode::reflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      i = ((i % period) + period) % period;
      return i < n ? i : period - i;
    }
  }
  return -1;
}

void pad(OpCall& c) {
  const Tensor& x = c.input(0);
  const auto fail = [&c](const std::string& m) { c.fail(m); };
  const PadMode mode = pad_mode(c.node, fail);
  const int64_t r = x.rank();
  std::vector<int64_t> p;
  std::vector<char> value(dtype_size(x.dtype()), 0);  // the constant, in x's dtype
  if (c.opset < 11) {
    p = pads_of(c.node.attr_ints("pads"), nullptr, r, fail);
    const float v = c.node.attr_float("value", 0.f);
    if (x.dtype() != DType::f32 && v != 0.f) c.fail("a nonzero value attribute needs f32 data");
    std::memcpy(value.data(), &v, x.dtype() == DType::f32 ? sizeof(float) : 0);
  } else {
    std::vector<int64_t> axes;
    if (c.has_input(3)) axes = int_values(c.input(3), c);
    p = pads_of(int_values(c.input(1), c), c.has_input(3) ? &axes : nullptr, r, fail);
    if (c.has_input(2) && c.input(2).numel() > 0) {
      const Tensor& v = c.input(2);
      if (v.dtype() != x.dtype()) c.fail("constant_value must have the data's dtype");
      std::memcpy(value.data(), v.raw(), value.size());
    }
  }
  std::vector<int64_t> od(static_cast<size_t>(r));
  for (int64_t d = 0; d < r; ++d) {
    od[size_t(d)] = extent_add(extent_add(x.dim(int(d)), p[size_t(d)], fail), p[size_t(d + r)], fail);
    if (od[size_t(d)] < 0) c.fail("pads crop axis " + std::to_string(d) + " below zero elements");
    if (mode != PadMode::constant && x.dim(int(d)) == 0 && od[size_t(d)] > 0)
      c.fail("cannot pad an empty axis in " + std::string(mode == PadMode::edge ? "edge" : "reflect/wrap") + " mode");
  }
  Tensor y(x.dtype(), Shape(od), Uninitialized{});
  if (y.numel() == 0) return c.out.push_back(std::move(y));
  if (r == 0) {
    std::memcpy(y.raw(), x.raw(), x.nbytes());
    return c.out.push_back(std::move(y));
  }
  // One table per axis: output index -> input index or -1.
  std::vector<std::vector<int64_t>> src(static_cast<size_t>(r));
  for (int64_t d = 0; d < r; ++d)
    for (int64_t o = 0; o < od[size_t(d)]; ++o) src[size_t(d)].push_back(source_index(o, x.dim(int(d)), p[size_t(d)], mode));
  const size_t es = dtype_size(x.dtype());
  const std::vector<int64_t> st = contiguous_strides(x.shape().dims());
  const char* px = static_cast<const char*>(x.raw());
  char* py = static_cast<char*>(y.raw());
  const int64_t row = od.back(), rows = y.numel() / row, n_last = x.dim(int(r - 1));
  const std::vector<int64_t>& last = src.back();
  // The contiguous run of the last axis that copies in one memcpy.
  const int64_t copy_begin = std::max<int64_t>(0, p[size_t(r - 1)]);
  const int64_t copy_end = std::min<int64_t>(row, p[size_t(r - 1)] + n_last);
  parallel_for(c.threads, rows, 64, [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(size_t(r - 1), 0);
    for (int64_t q = r0, d = r - 1; d-- > 0;) {
      idx[size_t(d)] = q % od[size_t(d)];
      q /= od[size_t(d)];
    }
    for (int64_t q = r0; q < r1; ++q) {
      char* out = py + size_t(q * row) * es;
      int64_t base = 0;
      bool constant_row = false;
      for (int64_t d = 0; d + 1 < r; ++d) {
        const int64_t s = src[size_t(d)][size_t(idx[size_t(d)])];
        if (s < 0) constant_row = true;
        base += s * st[size_t(d)];
      }
      if (constant_row) {
        for (int64_t j = 0; j < row; ++j) std::memcpy(out + size_t(j) * es, value.data(), es);
      } else {
        const char* in = px + size_t(base) * es;
        for (int64_t j = 0; j < copy_begin; ++j) {
          const int64_t s = last[size_t(j)];
          std::memcpy(out + size_t(j) * es, s < 0 ? value.data() : in + size_t(s) * es, es);
        }
        if (copy_end > copy_begin)
          std::memcpy(out + size_t(copy_begin) * es, in + size_t(last[size_t(copy_begin)]) * es,
                      size_t(copy_end - copy_begin) * es);
        for (int64_t j = std::max(copy_begin, copy_end); j < row; ++j) {
          const int64_t s = last[size_t(j)];
          std::memcpy(out + size_t(j) * es, s < 0 ? value.data() : in + size_t(s) * es, es);
        }
      }
      for (int64_t d = r - 1; d-- > 0;) {
        if (++idx[size_t(d)] < od[size_t(d)]) break;
        idx[size_t(d)] = 0;
      }
    }
  });
  c.out.push_back(std::move(y));
}

void pad_shape(const ShapeCtx& c) {
  const ShapeCtx::Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  const auto fail = [&c](const std::string& m) { c.require(false, m); };
  const int64_t r = static_cast<int64_t>(x->size());
  std::optional<ShapeCtx::Dims> raw, axes;
  const bool legacy = c.n.attr("pads") && c.inputs() == 1;  // opsets before 11: pads as an attribute
  if (legacy) raw = c.n.attr_ints("pads");
  else raw = c.ints(1);
  if (c.inputs() > 3 && c.in(3)) {
    axes = c.ints(3);
    if (!axes) raw.reset();
  }
  if (!raw) {  // pads known at run time only: the rank is kept
    return c.set(0, ShapeCtx::Dims(size_t(r), -1), c.dtype(0));
  }
  const std::vector<int64_t> p = pads_of(*raw, axes ? &*axes : nullptr, r, fail);
  ShapeCtx::Dims out;
  for (int64_t d = 0; d < r; ++d) {
    const int64_t v = (*x)[size_t(d)];
    out.push_back(v < 0 ? -1 : extent_add(extent_add(v, p[size_t(d)], fail), p[size_t(d + r)], fail));
    c.require(out.back() >= -1, "pads crop an axis below zero elements");
  }
  c.set(0, out, c.dtype(0));
}

}  // namespace

void define_pad_ops() { define_op({"Pad"}, {.shape = pad_shape, .run = pad, .dims_kept = DimsKept::none}); }

}  // namespace sparta
