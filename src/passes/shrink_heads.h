// Shrink attention heads: a head whose rows of the output projection are
// all zero (a pruned head) contributes nothing, so its columns of the Q, K
// and V projections, its share of both attention products and of the
// softmax, and its rows of the output projection are cut, through the
// reshapes that split and merge heads. Runs after fusion, on the fused
// form every exporter's attention takes here:
//
//   Linear(Q|K|V) -> Reshape [.., H, D] -> BatchMatMul(q, k) -> Softmax
//   -> BatchMatMul(p, v) -> Reshape [.., H*D] -> Linear(O)
//
// (the products' transposes as strides: q and k as [B, H, T, D] and
// [B, H, D, T], the context back to [B, T, H, D]). Each intermediate must
// have no other reader; heads are independent until O, so the outputs are
// exactly what they were.
#pragma once

#include <cstdint>
#include <string>

#include "ir/graph.h"

namespace sparta {

struct HeadsReport {
  int attentions = 0;    // attention blocks shrunk
  int64_t heads = 0;     // heads removed, over all of them
  std::string str() const;
};

HeadsReport shrink_heads(Graph& g);

}  // namespace sparta
