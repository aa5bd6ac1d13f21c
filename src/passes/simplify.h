// Graph simplification run before execution: constant folding (a node whose
// inputs are all constants is evaluated once, with the runtime's own
// operator, and replaced by its results) and dead-node removal (nodes whose
// results nobody reads). Exporters leave much for both: shape arithmetic on
// static shapes, Identity nodes on shared initializers, unused outputs.
#pragma once

#include "ir/graph.h"

namespace sparta {

struct SimplifyReport {
  int folded = 0;   // nodes evaluated at compile time
  int removed = 0;  // dead nodes removed
};

// Folding skips nodes whose results would exceed `max_fold_elements`
// elements in total (a ConstantOfShape of a large shape stays a node).
SimplifyReport simplify(Graph& g, int64_t max_fold_elements = int64_t{1} << 24);

}  // namespace sparta
