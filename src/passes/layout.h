// Layout assignment: convolutions run much faster on channel-blocked
// activations than on plain NCHW, where oneDNN falls back to im2col + GEMM:
// nChw8c or nChw16c (channels in blocks of 8 or 16 innermost, the vector
// width of oneDNN's blocked `jit` convolutions; nChw8c would leave an
// AVX-512 host on its AVX2 ones), or NHWC (channels last), where oneDNN
// 2.6 runs its brgemm convolutions: 15-25% faster than nChw16c on
// ResNet-18's layers on an AVX-512 Zen 5, with real weights streaming from
// memory. This pass keeps values in that layout from one convolution to the
// next, through the operators that do not care (Relu, Clip, same-shape Add)
// or handle it (pooling), inserts a sparta.Reorder to plain before any other
// consumer, and (NHWC) one from plain before a convolution that reads a
// plain value. Graph outputs stay plain. Runs after fusion and shape
// inference (it needs static shapes).
#pragma once

#include "ir/graph.h"

namespace sparta {

struct LayoutReport {
  int blocked = 0;   // values kept blocked
  Layout layout = Layout::plain;  // the layout chosen
  int reorders = 0;  // sparta.Reorder nodes inserted
};

// `block`: 8 or 16 channels per block (nChw8c, nChw16c), -1 for NHWC, or 0
// for the host's (NHWC where the kernels run AVX-512, else nChw8c).
LayoutReport assign_layouts(Graph& g, int block = 0);

// Whether node n reads input i in the given layout at run time (the
// runtime checks every blocked input against this).
bool accepts_layout(const Node& n, size_t i, Layout l);

}  // namespace sparta
