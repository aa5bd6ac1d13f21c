// Depthwise 2-D convolution (one filter per channel) on plain NCHW data:
// the direct loop, vectorized along output rows. oneDNN's depthwise
// kernels want channel-blocked data; on plain data (shapes known only at
// run time, so no blocked layout was planned) it falls back to a generic
// GEMM that is several times slower than this loop.
#pragma once

#include <cstdint>

namespace sparta {

struct DepthwiseGeometry {
  int64_t in[2], k[2], stride[2], dil[2], pad[2], out[2];  // height, width
};

// y[n, c] = bias[c] + sum over taps of w[c, kh, kw] x[n, c, ...]; bias may
// be null. x [N, C, in], w [C, 1, k], y [N, C, out].
void depthwise_conv_nchw(const float* x, const float* w, const float* bias, float* y, int64_t n, int64_t c,
                         const DepthwiseGeometry& g, int threads);

}  // namespace sparta
