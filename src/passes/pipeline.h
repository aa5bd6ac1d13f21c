// The compile pipeline: the graph passes as a plain list, each named, timed
// and logged, with the IR verified after each (a pass that leaves a broken
// graph is a bug, and the check names the pass and what is wrong):
//
//   re-derive shapes -> fold constants -> shapes again -> propagate TeSAs
//   -> shrink -> fuse -> shrink attention heads -> assign layouts
//
// The Executor runs it before planning kernels; `sparta inspect --plan`
// prints its log.
#pragma once

#include <string>
#include <vector>

#include "analysis/tesa_propagation.h"
#include "ir/graph.h"
#include "passes/fuse.h"
#include "passes/layout.h"
#include "passes/shrink.h"
#include "passes/shrink_heads.h"

namespace sparta {

struct PipelineOptions {
  bool propagate = true;  // TeSA propagation and shrink (off: --dense)
  int layout_block = 0;   // channels per block of blocked activations: 8, 16, or 0 for the host's
};

struct PassLogEntry {
  std::string pass;
  double ms = 0;
  std::string summary;  // one line
};

struct PipelineResult {
  PropagationReport propagation;
  ShrinkReport shrink;
  HeadsReport heads;
  FuseReport fuse;
  LayoutReport layout;
  std::vector<PassLogEntry> log;
  std::string str() const;  // the log, one line per pass
};

PipelineResult run_pipeline(Graph& g, const PipelineOptions& opt = {});

// The IR's invariants: every node reads only graph inputs, constants and
// earlier nodes' outputs; every value is written once; producer and
// consumer links agree with the nodes. "" when they hold, else what breaks.
std::string verify_graph(const Graph& g);

}  // namespace sparta
