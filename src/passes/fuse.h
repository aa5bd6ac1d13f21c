// Operator fusion: the patterns every fast engine fuses, rewritten into one
// node each so that a tensor is not written and re-read between them.
//
//  Conv + BatchNormalization (constant statistics)
//                          -> Conv with the scale folded into the weights
//                             and the shift into the bias
//  Conv + Mul/Add/Sub/Div by a constant, per channel or scalar
//                          -> the same fold (Paddle's learnable affine
//                             blocks, scaled outputs)
//  Conv(+act or residual) + Mul/Add/Sub/Div by a scalar constant
//                          -> Conv with "sparta.post_linear" [alpha, beta]:
//                             alpha * y + beta after the activation (a
//                             oneDNN eltwise_linear post-op)
//  Conv + Relu/Clip        -> Conv with "sparta.act" ("relu" or "clip") and
//                             "sparta.clip" ([lo, hi]): a oneDNN post-op.
//  Conv + Add(residual) (+ Relu/Clip)
//                          -> Conv with the residual as a 4th input:
//                             Y = act(conv(X) + bias + residual), a oneDNN
//                             sum post-op (ResNet's block ends)
//  GELU (Div/Erf/Add/Mul/Mul, as PyTorch exports x * 0.5 * (1 + erf(x / sqrt 2)))
//                          -> sparta.Gelu
//  LayerNorm (ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add)
//                          -> LayerNormalization (axis -1, one output)
//  MatMul or Gemm with a constant weight, + bias Add, + residual Add,
//  + Relu or Gelu          -> sparta.Linear: Y = act(X W + bias + residual)
//                             (attrs trans_w, act), the node that TeSA-driven
//                             kernel choice works on
//  Transpose -> MatMul <- Transpose, MatMul -> Transpose, and a following
//  Div or Mul by a scalar  -> sparta.BatchMatMul: the transposes become
//                             strides of the product (attrs perm_a, perm_b,
//                             perm_y, scale)
//  Add(scores, mask) -> Softmax over the last axis
//                          -> sparta.Softmax(scores, mask): the mask row is
//                             added inside the softmax kernel
//
// A fused node takes the place of the last node of its pattern (so every
// input it reads is computed before it) and the name of the first. Only
// interior values that nothing else reads are fused away.
#pragma once

#include <string>

#include "ir/graph.h"

namespace sparta {

struct FuseReport {
  int conv_bn = 0, conv_affine = 0, conv_post_linear = 0, conv_act = 0, conv_residual = 0, gelu = 0, hard_swish = 0, layer_norm = 0, linear = 0,
      batch_matmul = 0, masked_softmax = 0;
  int total() const {
    return conv_bn + conv_affine + conv_post_linear + conv_act + conv_residual + gelu + hard_swish + layer_norm + linear + batch_matmul + masked_softmax;
  }
  std::string str() const;
};

int fuse_conv_activations(Graph& g);  // returns the number of fusions
int fuse_conv_residual(Graph& g);
// BatchNormalization, Mul, Add, Sub or Div by constants per channel
// folded into the weights and bias; `batchnorms` counts the first kind.
int fold_conv_affine(Graph& g, int& batchnorms);
int fuse_conv_post_linear(Graph& g);
int fuse_gelu(Graph& g);
int fuse_hard_swish(Graph& g);
int fuse_layer_norm(Graph& g);
int fuse_linear(Graph& g);
int fuse_batch_matmul(Graph& g);
int fuse_masked_softmax(Graph& g);

// All of the above, in an order where each pattern sees the others' results
// (GELU before Linear, so that it can fold as the activation).
FuseReport fuse_all(Graph& g);

}  // namespace sparta
