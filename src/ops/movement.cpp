// Data movement that real exports use around their convolutions and
// heads: Tile, DepthToSpace, SpaceToDepth, and CumSum. Any dtype moves as
// bytes; CumSum adds f32, i64 or i32.
#include <cstring>

#include "ops/op_def.h"

namespace sparta {
namespace {

// y[i] = x[map(i)] over every output element, elements of `es` bytes.
template <typename Map>
void gather_bytes(const Tensor& x, Tensor& y, Map map) {
  const size_t es = dtype_size(x.dtype());
  const char* px = static_cast<const char*>(x.raw());
  char* py = static_cast<char*>(y.raw());
  const std::vector<int64_t> od = y.shape().dims();
  std::vector<int64_t> idx(od.size(), 0);
  for (int64_t e = 0; e < y.numel(); ++e) {
    std::memcpy(py + size_t(e) * es, px + size_t(map(idx)) * es, es);
    for (size_t d = od.size(); d-- > 0;) {
      if (++idx[d] < od[d]) break;
      idx[d] = 0;
    }
  }
}

void tile(OpCall& c) {
  const Tensor& x = c.input(0);
  const std::vector<int64_t> reps = int_values(c.input(1), c);
  if (static_cast<int64_t>(reps.size()) != x.rank()) c.fail("repeats must have one value per axis of the input");
  std::vector<int64_t> od;
  for (int i = 0; i < x.rank(); ++i) {
    if (reps[size_t(i)] < 0) c.fail("negative repeats");
    od.push_back(extent_mul(x.dim(i), reps[size_t(i)], [&c](const std::string& m) { c.fail(m); }));
  }
  Tensor y(x.dtype(), Shape(od), Uninitialized{});
  const std::vector<int64_t> st = contiguous_strides(x.shape().dims());
  gather_bytes(x, y, [&](const std::vector<int64_t>& i) {
    int64_t o = 0;
    for (size_t d = 0; d < i.size(); ++d) o += (i[d] % x.dim(int(d))) * st[d];
    return o;
  });
  c.out.push_back(std::move(y));
}

void tile_shape(const ShapeCtx& c) {
  const ShapeCtx::Dims* x = c.dims(0);
  const auto reps = c.ints(1);
  if (!x || !reps || reps->size() != x->size()) return c.set(0, std::nullopt, c.dtype(0));
  ShapeCtx::Dims out;
  for (size_t i = 0; i < x->size(); ++i) {
    c.require((*reps)[i] >= 0, "negative repeats");
    out.push_back(extent_mul((*x)[i], (*reps)[i], [&c](const std::string& m) { c.require(false, m); }));
  }
  c.set(0, out, c.dtype(0));
}

// DepthToSpace (DCR or CRD) and SpaceToDepth on [N, C, H, W] with block b.
void depth_space(OpCall& c, bool to_space) {
  const Tensor& x = c.input(0);
  if (x.rank() != 4) c.fail("expects a 4-D input");
  const int64_t b = c.node.attr_int("blocksize", 0);
  if (b <= 0 || b > (1 << 20)) c.fail("blocksize must lie in [1, 2^20]");
  const int64_t n = x.dim(0), ch = x.dim(1), h = x.dim(2), w = x.dim(3);
  const Attribute* mode = c.node.attr("mode");
  const bool crd = mode && mode->s == "CRD";
  const std::vector<int64_t> st = contiguous_strides(x.shape().dims());
  if (to_space) {
    if (ch % (b * b)) c.fail("channels must be a multiple of blocksize squared");
    const int64_t oc = ch / (b * b);
    Tensor y(x.dtype(), Shape{n, oc, h * b, w * b}, Uninitialized{});
    gather_bytes(x, y, [&](const std::vector<int64_t>& i) {
      const int64_t hh = i[2] / b, bh = i[2] % b, ww = i[3] / b, bw = i[3] % b;
      const int64_t cin = crd ? i[1] * b * b + bh * b + bw : (bh * b + bw) * oc + i[1];
      return i[0] * st[0] + cin * st[1] + hh * st[2] + ww * st[3];
    });
    c.out.push_back(std::move(y));
  } else {
    if (h % b || w % b) c.fail("height and width must be multiples of blocksize");
    Tensor y(x.dtype(), Shape{n, ch * b * b, h / b, w / b}, Uninitialized{});
    gather_bytes(x, y, [&](const std::vector<int64_t>& i) {
      const int64_t blk = i[1] / ch, cin = i[1] % ch, bh = blk / b, bw = blk % b;
      return i[0] * st[0] + cin * st[1] + (i[2] * b + bh) * st[2] + (i[3] * b + bw) * st[3];
    });
    c.out.push_back(std::move(y));
  }
}

void depth_space_shape(const ShapeCtx& c, bool to_space) {
  const ShapeCtx::Dims* x = c.dims(0);
  const int64_t b = c.n.attr_int("blocksize", 0);
  c.require(b > 0 && b <= (1 << 20), "blocksize must lie in [1, 2^20]");
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  c.require(x->size() == 4, "expects a 4-D input");
  auto mul = [&c](int64_t v, int64_t f) { return extent_mul(v, f, [&c](const std::string& m) { c.require(false, m); }); };
  auto div = [](int64_t v, int64_t f) { return v < 0 ? -1 : v / f; };
  if (to_space) c.set(0, ShapeCtx::Dims{(*x)[0], div((*x)[1], b * b), mul((*x)[2], b), mul((*x)[3], b)}, c.dtype(0));
  else c.set(0, ShapeCtx::Dims{(*x)[0], mul((*x)[1], b * b), div((*x)[2], b), div((*x)[3], b)}, c.dtype(0));
}

template <typename T>
void cumsum_typed(OpCall& c, const Tensor& x, int64_t axis, bool exclusive, bool reverse) {
  int64_t outer = 1, inner = 1;
  const int64_t n = x.rank() ? x.dim(int(axis)) : 1;
  for (int i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int i = int(axis) + 1; i < x.rank(); ++i) inner *= x.dim(i);
  Tensor y(x.dtype(), x.shape(), Uninitialized{});
  const T* px = static_cast<const T*>(x.raw());
  T* py = static_cast<T*>(y.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      T acc = 0;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t k = reverse ? n - 1 - s : s;
        const int64_t at = (o * n + k) * inner + i;
        if (exclusive) {
          py[at] = acc;
          acc += px[at];
        } else {
          acc += px[at];
          py[at] = acc;
        }
      }
    }
  c.out.push_back(std::move(y));
}

void cumsum(OpCall& c) {
  const Tensor& x = c.input(0);
  const std::vector<int64_t> a = int_values(c.input(1), c);
  if (a.size() != 1) c.fail("axis must be one value");
  const int64_t axis = normalize_axis(a[0], std::max<int64_t>(1, x.rank()), c);
  const bool exclusive = c.node.attr_int("exclusive", 0) != 0, reverse = c.node.attr_int("reverse", 0) != 0;
  switch (x.dtype()) {
    case DType::f32: return cumsum_typed<float>(c, x, axis, exclusive, reverse);
    case DType::i64: return cumsum_typed<int64_t>(c, x, axis, exclusive, reverse);
    case DType::i32: return cumsum_typed<int32_t>(c, x, axis, exclusive, reverse);
    default: c.fail("supports f32, i64 and i32, not " + std::string(dtype_name(x.dtype())));
  }
}

}  // namespace

void define_movement_ops() {
  define_op({"Tile"}, {.shape = tile_shape, .run = tile});
  define_op({"DepthToSpace"}, {.shape = [](const ShapeCtx& c) { depth_space_shape(c, true); },
                               .run = [](OpCall& c) { depth_space(c, true); }});
  define_op({"SpaceToDepth"}, {.shape = [](const ShapeCtx& c) { depth_space_shape(c, false); },
                               .run = [](OpCall& c) { depth_space(c, false); }});
  define_op({"CumSum"}, {.shape = same_shape_as_input, .run = cumsum, .dims_kept = DimsKept::all});
}

}  // namespace sparta
