#include "analysis/onnx_rules.h"

#include <algorithm>

#include "core/error.h"

namespace sparta {

std::vector<int64_t> shape_op_dims(const Node& n, const std::vector<int64_t>& dims) {
  const int64_t r = static_cast<int64_t>(dims.size());
  int64_t start = n.attr_int("start", 0), end = n.attr_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, start, r);
  return std::vector<int64_t>(dims.begin() + start, dims.begin() + end);
}

SliceBox slice_box(const std::vector<int64_t>& dims, const std::vector<int64_t>& starts,
                   const std::vector<int64_t>& ends, std::vector<int64_t> axes, std::vector<int64_t> steps,
                   const std::function<void(const std::string&)>& fail) {
  const int64_t r = static_cast<int64_t>(dims.size());
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    fail("starts, ends, axes and steps differ in length");
  SliceBox box{std::vector<int64_t>(dims.size(), 0), std::vector<int64_t>(dims.size(), 1), dims};
  for (size_t i = 0; i < starts.size(); ++i) {
    if (axes[i] < -r || axes[i] >= r) fail("axis " + std::to_string(axes[i]) + " is outside rank " + std::to_string(r));
    const size_t a = static_cast<size_t>(axes[i] < 0 ? axes[i] + r : axes[i]);
    const int64_t dim = dims[a], st = steps[i];
    if (st == 0) fail("step 0");
    box.step[a] = st;
    if (dim < 0) {  // unknown extent: so is the slice's
      box.extent[a] = -1;
      continue;
    }
    auto clampi = [&](int64_t v, int64_t lo, int64_t hi) { return std::clamp(v < 0 ? v + dim : v, lo, hi); };
    const int64_t b = st > 0 ? clampi(starts[i], 0, dim) : clampi(starts[i], -1, dim - 1);
    const int64_t e = st > 0 ? clampi(ends[i], 0, dim) : clampi(ends[i], -1, dim - 1);
    box.begin[a] = b;
    box.extent[a] = st > 0 ? std::max<int64_t>(0, (e - b + st - 1) / st) : std::max<int64_t>(0, (b - e - st - 1) / -st);
  }
  return box;
}

std::vector<int64_t> split_sizes(const Node& n, int64_t dim, const std::vector<int64_t>* given,
                                 const std::function<void(const std::string&)>& fail) {
  const int64_t outs = static_cast<int64_t>(n.outputs.size());
  std::vector<int64_t> sizes;
  if (given) sizes = *given;
  else if (const Attribute* a = n.attr("split")) sizes = a->is;
  else {
    if (outs == 0 || dim % outs) fail("cannot split " + std::to_string(dim) + " evenly into " + std::to_string(outs));
    sizes.assign(static_cast<size_t>(outs), dim / outs);
  }
  int64_t total = 0;
  for (int64_t v : sizes) total += v;
  if (static_cast<int64_t>(sizes.size()) != outs || total != dim)
    fail("split sizes do not add up to the axis extent " + std::to_string(dim));
  return sizes;
}

std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                      const std::string& where) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t x = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t y = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (x == 1) out[i] = y;
    else if (y == 1) out[i] = x;
    else if (x < 0 || y < 0) out[i] = x < 0 ? y : x;  // unknown: the known non-1 extent, or unknown
    else {
      SPARTA_CHECK(x == y, where, ": shapes cannot broadcast (", x, " vs ", y, " at dimension ", i, ")");
      out[i] = x;
    }
  }
  return out;
}

WindowGeometry window_geometry(const Node& n, const std::vector<int64_t>& in, const std::vector<int64_t>& k,
                               const std::function<void(const std::string&)>& fail) {
  const size_t sp = in.size();
  WindowGeometry w;
  w.in = in;
  if (k.size() != sp)
    fail("kernel_shape has " + std::to_string(k.size()) + " entries for " + std::to_string(sp) + " spatial dimensions");
  w.k = k;
  w.stride = n.attr_ints("strides", std::vector<int64_t>(sp, 1));
  w.dil = n.attr_ints("dilations", std::vector<int64_t>(sp, 1));
  const std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * sp, 0));
  if (w.stride.size() != sp || w.dil.size() != sp || pads.size() != 2 * sp)
    fail("strides, dilations or pads do not match the " + std::to_string(sp) + " spatial dimensions");
  const Attribute* ap = n.attr("auto_pad");
  const std::string auto_pad = ap ? ap->s : "NOTSET";
  const bool ceil_mode = n.attr_int("ceil_mode", 0) != 0;
  for (size_t i = 0; i < sp; ++i) {
    if (w.k[i] < 1 || w.stride[i] < 1 || w.dil[i] < 1) fail("kernel, strides and dilations must be positive");
    if (pads[i] < 0 || pads[i + sp] < 0) fail("pads must not be negative");
    const int64_t eff = w.dil[i] * (w.k[i] - 1) + 1;
    int64_t pb = pads[i], pe = pads[i + sp];
    if (auto_pad == "VALID") pb = pe = 0;
    if (in[i] < 0) {  // unknown extent: unknown output (SAME pads depend on it too)
      w.pad_begin.push_back(pb);
      w.pad_end.push_back(pe);
      w.out.push_back(-1);
      continue;
    }
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t out = (in[i] + w.stride[i] - 1) / w.stride[i];
      const int64_t total = std::max<int64_t>(0, (out - 1) * w.stride[i] + eff - in[i]);
      pb = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe = total - pb;
    }
    w.pad_begin.push_back(pb);
    w.pad_end.push_back(pe);
    const int64_t span = in[i] + pb + pe - eff;
    int64_t o = span < 0 ? 0 : (ceil_mode ? (span + w.stride[i] - 1) / w.stride[i] : span / w.stride[i]) + 1;
    if (ceil_mode && o > 0 && (o - 1) * w.stride[i] >= in[i] + pb) --o;
    w.out.push_back(o);
  }
  return w;
}

}  // namespace sparta
