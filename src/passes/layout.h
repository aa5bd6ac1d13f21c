// Layout assignment: convolutions run much faster on channel-blocked
// activations (nChw8c: channels in blocks of 8 innermost) than on plain
// NCHW, where oneDNN falls back to im2col + GEMM. This pass keeps values in
// nChw8c from one convolution to the next, through the operators that do
// not care (Relu, Clip, same-shape Add) or handle it (pooling), and inserts
// a sparta.Reorder to plain before any other consumer. Graph outputs stay
// plain. Runs after fusion and shape inference (it needs static shapes).
#pragma once

#include "ir/graph.h"

namespace sparta {

struct LayoutReport {
  int blocked = 0;   // values kept in nChw8c
  int reorders = 0;  // sparta.Reorder nodes inserted
};

LayoutReport assign_layouts(Graph& g);

// Whether node n reads input i in the given layout at run time (the
// runtime checks every blocked input against this).
bool accepts_layout(const Node& n, size_t i, Layout l);

}  // namespace sparta
