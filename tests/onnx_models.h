// Small ONNX models built with protobuf, for importer and CLI tests.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

namespace sparta::testing {

// x[batch, 8] -> MatMul(W1[8, 16], 50% zeros) -> Add(b1) -> Relu -> MatMul(W2[16, 4]) -> y[batch, 4]
onnx::ModelProto mlp_model(int64_t opset = 13);

// A tensor proto of f32 values with raw data.
onnx::TensorProto f32_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v);

std::string serialize(const onnx::ModelProto& m);

}  // namespace sparta::testing
