// The ablation of `sparta bench model --ablation`: one model compiled at
// each stage of the pipeline and timed in one run (warm-up, then the stages'
// repetitions interleaved, medians), so that each stage's share of the
// speed shows, as SparTA's evaluation does:
//
//   dense           oneDNN for every weight, sparsity ignored (--dense)
//   sparse_kernels  each weight's own pattern, template kernels, no
//                   propagation (what a sparse library does)
//   propagation     + TeSA propagation, shrink (channels, attention heads),
//                   constant channels folded
//   transformation  + decompositions of mixed patterns among the measured
//                   candidates
//
// (specialization, JIT kernels per weight, comes with the jit/ layer.)
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace sparta::tools {

struct AblationStage {
  std::string stage;
  double ms = 0;          // median
  double compile_ms = 0;  // passes and kernel choice
  std::map<std::string, int> kernels;  // "op: kernel" -> nodes, as run
};

// `load` imports the model afresh (with its TeSA spec) for each stage.
std::vector<AblationStage> run_ablation(const std::function<Graph()>& load, std::map<std::string, Tensor> feeds,
                                        int threads, int reps);

}  // namespace sparta::tools
