#include "kernels/sparse_conv.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/isa_kernels.h"
#include "kernels/onednn_kernels.h"
#include "kernels/parallel.h"

namespace sparta {

namespace {

void check_args(const SparseConvArgs& a) {
  SPARTA_ASSERT(a.map && a.x && a.w && a.y && a.cin > 0 && a.cout > 0, "sparse convolution arguments incomplete");
  SPARTA_ASSERT(a.map->centre < 0 || a.map->n_in == a.map->n_out, "a submanifold map has as many outputs as inputs");
}

// y = max(0, y + bias) as asked, row by row.
void epilogue(const SparseConvArgs& a) {
  if (!a.bias && !a.relu) return;
  parallel_for(a.threads, a.map->n_out, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* yr = a.y + r * a.cout;
      for (int64_t c = 0; c < a.cout; ++c) {
        float v = yr[c] + (a.bias ? a.bias[c] : 0.f);
        yr[c] = a.relu && v < 0.f ? 0.f : v;
      }
    }
  });
}

void zero_output(const SparseConvArgs& a) {
  parallel_for(a.threads, a.map->n_out, 1024, [&](int64_t r0, int64_t r1) {
    std::memset(a.y + r0 * a.cout, 0, size_t((r1 - r0) * a.cout) * sizeof(float));
  });
}

// y before the offsets add into it: a submanifold map's centre pairs every
// row with itself, one GEMM straight from x; otherwise zeros.
void start_output(const SparseConvArgs& a) {
  const KernelMap& m = *a.map;
  const int64_t ci = a.cin, co = a.cout;
  if (m.centre < 0) return zero_output(a);
  onednn_sgemm(m.n_in, co, ci, a.x, ci, a.w + int64_t(m.centre) * ci * co, co, false, a.y, co, false, a.threads);
}

}  // namespace

void sparse_conv_per_offset(const SparseConvArgs& a) {
  check_args(a);
  const KernelMap& m = *a.map;
  const int64_t ci = a.cin, co = a.cout;
  start_output(a);
  int64_t most = 0;
  for (int k = 0; k < m.volume; ++k) most = std::max(most, m.pairs(k));
  // Scratch kept across calls (fresh pages would cost a fault per 4 KB).
  thread_local std::vector<float> gathered_buf, product_buf;
  if (gathered_buf.size() < size_t(most * ci)) gathered_buf.resize(size_t(most * ci));
  if (product_buf.size() < size_t(most * co)) product_buf.resize(size_t(most * co));
  // The calling thread's buffers, by pointer: the workers below would each
  // see their own (empty) thread_local.
  float* const gathered = gathered_buf.data();
  float* const product = product_buf.data();
  for (int k = 0; k < m.volume; ++k) {
    const int64_t n = m.pairs(k);
    if (n == 0) continue;
    const int32_t* in = m.in.data() + m.begin[size_t(k)];
    const int32_t* out = m.out.data() + m.begin[size_t(k)];
    parallel_for(a.threads, n, 512, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        std::memcpy(gathered + p * ci, a.x + int64_t(in[p]) * ci, size_t(ci) * sizeof(float));
    });
    onednn_sgemm(n, co, ci, gathered, ci, a.w + int64_t(k) * ci * co, co, false, product, co, false,
                 a.threads);
    parallel_for(a.threads, n, 512, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        float* yr = a.y + int64_t(out[p]) * co;
        const float* pr = product + p * co;
        for (int64_t c = 0; c < co; ++c) yr[c] += pr[c];
      }
    });
  }
  epilogue(a);
}

void sparse_conv_fused(const SparseConvArgs& a, const SparseConvOps* ops) {
  check_args(a);
  const KernelMap& m = *a.map;
  const auto step = (ops ? *ops : sparse_conv_ops()).gather_gemm_scatter;
  // Pairs per thread chunk: enough for several register tiles.
  const auto offset = [&](const int32_t* in, const int32_t* out, int64_t n, const float* w) {
    parallel_for(a.threads, n, 256,
                 [&](int64_t p0, int64_t p1) { step(a.x, in + p0, out + p0, p1 - p0, w, a.cin, a.cout, a.y, true); });
  };
  if (m.centre >= 0) {
    // The centre pairs every row with itself: it writes y first.
    const int32_t* none = nullptr;
    parallel_for(a.threads, m.n_in, 256, [&](int64_t p0, int64_t p1) {
      step(a.x + p0 * a.cin, none, none, p1 - p0, a.w + int64_t(m.centre) * a.cin * a.cout, a.cin, a.cout,
           a.y + p0 * a.cout, false);
    });
  } else {
    zero_output(a);
  }
  for (int k = 0; k < m.volume; ++k) {
    if (k == m.centre || m.pairs(k) == 0) continue;
    offset(m.in.data() + m.begin[size_t(k)], m.out.data() + m.begin[size_t(k)], m.pairs(k),
           a.w + int64_t(k) * a.cin * a.cout);
  }
  epilogue(a);
}

void sparse_conv_blocked(const SparseConvArgs& a, const BlockedMap& bm, const SparseConvOps* ops) {
  check_args(a);
  SPARTA_ASSERT(bm.n_out == a.map->n_out && bm.volume == a.map->volume, "blocked map of another map");
  const auto step = (ops ? *ops : sparse_conv_ops()).gather_gemm_scatter;
  const int64_t nb = bm.blocks(), co = a.cout, V = bm.volume;
  const int nt = int(std::clamp<int64_t>(nb / 4, 1, std::max(1, a.threads)));
  parallel_parts(nt, nb, [&](int tid, int64_t b0, int64_t b1) {
    thread_local std::vector<float> acc_buf;
    if (int64_t(acc_buf.size()) < bm.block * co) acc_buf.resize(size_t(bm.block * co));
    float* acc = acc_buf.data();
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * bm.block, rows = std::min<int64_t>(bm.block, bm.n_out - r0);
      std::memset(acc, 0, size_t(rows * co) * sizeof(float));
      for (int64_t k = 0; k < V; ++k) {
        const int64_t p0 = bm.begin[size_t(b * V + k)], p1 = bm.begin[size_t(b * V + k) + 1];
        if (p1 > p0)
          step(a.x, bm.in.data() + p0, bm.local.data() + p0, p1 - p0, a.w + k * a.cin * co, a.cin, co, acc, true);
      }
      for (int64_t r = 0; r < rows; ++r) {
        float* yr = a.y + int64_t(bm.rows[size_t(r0 + r)]) * co;
        const float* ar = acc + r * co;
        for (int64_t c = 0; c < co; ++c) {
          const float v = ar[c] + (a.bias ? a.bias[c] : 0.f);
          yr[c] = a.relu && v < 0.f ? 0.f : v;
        }
      }
    }
  });
}

void sparse_conv_grouped(const SparseConvArgs& a, double threshold) {
  check_args(a);
  const KernelMap& m = *a.map;
  const int64_t ci = a.cin, co = a.cout;
  start_output(a);
  std::vector<int> order;
  for (int k = 0; k < m.volume; ++k)
    if (k != m.centre && m.pairs(k) > 0) order.push_back(k);
  std::stable_sort(order.begin(), order.end(), [&](int p, int q) { return m.pairs(p) > m.pairs(q); });
  static thread_local OnednnBatchedMatmul product;
  thread_local std::vector<float> gathered, weights, result;  // kept across calls: no page faults
  for (size_t g0 = 0; g0 < order.size();) {
    const int64_t rows = m.pairs(order[g0]);
    size_t g1 = g0 + 1;
    while (g1 < order.size() && double(m.pairs(order[g1])) >= threshold * double(rows)) ++g1;
    const int64_t G = int64_t(g1 - g0);
    if (gathered.size() < size_t(G * rows * ci)) gathered.resize(size_t(G * rows * ci));
    if (weights.size() < size_t(G * ci * co)) weights.resize(size_t(G * ci * co));
    if (result.size() < size_t(G * rows * co)) result.resize(size_t(G * rows * co));
    for (int64_t j = 0; j < G; ++j) {
      const int k = order[g0 + size_t(j)];
      const int32_t* in = m.in.data() + m.begin[size_t(k)];
      float* dst = gathered.data() + j * rows * ci;
      parallel_for(a.threads, m.pairs(k), 512, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) std::memcpy(dst + p * ci, a.x + int64_t(in[p]) * ci, size_t(ci) * sizeof(float));
      });
      std::memset(dst + m.pairs(k) * ci, 0, size_t((rows - m.pairs(k)) * ci) * sizeof(float));  // the padding rows
      std::memcpy(weights.data() + j * ci * co, a.w + int64_t(k) * ci * co, size_t(ci * co) * sizeof(float));
    }
    product.run(gathered.data(), MatView::contiguous({G, rows, ci}), weights.data(), MatView::contiguous({G, ci, co}),
                result.data(), MatView::contiguous({G, rows, co}), 1.f, a.threads);
    for (int64_t j = 0; j < G; ++j) {
      const int k = order[g0 + size_t(j)];
      const int32_t* out = m.out.data() + m.begin[size_t(k)];
      const float* src = result.data() + j * rows * co;
      parallel_for(a.threads, m.pairs(k), 512, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          float* yr = a.y + int64_t(out[p]) * co;
          const float* pr = src + p * co;
          for (int64_t c = 0; c < co; ++c) yr[c] += pr[c];
        }
      });
    }
    g0 = g1;
  }
  epilogue(a);
}

}  // namespace sparta
