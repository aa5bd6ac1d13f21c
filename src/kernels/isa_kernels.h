// The optimized kernel families, one table per ISA. Each table is filled by a
// translation unit that compiles the same templates (spmm_isa.inc) for its
// target; dispatch (spmm.cpp) picks the table once from the host's features.
#pragma once

#include <memory>
#include <string>

#include "formats/formats.h"
#include "kernels/depthwise_conv.h"
#include "kernels/spmm.h"

namespace sparta {

// Row and elementwise operators for the graph runtime (kernels/isa/rowops.inc).
// Each call covers a sub-range; callers thread by splitting it.
struct RowOps {
  void (*gelu)(const float* x, float* y, int64_t n);  // 0.5 x (1 + erf(x / sqrt 2))
  void (*erf)(const float* x, float* y, int64_t n);
  void (*exp)(const float* x, float* y, int64_t n);
  void (*sigmoid)(const float* x, float* y, int64_t n);
  // y[r] = softmax(x[r] + bias) over rows of n; bias (one row) may be null.
  void (*softmax)(const float* x, const float* bias, float* y, int64_t rows, int64_t n);
  // gamma, beta, mean and inv_std may be null.
  void (*layer_norm)(const float* x, const float* gamma, const float* beta, float eps, float* y, float* mean,
                     float* inv_std, int64_t rows, int64_t n);
  // Depthwise convolution of `lanes` channels (a multiple of 16) stored
  // channels-last: x [IH][IW][lanes], w [KH][KW][lanes], y [OH][OW][lanes];
  // bias [lanes] or null.
  void (*depthwise_cl)(const float* x, const float* w, const float* bias, float* y, const DepthwiseGeometry& g,
                       int lanes);
};

// Sparse 3-D convolution's fused inner step (kernels/isa/sparse_conv.inc).
struct SparseConvOps {
  // y[out[p]] (+)= x[in[p]] . w for p in [0, pairs): x rows of K floats, w
  // [K, N] row-major, y rows of N floats; in or out null for the identity;
  // accumulate adds into y, else overwrites. No two pairs may share an
  // output row within one call when it is threaded by the caller.
  void (*gather_gemm_scatter)(const float* x, const int32_t* in, const int32_t* out, int64_t pairs, const float* w,
                              int64_t K, int64_t N, float* y, bool accumulate);
};

// Packing of X and the epilogue for generated kernels (jit/), which share
// the template kernels' layouts (kernels/isa/jit_support.inc).
struct JitSupport {
  int width;      // floats per vector
  int nvec_rows2; // rows of X per packed block for NV = 2 register tiles
  int nvec_rows1; // and for NV = 1
  // X tile of mt (a multiple of width up to 4 widths) rows, transposed: xp[k * mt + i].
  void (*pack_mvec)(const float* x, int64_t ldx, int64_t mrows, int64_t K, float* xp, int mt);
  // yt (nn rows of mt values) transposed into Y with the epilogue.
  void (*store_mvec)(const float* yt, int64_t nn, int64_t mrows, float* y, int64_t ldy, const Epilogue& ep,
                     const float* bias, int mt);
  // All of X in blocks of mr (nvec_rows2 or nvec_rows1) rows, k-major, in the calling thread's scratch.
  const float* (*pack_nvec)(const SpmmArgs& a, int64_t K, int mr);
  // A register tile (h rows of nv vectors, the last nw wide) into Y with the epilogue.
  void (*finish_tile)(const float* tile, int nv, int h, int nw, float* y, int64_t ldy, const float* bias,
                      const Epilogue& ep);
  // yt (nn rows of mt values) to dst in the same layout, with bias (per row)
  // and activation: a packed activation's slice (no accumulate).
  void (*store_packed)(const float* yt, int64_t nn, int mt, float* dst, const float* bias, Activation act);
};

struct IsaKernels {
  using CsrMaker = std::unique_ptr<SpmmKernel> (*)(const CsrMatrix&, std::string& why);
  using BsrMaker = std::unique_ptr<SpmmKernel> (*)(const BsrMatrix&, std::string& why);
  using NmMaker = std::unique_ptr<SpmmKernel> (*)(const NmMatrix&, std::string& why);
  using TileMaker = std::unique_ptr<SpmmKernel> (*)(const TilewiseMatrix&, std::string& why);
  using DenseMaker = std::unique_ptr<SpmmKernel> (*)(const DenseMatrix&, std::string& why);
  Isa isa;
  CsrMaker csr_mvec;
  CsrMaker csr_mvec2;  // the same with M tiles of 2 vectors instead of 4
  BsrMaker bsr_mvec;   // vectorized along M: small block heights
  BsrMaker bsr_nvec;   // vectorized along N: block height a multiple of the vector width
  NmMaker nm_nvec;    // vectorized along N with register permutes; M must divide the width
  NmMaker nm_mvec;
  TileMaker tilewise_nvec;
  DenseMaker dense_nvec;  // dense W through the nvec register tile
  // The same from raw [K, N] (k_major) or [N, K] floats, without a DenseMatrix.
  std::unique_ptr<SpmmKernel> (*dense_nvec_raw)(const float* w, int64_t n, int64_t k, bool k_major, std::string& why);
  double (*peak_fma_gflops)(double seconds);  // one core, this ISA
  const RowOps* rows;
  const JitSupport* jit;
  CsrMaker csr_rowdot;  // sparse dot products per output element: a few rows of X (batch 1)
  NmMaker nm_rowdot;
  BsrMaker bsr_rowdot;  // blocks of whole vectors in K and at most 4 rows
  const SparseConvOps* sparse_conv;
};

// The rowdot kernels are candidates of a measured choice up to this many
// rows of X; the vectorized families win above.
constexpr int64_t kRowdotMaxM = 16;

const IsaKernels& isa_kernels_avx512();
const IsaKernels& isa_kernels_avx2();
const IsaKernels& isa_kernels_portable();
const IsaKernels& isa_kernels(Isa isa);
// The row operators for the host's ISA (after the SPARTA_ISA cap).
const RowOps& row_ops();
// Sparse convolution's inner step for the host's ISA.
const SparseConvOps& sparse_conv_ops();

}  // namespace sparta
