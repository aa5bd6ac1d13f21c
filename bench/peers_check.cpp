// Checks the benchmark's peers (Eigen, LIBXSMM spmdm) against a naive triple
// loop: Y[M,N] = X[M,K] * W^T for a random 80%-sparse CSR W. Prints one
// OK/FAIL line per peer, shape and thread count; exits non-zero on any FAIL.
#include <libxsmm.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "peers.h"

namespace {

using sparta::CsrMatrix;

CsrMatrix random_csr(int64_t n, int64_t k, double density, std::mt19937& rng) {
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  std::uniform_real_distribution<double> keep(0.0, 1.0);
  CsrMatrix w;
  w.rows = n;
  w.cols = k;
  w.row_ptr.push_back(0);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c)
      if (keep(rng) < density) {
        w.col_idx.push_back(static_cast<int32_t>(c));
        w.values.push_back(val(rng));
      }
    w.row_ptr.push_back(static_cast<int64_t>(w.values.size()));
  }
  // A kept element whose value is zero, as packing produces for kept zeros.
  if (!w.values.empty()) w.values[w.values.size() / 2] = 0.f;
  return w;
}

std::vector<float> naive(const CsrMatrix& w, const std::vector<float>& x, int64_t m) {
  const int64_t n = w.rows, k = w.cols;
  std::vector<float> dense(static_cast<size_t>(n * k), 0.f);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = w.row_ptr[r]; i < w.row_ptr[r + 1]; ++i) dense[r * k + w.col_idx[i]] = w.values[i];
  std::vector<float> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t l = 0; l < k; ++l) acc += static_cast<double>(x[i * k + l]) * dense[j * k + l];
      y[i * n + j] = static_cast<float>(acc);
    }
  return y;
}

int check(const char* kind, const std::string& label, sparta::bench::Peer* peer, const std::vector<float>& x,
          const std::vector<float>& ref) {
  if (!peer) {
    std::printf("FAIL %-14s %s: peer not created\n", kind, label.c_str());
    return 1;
  }
  // NaN-filled output: the peer must write every element (beta = 0).
  std::vector<float> y(ref.size(), std::nanf(""));
  int bad = 0;
  for (int rep = 0; rep < 2; ++rep) {  // twice: run() must be repeatable
    peer->run(x.data(), y.data());
    double max_diff = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double d = std::fabs(static_cast<double>(y[i]) - ref[i]);
      if (!(d <= max_diff)) max_diff = std::isnan(d) ? INFINITY : d;
    }
    const bool ok = max_diff < 1e-4;
    if (rep == 1 || !ok)
      std::printf("%s %-14s %s run %d: max abs diff %.3g\n", ok ? "OK  " : "FAIL", peer->name().c_str(),
                  label.c_str(), rep + 1, max_diff);
    if (!ok) {
      bad = 1;
      break;
    }
  }
  return bad;
}

}  // namespace

int main() {
  std::mt19937 rng(12345);
  struct Shape {
    int64_t m, k, n;
  };
  // The first shape is the required small check; the second spans several
  // of spmdm's blocks along every dimension (1.17 uses bm 32, bk 128 and bn
  // 48 on AVX2) with ragged edges.
  const Shape shapes[] = {{33, 70, 50}, {130, 300, 530}};
  int failures = 0;
  for (const Shape& s : shapes) {
    const CsrMatrix w = random_csr(s.n, s.k, 0.2, rng);
    std::uniform_real_distribution<float> val(-1.f, 1.f);
    std::vector<float> x(static_cast<size_t>(s.m * s.k));
    for (float& v : x) v = val(rng);
    const std::vector<float> ref = naive(w, x, s.m);
    for (int threads : {1, 2}) {
      const std::string label = "M=" + std::to_string(s.m) + " K=" + std::to_string(s.k) + " N=" +
                                std::to_string(s.n) + " nnz=" + std::to_string(w.nnz()) +
                                " threads=" + std::to_string(threads);
      auto eigen = sparta::bench::make_eigen_peer(w, s.m, threads);
      failures += check("eigen csr", label, eigen.get(), x, ref);
      auto xsmm = sparta::bench::make_xsmm_peer(w, s.m, threads);
      failures += check("libxsmm spmdm", label, xsmm.get(), x, ref);
    }
  }
  std::printf("libxsmm target arch: %s\n", libxsmm_get_target_arch());
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "OK", failures);
  return failures ? 1 : 0;
}
