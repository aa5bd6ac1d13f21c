// Latency-aware pruning (`sparta prune --target-speedup S`): choose, per
// layer, a pattern and a sparsity such that the model runs S times faster
// in sparta than unpruned, measured, at the least estimated accuracy loss.
//
// Each layer's candidates (block 32x1 and 1x32, unstructured, 2:4,
// tile-wise, at several sparsities, where they fit) are pruned by
// magnitude; the estimated loss of a candidate is the fraction of the
// weight's energy (sum of squares) it removes, and its time is what
// sparta's kernel choice measures for the pruned weight on the layer's own
// product shape (one measurement per shape and candidate). A greedy search
// then moves, one layer at a time, to the candidate that saves the most
// time per unit of added loss until the estimated model time reaches the
// target: the measured unpruned time less the layers' savings, each layer's
// in-model time (profiled) scaled by its candidate's measured ratio to dense. The chosen
// model is compiled and timed against the unpruned one in the same run.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "prune/onnx_prune.h"

namespace sparta::prune {

struct TargetOptions {
  double speedup = 2.0;            // asked: unpruned time / pruned time, both in sparta
  int threads = 1;                 // kernels timed and the model run on this many threads
  std::vector<std::string> skip;   // layers (weight or node names) left alone
  int reps = 10;                   // model timing: runs per measurement
};

struct TargetResult {
  Result pruned;                   // the chosen model (per-layer notes say why)
  double unpruned_ms = 0;          // measured
  double estimated_ms = 0;         // what the choice predicted
  double measured_ms = 0;          // the chosen model, measured in the same run
  double loss = 0;                 // summed estimated loss
  std::string text;                // the report `sparta prune` prints
};

// progress (may be null) receives one line per step of long work.
TargetResult prune_to_speedup(const std::string& bytes, const std::string& what, const TargetOptions& t,
                              const std::function<void(const std::string&)>& progress);

}  // namespace sparta::prune
