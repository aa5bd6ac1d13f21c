// Indexing by data: GatherElements, GatherND, ScatterElements, ScatterND,
// TopK, NonZero, OneHot and Trilu. Elements of any dtype move as bytes;
// reductions of scatters and TopK compare f32, i64 or i32.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "ops/op_def.h"

namespace sparta {
namespace {

int64_t prod(const std::vector<int64_t>& d, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < std::min(to, d.size()); ++i) p *= d[i];
  return p;
}

int64_t checked_index(int64_t i, int64_t n, const OpCall& c) {
  if (i < -n || i >= n) c.fail("index " + std::to_string(i) + " is outside [" + std::to_string(-n) + ", " + std::to_string(n) + ")");
  return i < 0 ? i + n : i;
}

enum class Reduction { none, add, mul, max, min };

Reduction reduction_of(const OpCall& c) {
  const Attribute* r = c.node.attr("reduction");
  const std::string s = r ? r->s : "none";
  if (s == "none") return Reduction::none;
  if (s == "add") return Reduction::add;
  if (s == "mul") return Reduction::mul;
  if (s == "max") return Reduction::max;
  if (s == "min") return Reduction::min;
  c.fail("unknown reduction '" + s + "'");
  return Reduction::none;
}

template <typename T>
void combine(void* dst, const void* src, Reduction r) {
  T& d = *static_cast<T*>(dst);
  const T s = *static_cast<const T*>(src);
  switch (r) {
    case Reduction::none: d = s; break;
    case Reduction::add: d = d + s; break;
    case Reduction::mul: d = d * s; break;
    case Reduction::max: d = std::max(d, s); break;
    case Reduction::min: d = std::min(d, s); break;
  }
}

// Writes `count` elements of src into dst under reduction r.
void scatter_elements_into(char* dst, const char* src, int64_t count, DType t, Reduction r, const OpCall& c) {
  const size_t es = dtype_size(t);
  if (r == Reduction::none) return (void)std::memcpy(dst, src, size_t(count) * es);
  for (int64_t i = 0; i < count; ++i) {
    char* d = dst + size_t(i) * es;
    const char* s = src + size_t(i) * es;
    switch (t) {
      case DType::f32: combine<float>(d, s, r); break;
      case DType::i64: combine<int64_t>(d, s, r); break;
      case DType::i32: combine<int32_t>(d, s, r); break;
      default: c.fail("reductions support f32, i64 and i32");
    }
  }
}

// GatherElements / ScatterElements addressing: for each element of
// `ind` (data's rank), the offset in data of the element it names (its own
// position, with the index value along `axis`).
std::vector<int64_t> element_offsets(const Tensor& x, const Tensor& ind, int64_t axis, const OpCall& c) {
  const std::vector<int64_t> idx = int_values(ind, c), od = ind.shape().dims(), st = contiguous_strides(x.shape().dims());
  std::vector<int64_t> offsets(idx.size()), pos(od.size(), 0);
  for (size_t e = 0; e < idx.size(); ++e) {
    int64_t off = 0;
    for (size_t d = 0; d < od.size(); ++d) {
      const int64_t v = int64_t(d) == axis ? checked_index(idx[e], x.dim(int(d)), c) : pos[d];
      if (v >= x.dim(int(d))) c.fail("indices are larger than data outside the axis");
      off += v * st[d];
    }
    offsets[e] = off;
    for (size_t d = od.size(); d-- > 0;) {
      if (++pos[d] < od[d]) break;
      pos[d] = 0;
    }
  }
  return offsets;
}

void gather_elements(OpCall& c) {
  const Tensor &x = c.input(0), &ind = c.input(1);
  if (x.rank() != ind.rank() || x.rank() == 0) c.fail("data and indices must have the same rank (at least 1)");
  const int64_t axis = normalize_axis(c.node.attr_int("axis", 0), x.rank(), c);
  const std::vector<int64_t> offsets = element_offsets(x, ind, axis, c);
  Tensor y(x.dtype(), ind.shape(), Uninitialized{});
  const size_t es = dtype_size(x.dtype());
  for (size_t e = 0; e < offsets.size(); ++e)
    std::memcpy(static_cast<char*>(y.raw()) + e * es, static_cast<const char*>(x.raw()) + size_t(offsets[e]) * es, es);
  c.out.push_back(std::move(y));
}

void scatter_elements(OpCall& c) {
  const Tensor &x = c.input(0), &ind = c.input(1), &upd = c.input(2);
  if (x.rank() != ind.rank() || ind.shape() != upd.shape()) c.fail("indices and updates must match and have data's rank");
  if (upd.dtype() != x.dtype()) c.fail("updates must have data's dtype");
  const Reduction r = reduction_of(c);
  const int64_t axis = normalize_axis(c.node.attr_int("axis", 0), std::max<int64_t>(1, x.rank()), c);
  const std::vector<int64_t> offsets = element_offsets(x, ind, axis, c);
  Tensor y = x.clone();
  const size_t es = dtype_size(x.dtype());
  for (size_t e = 0; e < offsets.size(); ++e)
    scatter_elements_into(static_cast<char*>(y.raw()) + size_t(offsets[e]) * es,
                          static_cast<const char*>(upd.raw()) + e * es, 1, x.dtype(), r, c);
  c.out.push_back(std::move(y));
}

// GatherND / ScatterND addressing: for index tuple j (of k values) in batch
// b, the element offset of the slice it names in data.
struct NdIndex {
  int64_t batch = 1, tuples = 1, k = 0, slice = 1;
  std::vector<int64_t> off;  // per (batch, tuple)
};

NdIndex nd_index(const Tensor& x, const Tensor& ind, int64_t bdims, const OpCall& c) {
  const std::vector<int64_t> xd = x.shape().dims(), id = ind.shape().dims();
  if (id.empty()) c.fail("indices must have rank >= 1");
  NdIndex n;
  n.k = id.back();
  if (bdims < 0 || bdims >= int64_t(id.size()) || bdims > int64_t(xd.size())) c.fail("batch_dims out of range");
  if (n.k < 1 || n.k > int64_t(xd.size()) || bdims + n.k > int64_t(xd.size()))
    c.fail("the last axis of indices is longer than data's rank");
  for (int64_t i = 0; i < bdims; ++i)
    if (xd[size_t(i)] != id[size_t(i)]) c.fail("batch dims of data and indices differ");
  n.batch = prod(xd, 0, size_t(bdims));
  n.tuples = prod(id, size_t(bdims), id.size() - 1);
  n.slice = prod(xd, size_t(bdims + n.k));
  const std::vector<int64_t> idx = int_values(ind, c), st = contiguous_strides(xd);
  const int64_t batch_stride = prod(xd, size_t(bdims));
  for (int64_t b = 0; b < n.batch; ++b)
    for (int64_t j = 0; j < n.tuples; ++j) {
      int64_t o = b * batch_stride;
      for (int64_t q = 0; q < n.k; ++q)
        o += checked_index(idx[size_t((b * n.tuples + j) * n.k + q)], xd[size_t(bdims + q)], c) * st[size_t(bdims + q)];
      n.off.push_back(o);
    }
  return n;
}

void gather_nd(OpCall& c) {
  const Tensor &x = c.input(0), &ind = c.input(1);
  const int64_t bdims = c.node.attr_int("batch_dims", 0);
  const NdIndex n = nd_index(x, ind, bdims, c);
  std::vector<int64_t> od(ind.shape().dims().begin(), ind.shape().dims().end() - 1);
  for (int64_t d = bdims + n.k; d < x.rank(); ++d) od.push_back(x.dim(int(d)));
  Tensor y(x.dtype(), Shape(od), Uninitialized{});
  const size_t es = dtype_size(x.dtype());
  for (size_t j = 0; j < n.off.size(); ++j)
    std::memcpy(static_cast<char*>(y.raw()) + j * size_t(n.slice) * es,
                static_cast<const char*>(x.raw()) + size_t(n.off[j]) * es, size_t(n.slice) * es);
  c.out.push_back(std::move(y));
}

void scatter_nd(OpCall& c) {
  const Tensor &x = c.input(0), &ind = c.input(1), &upd = c.input(2);
  if (upd.dtype() != x.dtype()) c.fail("updates must have data's dtype");
  const NdIndex n = nd_index(x, ind, 0, c);
  if (upd.numel() != int64_t(n.off.size()) * n.slice) c.fail("updates do not match indices and data");
  Tensor y = x.clone();
  const Reduction r = reduction_of(c);
  const size_t es = dtype_size(x.dtype());
  for (size_t j = 0; j < n.off.size(); ++j)
    scatter_elements_into(static_cast<char*>(y.raw()) + size_t(n.off[j]) * es,
                          static_cast<const char*>(upd.raw()) + j * size_t(n.slice) * es, n.slice, x.dtype(), r, c);
  c.out.push_back(std::move(y));
}

template <typename T>
void topk_typed(OpCall& c, const Tensor& x, int64_t axis, int64_t k, bool largest, bool sorted) {
  const std::vector<int64_t> xd = x.shape().dims();
  const int64_t n = xd[size_t(axis)], outer = prod(xd, 0, size_t(axis)), inner = prod(xd, size_t(axis) + 1);
  std::vector<int64_t> od = xd;
  od[size_t(axis)] = k;
  Tensor vals(x.dtype(), Shape(od), Uninitialized{}), idx(DType::i64, Shape(od), Uninitialized{});
  const T* px = x.data<T>();
  T* pv = vals.data<T>();
  int64_t* pi = idx.data<int64_t>();
  parallel_for(c.threads, outer * inner, 16, [&](int64_t b, int64_t e) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t q = b; q < e; ++q) {
      const int64_t o = q / inner, i = q % inner;
      const T* row = px + o * n * inner + i;
      std::iota(order.begin(), order.end(), 0);
      // Ties keep the lower index first; NaN counts as the largest.
      const auto before = [&](int64_t a, int64_t bb) {
        const T va = row[a * inner], vb = row[bb * inner];
        if (va == vb || (va != va && vb != vb)) return a < bb;
        if (va != va) return largest;
        if (vb != vb) return !largest;
        return largest ? va > vb : va < vb;
      };
      if (sorted) std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      else std::nth_element(order.begin(), order.begin() + std::max<int64_t>(0, k - 1), order.end(), before);
      if (!sorted) std::sort(order.begin(), order.begin() + k);
      for (int64_t j = 0; j < k; ++j) {
        pv[(o * k + j) * inner + i] = row[order[size_t(j)] * inner];
        pi[(o * k + j) * inner + i] = order[size_t(j)];
      }
    }
  });
  c.out.push_back(std::move(vals));
  c.out.push_back(std::move(idx));
}

void topk(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.rank() == 0) c.fail("expects a tensor of rank >= 1");
  int64_t k;
  if (c.opset < 10) {
    k = c.node.attr_int("k", -1);
  } else {
    const std::vector<int64_t> kv = int_values(c.input(1), c);
    if (kv.size() != 1) c.fail("K must hold one value");
    k = kv[0];
  }
  const int64_t axis = normalize_axis(c.node.attr_int("axis", -1), x.rank(), c);
  if (k < 0 || k > x.dim(int(axis))) c.fail("K=" + std::to_string(k) + " is outside [0, " + std::to_string(x.dim(int(axis))) + "]");
  const bool largest = c.node.attr_int("largest", 1) != 0, sorted = c.node.attr_int("sorted", 1) != 0;
  switch (x.dtype()) {
    case DType::f32: return topk_typed<float>(c, x, axis, k, largest, sorted);
    case DType::i64: return topk_typed<int64_t>(c, x, axis, k, largest, sorted);
    case DType::i32: return topk_typed<int32_t>(c, x, axis, k, largest, sorted);
    default: c.fail("supports f32, i64 and i32");
  }
}

void nonzero(OpCall& c) {
  const Tensor& x = c.input(0);
  const size_t es = dtype_size(x.dtype());
  const char* px = static_cast<const char*>(x.raw());
  std::vector<int64_t> hits;
  for (int64_t e = 0; e < x.numel(); ++e) {
    bool nz = false;
    if (x.dtype() == DType::f32) nz = x.data<float>()[e] != 0.f;
    else
      for (size_t b = 0; b < es; ++b) nz = nz || px[size_t(e) * es + b] != 0;
    if (nz) hits.push_back(e);
  }
  const int64_t nnz = int64_t(hits.size());
  Tensor y(DType::i64, Shape{x.rank(), nnz}, Uninitialized{});
  const std::vector<int64_t> st = contiguous_strides(x.shape().dims());
  for (int64_t j = 0; j < nnz; ++j) {
    int64_t rem = hits[size_t(j)];
    for (int64_t d = 0; d < x.rank(); ++d) {
      y.data<int64_t>()[d * nnz + j] = rem / st[size_t(d)];
      rem %= st[size_t(d)];
    }
  }
  c.out.push_back(std::move(y));
}

void one_hot(OpCall& c) {
  const Tensor &ind = c.input(0), &vals = c.input(2);
  const std::vector<int64_t> idx = ind.dtype() == DType::f32
                                       ? [&] {
                                           std::vector<int64_t> v;
                                           for (int64_t i = 0; i < ind.numel(); ++i) v.push_back(int64_t(ind.data<float>()[i]));
                                           return v;
                                         }()
                                       : int_values(ind, c);
  const Tensor& dt = c.input(1);
  if (dt.numel() != 1) c.fail("depth must hold one value");
  const int64_t depth = dt.dtype() == DType::f32 ? int64_t(dt.data<float>()[0]) : int_values(dt, c)[0];
  if (depth < 1) c.fail("depth must be positive");
  if (vals.numel() != 2) c.fail("values must be [off, on]");
  const int64_t axis = normalize_axis(c.node.attr_int("axis", -1), ind.rank() + 1, c);
  std::vector<int64_t> od = ind.shape().dims();
  od.insert(od.begin() + axis, depth);
  const int64_t outer = prod(ind.shape().dims(), 0, size_t(axis)), inner = prod(ind.shape().dims(), size_t(axis));
  Tensor y(vals.dtype(), Shape(od), Uninitialized{});
  const size_t es = dtype_size(vals.dtype());
  const char *off = static_cast<const char*>(vals.raw()), *on = off + es;
  char* py = static_cast<char*>(y.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t d = 0; d < depth; ++d)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t v = idx[size_t(o * inner + i)];
        if (v < 0) v += depth;
        std::memcpy(py + size_t((o * depth + d) * inner + i) * es, v == d ? on : off, es);
      }
  c.out.push_back(std::move(y));
}

void trilu(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.rank() < 2) c.fail("expects a tensor of rank >= 2");
  const int64_t k = c.has_input(1) ? int_values(c.input(1), c).at(0) : 0;
  const bool upper = c.node.attr_int("upper", 1) != 0;
  const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1), mats = x.numel() / std::max<int64_t>(1, rows * cols);
  Tensor y(x.dtype(), x.shape());  // zero-filled
  const size_t es = dtype_size(x.dtype());
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        if (upper ? j - i >= k : j - i <= k) {
          const size_t at = size_t((m * rows + i) * cols + j) * es;
          std::memcpy(static_cast<char*>(y.raw()) + at, static_cast<const char*>(x.raw()) + at, es);
        }
  c.out.push_back(std::move(y));
}

// Shape rules.
void gather_nd_shape(const ShapeCtx& c) {
  const ShapeCtx::Dims *x = c.dims(0), *i = c.dims(1);
  if (!x || !i || i->empty() || i->back() < 0) return c.set(0, std::nullopt, c.dtype(0));
  const int64_t b = c.n.attr_int("batch_dims", 0), k = i->back();
  c.require(b >= 0 && b < int64_t(i->size()) && k <= int64_t(x->size()) && b + k <= int64_t(x->size()),
            "indices do not fit data's rank");
  ShapeCtx::Dims out(i->begin(), i->end() - 1);
  out.insert(out.end(), x->begin() + b + k, x->end());
  c.set(0, out, c.dtype(0));
}

void topk_shape(const ShapeCtx& c) {
  const ShapeCtx::Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, c.dtype(0)), c.set(1, std::nullopt, DType::i64);
  ShapeCtx::Dims out = *x;
  const int64_t axis = c.axis(c.n.attr_int("axis", -1), int64_t(x->size()));
  const auto k = c.inputs() > 1 ? c.ints(1) : std::optional<ShapeCtx::Dims>(ShapeCtx::Dims{c.n.attr_int("k", -1)});
  out[size_t(axis)] = k && k->size() == 1 ? (*k)[0] : -1;
  c.set(0, out, c.dtype(0));
  c.set(1, out, DType::i64);
}

void one_hot_shape(const ShapeCtx& c) {
  const ShapeCtx::Dims* i = c.dims(0);
  if (!i) return c.set(0, std::nullopt, c.dtype(2));
  const int64_t axis = c.axis(c.n.attr_int("axis", -1), int64_t(i->size()) + 1);
  const auto depth = c.ints(1);
  ShapeCtx::Dims out = *i;
  out.insert(out.begin() + axis, depth && depth->size() == 1 ? (*depth)[0] : -1);
  c.set(0, out, c.dtype(2));
}

}  // namespace

void define_indexing_ops() {
  define_op({"GatherElements"}, {.shape = [](const ShapeCtx& c) { c.set(0, c.dims(1) ? std::optional(*c.dims(1)) : std::nullopt, c.dtype(0)); },
                                 .run = gather_elements});
  define_op({"GatherND"}, {.shape = gather_nd_shape, .run = gather_nd});
  define_op({"ScatterElements", "Scatter"}, {.shape = same_shape_as_input, .run = scatter_elements, .dims_kept = DimsKept::all});
  define_op({"ScatterND"}, {.shape = same_shape_as_input, .run = scatter_nd, .dims_kept = DimsKept::all});
  define_op({"TopK"}, {.shape = topk_shape, .run = topk});
  define_op({"NonZero"}, {.shape = [](const ShapeCtx& c) {
                            const ShapeCtx::Dims* x = c.dims(0);
                            c.set(0, x ? std::optional(ShapeCtx::Dims{int64_t(x->size()), -1}) : std::nullopt, DType::i64);
                          },
                          .run = nonzero});
  define_op({"OneHot"}, {.shape = one_hot_shape, .run = one_hot});
  define_op({"Trilu"}, {.shape = same_shape_as_input, .run = trilu, .dims_kept = DimsKept::all});
}

}  // namespace sparta
