// The row operators (softmax, layer norm, unary math) of every ISA the host
// runs, against scalar double-precision references on seeded random rows:
// lengths around the vector widths, single rows, empty work and extreme
// values.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/cpu.h"
#include "kernels/isa_kernels.h"

namespace sparta {
namespace {

std::vector<float> random_vec(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

const int64_t kLengths[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 128, 130, 768};

TEST(RowOps, UnaryMatchReference) {
  for (Isa isa : host_isas()) {
    const RowOps& ops = *isa_kernels(isa).rows;
    for (int64_t n : kLengths) {
      for (float scale : {1e-4f, 0.5f, 3.f, 30.f}) {
        auto x = random_vec(n, static_cast<uint32_t>(n * 7 + 1), scale);
        if (n > 2) x[1] = 0.f, x[2] = -0.f;
        std::vector<float> y(x.size());
        ops.erf(x.data(), y.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const double want = std::erf(double(x[i]));
          EXPECT_NEAR(y[i], want, 3e-7 * std::max(1.0, std::fabs(want)) + 1e-6 * std::fabs(want))
              << isa_name(isa) << " erf(" << x[i] << ")";
        }
        ops.gelu(x.data(), y.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const double v = x[i], want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
          EXPECT_NEAR(y[i], want, 3e-7 * std::max(1.0, std::fabs(v))) << isa_name(isa) << " gelu(" << v << ")";
        }
        ops.exp(x.data(), y.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          if (std::fabs(x[i]) > 80) continue;  // outside the clamped range
          const double want = std::exp(double(x[i]));
          EXPECT_NEAR(y[i], want, 4e-7 * want) << isa_name(isa) << " exp(" << x[i] << ")";
        }
        ops.sigmoid(x.data(), y.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const double want = 1 / (1 + std::exp(-double(x[i])));
          EXPECT_NEAR(y[i], want, 4e-7 * want + 1e-30) << isa_name(isa) << " sigmoid(" << x[i] << ")";
        }
      }
    }
    // Infinities and NaN (a full vector and a tail): erf(+-inf) = +-1,
    // gelu(inf) = inf, NaN stays NaN. (gelu(-inf) is -inf * 0 by the
    // formula, NaN in IEEE arithmetic, as in the reference: not checked.)
    for (int64_t n : {int64_t{3}, int64_t{16}, int64_t{19}}) {
      std::vector<float> x(static_cast<size_t>(n), 0.25f), y(x.size());
      x[0] = INFINITY;
      x[1] = -INFINITY;
      x[2] = NAN;
      ops.erf(x.data(), y.data(), n);
      EXPECT_EQ(y[0], 1.f) << isa_name(isa);
      EXPECT_EQ(y[1], -1.f) << isa_name(isa);
      EXPECT_TRUE(std::isnan(y[2])) << isa_name(isa);
      ops.gelu(x.data(), y.data(), n);
      EXPECT_EQ(y[0], INFINITY) << isa_name(isa);
      EXPECT_TRUE(std::isnan(y[2])) << isa_name(isa);
    }
    // Empty work touches nothing.
    float guard = 7.f;
    ops.gelu(&guard, &guard, 0);
    EXPECT_EQ(guard, 7.f);
  }
}

TEST(RowOps, SoftmaxMatchesReference) {
  for (Isa isa : host_isas()) {
    const RowOps& ops = *isa_kernels(isa).rows;
    for (int64_t n : kLengths) {
      for (int64_t rows : {1, 3}) {
        auto x = random_vec(rows * n, static_cast<uint32_t>(n + rows), 4.f);
        x[0] = -1e4f;  // a masked position
        if (n > 1) x[static_cast<size_t>(n - 1)] = 50.f;  // a dominant one in the tail
        std::vector<float> y(x.size());
        ops.softmax(x.data(), nullptr, y.data(), rows, n);
        for (int64_t r = 0; r < rows; ++r) {
          double mx = -INFINITY, sum = 0;
          for (int64_t j = 0; j < n; ++j) mx = std::max(mx, double(x[r * n + j]));
          for (int64_t j = 0; j < n; ++j) sum += std::exp(x[r * n + j] - mx);
          for (int64_t j = 0; j < n; ++j) {
            const double want = std::exp(x[r * n + j] - mx) / sum;
            EXPECT_NEAR(y[r * n + j], want, 1e-6 * want + 1e-12) << isa_name(isa) << " n=" << n << " r=" << r;
          }
        }
        // In place gives the same.
        std::vector<float> z = x;
        ops.softmax(z.data(), nullptr, z.data(), rows, n);
        EXPECT_EQ(z, y);
        // With a bias row (an attention mask): the same as softmax of x + bias.
        auto bias = random_vec(n, 3, 2.f);
        bias[0] = -1e4f;
        std::vector<float> xb = x, yb(x.size()), yw(x.size());
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < n; ++j) xb[static_cast<size_t>(r * n + j)] += bias[static_cast<size_t>(j)];
        ops.softmax(xb.data(), nullptr, yw.data(), rows, n);
        ops.softmax(x.data(), bias.data(), yb.data(), rows, n);
        for (size_t i = 0; i < yb.size(); ++i) EXPECT_NEAR(yb[i], yw[i], 1e-6f * yw[i] + 1e-12f) << isa_name(isa);
      }
    }
  }
}

TEST(RowOps, LayerNormMatchesReference) {
  for (Isa isa : host_isas()) {
    const RowOps& ops = *isa_kernels(isa).rows;
    for (int64_t n : kLengths) {
      const int64_t rows = 3;
      auto x = random_vec(rows * n, static_cast<uint32_t>(n), 2.f);
      for (int64_t j = 0; j < n; ++j) x[static_cast<size_t>(n + j)] += 1000.f;  // large mean
      for (int64_t j = 0; j < n; ++j) x[static_cast<size_t>(2 * n + j)] = 0.25f;  // constant row
      auto g = random_vec(n, 5, 1.f), b = random_vec(n, 6, 1.f);
      for (bool affine : {true, false}) {
        std::vector<float> y(x.size()), mean(rows), inv(rows);
        ops.layer_norm(x.data(), affine ? g.data() : nullptr, affine ? b.data() : nullptr, 1e-5f, y.data(),
                       mean.data(), inv.data(), rows, n);
        for (int64_t r = 0; r < rows; ++r) {
          double m = 0, v = 0;
          for (int64_t j = 0; j < n; ++j) m += x[r * n + j];
          m /= double(n);
          for (int64_t j = 0; j < n; ++j) v += (x[r * n + j] - m) * (x[r * n + j] - m);
          v /= double(n);
          const double is = 1 / std::sqrt(v + 1e-5);
          EXPECT_NEAR(mean[r], m, 1e-6 * std::max(1.0, std::fabs(m)));
          EXPECT_NEAR(inv[r], is, 2e-4 * is) << isa_name(isa) << " n=" << n << " r=" << r;
          for (int64_t j = 0; j < n; ++j) {
            const double want = (x[r * n + j] - m) * is * (affine ? g[j] : 1.0) + (affine ? b[j] : 0.0);
            EXPECT_NEAR(y[r * n + j], want, 2e-4 * std::max(1.0, std::fabs(want)))
                << isa_name(isa) << " n=" << n << " r=" << r << " j=" << j;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace sparta
