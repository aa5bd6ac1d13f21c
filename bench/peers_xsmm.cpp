// LIBXSMM 1.17 spmdm as a peer.
//
// spmdm computes C = A * B (alpha is ignored; beta = 0 here) with A sparse,
// all matrices row-major, A m x k, B k x n, C m x n. transb = 'T' means B is
// stored as its transpose (n x k row-major), transc = 'T' likewise for C
// (n x m row-major). Our Y[M,N] = X[M,K] * W^T maps onto it as
//   spmdm m = N, n = M, k = K;  A = W (N x K row-major, transa = 'N');
//   B = X^T, stored as X itself (M x K row-major)      -> transb = 'T';
//   C = Y^T, stored as Y itself (M x N row-major)      -> transc = 'T'.
// So run() passes x and y straight through, with no copies of its own;
// spmdm transposes B and C panels internally, per compute block, as part of
// its own cost.
//
// spmdm builds its sparse slices (bm x bk CSR blocks with 16-bit local
// indices) from a dense A: the constructor unpacks the CSR weight into a
// dense N x K buffer once, builds the slices in parallel, and drops the
// dense buffer. run() does only the compute.
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <libxsmm.h>

#include "peers.h"

namespace sparta::bench {
namespace {

class XsmmPeer final : public Peer {
 public:
  XsmmPeer(int m, int n, int k, int threads) : m_(m), n_(n), k_(k), threads_(threads) {}
  ~XsmmPeer() override {
    if (initialized_) libxsmm_spmdm_destroy(&handle_);
  }
  XsmmPeer(const XsmmPeer&) = delete;
  XsmmPeer& operator=(const XsmmPeer&) = delete;

  // Returns false if spmdm cannot represent this weight.
  bool prepare(const CsrMatrix& w) {
    // spmdm's m = N (rows of W), n = M (batch), k = K.
    libxsmm_spmdm_init(n_, m_, k_, threads_, &handle_, &slices_);
    initialized_ = true;
    if (slices_ == nullptr || handle_.base_ptr_scratch_A == nullptr ||
        handle_.base_ptr_scratch_B_scratch_C == nullptr)
      return false;
    // A slice counts its nonzeros in a uint16_t: a bm x bk slice holding
    // 65536 or more nonzeros would wrap. Reject such weights.
    const int bm = handle_.bm, bk = handle_.bk;
    if (bm <= 0 || bk <= 0) return false;
    if (static_cast<int64_t>(bm) * bk >= 65536) {
      const int64_t kb = (k_ + bk - 1) / bk;
      std::vector<int64_t> count(static_cast<size_t>(kb));
      for (int64_t r0 = 0; r0 < n_; r0 += bm) {
        std::fill(count.begin(), count.end(), 0);
        const int64_t r1 = std::min<int64_t>(r0 + bm, n_);
        for (int64_t i = w.row_ptr[r0]; i < w.row_ptr[r1]; ++i)
          if (w.values[i] != 0.f) ++count[w.col_idx[i] / bk];
        for (int64_t c : count)
          if (c >= 65536) return false;
      }
    }

    std::vector<float> dense(static_cast<size_t>(n_) * k_, 0.f);
    for (int64_t r = 0; r < n_; ++r)
      for (int64_t i = w.row_ptr[r]; i < w.row_ptr[r + 1]; ++i)
        dense[static_cast<size_t>(r) * k_ + w.col_idx[i]] = w.values[i];

    const int nblocks = libxsmm_spmdm_get_num_createSparseSlice_blocks(&handle_);
    const float* a = dense.data();
#pragma omp parallel num_threads(threads_)
    {
      const int tid = omp_get_thread_num(), nthreads = omp_get_num_threads();
#pragma omp for schedule(static)
      for (int b = 0; b < nblocks; ++b)
        libxsmm_spmdm_createSparseSlice_fp32_thread(&handle_, 'N', a, slices_, b, tid, nthreads);
    }
    return true;
  }

  std::string name() const override { return "libxsmm spmdm"; }

  void run(const float* x, float* y) override {
    const float alpha = 1.f, beta = 0.f;
    const int nblocks = libxsmm_spmdm_get_num_compute_blocks(&handle_);
    if (threads_ == 1) {
      for (int b = 0; b < nblocks; ++b)
        libxsmm_spmdm_compute_fp32_thread(&handle_, 'N', 'T', &alpha, slices_, x, 'T', &beta, y, b, 0, 1);
      return;
    }
#pragma omp parallel num_threads(threads_)
    {
      // tid indexes spmdm's per-thread scratch, sized for threads_ at init.
      const int tid = omp_get_thread_num(), nthreads = omp_get_num_threads();
#pragma omp for schedule(static)
      for (int b = 0; b < nblocks; ++b)
        libxsmm_spmdm_compute_fp32_thread(&handle_, 'N', 'T', &alpha, slices_, x, 'T', &beta, y, b, tid, nthreads);
    }
  }

 private:
  int m_, n_, k_, threads_;
  libxsmm_spmdm_handle handle_{};
  libxsmm_CSR_sparseslice* slices_ = nullptr;
  bool initialized_ = false;
};

}  // namespace

std::unique_ptr<Peer> make_xsmm_peer(const CsrMatrix& w, int64_t m, int threads) {
  const int64_t n = w.rows, k = w.cols;
  if (m <= 0 || n <= 0 || k <= 0 || threads <= 0) return nullptr;
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX) return nullptr;
  // spmdm indexes the dense operands with int products (e.g. m * k offsets).
  if (n * k > INT_MAX || m * k > INT_MAX || m * n > INT_MAX) return nullptr;
  if (static_cast<int64_t>(w.row_ptr.size()) != n + 1) return nullptr;
  auto peer = std::make_unique<XsmmPeer>(static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), threads);
  if (!peer->prepare(w)) return nullptr;
  return peer;
}

}  // namespace sparta::bench
