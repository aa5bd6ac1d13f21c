// `sparta bench spmm`: one sparse linear layer against oneDNN dense and the
// sparse peers, in the same process, interleaved, after warm-up.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/pattern.h"
#include "kernels/spmm.h"

namespace sparta::tools {

struct SpmmBenchConfig {
  std::string format = "csr";
  BlockShape block{32, 1};
  NmShape nm{2, 4};
  int tile = 128;
  double density = 0.1;
  int64_t m = 128, k = 768, n = 3072;
  int threads = 1;
  int reps = 30;
  int warmup = 5;
  uint64_t seed = 1;
  bool peers = true;
  bool bias = true;
  Activation act = Activation::none;
  bool tune = true;      // choose the sparse kernel by measured time on this shape
  bool jit = true;       // generated kernels among the candidates
  std::string kernel;    // only this implementation (e.g. "jit_csr_avx2"); an error if it declines
  bool verbose = false;  // print kernel rejections and tuning times
};

// max |a - b| / max |b| over n values: the error measure of every benchmark.
double max_rel_err(const float* a, const float* b, int64_t n);

// Runs one case. Throws sparta::Error on bad parameters or when a result
// disagrees with oneDNN dense (a wrong answer is never reported as a time).
nlohmann::json bench_spmm(const SpmmBenchConfig& c);

struct SweepConfig {
  int threads = 1;
  int reps = 20;
  int warmup = 3;
  bool peers = true;
  std::string out_dir = "out/sweep";
  bool quick = false;  // a reduced grid, for smoke tests
};

// Every format over densities 0.5 .. 0.05 on the BERT-base linear shapes;
// writes sweep.json, sweep.md and (via scripts/plot_sweep.py) sweep.png.
void bench_spmm_sweep(const SweepConfig& c);

}  // namespace sparta::tools
