// The graph runtime: a Executor checks once that every operator of a graph
// has an implementation, then runs it on named input tensors. Intermediate
// tensors are released as soon as their last consumer has run.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "passes/pipeline.h"
#include "runtime/compiled_model.h"
#include "ir/graph.h"
#include "ops/op_def.h"
#include "passes/fuse.h"
#include "passes/layout.h"

namespace sparta {

struct ExecutorOptions {
  int threads = 1;
  bool profile = false;   // record per-node times
  bool simplify = true;   // constant folding, dead-node removal, fusion and layout assignment first
  bool propagate = true;  // with simplify: TeSA propagation, then shrink, before fusion
  bool sparse = true;     // false (--dense): no propagation, and every weight gets a dense kernel
  int layout_block = 0;   // blocked activations between convolutions: 8 or 16 channels, 0 for the host's
  // Check on every run that the run-time values a TeSA spec annotated
  // (Value::tesa when the Executor is made) are zero where it says pruned;
  // the first broken promise is an error naming the value and the element.
  // The promises are then not used for propagation (weights still are).
  bool check_tesa = false;
};

// A Executor executes a compiled model (runtime/compiled_model.h) on named
// input tensors.
class Executor {
 public:
  // Compiles the graph first (compile_model with the options' threads,
  // sparsity, layout and promises). Throws sparta::Error naming the first
  // unsupported operator, its node and the opset.
  explicit Executor(Graph g, ExecutorOptions opt = {});
  // Runs a compiled (or loaded) model; opt.threads is the run's thread
  // count, opt.profile and opt.check_tesa apply, the rest was compiled in.
  Executor(CompiledModel m, ExecutorOptions opt);

  const Graph& graph() const { return m_.graph; }
  const CompiledModel& model() const { return m_; }
  // Inputs by graph-input name; returns the graph outputs in order. Throws
  // sparta::Error for a missing or unknown input, or a dtype or shape that
  // contradicts the model.
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs);

  struct NodeTime {
    std::string node, op;
    double ms = 0;
    std::string impl;  // the kernel that ran, where the op chooses one
  };
  const std::vector<NodeTime>& profile() const { return profile_; }
  // The graph passes that ran (passes/pipeline), with their reports and log.
  const PipelineResult& pipeline() const { return m_.pipeline; }
  const FuseReport& fuse_report() const { return m_.pipeline.fuse; }
  const LayoutReport& layout_report() const { return m_.pipeline.layout; }
  const PropagationReport& propagation_report() const { return m_.pipeline.propagation; }
  const ShrinkReport& shrink_report() const { return m_.pipeline.shrink; }
  // Where compiling took its time (ms): graph passes, then ahead-of-time
  // plans: measuring kernel choices, and packing the other weights.
  const CompileTimes& plan_times() const { return m_.times; }

 private:
  void check_promise(const Value* v, const Tensor& t) const;
  void schedule();

  // Where each node finds its inputs and puts its outputs, worked out once
  // so that a run does no lookups: every non-constant value has a slot in
  // the run's tensor array; a constant is read in place.
  struct Operand {
    int slot = -1;                     // -1: a constant or an omitted input
    const Tensor* constant = nullptr;  // the constant's tensor
  };
  struct Step {
    std::vector<Operand> in;
    std::vector<bool> last_use;  // OpCall::last_use
    std::vector<int> out;        // slots; -1 for an omitted output
    std::vector<int> release;    // slots whose last reader this node is (not graph outputs)
  };
  CompiledModel m_;
  ExecutorOptions opt_;
  std::vector<Step> steps_;
  std::vector<int> input_slots_;     // per graph input
  std::vector<Operand> output_ops_;  // per graph output
  std::vector<const Value*> slot_values_;
  std::vector<NodeTime> profile_;
};

}  // namespace sparta
