// Sparse 3-D convolution over a kernel map (formats/kernel_map.h): features
// of the input sites [n_in, Cin] times one weight [Cin, Cout] per kernel
// offset, summed into the output sites [n_out, Cout].
//
// The reference computes pair by pair in double precision; the executions
// (gather -> GEMM -> scatter-add per offset, ...) are checked against it.
#pragma once

#include <cstdint>

#include "formats/kernel_map.h"

namespace sparta {

struct SparseConvArgs {
  const KernelMap* map = nullptr;
  const float* x = nullptr;  // [map->n_in, cin]
  int64_t cin = 0;
  const float* w = nullptr;  // [map->volume, cin, cout]
  const float* bias = nullptr;  // [cout] or null
  bool relu = false;            // y = max(0, conv + bias)
  float* y = nullptr;           // [map->n_out, cout], written (not accumulated)
  int64_t cout = 0;
  int threads = 1;
};

// Pair by pair, accumulated in double: the oracle of the executions.
void sparse_conv_reference(const SparseConvArgs& a);

// One GEMM per kernel offset: its pairs' input rows gathered into a
// contiguous block, multiplied by the offset's weight (oneDNN), the product
// rows added into their output rows (no two pairs of one offset share an
// output row, so threads split the rows without conflicts). A submanifold
// map's centre offset is one GEMM straight from x into y.
void sparse_conv_per_offset(const SparseConvArgs& a);

// Offsets grouped by map size (TorchSparse's adaptive grouping): offsets in
// decreasing order of pairs join a group while they have at least
// `threshold` times the pairs of its largest; each group is one batched
// oneDNN product over its offsets' gathered rows, padded with zero rows to
// the largest (a submanifold layer's mirrored offsets have equal sizes, so
// they share a group). threshold 1: only equal sizes; near 0: one group.
void sparse_conv_grouped(const SparseConvArgs& a, double threshold);

struct SparseConvOps;
// Output-stationary over a blocked map (formats/kernel_map.h): per block of
// output rows, every offset's pairs accumulate into a per-thread buffer of
// block x Cout (gathered and multiplied by the fused kernel), then the block
// is written once with bias and ReLU. Threads split the blocks.
void sparse_conv_blocked(const SparseConvArgs& a, const BlockedMap& bm, const SparseConvOps* ops = nullptr);

// Per offset, the gather, the product and the scatter-add fused (kernels/
// isa/sparse_conv.inc): input rows gathered straight into the register
// tile's packed block, results added into their output rows from
// registers. Threads split each offset's pairs. `ops`: an ISA's (null: the
// host's).
void sparse_conv_fused(const SparseConvArgs& a, const SparseConvOps* ops = nullptr);

}  // namespace sparta
