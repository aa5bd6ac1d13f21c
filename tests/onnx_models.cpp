#include "onnx_models.h"

#include <cstring>
#include <random>

namespace sparta::testing {

void tensor_value(onnx::ValueInfoProto* vi, const std::string& name, const std::vector<std::string>& dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (const auto& d : dims) {
    auto* dim = tt->mutable_shape()->add_dim();
    if (!d.empty() && d[0] >= '0' && d[0] <= '9') dim->set_dim_value(std::stoll(d));
    else dim->set_dim_param(d);
  }
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& in,
                          const std::vector<std::string>& out, const std::string& name) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& i : in) n->add_input(i);
  for (const auto& o : out) n->add_output(o);
  return n;
}

onnx::TensorProto f32_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return t;
}

onnx::ModelProto mlp_model(int64_t opset) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("sparta-tests");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("mlp");
  std::vector<float> w1(8 * 16), b1(16), w2(16 * 4);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = i % 2 ? 0.f : 0.01f * static_cast<float>(i + 1);
  for (size_t i = 0; i < b1.size(); ++i) b1[i] = 0.1f;
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = 0.02f * static_cast<float>(i % 7) - 0.05f;
  *g->add_initializer() = f32_tensor("W1", {8, 16}, w1);
  *g->add_initializer() = f32_tensor("b1", {16}, b1);
  *g->add_initializer() = f32_tensor("W2", {16, 4}, w2);
  tensor_value(g->add_input(), "x", {"batch", "8"});
  add_node(g, "MatMul", {"x", "W1"}, {"h0"}, "fc1");
  add_node(g, "Add", {"h0", "b1"}, {"h1"}, "bias1");
  add_node(g, "Relu", {"h1"}, {"h2"}, "relu1");
  add_node(g, "MatMul", {"h2", "W2"}, {"y"}, "fc2");
  tensor_value(g->add_output(), "y", {"batch", "4"});
  return m;
}

onnx::TensorProto i64_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t)));
  return t;
}

void set_ints(onnx::NodeProto* n, const std::string& key, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void set_int(onnx::NodeProto* n, const std::string& key, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

std::string serialize(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return s;
}

onnx::ModelProto residual_cnn_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("sparta-tests");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("residual_cnn");
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 0.5f);
  auto init = [&](const std::string& name, const std::vector<int64_t>& dims, float offset = 0.f) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = nd(rng) + offset;
    *g->add_initializer() = f32_tensor(name, dims, v);
  };
  init("WA", {8, 4, 3, 3});
  init("bA", {8});
  init("bn_scale", {8}, 1.f);
  init("bn_bias", {8});
  init("bn_mean", {8});
  std::vector<float> var(8, 1.f);
  *g->add_initializer() = f32_tensor("bn_var", {8}, var);
  init("WB", {8, 8, 3, 3});
  init("Wdw", {8, 1, 3, 3});
  init("WC", {6, 8, 1, 1});
  init("bC", {6});
  init("WD", {10, 14, 1, 1});
  init("Wfc", {3, 10});
  init("bfc", {3});
  tensor_value(g->add_input(), "x", {"1", "4", "8", "8"});
  auto conv = [&](const std::vector<std::string>& in, const std::string& out, const std::string& name, int64_t k,
                  int64_t group) {
    auto* n = add_node(g, "Conv", in, {out}, name);
    set_ints(n, "kernel_shape", {k, k});
    set_ints(n, "pads", {k / 2, k / 2, k / 2, k / 2});
    if (group != 1) set_int(n, "group", group);
  };
  conv({"x", "WA", "bA"}, "a", "convA", 3, 1);
  add_node(g, "BatchNormalization", {"a", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, {"a1"}, "bnA");
  add_node(g, "Relu", {"a1"}, {"a2"}, "reluA");
  conv({"a2", "WB"}, "b", "convB", 3, 1);
  add_node(g, "Add", {"a2", "b"}, {"s"}, "residual");
  add_node(g, "Relu", {"s"}, {"s1"}, "reluS");
  conv({"s1", "Wdw"}, "d", "dw", 3, 8);
  conv({"s1", "WC", "bC"}, "c", "convC", 1, 1);
  set_int(add_node(g, "Concat", {"c", "d"}, {"cat"}, "concat"), "axis", 1);
  conv({"cat", "WD"}, "e", "convD", 1, 1);
  add_node(g, "GlobalAveragePool", {"e"}, {"p"}, "gap");
  add_node(g, "Flatten", {"p"}, {"f"}, "flatten");
  set_int(add_node(g, "Gemm", {"f", "Wfc", "bfc"}, {"y"}, "fc"), "transB", 1);
  tensor_value(g->add_output(), "y", {"1", "3"});
  return m;
}

}  // namespace sparta::testing
