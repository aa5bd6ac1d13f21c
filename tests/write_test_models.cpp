// Writes the test models to a folder, for the CLI tests: write_test_models DIR
#include <cstdio>
#include <fstream>

#include "core/npy.h"
#include "onnx_models.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_test_models DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string good = sparta::testing::serialize(sparta::testing::mlp_model());
  std::ofstream(dir + "/mlp.onnx", std::ios::binary) << good;
  std::ofstream(dir + "/truncated.onnx", std::ios::binary) << good.substr(0, good.size() / 2);
  std::ofstream(dir + "/opset9.onnx", std::ios::binary) << sparta::testing::serialize(sparta::testing::mlp_model(9));
  std::ofstream(dir + "/opset18.onnx", std::ios::binary) << sparta::testing::serialize(sparta::testing::mlp_model(18));
  auto old_bad = sparta::testing::mlp_model(9);  // ONNX's converter cannot upgrade an unknown op
  old_bad.mutable_graph()->mutable_node(2)->set_op_type("FancyRelu");
  std::ofstream(dir + "/opset9_unknown_op.onnx", std::ios::binary) << sparta::testing::serialize(old_bad);
  auto bad = sparta::testing::mlp_model();
  bad.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
  std::ofstream(dir + "/dangling.onnx", std::ios::binary) << sparta::testing::serialize(bad);
  auto fixed = sparta::testing::mlp_model();  // static batch: every weight planned ahead
  for (auto* vi : {fixed.mutable_graph()->mutable_input(0), fixed.mutable_graph()->mutable_output(0)})
    vi->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_value(2);
  std::ofstream(dir + "/mlp_static.onnx", std::ios::binary) << sparta::testing::serialize(fixed);
  std::ofstream(dir + "/residual.onnx", std::ios::binary) << sparta::testing::serialize(sparta::testing::residual_cnn_model());
  auto unknown = sparta::testing::mlp_model();  // two operators sparta does not have
  unknown.mutable_graph()->mutable_node(1)->set_op_type("FancyAdd");
  unknown.mutable_graph()->mutable_node(2)->set_op_type("FancyRelu");
  std::ofstream(dir + "/unknown_ops.onnx", std::ios::binary) << sparta::testing::serialize(unknown);
  std::ofstream(dir + "/garbage.onnx", std::ios::binary) << "this is not a protobuf \xff\xff\xff\xff";
  sparta::Tensor x(sparta::DType::f32, sparta::Shape{2, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.125f * static_cast<float>(i % 9) - 0.5f;
  sparta::write_npy(dir + "/x.npy", x);
  sparta::write_npy(dir + "/x_i64.npy", sparta::Tensor(sparta::DType::i64, sparta::Shape{2, 8}));
  sparta::write_npy(dir + "/x_wrong_shape.npy", sparta::Tensor(sparta::DType::f32, sparta::Shape{2, 9}));
  std::ofstream(dir + "/bad.npy", std::ios::binary) << "\x93NUMPY garbage";
  return 0;
}
