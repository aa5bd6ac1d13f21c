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
#include <tuple>
#include <vector>

#include "core/tensor.h"
#include "formats/coord_hash.h"
#include "formats/kernel_map.h"

namespace sparta {

// What to do with two rows of the same coordinates.
enum class DuplicateCoords { error, sum, mean };

struct VoxelSites;

// How a layer runs over its map (kernels/sparse_conv.h): one oneDNN GEMM per
// offset over gathered rows; offsets grouped by map size into batched
// products (`block` = the grouping threshold in percent); the fused
// per-offset kernel; output-stationary blocks of `block` output rows.
struct Dataflow {
  enum Kind { per_offset, grouped, fused, blocked } kind = fused;
  int block = 0;
  std::string str() const;  // "per_offset", "grouped:50", "fused", "blocked:64"
};
// "auto" (measured), or one of Dataflow::str()'s forms; a one-line error
// for anything else.
std::optional<Dataflow> parse_dataflow(const std::string& s);

// A layer's map and what its executions derive from it, made on first use
// and kept with the input sites: the blocked regrouping per block size and
// the dataflow measured fastest per (Cin, Cout, threads).
struct LayerMap {
  std::shared_ptr<const KernelMap> map;
  // A generalized layer's output sites (made with the map, owned here).
  // Null for a submanifold layer (its input's sites) and an inverse one
  // (the sites it returns to, owned by the tensors on them): a map cached
  // on sites never owns those sites, or neither would be freed.
  std::shared_ptr<VoxelSites> out;
  std::mutex mu;
  std::map<int, std::shared_ptr<const BlockedMap>> blocked;
  struct Measured {
    Dataflow best;
    std::vector<std::pair<Dataflow, double>> times;  // ms per candidate
  };
  std::map<std::tuple<int64_t, int64_t, int>, Measured> chosen;
  // The output sites' keys (row order) and their coordinate order (null:
  // the rows are in it).
  std::shared_ptr<const BlockedMap> blocked_map(int block, const uint64_t* out_keys, const int32_t* out_order,
                                                int threads);
};

// One set of voxel sites, shared by every tensor on them.
struct VoxelSites {
  Tensor coords;               // i32 [n, 4] (batch, x, y, z), in this grid's coordinates
  std::vector<uint64_t> keys;  // packed, row order
  // The rows in coordinate order (a radix sort of the keys, made once);
  // empty when the rows already are (a strided layer's output sites).
  std::vector<int32_t> order;
  const int32_t* order_or_null() const { return order.empty() ? nullptr : order.data(); }
  std::array<int, 3> stride{1, 1, 1};             // voxel size relative to the first grid's
  std::optional<std::array<int64_t, 3>> extent;  // the grid's extent per axis, when known

  int64_t size() const { return int64_t(keys.size()); }

  // The layers' maps from these sites, by geometry (its str()).
  std::mutex mu;
  std::map<std::string, std::shared_ptr<LayerMap>> maps;
  // The sites and map a generalized layer made these sites from (for the
  // transposed layer that goes back).
  std::weak_ptr<VoxelSites> parent;
  std::shared_ptr<const KernelMap> parent_map;
  SparseConvGeometry parent_geometry;
};

// Indexes coordinates i32 [n, 4]: checks them (dtype, shape, range; a
// duplicate is an error naming both rows unless merged, then `merge` holds
// for each input row the row it went to). Threaded.
std::shared_ptr<VoxelSites> index_sites(const Tensor& coords, std::optional<std::array<int64_t, 3>> extent,
                                        DuplicateCoords dup, std::vector<int32_t>* merge, int threads);

// A grid's extent from a user's list: empty for an unbounded grid, else
// exactly 3 values (x, y, z).
std::optional<std::array<int64_t, 3>> grid_extent(const std::vector<int64_t>& shape);

// A sparse tensor: sites and their features f32 [n, C].
struct VoxelTensor {
  std::shared_ptr<VoxelSites> sites;
  Tensor feats;
};

// Builds a VoxelTensor from coordinates and features (duplicates merged
// per `dup`).
VoxelTensor make_voxel_tensor(const Tensor& coords, const Tensor& feats,
                              std::optional<std::array<int64_t, 3>> extent, DuplicateCoords dup, int threads);

// The same sites (and their cached maps) with other features f32 [n, C'].
VoxelTensor with_feats(const VoxelTensor& t, const Tensor& feats);

struct SparseConv3dOptions {
  SparseConvGeometry geometry;
  bool relu = false;
  int threads = 1;  // 1..1024
  // Unset: measured on the layer's first call for its channels and threads
  // (each candidate timed once on the real input), then kept.
  std::optional<Dataflow> dataflow;
};

// y = conv(x, weight) (+ bias, ReLU): weight f32 [kx, ky, kz, Cin, Cout],
// bias f32 [Cout] or undefined. Submanifold: y's sites are x's; otherwise
// y's sites are the output sites, sorted by (batch, x, y, z).
VoxelTensor sparse_conv3d(const VoxelTensor& x, const Tensor& weight, const Tensor& bias,
                          const SparseConv3dOptions& o);

// The transposed convolution that inverts the strided layer y came from:
// y's features carried back to that layer's input sites (its rows, its
// order) through the same map reversed; weight [kx, ky, kz, Cin, Cout] with
// the strided layer's kernel extents, Cin = y's channels. The dense
// equivalent is conv_transpose3d with that layer's stride, padding and
// dilation, read at the input sites. An error when y was not made by a
// strided layer, or its input sites are gone.
VoxelTensor sparse_inverse_conv3d(const VoxelTensor& y, const Tensor& weight, const Tensor& bias,
                                  const SparseConv3dOptions& o);

// The map (and output sites) a layer over x's sites uses: cached on the
// sites after the first call.
std::shared_ptr<LayerMap> layer_map(const VoxelTensor& x, const SparseConvGeometry& g, int threads);
std::shared_ptr<const KernelMap> sparse_conv3d_map(const VoxelTensor& x, const SparseConvGeometry& g, int threads,
                                                   std::shared_ptr<VoxelSites>* out_sites);
// The dataflow a layer over x with these channels and threads uses (after
// its first call: the measured one), or nothing before.
std::optional<LayerMap::Measured> chosen_dataflow(const VoxelTensor& x, const SparseConvGeometry& g, int64_t cin,
                                                  int64_t cout, int threads);

}  // namespace sparta
