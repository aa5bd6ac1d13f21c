// Kernels backed by oneDNN (dense GEMM done well by a well-kept library).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/spmm.h"

namespace sparta {

// Dense Y = X W^T + bias (+ activation) with oneDNN matmul; the weight is
// reordered once per call shape into oneDNN's preferred blocked layout.
class OnednnDenseKernel final : public SpmmKernel {
 public:
  OnednnDenseKernel(int64_t n, int64_t k, std::vector<float> w, std::string name = "dense_matmul_onednn");
  ~OnednnDenseKernel() override;
  std::string name() const override { return name_; }
  void run(const SpmmArgs& a) const override;
  // Builds the primitive and prepacks the weight for a contiguous call of M
  // rows, so that a benchmark times execution only.
  void prepare(int64_t m, bool bias, Activation act) const;
  // oneDNN's name for the implementation it chose (e.g. "brg:avx512_core").
  std::string impl_info() const;

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, int, bool>;
  const Plan& plan(int64_t m, int64_t ldx, int64_t ldy, bool bias, Activation act, bool accumulate) const;
  std::vector<float> w_;
  std::string name_;
  mutable std::mutex mu_;
  mutable std::map<Key, std::unique_ptr<Plan>> plans_;
  mutable std::string impl_;
};

std::unique_ptr<SpmmKernel> make_structured_onednn(const StructuredMatrix& w);

}  // namespace sparta
