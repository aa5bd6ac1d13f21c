// Shape and dtype inference over the graph IR: each operator's rule (its
// OpDef, ops/op_def.h), run in topological order. Extents that depend on run-time values are -1; a rule
// never guesses. Constant nodes become constant values, so rules downstream
// (Reshape's target shape, Unsqueeze's axes, ...) can read them.
//
// Errors are real inconsistencies in the model (a MatMul whose inner
// dimensions disagree, a Concat of different ranks) and name the node.
#pragma once

#include <string>
#include <vector>

#include "analysis/onnx_rules.h"  // broadcast_shapes
#include "ir/graph.h"

namespace sparta {

struct ShapeInferenceReport {
  std::vector<std::string> unknown_ops;  // op types with no rule (outputs left unknown)
  int inferred = 0;                      // values whose shape became known
};

ShapeInferenceReport infer_shapes(Graph& g);

}  // namespace sparta
