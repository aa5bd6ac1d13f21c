// The kernel map of a sparse 3-D convolution: for every kernel offset, the
// pairs (input row, output row) it connects. It is the sparsity pattern of
// the layer, known from the coordinates alone before any arithmetic, so the
// execution (kernels/sparse_conv.h) is planned around it; layers with the
// same coordinates and geometry share one.
//
// Semantics (those of a dense convolution on the voxel grid): output site o
// reads input site o * stride - pad + k * dilation through offset k, per
// axis. A submanifold layer (stride 1, odd kernel) has the input sites as
// its output sites and pad = dilation * (kernel - 1) / 2. A generalized
// layer's output sites are every o >= 0 (and below the output extent, when
// the grid's extent is given) whose receptive field holds an input site.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/coord_hash.h"
#include "formats/key_sort.h"

namespace sparta {

// Index arrays of maps, made anew per scan: from the tensor block cache.
template <class T>
using MapVector = std::vector<T, CachedAllocator<T>>;

struct SparseConvGeometry {
  std::array<int, 3> k{3, 3, 3};  // kernel extent along x, y, z
  std::array<int, 3> stride{1, 1, 1};
  std::array<int, 3> pad{0, 0, 0};
  std::array<int, 3> dil{1, 1, 1};
  bool subm = false;

  int volume() const { return k[0] * k[1] * k[2]; }
  // The offset index of (kx, ky, kz), as the weight [kx][ky][kz][Cin][Cout].
  int offset(int kx, int ky, int kz) const { return (kx * k[1] + ky) * k[2] + kz; }
  // The padding a submanifold layer uses: dil * (k - 1) / 2.
  std::array<int, 3> effective_pad() const;
  // Throws a one-line error for a geometry no convolution has (kernel < 1,
  // stride < 1, pad < 0, dilation < 1; submanifold with an even kernel or
  // a stride).
  void check() const;
  std::string str() const;
};

struct KernelMap {
  int64_t n_in = 0, n_out = 0;
  int volume = 0;
  // Pairs of offset k are p in [begin[k], begin[k + 1]): input row in[p]
  // feeds output row out[p]. Within an offset an output row appears at
  // most once (the scatter-add of one offset has no conflicts).
  std::vector<int64_t> begin;
  MapVector<int32_t> in, out;
  // Submanifold maps: the centre offset pairs every row with itself; it is
  // not stored (begin[c] == begin[c + 1]) and `centre` names it, else -1.
  int centre = -1;

  int64_t pairs(int k) const { return begin[size_t(k) + 1] - begin[size_t(k)]; }
  int64_t total_pairs() const;  // the centre's n_in pairs included
};

// The same pairs grouped for output-stationary execution: the output rows
// in coordinate order, cut into blocks of `block` sites; per block and
// offset, the pairs as (input row, position within the block). A block's
// outputs then accumulate in a small buffer over every offset and are
// written once, and consecutive blocks are neighbours in space, so the input
// rows they gather stay in cache.
struct BlockedMap {
  int block = 0, volume = 0;
  int64_t n_out = 0;
  std::vector<int32_t> rows;   // output rows in coordinate order
  std::vector<int64_t> begin;  // block b, offset k: pairs [begin[b * volume + k], begin[b * volume + k + 1])
  MapVector<int32_t> in;     // input row
  MapVector<int32_t> local;  // the output's position in its block
  int64_t blocks() const { return (n_out + block - 1) / block; }
};

// Regroups m (its centre included as pairs) by blocks of output rows taken
// in the order of out_keys (the output sites' keys, row order).
// `order`: the output rows in coordinate order when the caller has it.
BlockedMap block_kernel_map(const KernelMap& m, const uint64_t* out_keys, int block, int threads,
                            const int32_t* order = nullptr);

// Packs coordinates int32 [n, 4] (batch, x, y, z) into keys, checking the
// range; returns -1, or the first row out of range.
int64_t pack_coords(const int32_t* coords, int64_t n, uint64_t* keys);

// A generalized (not submanifold) layer's output sites, sorted by (batch,
// x, y, z), into out_keys, and its map, with no coordinate table: every
// (input, offset) that lands on an output position is a pair (each axis's
// taps tabulated once over the inputs' coordinates; pairs counted, then
// written), and the output sites are the distinct output keys in
// coordinate order (a radix sort). out_extent: the output grid's extent per
// axis, or null for an unbounded grid.
KernelMap build_strided_map(const uint64_t* in_keys, int64_t n_in, const SparseConvGeometry& g,
                            const std::array<int64_t, 3>* out_extent, int threads, std::vector<uint64_t>& out_keys);

// A submanifold layer's map by merging: in coordinate order, the sites
// shifted by one kernel offset stay in order (the offset adds a constant to
// every packed key), so an offset's pairs are a linear merge of the sorted
// keys with themselves shifted, not a hash lookup per site and offset; the
// offsets along z share one merge per (x, y) column. Half the offsets are
// merged, the rest mirrored; pairs come out in the outputs' coordinate
// order.
// `order`: the rows in coordinate order when the caller has it, else null.
KernelMap build_subm_map(const uint64_t* keys, int64_t n, const SparseConvGeometry& g, int threads,
                         const int32_t* order = nullptr);

// The reference map, by the definition: for every output site of out_keys
// (for a submanifold layer, the input's own keys in row order) and every
// offset, a lookup of the input site in `in_table`. One thread, no shortcut
// (the tests hold the merged and strided builders to it).
KernelMap build_kernel_map(const CoordHash& in_table, int64_t n_in, const uint64_t* out_keys, int64_t n_out,
                           const SparseConvGeometry& g);

}  // namespace sparta
