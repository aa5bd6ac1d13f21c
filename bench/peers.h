// Peer libraries the benchmark measures sparta against: Eigen (CSR x dense)
// and LIBXSMM 1.17 spmdm. Each peer is prepared once for one CSR weight and
// a fixed batch M (weight conversion, handles and scratch happen in the
// factory), so that run() does only the per-call work.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "formats/formats.h"

namespace sparta::bench {

// A prepared peer computation of Y[M,N] = X[M,K] * W^T for one CSR weight;
// run() computes into y (row-major M x N, ldy = N) from x (row-major M x K).
class Peer {
 public:
  virtual ~Peer() = default;
  virtual std::string name() const = 0;
  virtual void run(const float* x, float* y) = 0;
};

// Eigen 3.4: W as Eigen::SparseMatrix<float, RowMajor> times the dense X^T,
// Y^T = W * X^T, in Eigen's only vectorized sparse x dense form (dense
// operands with M contiguous): run() includes a blocked transpose of X in
// and of Y^T out (see peers_eigen.cpp for why and what it costs).
// threads > 1 lets Eigen's own OpenMP loop split rows of W
// (Eigen::setNbThreads); Eigen parallelizes only when nnz * M > 20000.
// Returns nullptr for an empty shape or more than INT_MAX nonzeros.
std::unique_ptr<Peer> make_eigen_peer(const CsrMatrix& w, int64_t m, int threads);

// LIBXSMM 1.17 spmdm: C = A * B with A = W (N x K, sparse slices built once
// from the dense W), B = X^T, C = Y^T; X and Y are read and written in place
// through spmdm's transb/transc = 'T'. threads OpenMP threads split spmdm's
// compute blocks. Returns nullptr if spmdm cannot handle the shape.
std::unique_ptr<Peer> make_xsmm_peer(const CsrMatrix& w, int64_t m, int threads);

}  // namespace sparta::bench
