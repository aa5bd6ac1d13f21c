#include "analysis/onnx_rules.h"

#include <algorithm>

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

}  // namespace sparta
