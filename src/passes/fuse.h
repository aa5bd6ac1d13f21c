// Operator fusion: an activation that only reads a convolution's output is
// folded into the convolution (a oneDNN post-op, or applied in the same
// loop), saving a pass over the activation tensor. The fused activation is
// recorded on the Conv node as attributes "sparta.act" ("relu" or "clip")
// and "sparta.clip" ([lo, hi]).
#pragma once

#include "ir/graph.h"

namespace sparta {

int fuse_conv_activations(Graph& g);  // returns the number of fusions

}  // namespace sparta
