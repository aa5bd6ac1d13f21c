// Resize (opsets 10-18) and Upsample (7-9): nearest, linear and cubic
// interpolation over any axes, with every coordinate transformation mode,
// scales or sizes. Interpolation is separable, so each resized axis is one
// pass of precomputed taps (index, weight) over [outer, axis, inner] rows;
// an axis whose taps are the identity costs nothing, and a Resize that
// changes nothing returns its input.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/op_def.h"

namespace sparta {
namespace {

enum class Interp { nearest, linear, cubic };
enum class Coord { half_pixel, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn, tf_crop_and_resize };
enum class Nearest { round_prefer_floor, round_prefer_ceil, floor, ceil, simple };

struct ResizeAttrs {
  Interp interp = Interp::nearest;
  Coord coord = Coord::half_pixel;
  Nearest nearest = Nearest::round_prefer_floor;
  float cubic_a = -0.75f, extrapolation = 0.f;
  bool exclude_outside = false;
};

using Fail = std::function<void(const std::string&)>;

ResizeAttrs resize_attrs(const Node& n, bool upsample, int64_t opset, const Fail& fail) {
  ResizeAttrs a;
  const auto str = [&n](const char* k, const char* d) {
    const Attribute* v = n.attr(k);
    return v ? v->s : std::string(d);
  };
  const std::string mode = str("mode", "nearest");
  if (mode == "nearest") a.interp = Interp::nearest;
  else if (mode == "linear" || mode == "bilinear") a.interp = Interp::linear;
  else if (mode == "cubic" && !upsample) a.interp = Interp::cubic;
  else fail("unknown mode '" + mode + "'");
  if (upsample || opset < 11) {  // before opset 11: asymmetric coordinates, truncation
    a.coord = Coord::asymmetric;
    a.nearest = upsample ? Nearest::floor : Nearest::simple;
    return a;
  }
  const std::string ct = str("coordinate_transformation_mode", "half_pixel");
  if (ct == "half_pixel") a.coord = Coord::half_pixel;
  else if (ct == "pytorch_half_pixel") a.coord = Coord::pytorch_half_pixel;
  else if (ct == "align_corners") a.coord = Coord::align_corners;
  else if (ct == "asymmetric") a.coord = Coord::asymmetric;
  else if (ct == "tf_half_pixel_for_nn") a.coord = Coord::tf_half_pixel_for_nn;
  else if (ct == "tf_crop_and_resize") a.coord = Coord::tf_crop_and_resize;
  else fail("coordinate_transformation_mode '" + ct + "' is not supported");
  const std::string nm = str("nearest_mode", "round_prefer_floor");
  if (nm == "round_prefer_floor") a.nearest = Nearest::round_prefer_floor;
  else if (nm == "round_prefer_ceil") a.nearest = Nearest::round_prefer_ceil;
  else if (nm == "floor") a.nearest = Nearest::floor;
  else if (nm == "ceil") a.nearest = Nearest::ceil;
  else fail("unknown nearest_mode '" + nm + "'");
  a.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  a.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
  a.extrapolation = n.attr_float("extrapolation_value", 0.f);
  if (n.attr_int("antialias", 0) != 0) fail("antialias is not supported");
  if (str("keep_aspect_ratio_policy", "stretch") != "stretch") fail("keep_aspect_ratio_policy other than stretch is not supported");
  return a;
}

// The resize of one node: output dims, per-axis scale and roi.
struct ResizeGeometry {
  std::vector<int64_t> out;
  std::vector<double> scale, roi_start, roi_end;
};

// Scales and sizes as given (the arguments are the node's inputs or
// attributes), over `axes` (empty: every axis).
ResizeGeometry resize_geometry(const std::vector<int64_t>& in, const std::vector<float>* scales,
                               const std::vector<int64_t>* sizes, const std::vector<float>* roi,
                               const std::vector<int64_t>& axes_attr, const Fail& fail) {
  const size_t r = in.size();
  std::vector<size_t> axes;
  for (int64_t a : axes_attr) {
    if (a < -int64_t(r) || a >= int64_t(r)) fail("axis " + std::to_string(a) + " out of range");
    axes.push_back(size_t(a < 0 ? a + int64_t(r) : a));
  }
  if (axes.empty())
    for (size_t i = 0; i < r; ++i) axes.push_back(i);
  ResizeGeometry g{in, std::vector<double>(r, 1.0), std::vector<double>(r, 0.0), std::vector<double>(r, 1.0)};
  if (roi && !roi->empty()) {
    if (roi->size() != 2 * axes.size()) fail("roi must have two values per resized axis");
    for (size_t i = 0; i < axes.size(); ++i) {
      g.roi_start[axes[i]] = (*roi)[i];
      g.roi_end[axes[i]] = (*roi)[i + axes.size()];
    }
  }
  if (sizes && !sizes->empty()) {
    if (sizes->size() != axes.size()) fail("sizes must have one value per resized axis");
    for (size_t i = 0; i < axes.size(); ++i) {
      const int64_t s = (*sizes)[i];
      if (s < 0 || s > (int64_t{1} << 48)) fail("sizes must lie in [0, 2^48]");
      g.out[axes[i]] = s;
      g.scale[axes[i]] = in[axes[i]] > 0 ? double(s) / double(in[axes[i]]) : 1.0;
    }
    return g;
  }
  if (!scales || scales->empty()) fail("needs scales or sizes");
  if (scales->size() != axes.size()) fail("scales must have one value per resized axis");
  for (size_t i = 0; i < axes.size(); ++i) {
    const double s = (*scales)[i];
    if (!(s > 0)) fail("scales must be positive");
    const size_t a = axes[i];
    g.scale[a] = s;
    const double e = std::floor(double(in[a]) * (g.roi_end[a] - g.roi_start[a]) * s);
    if (!(e >= 0 && e <= double(int64_t{1} << 48))) fail("scales and roi give an output extent out of range");
    g.out[a] = int64_t(e);
  }
  return g;
}

// One axis as taps: output index o reads taps idx[o*T .. o*T+T) with
// weights w; outside[o] marks tf_crop_and_resize extrapolation.
struct AxisTaps {
  int T = 1;
  std::vector<int64_t> idx;
  std::vector<float> w;
  std::vector<uint8_t> outside;
  bool identity = false;
};

double original_coord(const ResizeAttrs& a, int64_t o, int64_t in, int64_t out, double scale, double rs, double re) {
  const double x = double(o);
  switch (a.coord) {
    case Coord::half_pixel: return (x + 0.5) / scale - 0.5;
    case Coord::pytorch_half_pixel: return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case Coord::align_corners: {  // over the unrounded output length in * scale, as ONNX's reference
      const double len = double(in) * scale;
      return out == 1 ? 0.0 : x * double(in - 1) / (len - 1);
    }
    case Coord::asymmetric: return x / scale;
    case Coord::tf_half_pixel_for_nn: return (x + 0.5) / scale;
    case Coord::tf_crop_and_resize:
      return out > 1 ? rs * double(in - 1) + x * (re - rs) * double(in - 1) / double(out - 1)
                     : 0.5 * (rs + re) * double(in - 1);
  }
  return x;
}

int64_t nearest_index(Nearest m, double x, bool down) {
  switch (m) {
    case Nearest::round_prefer_floor: return x == std::floor(x) + 0.5 ? int64_t(std::floor(x)) : int64_t(std::round(x));
    case Nearest::round_prefer_ceil: return int64_t(std::round(x));
    case Nearest::floor: return int64_t(std::floor(x));
    case Nearest::ceil: return int64_t(std::ceil(x));
    case Nearest::simple: return down ? int64_t(std::ceil(x)) : int64_t(x);
  }
  return 0;
}

void cubic_coeffs(double r, double A, double* c) {
  const double s = r + 1, t = 1 - r, u = 2 - r;
  c[0] = ((A * s - 5 * A) * s + 8 * A) * s - 4 * A;
  c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
  c[2] = ((A + 2) * t - (A + 3)) * t * t + 1;
  c[3] = ((A * u - 5 * A) * u + 8 * A) * u - 4 * A;
}

AxisTaps axis_taps(const ResizeAttrs& a, int64_t in, int64_t out, double scale, double rs, double re) {
  AxisTaps t;
  t.T = a.interp == Interp::nearest ? 1 : a.interp == Interp::linear ? 2 : 4;
  t.idx.resize(size_t(out * t.T));
  t.w.resize(size_t(out * t.T));
  t.outside.assign(size_t(out), 0);
  const auto clamp = [in](int64_t i) { return std::min<int64_t>(std::max<int64_t>(i, 0), in - 1); };
  bool ident = in == out;
  for (int64_t o = 0; o < out; ++o) {
    const double x = original_coord(a, o, in, out, scale, rs, re);
    int64_t* ix = &t.idx[size_t(o * t.T)];
    float* w = &t.w[size_t(o * t.T)];
    if (a.coord == Coord::tf_crop_and_resize && (x < 0 || x > double(in - 1))) {
      t.outside[size_t(o)] = 1;
      ident = false;
      for (int k = 0; k < t.T; ++k) ix[k] = 0, w[k] = 0.f;
      continue;
    }
    if (a.interp == Interp::nearest) {
      ix[0] = clamp(nearest_index(a.nearest, x, scale < 1.0));
      w[0] = 1.f;
      ident &= ix[0] == o;
      continue;
    }
    const int64_t i0 = int64_t(std::floor(x));
    const double r = x - double(i0);
    double c[4];
    int64_t first;
    if (a.interp == Interp::linear) {
      c[0] = 1 - r, c[1] = r;
      first = i0;
    } else {
      cubic_coeffs(r, a.cubic_a, c);
      first = i0 - 1;
    }
    double sum = 0;
    for (int k = 0; k < t.T; ++k) {
      const int64_t i = first + k;
      if (a.exclude_outside && (i < 0 || i >= in)) c[k] = 0;
      sum += c[k];
    }
    for (int k = 0; k < t.T; ++k) {
      ix[k] = clamp(first + k);
      w[k] = float(a.exclude_outside && sum != 0 ? c[k] / sum : c[k]);
      ident &= (ix[k] == o && w[k] == 1.f) || w[k] == 0.f;
    }
  }
  t.identity = ident;
  return t;
}

// out[o, j, i] = sum_k w[j,k] * in[o, idx[j,k], i] over [outer, n, inner].
void resize_axis_f32(const float* x, float* y, int64_t outer, int64_t n_in, int64_t inner, const AxisTaps& t,
                     int64_t n_out, int threads) {
  parallel_for(threads, outer * n_out, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, inner)), [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q) {
      const int64_t o = q / n_out, j = q % n_out;
      float* dst = y + q * inner;
      const int64_t* ix = &t.idx[size_t(j * t.T)];
      const float* w = &t.w[size_t(j * t.T)];
      const float* src = x + o * n_in * inner;
      if (t.T == 1) {
        std::memcpy(dst, src + ix[0] * inner, size_t(inner) * sizeof(float));
      } else if (t.T == 2) {
        const float *a = src + ix[0] * inner, *c = src + ix[1] * inner;
        const float wa = w[0], wc = w[1];
        for (int64_t i = 0; i < inner; ++i) dst[i] = wa * a[i] + wc * c[i];
      } else {
        const float *p0 = src + ix[0] * inner, *p1 = src + ix[1] * inner, *p2 = src + ix[2] * inner,
                    *p3 = src + ix[3] * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] = w[0] * p0[i] + w[1] * p1[i] + w[2] * p2[i] + w[3] * p3[i];
      }
    }
  });
}

// The last axis (inner = 1): taps per element.
void resize_last_axis_f32(const float* x, float* y, int64_t outer, int64_t n_in, const AxisTaps& t, int64_t n_out,
                          int threads) {
  parallel_for(threads, outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, n_out)), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const float* src = x + o * n_in;
      float* dst = y + o * n_out;
      for (int64_t j = 0; j < n_out; ++j) {
        const int64_t* ix = &t.idx[size_t(j * t.T)];
        const float* w = &t.w[size_t(j * t.T)];
        float acc = 0.f;
        for (int k = 0; k < t.T; ++k) acc += w[k] * src[ix[k]];
        dst[j] = acc;
      }
    }
  });
}

void resize_axis_bytes(const char* x, char* y, int64_t outer, int64_t n_in, int64_t inner, size_t es,
                       const AxisTaps& t, int64_t n_out) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n_out; ++j)
      std::memcpy(y + size_t((o * n_out + j) * inner) * es, x + size_t((o * n_in + t.idx[size_t(j)]) * inner) * es,
                  size_t(inner) * es);
}

std::vector<float> float_values(const Tensor& t, const OpCall& c) {
  if (t.dtype() != DType::f32) c.fail("scales and roi must be f32");
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

void resize(OpCall& c, bool upsample) {
  const Tensor& x = c.input(0);
  const Fail fail = [&c](const std::string& m) { c.fail(m); };
  const ResizeAttrs a = resize_attrs(c.node, upsample, c.opset, fail);
  std::vector<float> scales, roi;
  std::vector<int64_t> sizes;
  if (upsample && c.opset < 9) {
    const Attribute* s = c.node.attr("scales");
    if (!s) c.fail("needs the scales attribute");
    scales = s->fs;
  } else if (upsample || c.opset < 11) {
    scales = float_values(c.input(1), c);
  } else {
    if (c.has_input(1) && c.input(1).numel() > 0) roi = float_values(c.input(1), c);
    if (c.has_input(2) && c.input(2).numel() > 0) scales = float_values(c.input(2), c);
    if (c.has_input(3) && c.input(3).numel() > 0) sizes = int_values(c.input(3), c);
    if (!scales.empty() && !sizes.empty()) c.fail("scales and sizes are both given; exactly one may be");
  }
  if (a.coord != Coord::tf_crop_and_resize) roi.clear();
  const std::vector<int64_t> in = x.shape().dims();
  const ResizeGeometry g = resize_geometry(in, &scales, &sizes, &roi, c.node.attr_ints("axes"), fail);
  if (a.interp != Interp::nearest && x.dtype() != DType::f32) c.fail("linear and cubic modes support f32 data");
  const size_t r = in.size();
  std::vector<AxisTaps> taps(r);
  std::vector<size_t> order;
  for (size_t d = 0; d < r; ++d) {
    if (in[d] == 0 && g.out[d] > 0) c.fail("cannot resize an empty axis to a nonempty one");
    taps[d] = axis_taps(a, in[d], g.out[d], g.scale[d], g.roi_start[d], g.roi_end[d]);
    if (!taps[d].identity) order.push_back(d);
  }
  if (order.empty()) return c.out.push_back(x);  // a Resize that changes nothing is nothing
  // Shrinking axes first: later passes then touch fewer elements.
  std::stable_sort(order.begin(), order.end(), [&](size_t p, size_t q) {
    return double(g.out[p]) / double(std::max<int64_t>(1, in[p])) < double(g.out[q]) / double(std::max<int64_t>(1, in[q]));
  });
  // The passes walk memory: for blocked or channels-last data (the layout
  // pass lets a Resize of H and W only through), logical H and W are other
  // physical axes, and every pass keeps the layout.
  const Layout l = c.node.inputs[0] ? c.node.inputs[0]->layout : Layout::plain;
  std::vector<int64_t> phys = in;  // physical extents, and where each logical axis lies among them
  std::vector<size_t> at(r);
  for (size_t i = 0; i < r; ++i) at[i] = i;
  if (l != Layout::plain) {
    SPARTA_ASSERT(r == 4 && g.out[0] == in[0] && g.out[1] == in[1] && a.coord != Coord::tf_crop_and_resize, "node '",
                  c.node.name, "': a blocked Resize must keep N and C");
    const int64_t B = layout_block(l, in[1]);
    if (l == Layout::nhwc) phys = {in[0], in[2], in[3], in[1]}, at = {0, 3, 1, 2};
    else phys = {in[0], in[1] / B, in[2], in[3], B}, at = {0, 1, 2, 3};
  }
  Tensor cur = x;
  std::vector<int64_t> dims = phys;
  for (size_t d : order) {
    const size_t pd = at[d];
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < pd; ++i) outer *= dims[i];
    for (size_t i = pd + 1; i < dims.size(); ++i) inner *= dims[i];
    std::vector<int64_t> nd = dims;
    nd[pd] = g.out[d];
    std::vector<int64_t> logical = g.out;  // the tensor's logical dims after this pass
    for (size_t i = 0; i < r; ++i) logical[i] = nd[at[i]] * (l != Layout::plain && l != Layout::nhwc && i == 1 ? phys[4] : 1);
    Tensor next(x.dtype(), Shape(logical), Uninitialized{});
    if (next.numel() > 0) {
      if (x.dtype() == DType::f32 && inner == 1)
        resize_last_axis_f32(cur.data<float>(), next.data<float>(), outer, dims[pd], taps[d], nd[pd], c.threads);
      else if (x.dtype() == DType::f32)
        resize_axis_f32(cur.data<float>(), next.data<float>(), outer, dims[pd], inner, taps[d], nd[pd], c.threads);
      else
        resize_axis_bytes(static_cast<const char*>(cur.raw()), static_cast<char*>(next.raw()), outer, dims[pd], inner,
                          dtype_size(x.dtype()), taps[d], nd[pd]);
    }
    cur = std::move(next);
    dims = nd;
  }
  if (l != Layout::plain) return c.out.push_back(std::move(cur));
  if (a.coord == Coord::tf_crop_and_resize) {  // extrapolated where any axis's coordinate falls outside
    if (x.dtype() != DType::f32) c.fail("tf_crop_and_resize supports f32 data");
    float* p = cur.data<float>();
    const std::vector<int64_t> st = contiguous_strides(dims);
    for (int64_t e = 0; e < cur.numel(); ++e) {
      int64_t rem = e;
      bool out = false;
      for (size_t d = 0; d < r; ++d) {
        out |= taps[d].outside[size_t(rem / st[d])] != 0;
        rem %= st[d];
      }
      if (out) p[e] = a.extrapolation;
    }
  }
  c.out.push_back(std::move(cur));
}

void resize_shape(const ShapeCtx& c, bool upsample) {
  const ShapeCtx::Dims* x = c.dims(0);
  const Fail fail = [&c](const std::string& m) { c.require(false, m); };
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  const ShapeCtx::Dims unknown(x->size(), -1);
  std::vector<float> scales, roi;
  std::optional<ShapeCtx::Dims> sizes;
  const auto floats = [&c](int i) -> std::optional<std::vector<float>> {
    const Value* v = c.in(i);
    if (!v || !v->is_constant() || v->constant->dtype() != DType::f32) return std::nullopt;
    return std::vector<float>(v->constant->data<float>(), v->constant->data<float>() + v->constant->numel());
  };
  if (upsample && c.n.attr("scales")) {
    scales = c.n.attr("scales")->fs;
  } else if (upsample || c.inputs() == 2) {
    auto s = floats(1);
    if (!s) return c.set(0, unknown, c.dtype(0));
    scales = *s;
  } else {
    const bool has_sizes = c.inputs() > 3 && c.in(3);
    const bool has_scales = c.inputs() > 2 && c.in(2);
    if (has_sizes) {
      sizes = c.ints(3);
      if (!sizes) return c.set(0, unknown, c.dtype(0));
    }
    if (has_scales && (!sizes || sizes->empty())) {
      auto s = floats(2);
      if (!s) return c.set(0, unknown, c.dtype(0));
      scales = *s;
      sizes.reset();
    }
    if (c.inputs() > 1 && c.in(1)) {
      auto rv = floats(1);
      if (rv) roi = *rv;
    }
    const Attribute* ct = c.n.attr("coordinate_transformation_mode");
    if (!ct || ct->s != "tf_crop_and_resize") roi.clear();
  }
  ShapeCtx::Dims known = *x;
  for (int64_t& d : known) d = d < 0 ? 1 : d;
  const ShapeCtx::Dims axes = c.n.attr_ints("axes");
  ResizeGeometry g = resize_geometry(known, &scales, sizes ? &*sizes : nullptr, &roi, axes, fail);
  for (size_t i = 0; i < x->size(); ++i) {
    // an unknown extent stays unknown unless sizes sets it
    const bool listed = axes.empty() || std::any_of(axes.begin(), axes.end(), [&](int64_t a) {
                          return size_t(a < 0 ? a + int64_t(x->size()) : a) == i;
                        });
    if ((*x)[i] < 0 && !(sizes && listed)) g.out[i] = -1;
  }
  c.set(0, g.out, c.dtype(0));
}

// A Resize the layout pass may run on blocked data: f32, rank 4, N and C
// kept (constant scales or sizes), every coordinate mode but
// tf_crop_and_resize, no axes attribute.
bool resize_keeps_channels(const Node& n) {
  if (n.inputs.empty() || !n.inputs[0] || !n.inputs[0]->static_rank(4) || n.inputs[0]->dtype != DType::f32) return false;
  if (n.attr("axes") || n.op_type != "Resize" || n.inputs.size() < 3) return false;
  const Attribute* ct = n.attr("coordinate_transformation_mode");
  if (ct && ct->s == "tf_crop_and_resize") return false;
  const std::vector<int64_t>& xd = *n.inputs[0]->dims;
  const Value* sizes = n.inputs.size() > 3 ? n.inputs[3] : nullptr;
  if (sizes && sizes->is_constant() && sizes->constant->numel() == 4 && sizes->constant->dtype() == DType::i64) {
    const int64_t* v = sizes->constant->data<int64_t>();
    return v[0] == xd[0] && v[1] == xd[1];
  }
  const Value* scales = n.inputs[2];
  if (!scales || !scales->is_constant() || scales->constant->dtype() != DType::f32 || scales->constant->numel() != 4)
    return false;
  const float* v = scales->constant->data<float>();
  return v[0] == 1.f && v[1] == 1.f;
}

}  // namespace

void define_resize_ops() {
  define_op({"Resize"}, {.shape = [](const ShapeCtx& c) { resize_shape(c, false); },
                         .run = [](OpCall& c) { resize(c, false); },
                         .dims_kept = DimsKept::batch,
                         .layout = LayoutRole::passthrough,
                         .can_block = resize_keeps_channels});
  define_op({"Upsample"}, {.shape = [](const ShapeCtx& c) { resize_shape(c, true); },
                           .run = [](OpCall& c) { resize(c, true); },
                           .dims_kept = DimsKept::batch});
}

}  // namespace sparta
