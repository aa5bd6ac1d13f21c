// Shape and dtype inference over the graph IR: one rule per operator, run in
// topological order. Extents that depend on run-time values are -1; a rule
// never guesses. Constant nodes become constant values, so rules downstream
// (Reshape's target shape, Unsqueeze's axes, ...) can read them.
//
// Errors are real inconsistencies in the model (a MatMul whose inner
// dimensions disagree, a Concat of different ranks) and name the node.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace sparta {

struct ShapeInferenceReport {
  std::vector<std::string> unknown_ops;  // op types with no rule (outputs left unknown)
  int inferred = 0;                      // values whose shape became known
};

ShapeInferenceReport infer_shapes(Graph& g);

// Numpy-style broadcast of two shapes (-1 = unknown extent). Throws
// sparta::Error with `where` in the message when they cannot broadcast.
std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                      const std::string& where);

}  // namespace sparta
