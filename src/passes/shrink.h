// Shrink: channels that TeSA propagation proved unneeded are removed, so
// that sparse products become smaller dense ones. A region is a product's
// output with a constant weight W1 [K, N] (MatMul), the elementwise
// operators that follow it (bias, activation, the decomposed GELU; their
// constant operands scalars or per-channel [N] vectors), and the products
// that consume it along K with constant weights W2 [N, K2]; or the same
// along axis 1 between convolutions (one group, constant weights), with
// BatchNormalization's per-channel parameters in between. A channel (a
// last-axis index) that no graph output needs in any value of the region
// is cut everywhere at once: W1's column, the per-channel constants' entry,
// W2's row, and the region values' last extent. So is a channel that is one
// known constant in every row where W2 reads it (a pruned W1 column whose
// bias was kept): value x W2's row is added to the bias that follows W2.
// Between convolutions only a zero channel goes: W2's zero padding makes a
// constant input channel's contribution differ at the borders. Regions
// whose values reach anything else (a graph output, a reshape, a
// residual from another path) are left as they are. Where W1 is pruned in
// blocks of r consecutive channels, channels go only in whole blocks, so
// that W1 keeps the pattern its sparse kernel runs.
//
// Attention heads (channels seen through a reshape): passes/shrink_heads.
#pragma once

#include <cstdint>
#include <string>

#include "analysis/tesa_propagation.h"
#include "ir/graph.h"

namespace sparta {

struct ShrinkReport {
  int regions = 0;                   // regions shrunk
  int64_t channels = 0;              // channels removed, over all regions
  int64_t constant_channels = 0;     // of which constant ones, folded into the next bias
  int64_t weight_elements = 0;       // weight elements removed
  std::string str() const;           // one line
};

// Uses the liveness of `prop` (computed on this graph). The values of a
// shrunk region lose their TeSA (propagate again to refresh).
ShrinkReport shrink_channels(Graph& g, const PropagationReport& prop);

}  // namespace sparta
