// Eigen 3.4 as a peer: W as Eigen::SparseMatrix<float, RowMajor> times a
// dense matrix, Y^T = W * X^T.
//
// Eigen's sparse x dense product has one vectorized loop: RowMajor sparse
// times a RowMajor dense right-hand side, which accumulates
// y^T.row(n) += w(n,k) * x^T.row(k) over rows of length M. Its other forms
// (X mapped as a ColMajor K x M matrix, the layout X already has) do one
// scalar gather dot product per output element, or one scalar scatter per
// nonzero and output column. On this machine the gather form took 67 ms at
// 80% sparsity and 34 ms at 90% (M=128 K=768 N=3072, 1 thread), against
// 6-10 and 5.5-6 ms for the vectorized form including its transposes.
// With X and Y row-major, the vectorized form needs X^T and Y^T with M
// contiguous, which no relabelling provides. So run() transposes X into a
// K x M buffer, multiplies into an N x M buffer and transposes that into y;
// both transposes are cache-blocked and are part of the measured time.
//
// Eigen parallelizes this product itself (OpenMP over rows of W, when
// nnz * M > 20000) with Eigen::setNbThreads threads.
#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "peers.h"

namespace sparta::bench {
namespace {

using SparseRM = Eigen::SparseMatrix<float, Eigen::RowMajor, int>;
using DenseRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// dst[c * rows + r] = src[r * cols + c]: src row-major rows x cols.
void transpose(const float* src, int64_t rows, int64_t cols, float* dst, int threads) {
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  const int64_t tiles = row_tiles * col_tiles;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t r0 = (t / col_tiles) * kTile, c0 = (t % col_tiles) * kTile;
    const int64_t r1 = std::min(r0 + kTile, rows), c1 = std::min(c0 + kTile, cols);
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
  }
}

class EigenPeer final : public Peer {
 public:
  EigenPeer(const CsrMatrix& w, int64_t m, int threads)
      : m_(m), n_(w.rows), k_(w.cols), threads_(threads), xt_(w.cols, m), yt_(w.rows, m) {
    // Copy the CSR arrays into Eigen's compressed RowMajor storage.
    w_.resize(n_, k_);
    w_.resizeNonZeros(w.nnz());
    int* outer = w_.outerIndexPtr();
    for (int64_t r = 0; r <= n_; ++r) outer[r] = static_cast<int>(w.row_ptr[r]);
    std::copy(w.col_idx.begin(), w.col_idx.end(), w_.innerIndexPtr());
    std::copy(w.values.begin(), w.values.end(), w_.valuePtr());
    Eigen::setNbThreads(threads_);
  }

  std::string name() const override { return "eigen csr"; }

  void run(const float* x, float* y) override {
    // Eigen's thread count is global; other code may have changed it.
    Eigen::setNbThreads(threads_);
    transpose(x, m_, k_, xt_.data(), threads_);  // X^T: K x M, M contiguous
    yt_.noalias() = w_ * xt_;                     // Y^T: N x M
    transpose(yt_.data(), n_, m_, y, threads_);  // Y: M x N
  }

 private:
  int64_t m_, n_, k_;
  int threads_;
  SparseRM w_;
  DenseRM xt_, yt_;
};

}  // namespace

std::unique_ptr<Peer> make_eigen_peer(const CsrMatrix& w, int64_t m, int threads) {
  if (m <= 0 || w.rows <= 0 || w.cols <= 0 || threads <= 0) return nullptr;
  // Eigen's default StorageIndex is int.
  if (w.nnz() > INT_MAX || w.rows > INT_MAX || w.cols > INT_MAX) return nullptr;
  if (static_cast<int64_t>(w.row_ptr.size()) != w.rows + 1) return nullptr;
  return std::make_unique<EigenPeer>(w, m, threads);
}

}  // namespace sparta::bench
