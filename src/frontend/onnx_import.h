// ONNX in: reads a model (default-domain opsets 11-17, what PyTorch 1.13's
// exporter writes; older models are first upgraded to opset 13 with ONNX's
// version converter) into the graph IR. Everything is validated on the way in
// (protobuf structure, dtypes, data sizes, names, topological order) so that
// later passes can trust the graph; bad input is a sparta::Error whose
// message names the file and the offending node or tensor.
#pragma once

#include <cstddef>
#include <string>

#include "ir/graph.h"

namespace sparta {

constexpr int64_t kMinOnnxOpset = 11;
constexpr int64_t kMaxOnnxOpset = 17;
constexpr int64_t kUpgradeOpset = 13;  // target for models below kMinOnnxOpset

Graph import_onnx_file(const std::string& path);
// `what` names the source in error messages.
Graph import_onnx_bytes(const void* data, size_t size, const std::string& what = "<memory>");

// One serialized ONNX TensorProto (the conformance data's .pb files).
Tensor read_onnx_tensor_file(const std::string& path);

}  // namespace sparta
