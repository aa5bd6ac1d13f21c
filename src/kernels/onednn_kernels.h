// Kernels backed by oneDNN (dense GEMM done well by a well-kept library).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/spmm.h"

namespace sparta {

// Dense Y = X W^T + bias (+ activation) with oneDNN matmul; the weight is
// either reordered once per call shape into oneDNN's preferred layout
// (prepacked), or read in its plain [N, K] order.
class OnednnDenseKernel final : public SpmmKernel {
 public:
  // name "": "dense_matmul_onednn" or "dense_matmul_onednn_plain".
  OnednnDenseKernel(int64_t n, int64_t k, std::vector<float> w, bool prepacked, std::string name = "");
  // From a packed_weight() of the same kernel: the bytes are used in place
  // when this host's oneDNN packs the same way for the saved M (its
  // descriptor is compared), else it is an error.
  static std::unique_ptr<OnednnDenseKernel> from_packed(int64_t n, int64_t k, bool prepacked, const PackedWeight& w);
  ~OnednnDenseKernel() override;
  std::string name() const override { return name_; }
  void run(const SpmmArgs& a) const override;
  std::optional<PackedWeight> packed_weight() const override;
  void prepare_rows(int64_t m) const override { prepare(m, false, Activation::none); }
  // Builds the primitive and prepacks the weight for a contiguous call of M
  // rows, so that a benchmark times execution only.
  void prepare(int64_t m, bool bias, Activation act) const;
  // oneDNN's name for the implementation it chose (e.g. "brg:avx512_core").
  std::string impl_info() const;

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, int, bool>;
  const Plan& plan(int64_t m, int64_t ldx, int64_t ldy, bool bias, Activation act, bool accumulate) const;
  // The weight: the user's [N, K] at first; after the first plan of a
  // prepacked kernel, that plan's packed copy (the plain one is freed).
  // Plans whose layout differs reorder from it; equal layouts share it.
  struct Source;
  std::unique_ptr<Source> src_;
  bool prepacked_;
  std::string name_;
  mutable std::mutex mu_;
  mutable std::map<Key, std::unique_ptr<Plan>> plans_;
  mutable std::string impl_;
};

// Kept rows x kept columns as one compact oneDNN product (weight prepacked
// or plain, as OnednnDenseKernel).
std::unique_ptr<SpmmKernel> make_structured_onednn(const StructuredMatrix& w, bool prepacked);

// A matrix (or batch of matrices) in memory: dims (batch..., rows, cols)
// and element strides. A transposed tensor is a view with permuted strides,
// so transposes around a product cost no copy.
struct MatView {
  std::vector<int64_t> dims, strides;
  static MatView contiguous(std::vector<int64_t> dims);
};

// Batched C[b] = scale * A[b] x B[b] with both operands computed at run
// time, as in attention. A, B and C have the same rank and batch dims; any
// strides. Primitives are cached per (views, scale).
class OnednnBatchedMatmul {
 public:
  OnednnBatchedMatmul();
  ~OnednnBatchedMatmul();
  void run(const float* a, const MatView& av, const float* b, const MatView& bv, float* c, const MatView& cv,
           float scale, int threads) const;
  // oneDNN's implementation for the last plan built.
  std::string impl_info() const;

 private:
  struct Plan;
  mutable std::mutex mu_;
  mutable std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans_;
  mutable std::string impl_;
};

// 2-D convolution through oneDNN on plain NCHW activations, the weight
// [Co, Ci/groups, Kh, Kw] reordered once per input shape into the layout
// oneDNN picks; optional bias and fused activation.
struct ConvGeometry {
  int64_t groups = 1;
  int64_t stride[2] = {1, 1}, dilation[2] = {1, 1}, pad_begin[2] = {0, 0}, pad_end[2] = {0, 0};
};

// An activation fused after a convolution: none, relu, clip to [lo, hi],
// leaky relu (slope lo), hard sigmoid (clip(lo x + hi, 0, 1)), hard swish,
// sigmoid or tanh.
struct ConvActivation {
  enum Kind { none, relu, clip, leaky_relu, hard_sigmoid, hard_swish, sigmoid, tanh } kind = none;
  float lo = 0, hi = 0;
  float alpha = 1, beta = 0;  // then alpha * y + beta
  bool identity() const { return kind == none && alpha == 1.f && beta == 0.f; }
  bool operator<(const ConvActivation& o) const {
    return std::tie(kind, lo, hi, alpha, beta) < std::tie(o.kind, o.lo, o.hi, o.alpha, o.beta);
  }
};

// Activations in plain NCHW, channel-blocked nChw8c / nChw16c (C a
// multiple of the block) or channels-last NHWC.
enum class ConvLayout { nchw, nchw8c, nchw16c, nhwc };

class OnednnConvKernel {
 public:
  OnednnConvKernel(std::vector<float> w, std::vector<int64_t> wdims, std::vector<float> bias, ConvGeometry g);
  ~OnednnConvKernel();
  // y must hold out_dims(x_dims) floats.
  std::vector<int64_t> out_dims(const std::vector<int64_t>& x_dims) const;
  // With accumulate, y holds a residual on entry: y = act(conv(x) + bias + y)
  // (a oneDNN sum post-op before the activation).
  void run(const float* x, const std::vector<int64_t>& x_dims, ConvLayout x_layout, float* y, ConvLayout y_layout,
           ConvActivation act, bool accumulate, int threads) const;
  // Builds the primitive and packs the weights for such a call ahead of it.
  void prepare(const std::vector<int64_t>& x_dims, ConvLayout x_layout, ConvLayout y_layout, ConvActivation act,
               bool accumulate) const;
  std::string impl_info() const;

 private:
  struct Plan;
  using Key = std::tuple<std::vector<int64_t>, ConvActivation, ConvLayout, ConvLayout, bool>;
  const Plan& plan(const Key& key) const;
  std::vector<float> w_, bias_;
  std::vector<int64_t> wdims_;
  ConvGeometry g_;
  mutable std::mutex mu_;
  mutable std::map<Key, std::unique_ptr<Plan>> plans_;
  mutable std::string impl_;
};

// 2-D transposed convolution (ONNX ConvTranspose) through oneDNN's
// deconvolution on plain NCHW, the weight [Ci, Co/groups, Kh, Kw] reordered
// once per input shape; geometry as ConvGeometry with pad_end already
// reduced by output_padding. The output extent is the caller's.
class OnednnDeconvKernel {
 public:
  OnednnDeconvKernel(std::vector<float> w, std::vector<int64_t> wdims, std::vector<float> bias, ConvGeometry g);
  ~OnednnDeconvKernel();
  // Throws sparta::Error when oneDNN has no implementation for the shape
  // (the caller then runs its reference loop).
  void run(const float* x, const std::vector<int64_t>& x_dims, float* y, const std::vector<int64_t>& y_dims,
           int threads) const;
  void prepare(const std::vector<int64_t>& x_dims, const std::vector<int64_t>& y_dims) const;
  std::string impl_info() const;

 private:
  struct Plan;
  using Key = std::pair<std::vector<int64_t>, std::vector<int64_t>>;
  const Plan& plan(const Key& key) const;
  std::vector<float> w_, bias_;
  std::vector<int64_t> wdims_;
  ConvGeometry g_;
  mutable std::mutex mu_;
  mutable std::map<Key, std::unique_ptr<Plan>> plans_;
  mutable std::string impl_;
};

// Row-major C = A op(B) (+ C when accumulate) through oneDNN's sgemm: small
// products computed at run time (recurrent steps), no plan to keep.
// op(B) is B^T when trans_b ([N, K] with ldb >= K), else B ([K, N]).
void onednn_sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                  bool trans_b, float* c, int64_t ldc, bool accumulate, int threads);

// Copies a 4-D f32 activation from one layout to another with oneDNN's
// reorder (a JIT-compiled, cache-blocked transpose); primitives are cached
// per (dims, layouts).
void onednn_reorder(const float* src, ConvLayout from, float* dst, ConvLayout to, const std::vector<int64_t>& dims,
                    int threads);

}  // namespace sparta
