// Products with a constant weight matrix (MatMul, sparta.Linear): the
// plan that chooses their kernel by measurement (dense, sparse in the
// weight's pattern, decomposed, generated), saves and loads that choice,
// and takes part in packed handoffs. Internal to ops/ (nn.cpp runs the
// products; the op definitions plan them through these functions).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "kernels/spmm.h"
#include "ops/op_def.h"

namespace sparta {

// A product with a constant weight matrix W, given [K, N] (the MatMul form)
// or [N, K] when b_is_nk: the dense kernel measured fastest for this shape
// (oneDNN's or sparta's own GEMM), and for a weight that is at least half
// zeros (a pruned model), a sparse kernel for the pattern its zeros form
// (blocks, N:M, tiles, rows x columns, or none), packed and timed on this
// shape against the dense one; the faster runs. Measured choices come from
// the kernel-choice cache when they were measured before.
struct WeightPlan : NodePlan {
  std::shared_ptr<SpmmKernel> k;
  PlanRecord rec;
  int packed_in = 0, packed_out = 0;  // tile widths of a packed handoff (0: none)
  std::string kernel() const override { return k->name(); }
  // A fused Linear without a residual hands over packed; its X is input 0.
  int packed_output_tile(const Node& n) const override {
    const bool residual = n.inputs.size() > 3 && n.inputs[3] != nullptr;
    return n.op_type == "Linear" && !residual ? k->packed_tile() : 0;
  }
  int packed_input_tile(const Node& n, size_t i) const override {
    return n.op_type == "Linear" && i == 0 ? k->packed_tile() : 0;
  }
  void set_packed(int input_tile, int output_tile) override {
    packed_in = input_tile;
    packed_out = output_tile;
  }
  // A dense kernel with a packed form of its own saves that (oneDNN's
  // layout, so that loading does not repack); a sparse one its format.
  std::optional<PlanRecord> record() const override {
    PlanRecord r = rec;
    if (r.packed_kind == PlanRecord::Packed::none)
      if (std::optional<PackedWeight> pw = k->packed_weight()) {
        r.packed_kind = PlanRecord::Packed::kernel;
        r.packed = pw->data;
        r.params = pw->params;
        r.held_inputs = {1};
      }
    return r;
  }
};

// The node's weight plan (made on its first run when it has none), with
// c.impl set to its kernel's name.
WeightPlan& weight_plan_of(OpCall& c, const Tensor& B, bool b_is_nk, int64_t m);
const SpmmKernel& dense_kernel(OpCall& c, const Tensor& B, bool b_is_nk, int64_t m);

// What compiling would choose for Y[m, N] = X W^T with this weight W[N, K]
// on `threads` threads: the kernel and its measured time, and the dense
// kernel's (from the kernel-choice cache when measured before).
struct ProductTiming {
  std::string kernel;
  double ms = 0, dense_ms = 0;
};
ProductTiming time_product(const Tensor& w_nk, int64_t m, int threads);

// The OpDef hooks of a product with a constant weight (see op_def.h).
std::string weight_plan_key(const Node& n, const PlanOptions& o);
std::shared_ptr<NodePlan> plan_weight(const Node& n, const PlanOptions& o);
std::shared_ptr<NodePlan> load_weight_plan(const Node& n, const PlanRecord& r, const PlanOptions& o);

}  // namespace sparta
