#include "kernels/depthwise_conv.h"

#include <algorithm>
#include <vector>

#include "kernels/isa_kernels.h"
#include "kernels/parallel.h"

namespace sparta {

namespace {

// Planes narrower than a vector (a 1-D filter over a few frames): blocks of
// 16 channels are transposed channels-last into scratch, convolved with the
// vectors across channels (RowOps::depthwise_cl), and transposed back.
void depthwise_small_planes(const float* x, const float* w, const float* bias, float* y, int64_t n, int64_t c,
                            const DepthwiseGeometry& g, int threads) {
  constexpr int L = 16;
  const int64_t in = g.in[0] * g.in[1], out = g.out[0] * g.out[1], taps = g.k[0] * g.k[1];
  const int64_t blocks = (c + L - 1) / L, work = n * blocks;
  const auto kernel = row_ops().depthwise_cl;
  parallel_run(int(std::min<int64_t>(threads, work)), [&](int tid, int nt) {
    // Scratch kept per thread across calls (a stream of small frames would
    // otherwise allocate it anew every call).
    thread_local std::vector<float> xs, ws, bs, ys;
    xs.resize(size_t(in * L));
    ws.resize(size_t(taps * L));
    bs.resize(L);
    ys.resize(size_t(out * L));
    for (int64_t job = work * tid / nt; job < work * (tid + 1) / nt; ++job) {
      const int64_t b = job / blocks, c0 = (job % blocks) * L, lanes = std::min<int64_t>(L, c - c0);
      if (lanes < L) {  // the last block's unused lanes compute zeros
        std::fill(xs.begin(), xs.end(), 0.f);
        std::fill(ws.begin(), ws.end(), 0.f);
        std::fill(bs.begin(), bs.end(), 0.f);
      }
      for (int64_t l = 0; l < lanes; ++l) {
        const float* xp = x + ((b * c) + c0 + l) * in;
        for (int64_t i = 0; i < in; ++i) xs[size_t(i * L + l)] = xp[i];
        const float* wp = w + (c0 + l) * taps;
        for (int64_t t = 0; t < taps; ++t) ws[size_t(t * L + l)] = wp[t];
        bs[size_t(l)] = bias ? bias[c0 + l] : 0.f;
      }
      kernel(xs.data(), ws.data(), bs.data(), ys.data(), g, L);
      for (int64_t l = 0; l < lanes; ++l) {
        float* yp = y + ((b * c) + c0 + l) * out;
        for (int64_t i = 0; i < out; ++i) yp[i] = ys[size_t(i * L + l)];
      }
    }
  });
}

}  // namespace

void depthwise_conv_nchw(const float* x, const float* w, const float* bias, float* y, int64_t n, int64_t c,
                         const DepthwiseGeometry& g0, int threads) {
  // A column (width 1 in, out and kernel) is a row: the loop then runs along it.
  DepthwiseGeometry g = g0;
  if (g.in[1] == 1 && g.k[1] == 1 && g.out[1] == 1 && g.pad[1] == 0)
    for (auto* v : {g.in, g.k, g.stride, g.dil, g.pad, g.out}) std::swap(v[0], v[1]);
  const int64_t IH = g.in[0], IW = g.in[1], OH = g.out[0], OW = g.out[1], KH = g.k[0], KW = g.k[1];
  const int64_t sh = g.stride[0], sw = g.stride[1];
  // Per kernel column: the output columns whose tap stays inside the row.
  std::vector<int64_t> ow_lo(static_cast<size_t>(KW)), ow_hi(static_cast<size_t>(KW));
  for (int64_t kw = 0; kw < KW; ++kw) {
    const int64_t off = kw * g.dil[1] - g.pad[1];  // iw = ow * sw + off
    int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    int64_t hi = IW - 1 - off < 0 ? 0 : (IW - 1 - off) / sw + 1;
    ow_lo[size_t(kw)] = std::min(lo, OW);
    ow_hi[size_t(kw)] = std::min(hi, OW);
  }
  if (OW < 16 && c >= 8) return depthwise_small_planes(x, w, bias, y, n, c, g, threads);
  const int64_t planes = n * c;
  parallel_run(int(std::min<int64_t>(threads, planes)), [&](int tid, int nt) {
    const int64_t p0 = planes * tid / nt, p1 = planes * (tid + 1) / nt;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t ch = p % c;
      const float* xp = x + p * IH * IW;
      const float* wp = w + ch * KH * KW;
      float* yp = y + p * OH * OW;
      const float b = bias ? bias[ch] : 0.f;
      for (int64_t oh = 0; oh < OH; ++oh) {
        float* row = yp + oh * OW;
        std::fill(row, row + OW, b);
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t ih = oh * sh - g.pad[0] + kh * g.dil[0];
          if (ih < 0 || ih >= IH) continue;
          const float* xr = xp + ih * IW;
          for (int64_t kw = 0; kw < KW; ++kw) {
            const float wv = wp[kh * KW + kw];
            const int64_t off = kw * g.dil[1] - g.pad[1];
            const int64_t lo = ow_lo[size_t(kw)], hi = ow_hi[size_t(kw)];
            if (sw == 1) {
              const float* xs = xr + off;
              for (int64_t ow = lo; ow < hi; ++ow) row[ow] += wv * xs[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) row[ow] += wv * xr[ow * sw + off];
            }
          }
        }
      }
    }
  });
}

}  // namespace sparta
