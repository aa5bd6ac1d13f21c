// Sparse 3-D convolution of point-cloud voxels, end to end: coordinates
// checked and indexed once per set of sites (VoxelSites), kernel maps built
// once per sites and geometry and cached there (every layer with the same
// sites and geometry reuses the map, as the fast libraries do), then the
// execution over the map (kernels/sparse_conv.h).
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/tensor.h"
#include "formats/coord_hash.h"
#include "formats/kernel_map.h"

namespace sparta {

// What to do with two rows of the same coordinates.
enum class DuplicateCoords { error, sum, mean };

// One set of voxel sites, shared by every tensor on them.
struct VoxelSites {
  Tensor coords;               // i32 [n, 4] (batch, x, y, z), in this grid's coordinates
  std::vector<uint64_t> keys;  // packed, row order
  CoordHash table;             // key -> row
  std::array<int, 3> stride{1, 1, 1};             // voxel size relative to the first grid's
  std::optional<std::array<int64_t, 3>> extent;  // the grid's extent per axis, when known

  int64_t size() const { return int64_t(keys.size()); }

  // Maps from these sites, by geometry: a submanifold layer's own map, and
  // a generalized layer's output sites with their map.
  struct Down {
    std::shared_ptr<VoxelSites> out;
    std::shared_ptr<const KernelMap> map;
  };
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const KernelMap>> subm_maps;
  std::map<std::string, Down> down_maps;
  // The sites and map a generalized layer made these sites from (for the
  // transposed layer that goes back).
  std::weak_ptr<VoxelSites> parent;
  std::shared_ptr<const KernelMap> parent_map;
  std::string parent_geometry;
};

// Indexes coordinates i32 [n, 4]: checks them (dtype, shape, range; a
// duplicate is an error naming both rows unless merged, then `merge` holds
// for each input row the row it went to). Threaded.
std::shared_ptr<VoxelSites> index_sites(const Tensor& coords, std::optional<std::array<int64_t, 3>> extent,
                                        DuplicateCoords dup, std::vector<int32_t>* merge, int threads);

// A sparse tensor: sites and their features f32 [n, C].
struct VoxelTensor {
  std::shared_ptr<VoxelSites> sites;
  Tensor feats;
};

// Builds a VoxelTensor from coordinates and features (duplicates merged
// per `dup`).
VoxelTensor make_voxel_tensor(const Tensor& coords, const Tensor& feats,
                              std::optional<std::array<int64_t, 3>> extent, DuplicateCoords dup, int threads);

struct SparseConv3dOptions {
  SparseConvGeometry geometry;
  bool relu = false;
  int threads = 1;
};

// y = conv(x, weight) (+ bias, ReLU): weight f32 [kx, ky, kz, Cin, Cout],
// bias f32 [Cout] or undefined. Submanifold: y's sites are x's; otherwise
// y's sites are the output sites, sorted by (batch, x, y, z).
VoxelTensor sparse_conv3d(const VoxelTensor& x, const Tensor& weight, const Tensor& bias,
                          const SparseConv3dOptions& o);

// The map (and output sites) a layer over x's sites uses: cached on the
// sites after the first call.
std::shared_ptr<const KernelMap> sparse_conv3d_map(const VoxelTensor& x, const SparseConvGeometry& g, int threads,
                                                   std::shared_ptr<VoxelSites>* out_sites);

}  // namespace sparta
