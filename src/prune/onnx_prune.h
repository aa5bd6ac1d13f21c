// Pruning an ONNX model (`sparta prune`, `sparta.prune` in Python): every
// MatMul, Gemm and Conv weight the pattern fits, unless skipped, gets the
// masks of prune/prune.h; the model is written back with those weights
// zeroed (everything else byte for byte as it was), and optionally the
// masks as a TeSA spec (frontend/tesa_spec.h) for the unpruned model.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "analysis/channel_ties.h"
#include "prune/prune.h"

namespace sparta::prune {

struct LayerReport {
  std::string weight, node, op;
  int64_t rows = 0, cols = 0;   // W[N,K]
  double density_before = 1, density_after = 1;  // nonzero fraction
  std::string pattern;          // what sparta's pattern analysis sees after pruning ("block 32x1, density 0.100")
  std::string skipped;          // why it was left alone ("" when pruned)
  std::string note;             // why this choice (latency-aware pruning)
};

struct Mask {
  std::string tensor;
  std::vector<int64_t> shape;   // the weight's shape as stored in the ONNX file
  std::vector<uint8_t> keep;    // in that layout, 1 = kept
};

// Gradients (first-order scores) by weight name, in the weight's ONNX
// layout; a name the model lacks or a size that differs is an error.
using Gradients = std::map<std::string, std::vector<float>>;

struct Result {
  std::vector<LayerReport> layers;  // every weight looked at, in graph order
  int64_t params = 0, pruned_params = 0, zero_params = 0;  // over the pruned layers: elements, zeroed by this run, zero after
  std::string onnx;                 // the pruned model, serialized
  std::vector<Mask> masks;          // per pruned layer
};


// What to do with one weight: its keep-mask (W[N,K], 1 = kept), or
// nothing (empty keep) with the reason.
struct Decision {
  std::vector<uint8_t> keep;
  std::string skipped, note;
};

// A model loaded for pruning: its graph (shapes inferred), its weights,
// and the protobuf the pruned weights are written back into.
class OnnxWeights {
 public:
  OnnxWeights(const std::string& bytes, const std::string& what);
  ~OnnxWeights();
  const std::string& what() const;
  const Graph& graph() const;
  const std::vector<PrunableWeight>& weights() const;
  // Weight i as W[N,K] (with its gradient when grads has it).
  Layer layer(size_t i, const Gradients& grads = {}) const;
  // Checks that every name names a weight or its node (sparta::Error for
  // the first that does not); then whether weight i is one of them.
  void check_skip(const std::vector<std::string>& names) const;
  bool skipped(size_t i, const std::vector<std::string>& names) const;
  // The rows of weight i's product (activation rows: batch x sequence, or
  // output positions of a convolution), 1 for an unknown extent.
  int64_t activation_rows(size_t i) const;
  // The model with every decision applied (one per weight); with
  // zero_bias_of_pruned_rows a row pruned whole loses its bias.
  Result apply(const std::vector<Decision>& decisions, bool zero_bias_of_pruned_rows);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

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
