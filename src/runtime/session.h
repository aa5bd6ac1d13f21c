// The graph runtime: a Session checks once that every operator of a graph
// has an implementation, then runs it on named input tensors. Intermediate
// tensors are released as soon as their last consumer has run.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "passes/pipeline.h"
#include "ir/graph.h"
#include "ops/op_def.h"
#include "passes/fuse.h"
#include "passes/layout.h"

namespace sparta {

struct SessionOptions {
  int threads = 1;
  bool profile = false;   // record per-node times
  bool simplify = true;   // constant folding, dead-node removal, fusion and layout assignment first
  bool propagate = true;  // with simplify: TeSA propagation, then shrink, before fusion
  bool sparse = true;     // false (--dense): no propagation, and every weight gets a dense kernel
  int layout_block = 0;   // blocked activations between convolutions: 8 or 16 channels, 0 for the host's
  // Check on every run that the run-time values a TeSA spec annotated
  // (Value::tesa when the Session is made) are zero where it says pruned;
  // the first broken promise is an error naming the value and the element.
  // The promises are then not used for propagation (weights still are).
  bool check_tesa = false;
};

class Session {
 public:
  // Takes the graph. Throws sparta::Error naming the first unsupported
  // operator, its node and the opset.
  explicit Session(Graph g, SessionOptions opt = {});

  const Graph& graph() const { return g_; }
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
  const PipelineResult& pipeline() const { return pipeline_; }
  const FuseReport& fuse_report() const { return pipeline_.fuse; }
  const LayoutReport& layout_report() const { return pipeline_.layout; }
  const PropagationReport& propagation_report() const { return pipeline_.propagation; }
  const ShrinkReport& shrink_report() const { return pipeline_.shrink; }
  // Where the constructor's time went (ms): graph passes, then ahead-of-time
  // preparation: measuring kernel choices, and packing the other weights.
  struct PlanTimes {
    double passes_ms = 0, propagate_ms = 0, tune_ms = 0, pack_ms = 0;  // propagate_ms is part of passes_ms
  };
  const PlanTimes& plan_times() const { return plan_times_; }

 private:
  void prepare();  // ahead-of-time node plans (packed weights), see ops/op_def.h

  Graph g_;
  SessionOptions opt_;
  std::vector<NodeTime> profile_;
  PipelineResult pipeline_;
  PlanTimes plan_times_;
  void check_promise(const Value* v, const Tensor& t) const;
  std::map<const Value*, Tesa> promises_;             // with check_tesa
  std::vector<const OpDef*> node_def_;                 // each node's definition
  std::vector<std::shared_ptr<NodePlan>> node_plan_;  // one slot per node
};

}  // namespace sparta
