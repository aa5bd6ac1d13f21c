// Sparse 3-D tensors (point-cloud voxels) and their convolutions, the C++
// side of sparta.SparseTensor, sparta.sparse_conv3d and sparta.nn:
//
//   sparta::SparseTensor x(coords, feats);          // int32 [N, 4] (batch, x, y, z), float32 [N, Cin]
//   auto y = sparta::sparse_conv3d(x, weight, {.subm = true});   // weight float32 [kx, ky, kz, Cin, Cout]
//   auto net = sparta::SparseNetwork::minkunet(state, 4, 19);   // an spconv state_dict, by name
//   auto scores = net(x);
//
// Semantics: with subm false, the result equals a dense conv3d on the voxel
// grid with the same stride, padding and dilation at every output site
// whose receptive field holds an input site; those sites, in output-grid
// coordinates sorted by (batch, x, y, z), are the output rows (the grid is
// unbounded above unless a spatial shape is given). With subm true (stride
// 1, odd kernel) the output sites are the input's, in its row order, with
// padding dilation * (k - 1) / 2. Kernel maps are built once per set of
// sites and geometry and reused; each layer's execution is measured on its
// first call and remembered. Errors are sparta::Error, one line.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparta/sparta.h"

namespace sparta {

enum class Duplicates { error, sum, mean };

class SparseTensor {
 public:
  // spatial_shape: the grid's extent (x, y, z), or empty for an unbounded
  // grid. Rows with equal coordinates: an error naming both, or merged.
  SparseTensor(const NDArray& coords, const NDArray& feats, std::vector<int64_t> spatial_shape = {},
               Duplicates duplicates = Duplicates::error, int threads = 1);
  NDArray coords() const;  // int32 [N, 4]
  NDArray feats() const;   // float32 [N, C]
  int64_t size() const;
  // The same sites (and their cached maps) with other features [N, C'].
  SparseTensor replace_feats(const NDArray& feats) const;

  struct Impl;
  explicit SparseTensor(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

struct SparseConvOptions {
  std::array<int, 3> stride{1, 1, 1}, padding{0, 0, 0}, dilation{1, 1, 1};
  bool subm = false;
  bool relu = false;  // y = max(0, conv + bias)
  int threads = 1;
};

// weight float32 [kx, ky, kz, Cin, Cout]; bias float32 [Cout] or an empty
// NDArray.
SparseTensor sparse_conv3d(const SparseTensor& x, const NDArray& weight, const SparseConvOptions& o = {},
                           const NDArray& bias = {});
// The transposed convolution back to the sites of the strided layer y came
// from (its rows, its order); weight with that layer's kernel extents.
SparseTensor sparse_inverse_conv3d(const SparseTensor& y, const NDArray& weight, const SparseConvOptions& o = {},
                                   const NDArray& bias = {});

// The networks of sparta.nn, from the state_dict of the same network
// written with spconv (sparta.spconv_nets): parameter name -> array.
class SparseNetwork {
 public:
  static SparseNetwork minkunet(const std::map<std::string, NDArray>& state, int64_t in_channels, int64_t num_classes);
  static SparseNetwork second_encoder(const std::map<std::string, NDArray>& state, int64_t in_channels);
  SparseTensor operator()(const SparseTensor& x, int threads = 1) const;
  int layers() const;  // convolutions per forward

  struct Impl;

 private:
  explicit SparseNetwork(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace sparta
