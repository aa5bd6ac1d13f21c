// Scalar reference kernels, one per format, written for clarity: they are the
// oracle of the kernel tests. They accumulate in double.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/spmm.h"

namespace sparta {
namespace {

class RefKernel final : public SpmmKernel {
 public:
  explicit RefKernel(WeightFormat w) : SpmmKernel(format_rows(w), format_cols(w)), w_(std::move(w)) {}
  std::string name() const override { return format_name(w_) + "_spmm_ref"; }

  void run(const SpmmArgs& a) const override {
    std::vector<double> acc(static_cast<size_t>(n_));
    for (int64_t i = 0; i < a.m; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const float* x = a.x + i * a.ldx;
      std::visit([&](const auto& w) { row(w, x, acc.data()); }, w_);
      float* y = a.y + i * a.ldy;
      for (int64_t j = 0; j < n_; ++j) {
        double v = acc[static_cast<size_t>(j)];
        if (a.ep.accumulate) v += y[j];
        if (a.ep.bias) v += a.ep.bias[j];
        y[j] = apply_activation(static_cast<float>(v), a.ep.act);
      }
    }
  }

 private:
  // acc[n] += sum_k W[n,k] * x[k] for one row x of X.
  static void row(const DenseMatrix& w, const float* x, double* acc) {
    for (int64_t n = 0; n < w.rows; ++n)
      for (int64_t k = 0; k < w.cols; ++k) acc[n] += double(w.values[static_cast<size_t>(n * w.cols + k)]) * x[k];
  }
  static void row(const CsrMatrix& w, const float* x, double* acc) {
    for (int64_t n = 0; n < w.rows; ++n)
      for (int64_t i = w.row_ptr[static_cast<size_t>(n)]; i < w.row_ptr[static_cast<size_t>(n + 1)]; ++i)
        acc[n] += double(w.values[static_cast<size_t>(i)]) * x[w.col_idx[static_cast<size_t>(i)]];
  }
  static void row(const BsrMatrix& w, const float* x, double* acc) {
    const int r = w.block.r, c = w.block.c;
    for (int64_t br = 0; br < w.rows / r; ++br)
      for (int64_t b = w.block_row_ptr[static_cast<size_t>(br)]; b < w.block_row_ptr[static_cast<size_t>(br + 1)]; ++b) {
        const float* v = &w.values[static_cast<size_t>(b * r * c)];
        const int64_t k0 = int64_t{w.block_col[static_cast<size_t>(b)]} * c;
        for (int j = 0; j < c; ++j)
          for (int i = 0; i < r; ++i) acc[br * r + i] += double(v[j * r + i]) * x[k0 + j];
      }
  }
  static void row(const NmMatrix& w, const float* x, double* acc) {
    const int64_t groups = w.cols / w.nm.m;
    size_t s = 0;
    for (int64_t n = 0; n < w.rows; ++n)
      for (int64_t g = 0; g < groups; ++g)
        for (int j = 0; j < w.nm.n; ++j, ++s) acc[n] += double(w.values[s]) * x[g * w.nm.m + w.index[s]];
  }
  static void row(const TilewiseMatrix& w, const float* x, double* acc) {
    for (int64_t t = 0; t < w.ntiles(); ++t) {
      const int64_t r0 = t * w.g, tr = std::min<int64_t>(w.g, w.rows - r0);
      const float* v = &w.values[static_cast<size_t>(w.value_ptr[static_cast<size_t>(t)])];
      for (int64_t i = w.tile_ptr[static_cast<size_t>(t)]; i < w.tile_ptr[static_cast<size_t>(t + 1)]; ++i, v += tr)
        for (int64_t r = 0; r < tr; ++r) acc[r0 + r] += double(v[r]) * x[w.kept_k[static_cast<size_t>(i)]];
    }
    row(w.remainder, x, acc);
  }
  static void row(const DecomposedMatrix& w, const float* x, double* acc) {
    std::visit([&](const auto& p) { row(p, x, acc); }, w.main);
    row(w.remainder, x, acc);
  }
  static void row(const StructuredMatrix& w, const float* x, double* acc) {
    size_t s = 0;
    for (int32_t n : w.kept_rows)
      for (int32_t k : w.kept_cols) acc[n] += double(w.values[s++]) * x[k];
  }

  WeightFormat w_;
};

}  // namespace

std::unique_ptr<SpmmKernel> make_spmm_reference(const WeightFormat& w) {
  validate(w);
  return std::make_unique<RefKernel>(w);
}

float apply_activation(float v, Activation a) {
  switch (a) {
    case Activation::none: return v;
    case Activation::relu: return v > 0.f ? v : 0.f;
    case Activation::gelu: return static_cast<float>(0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)));
  }
  return v;
}

}  // namespace sparta
