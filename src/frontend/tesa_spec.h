// TeSA specs: a user's annotation of a model's tensors, so that masks from
// any pruning tool (PyTorch's prune masks as they are) reach sparta without
// zeroing weights by hand. A JSON file:
//
//   {"version": 1,
//    "tensors": {
//      "<tensor name, as `sparta inspect` prints it>": {"mask": "masks/q0.npy"},
//      "<another name>": {"mask": "masks/f1.npy", "bits": 8}}}
//
// `mask` is a .npy file (bool, any integer type, or float32 of 0s and 1s;
// nonzero = kept) of exactly the tensor's shape as stored in the ONNX file,
// its path relative to the spec file. On a constant (a weight) the mask is
// applied: pruned elements become zero. On a run-time value (a graph input
// or an intermediate) it is a promise that propagation may use. `bits` (4,
// 8, 16, 32) is the width the kept elements need.
//
// Every problem (not JSON, an unknown field, a tensor the model lacks, a mask
// of the wrong shape, an unreadable .npy) is one sparta::Error naming the
// spec file, the tensor and what to do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/shape.h"
#include "ir/graph.h"

namespace sparta {

struct TesaSpecEntry {
  std::string tensor;
  std::string mask_path;            // as written in the spec ("" when absent)
  std::optional<Shape> mask_shape;  // the mask, read: its shape and one byte per element (1 = kept)
  std::vector<uint8_t> mask;
  std::optional<int> bits;          // 4, 8, 16 or 32
};

struct TesaSpec {
  std::string path;  // where it was read from, for messages
  std::vector<TesaSpecEntry> entries;
};

// Reads a spec file and every mask it names.
TesaSpec read_tesa_spec(const std::string& path);
// Parses spec text; mask paths are resolved against base_dir, and read only
// when read_masks is set. `what` names the spec in messages.
TesaSpec parse_tesa_spec(const std::string& json, const std::string& base_dir, const std::string& what,
                         bool read_masks = true);
// A mask from .npy bytes: one byte per element, 1 = kept.
std::vector<uint8_t> mask_from_npy(const std::string& bytes, const std::string& what, Shape* shape);

struct TesaSpecReport {
  int weights = 0;                     // constants annotated
  int64_t weight_elements_pruned = 0;  // their pruned elements (made zero, or zero already)
  int promises = 0;                    // run-time values annotated
};

// Attaches each entry's TeSA to the named value of g, after checking that
// the value exists and the mask's shape is the value's; a constant's pruned
// elements become zero (in its own copy). Nothing of g changes when any
// entry is bad.
TesaSpecReport apply_tesa_spec(Graph& g, const TesaSpec& spec);

}  // namespace sparta
