// Layout assignment: convolutions run much faster on channel-blocked
// activations (nChw8c or nChw16c: channels in blocks of 8 or 16 innermost,
// the vector width of the host's convolution kernels: 16 on AVX-512 hosts,
// where oneDNN's AVX-512 convolutions take nChw16c and nChw8c would leave
// it on its AVX2 ones) than on plain NCHW, where oneDNN falls back to
// im2col + GEMM. This pass keeps values blocked from one convolution to the
// next, through the operators that do
// not care (Relu, Clip, same-shape Add) or handle it (pooling), and inserts
// a sparta.Reorder to plain before any other consumer. Graph outputs stay
// plain. Runs after fusion and shape inference (it needs static shapes).
#pragma once

#include "ir/graph.h"

namespace sparta {

struct LayoutReport {
  int blocked = 0;   // values kept blocked
  int block = 0;     // channels per block: 8 or 16
  int reorders = 0;  // sparta.Reorder nodes inserted
};

// `block`: 8 or 16 channels per block, or 0 for the host's (16 where the
// kernels run AVX-512, else 8).
LayoutReport assign_layouts(Graph& g, int block = 0);

// Whether node n reads input i in the given layout at run time (the
// runtime checks every blocked input against this).
bool accepts_layout(const Node& n, size_t i, Layout l);

}  // namespace sparta
