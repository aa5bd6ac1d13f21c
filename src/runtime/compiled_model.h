// The compiled model: the graph after every pass of the pipeline, with one
// plan per node (the kernel chosen by measurement and its packed weight).
// compile_model() makes one from an imported graph; save_compiled() and
// load_compiled() (runtime/artifact.h) move it through a `.sparta` file, so
// that loading analyses and measures nothing; a Executor executes one.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "jit/jit_stats.h"
#include "ops/op_def.h"
#include "passes/pipeline.h"

namespace sparta {

struct CompileConfig {
  int threads = 1;        // kernels are chosen (timed) for this many threads
  bool simplify = true;   // the pass pipeline (folding, propagation, shrink, fusion, layouts)
  bool sparse = true;     // false (--dense): no propagation, a dense kernel for every weight
  bool propagate = true;  // with sparse: TeSA propagation and shrink
  bool decompose = true;  // with sparse: decompositions of mixed-pattern weights among the candidates
  bool jit = true;        // with sparse: kernels generated for each weight's pattern among the candidates
  int layout_block = 0;   // blocked activations between convolutions: 8 or 16 channels, 0 for the host's
  // Run-time TeSAs from a spec are kept as promises to check on every run
  // (ExecutorOptions::check_tesa) instead of being used by propagation.
  bool keep_promises = false;
  // Extents for graph inputs with symbolic dims ("input_ids" -> {1, 128}):
  // the passes analyse and the kernels are chosen at these shapes, and the
  // compiled model still runs at every shape the model allows (shape
  // arithmetic stays in it). Inputs not named keep their symbolic dims;
  // their nodes are planned on the first run.
  std::map<std::string, std::vector<int64_t>> shapes;
};

// Where compiling (or loading) took its time, ms.
struct CompileTimes {
  double passes_ms = 0, propagate_ms = 0, tune_ms = 0, pack_ms = 0;  // propagate_ms is part of passes_ms
  double load_ms = 0;  // a loaded model: file to plans
  // Kernels generated for weights' patterns (jit/): in compiling, or again
  // in loading; generation and the self-check against the reference.
  jit::Stats jit;
};

struct CompiledModel {
  Graph graph;
  std::vector<const OpDef*> defs;                // per node
  std::vector<std::shared_ptr<NodePlan>> plans;  // per node; null: planned on its first run
  CompileConfig options;
  PipelineResult pipeline;  // the passes' reports (a loaded model keeps only their log)
  CompileTimes times;
  std::map<const Value*, Tesa> promises;  // with keep_promises
  std::string source;  // the model it was compiled from, as given
  std::string report;  // runtime/report.h, JSON
  // Every graph input's extents at compile time (options.shapes, or its
  // static dims); absent for inputs left symbolic.
  std::map<std::string, std::vector<int64_t>> compiled_shapes;
};

// Runs the pass pipeline and plans every node. Throws sparta::Error naming
// the first unsupported operator, its node and the opset.
CompiledModel compile_model(Graph g, const CompileConfig& opt = {}, std::string source = "");

// Every operator of g that sparta cannot run, one line each with its node
// count and first node ("HardSigmoid (3 nodes, first 'p2o.HardSigmoid.0')").
std::vector<std::string> unsupported_operators(const Graph& g);

// Looks up every node's OpDef and checks that it can run (the operator is
// known, its inputs' layouts are ones it reads); empties the plans.
void bind_op_defs(CompiledModel& m);

// f(i) for i in [0, n) on up to `threads` threads; the first exception is
// rethrown after all have stopped.
void parallel_each(int threads, size_t n, const std::function<void(size_t)>& f);

// Links each product whose kernel can write its output packed to its sole
// consumer when that can read it packed with the same tile (kernels/spmm.h:
// one transposed store and one packing fewer); returns how many pairs.
// Values with a run-time promise to check are left alone.
int link_packed_handoffs(CompiledModel& m);

}  // namespace sparta
