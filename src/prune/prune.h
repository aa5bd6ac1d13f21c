// Pruning: which elements of a model's weights to drop so that what is
// left has a pattern sparta's kernels run fast. This file is the math, on
// weights seen as W[N,K] (rows = output features, columns = the reduction,
// the convention of every format and kernel); prune/onnx_prune.h applies
// it to an ONNX model.
//
// Every pattern is a choice of *units* that are kept or dropped whole, each
// with a score (its magnitude, or |w * g| summed when gradients are given):
//
//   unstructured  single elements, by |w|
//   block RxC     aligned blocks of R rows (output features) x C columns,
//                 by block norm
//   nm N:M        in every group of M consecutive columns of a row, the N
//                 largest stay (sparsity is 1 - N/M by construction)
//   tilewise G    Guo et al. (SC'20): optionally whole rows first, then per
//                 tile of G consecutive (surviving) rows whole column
//                 segments, one threshold each; optionally an unstructured
//                 remainder of the largest pruned elements kept back
//   channel       whole output channels (rows) by norm; rows that the model
//                 ties together (residual adds, concats; analysis/
//                 channel_ties.h) are one unit across their layers
//
// Scope `layer` prunes each layer (or tied cluster) to the sparsity;
// `global` uses one threshold over every layer's units, scores normalized
// by unit size so that units of different sizes compare.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/pattern.h"

namespace sparta::prune {

enum class Pattern { unstructured, block, nm, tilewise, channel };
enum class Scope { layer, global };
enum class Norm { l1, l2 };

const char* pattern_name(Pattern p);
const char* scope_name(Scope s);
// Parsers for the CLI's and Python's spellings; sparta::Error naming the
// option and the accepted values otherwise.
Pattern parse_pattern(const std::string& s);
Scope parse_scope(const std::string& s);
Norm parse_norm(const std::string& s);

struct Options {
  Pattern pattern = Pattern::unstructured;
  std::optional<double> sparsity;  // fraction of elements pruned, [0, 1); required but for nm
  BlockShape block{32, 1};
  NmShape nm{2, 4};
  int tile = 128;               // tile-wise: rows per tile
  double tile_row_share = 0;    // tile-wise: share of the pruned elements taken as whole rows first
  double remainder = 0;         // tile-wise: density kept back as an unstructured remainder
  Scope scope = Scope::layer;
  Norm norm = Norm::l2;         // block, tile and channel scores
  double min_density = 0;       // no layer is pruned below this density
  std::vector<std::string> skip;  // layers (weight or node names) left alone
  bool quiet = false;

  // The sparsity this pattern prunes to (nm: 1 - N/M).
  double target() const;
  // Checks ranges and combinations; sparta::Error with one line otherwise.
  void validate() const;
};

// One weight as the pruner sees it.
struct Layer {
  std::string name;               // the weight's name
  int64_t rows = 0, cols = 0;     // W[N,K]
  std::vector<float> w;           // row-major rows x cols
  std::vector<float> grad;        // empty, or the loss gradient (first-order scores)
  // Channel pattern: the tie unit of each row (equal ids across layers are
  // pruned together), or -1 for a row that must stay (read by an operator
  // that mixes channels, or a model output).
  std::vector<int64_t> channel_unit;
};

// Whether the pattern can be applied to a layer of this shape; `why` says
// why not ("32x1 blocks do not divide [1000, 512]").
bool fits(const Options& o, const Layer& l, std::string& why);

// One keep-mask (1 = kept) per layer, rows x cols, for layers that all fit.
std::vector<std::vector<uint8_t>> compute_masks(const std::vector<Layer>& layers, const Options& o);

}  // namespace sparta::prune
