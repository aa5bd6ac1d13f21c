// Channel ties: which output channels of a model's weights must be pruned
// together for a channel-pruned model to stay structurally prunable. The
// outputs of two layers summed by a residual Add (or multiplied, as a
// squeeze-excitation gate does) meet channel by channel: channel c can go
// only if it goes from both. Concats put channel ranges side by side, a
// depthwise convolution carries each input channel to its own output
// channel, and a channel read by an operator that mixes channels
// (LayerNormalization, Softmax, a Reshape that splits it, a model output)
// cannot go at all.
//
// The analysis follows each weight's output channels forward in
// topological order through the operators that keep channels apart
// (elementwise, BatchNormalization, pooling, reductions over other axes,
// Concat, Split, Transpose, Reshape that keeps the channel dimension), joining channels where they
// meet and pinning those that reach anything else. It reads only the graph
// (shapes must have been inferred), never runs the model.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace sparta {

// A weight the pruners can take: a constant f32 matrix seen as W[N,K]
// (rows = output channels), and the bias that goes with its rows.
struct PrunableWeight {
  enum class Kind { matmul_kn, gemm_nk, gemm_kn, conv };
  Node* node = nullptr;
  Value* weight = nullptr;
  Kind kind = Kind::matmul_kn;
  int64_t rows = 0, cols = 0;  // N, K (conv: K = C/group * kh * kw)
  Value* bias = nullptr;       // constant [N] added to the output (Gemm C, Conv B, the Add after a MatMul), or null
  Node* bias_node = nullptr;   // the node reading `bias`
  bool depthwise = false;      // a convolution with one input channel per group
};

// Every MatMul (constant 2-D B), Gemm (constant 2-D B) and Conv (constant
// weight) of g whose weight is f32, in graph order; a weight read by
// several nodes is listed once, at its first reader.
std::vector<PrunableWeight> prunable_weights(const Graph& g);

struct ChannelTies {
  // Per weight name: the tie unit of each output channel (row); equal ids
  // are one unit; -1: the channel must stay.
  std::map<std::string, std::vector<int64_t>> units;
};

ChannelTies analyze_channel_ties(const Graph& g, const std::vector<PrunableWeight>& weights);

}  // namespace sparta
