// Sparse 3-D networks over runtime/sparse_conv3d: a MinkUNet-style U-Net
// (stem, 4 strided down stages with residual submanifold blocks, 4
// transposed up stages with skip concatenation, a per-voxel classifier) and
// a SECOND-style encoder (submanifold blocks between strided convolutions,
// then a compression along z).
//
// Weights are the state_dict of the same network written with spconv
// (python/sparta/spconv_nets.py defines it there): spconv's names and
// layouts ([Cout, kx, ky, kz, Cin] convolution weights, BatchNorm1d
// statistics). Loading folds every BatchNorm into its convolution
// (inference) and ReLU into the convolution's epilogue, so both engines run
// the same network from the same weights.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/sparse_conv3d.h"

namespace sparta {

struct MinkUNetConfig {
  int64_t in_channels = 4, num_classes = 19;
  // stem, 4 down stages, 4 up stages (the classic MinkUNet18 widths)
  std::vector<int64_t> channels = {32, 32, 64, 128, 256, 256, 128, 96, 96};
};

struct SecondConfig {
  int64_t in_channels = 4;
};

using StateDict = std::map<std::string, Tensor>;

class SparseNet {
 public:
  virtual ~SparseNet() = default;
  virtual VoxelTensor forward(const VoxelTensor& x, int threads) const = 0;
  virtual std::string name() const = 0;
  // Convolution layers run per forward (for reports).
  virtual int layers() const = 0;
};

// From an spconv state_dict; a one-line error naming the first missing or
// misshapen parameter.
std::unique_ptr<SparseNet> make_minkunet(const StateDict& state, const MinkUNetConfig& c);
std::unique_ptr<SparseNet> make_second_encoder(const StateDict& state, const SecondConfig& c);

// A network by name, for callers that choose at run time (bindings,
// benchmarks): "minkunet" (in_channels, num_classes, channels: its 9 widths
// or empty for the default) or "second" (in_channels); an error naming
// both for anything else.
struct SparseNetSpec {
  std::string kind;
  int64_t in_channels = 4, num_classes = 19;
  std::vector<int64_t> channels;
};
std::unique_ptr<SparseNet> make_sparse_net(const SparseNetSpec& spec, const StateDict& state);
StateDict random_sparse_net_state(const SparseNetSpec& spec, uint64_t seed);

// Seeded weights and BatchNorm statistics under spconv's names (for
// benchmarks and tests; the statistics are non-trivial so that folding is
// exercised).
StateDict random_minkunet_state(const MinkUNetConfig& c, uint64_t seed);
StateDict random_second_state(const SecondConfig& c, uint64_t seed);

}  // namespace sparta
