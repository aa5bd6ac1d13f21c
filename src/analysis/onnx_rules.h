// ONNX's own rules for a few operators' output extents, shared by shape
// inference (on static dims) and the runtime (on tensors), so that the two
// cannot disagree.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace sparta {

// The dims a Shape node reports for an input of dims `dims` (its start and
// end attributes applied, opset 15).
std::vector<int64_t> shape_op_dims(const Node& n, const std::vector<int64_t>& dims);

// The box a Slice takes out of a tensor of dims `dims`: per axis its first
// index, step and extent (ONNX's clamping rules; starts/ends/axes/steps as
// the node gives them, axes and steps may be empty). An extent stays -1
// where a sliced dim is unknown. `fail` reports bad arguments (it throws).
struct SliceBox {
  std::vector<int64_t> begin, step, extent;
};
SliceBox slice_box(const std::vector<int64_t>& dims, const std::vector<int64_t>& starts,
                   const std::vector<int64_t>& ends, std::vector<int64_t> axes, std::vector<int64_t> steps,
                   const std::function<void(const std::string&)>& fail);

// The extents a Split node cuts an axis of extent `dim` into: the sizes
// given (input or attribute), else equal parts per output.
std::vector<int64_t> split_sizes(const Node& n, int64_t dim, const std::vector<int64_t>* given,
                                 const std::function<void(const std::string&)>& fail);

// Numpy-style broadcast of two shapes (-1 = unknown extent). Throws
// sparta::Error with `where` in the message when they cannot broadcast.
std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                      const std::string& where);

// The geometry of a sliding window (Conv, pooling) over the spatial extents
// `in` (-1 where unknown, giving -1 out): the node's strides, dilations,
// pads, auto_pad and ceil_mode attributes applied to the kernel extents `k`.
// In ceil mode a window never starts inside the end padding (ONNX Runtime's
// and PyTorch's rule). `fail` reports bad attributes (it throws).
struct WindowGeometry {
  std::vector<int64_t> in, k, stride, dil, pad_begin, pad_end, out;
  int64_t spatial() const { return static_cast<int64_t>(in.size()); }
};
WindowGeometry window_geometry(const Node& n, const std::vector<int64_t>& in, const std::vector<int64_t>& k,
                               const std::function<void(const std::string&)>& fail);

}  // namespace sparta
