// TeSA propagation: a dataflow analysis over the whole graph, forward and
// backward, to a fixpoint, with each operator's transfer rule (its OpDef's
// TesaRule, analysis/tesa_rules.h).
//
// Forward, from the weights' zeros and the spec's promises on run-time
// values, it proves elements of every value exactly zero (pruned) or exactly
// a known constant (a pruned channel plus its bias). Backward, from the
// graph outputs, it finds which elements some output needs. An element of a
// constant vector (a bias, a scale) that no output needs is made zero (it
// cannot change any output), which can prune more downstream, so the two
// directions repeat until nothing changes; a product's weight matrix keeps
// its unneeded elements for its kernel's pattern (shrink cuts them). An operator without a rule keeps everything, and is
// named in the report. Values whose shape is not static get no facts.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"

namespace sparta {

struct PropagationOptions {
  bool zero_dead_weights = true;      // make weight elements no output needs zero, and propagate again
  int max_rounds = 8;                 // forward + backward passes at most
  int64_t max_elements = 1ll << 26;  // a larger value gets no facts (kept and needed)
};

struct PropagationReport {
  int rounds = 0;
  std::vector<std::string> no_rule;  // operator types treated conservatively
  int64_t dead_weight_elements = 0;  // weight elements made zero because no output needs them
  int64_t pruned_elements = 0;       // run-time values' elements proven zero
  int64_t constant_elements = 0;     // ... proven constant
  int64_t dead_elements = 0;         // ... no output needs
  // Per run-time value with facts of which some element is not needed: 1
  // where some graph output needs the element (absent: all needed).
  std::unordered_map<const Value*, std::vector<uint8_t>> live;
  std::string str() const;  // one line
};

// Sets Value::tesa of every run-time value with a static shape from the
// forward facts (a promise given by a TeSA spec is kept: its pruned elements
// stay pruned). A weight's TeSA is its zeros, which may grow: dead weight
// elements become zero in the graph's constants.
PropagationReport propagate_tesa(Graph& g, const PropagationOptions& opt = {});

}  // namespace sparta
