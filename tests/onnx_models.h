// Small ONNX models built with protobuf, for importer and CLI tests.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

namespace sparta::testing {

// x[batch, 8] -> MatMul(W1[8, 16], 50% zeros) -> Add(b1) -> Relu -> MatMul(W2[16, 4]) -> y[batch, 4]
onnx::ModelProto mlp_model(int64_t opset = 13);

// A small residual CNN for channel pruning: x[1, 4, 8, 8] -> convA (8, with
// BatchNormalization, Relu) and convB (8) summed by a residual Add -> Relu ->
// a depthwise conv `dw` (8) and a 1x1 `convC` (6) concatenated (14) -> 1x1
// `convD` (10) -> GlobalAveragePool -> Flatten -> Gemm `fc` (3, transB) -> y.
// Weights WA, WB, Wdw, WC, WD, Wfc; seeded random values.
onnx::ModelProto residual_cnn_model();

// A tensor proto of f32 values with raw data.
onnx::TensorProto f32_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v);

onnx::TensorProto i64_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& v);

std::string serialize(const onnx::ModelProto& m);

// Building blocks. dims: digits for a fixed extent, anything else a symbol.
void tensor_value(onnx::ValueInfoProto* vi, const std::string& name, const std::vector<std::string>& dims);
onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& in,
                          const std::vector<std::string>& out, const std::string& name);
void set_ints(onnx::NodeProto* n, const std::string& key, const std::vector<int64_t>& v);
void set_int(onnx::NodeProto* n, const std::string& key, int64_t v);

}  // namespace sparta::testing
