#include "formats/random_weight.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"

namespace sparta {
namespace {

// `count` distinct indices of [0, n), uniformly.
std::vector<int64_t> choose(int64_t n, int64_t count, std::mt19937_64& rng) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t i = 0; i < count; ++i) {
    std::uniform_int_distribution<int64_t> d(i, n - 1);
    std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>(d(rng))]);
  }
  all.resize(static_cast<size_t>(count));
  std::sort(all.begin(), all.end());
  return all;
}

int64_t portion(double density, int64_t n) {
  return std::clamp<int64_t>(std::llround(density * static_cast<double>(n)), 0, n);
}

}  // namespace

Tensor random_pruned_weight(const std::string& format, const PackOptions& opt, int64_t n, int64_t k, double density,
                            uint64_t seed) {
  SPARTA_CHECK(density >= 0.0 && density <= 1.0, "density ", density, " must be in [0, 1]");
  SPARTA_CHECK(n >= 0 && k >= 0, "weight dims ", n, "x", k, " must be non-negative");
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  Tensor w(DType::f32, Shape{n, k});
  float* d = w.data<float>();
  auto set = [&](int64_t r, int64_t c) {
    float v = val(rng);
    d[r * k + c] = v == 0.f ? 0.5f : v;
  };
  if (format == "dense") {
    for (int64_t i = 0; i < n * k; ++i) set(i / k, i % k);
  } else if (format == "csr") {
    for (int64_t i : choose(n * k, portion(density, n * k), rng)) set(i / k, i % k);
  } else if (format == "bsr") {
    const BlockShape b = opt.block;
    SPARTA_CHECK(b.r > 0 && b.c > 0 && n % b.r == 0 && k % b.c == 0, "block ", b.str(), " does not divide the ", n,
                 "x", k, " weight (--block RxC needs R | N and C | K)");
    const int64_t bc = k / b.c, nb = n / b.r * bc;
    for (int64_t blk : choose(nb, portion(density, nb), rng))
      for (int i = 0; i < b.r; ++i)
        for (int j = 0; j < b.c; ++j) set(blk / bc * b.r + i, blk % bc * b.c + j);
  } else if (format == "nm") {
    const NmShape s = opt.nm;
    SPARTA_CHECK(s.m > 0 && s.n > 0 && s.n <= s.m, "N:M ", s.str(), " needs 0 < N <= M");
    SPARTA_CHECK(k % s.m == 0, "N:M ", s.str(), ": M does not divide K=", k);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t g = 0; g < k / s.m; ++g)
        for (int64_t j : choose(s.m, s.n, rng)) set(r, g * s.m + j);
  } else if (format == "tilewise") {
    SPARTA_CHECK(opt.tile > 0, "tile size G=", opt.tile, " must be positive");
    for (int64_t r0 = 0; r0 < n; r0 += opt.tile) {
      const auto cols = choose(k, portion(density, k), rng);
      for (int64_t r = r0; r < std::min<int64_t>(n, r0 + opt.tile); ++r)
        for (int64_t c : cols) set(r, c);
    }
  } else if (format == "structured") {
    const double s = std::sqrt(density);
    const auto rows = choose(n, portion(s, n), rng), cols = choose(k, portion(s, k), rng);
    for (int64_t r : rows)
      for (int64_t c : cols) set(r, c);
  } else {
    throw Error("unknown format '" + format + "' (expected one of dense, csr, bsr, nm, tilewise, structured)");
  }
  return w;
}

}  // namespace sparta
