// A pruned linear layer end to end: attach a Tesa to a weight, see which
// structure it has, pack it, let sparta pick the fastest kernel for the
// shape, run it, and check it against the dense product.
#include <cmath>
#include <cstdio>
#include <random>

#include "core/pattern.h"
#include "formats/formats.h"
#include "formats/random_weight.h"
#include "kernels/spmm.h"

using namespace sparta;

int main() {
  const int64_t m = 64, k = 256, n = 512;
  // A weight pruned in 32x1 blocks to 10% density (a pruning tool's output).
  Tensor w = random_pruned_weight("bsr", {.block = {32, 1}}, n, k, 0.1, /*seed=*/42);
  Tesa t = Tesa::from_zeros(w);
  PatternReport p = analyze_pattern(t);
  std::printf("weight %s: %s\n", w.shape().str().c_str(), p.summary().c_str());

  WeightFormat f = pack("bsr", w, t, {.block = p.best_block});
  auto kernel = make_spmm(f, {.tune_m = m});  // fastest candidate, measured on M=64
  std::printf("kernel: %s\n", kernel->name().c_str());

  Tensor x(DType::f32, Shape{m, k}), y(DType::f32, Shape{m, n}), bias(DType::f32, Shape{n});
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = d(rng);
  for (int64_t i = 0; i < n; ++i) bias.data<float>()[i] = d(rng);
  (*kernel)(x, y, bias, Activation::relu, /*threads=*/2);

  double max_err = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias.data<float>()[j];
      for (int64_t c = 0; c < k; ++c) acc += double(x.data<float>()[i * k + c]) * w.data<float>()[j * k + c];
      max_err = std::max(max_err, std::fabs(std::max(acc, 0.0) - y.data<float>()[i * n + j]));
    }
  std::printf("max |error| vs dense: %.2e\n", max_err);
  return max_err < 1e-3 ? 0 : 1;
}
