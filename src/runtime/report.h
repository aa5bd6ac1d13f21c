// The compile report: for every operator with a weight, what sparsity did
// to it (density and shape before and after propagation and shrinking, the
// pattern) and what was chosen for it (the kernel, its measured time, the
// dense time, every candidate's), with totals of parameters and FLOPs
// removed. compile_model() makes it; it is saved in the `.sparta` file and
// printed by `sparta report` as JSON or one self-contained HTML page.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace sparta {

struct CompiledModel;

// A weighted operator as imported (after a TeSA spec zeroed its masks,
// before any pass): what "before" means in the report.
struct WeightBefore {
  std::string node, op, weight;
  std::vector<int64_t> shape;
  int64_t nonzeros = 0;
};
std::vector<WeightBefore> weights_before(const Graph& g);

// The report as JSON text: {"model", "layers": [...], "totals": {...}}.
std::string build_report(const CompiledModel& m, const std::vector<WeightBefore>& before);

// One HTML page (no external resources): the totals, the per-layer table
// and a chart of time per layer, dense against the chosen kernel.
// Throws sparta::Error when `report_json` is not a report.
std::string report_html(const std::string& report_json);

}  // namespace sparta
