// Pruning an ONNX model (`sparta prune`, `sparta.prune` in Python): every
// MatMul, Gemm and Conv weight the pattern fits, unless skipped, gets the
// masks of prune/prune.h; the model is written back with those weights
// zeroed (everything else byte for byte as it was), and optionally the
// masks as a TeSA spec (frontend/tesa_spec.h) for the unpruned model.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "prune/prune.h"

namespace sparta::prune {

struct LayerReport {
  std::string weight, node, op;
  int64_t rows = 0, cols = 0;   // W[N,K]
  double density_before = 1, density_after = 1;  // nonzero fraction
  std::string pattern;          // what sparta's pattern analysis sees after pruning ("block 32x1, density 0.100")
  std::string skipped;          // why it was left alone ("" when pruned)
};

struct Mask {
  std::string tensor;
  std::vector<int64_t> shape;   // the weight's shape as stored in the ONNX file
  std::vector<uint8_t> keep;    // in that layout, 1 = kept
};

struct Result {
  std::vector<LayerReport> layers;  // every weight looked at, in graph order
  int64_t params = 0, pruned_params = 0, zero_params = 0;  // over the pruned layers: elements, zeroed by this run, zero after
  std::string onnx;                 // the pruned model, serialized
  std::vector<Mask> masks;          // per pruned layer
};

// Gradients (first-order scores) by weight name, in the weight's ONNX
// layout; a name the model lacks or a size that differs is an error.
using Gradients = std::map<std::string, std::vector<float>>;

// `what` names the model in messages. sparta::Error for a model that does
// not load, a skip name it lacks, or no layer the pattern fits.
Result prune_onnx(const std::string& bytes, const std::string& what, const Options& o, const Gradients& grads = {});

// Writes the pruned model to out_onnx and, when spec_path is not empty,
// the TeSA spec with its masks (.npy in "<spec without .json>_masks/");
// everything through temporary names renamed at the end, so a failure
// leaves nothing half-written.
void write_result(const Result& r, const std::string& out_onnx, const std::string& spec_path);

// The per-layer table and the totals, as `sparta prune` prints them.
std::string format_report(const Result& r, const Options& o);

}  // namespace sparta::prune
