// If and Loop with subgraphs that read outer values: computed ones (the
// node's captures), initializers (copied into the subgraph) and values of
// an outer-outer scope (a nested If).
#include <gtest/gtest.h>

#include "frontend/onnx_import.h"
#include "onnx_models.h"
#include "runtime/compiled_model.h"
#include "runtime/executor.h"
#include "test_util.h"

namespace sparta {
namespace {

using testing::add_node;
using testing::expect_error;
using testing::f32_tensor;
using testing::serialize;
using testing::tensor_value;

void bool_value(onnx::ValueInfoProto* vi, const std::string& name) {
  vi->set_name(name);
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::BOOL);
  vi->mutable_type()->mutable_tensor_type()->mutable_shape();
}

onnx::GraphProto* graph_attr(onnx::NodeProto* n, const std::string& name) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::GRAPH);
  a->mutable_g()->set_name(name);
  return a->mutable_g();
}

Graph import_model(const onnx::ModelProto& m) {
  const std::string b = serialize(m);
  return import_onnx_bytes(b.data(), b.size(), "test");
}

onnx::ModelProto model(int64_t opset = 16) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(opset);
  return m;
}

Tensor f32(std::vector<int64_t> dims, std::vector<float> v) {
  Tensor t(DType::f32, Shape(dims));
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

Tensor boolean(bool b) {
  Tensor t(DType::boolean, Shape(std::vector<int64_t>{}));
  static_cast<uint8_t*>(t.raw())[0] = b ? 1 : 0;
  return t;
}

// y = c ? (x*x + kc) : (c2 ? x*x - k : x*x * k), with k an initializer
// and kc (equal to k) a Constant node's output.
onnx::ModelProto if_model() {
  auto m = model();
  auto* g = m.mutable_graph();
  tensor_value(g->add_input(), "x", {"2", "3"});
  bool_value(g->add_input(), "c");
  bool_value(g->add_input(), "c2");
  tensor_value(g->add_output(), "y", {"2", "3"});
  *g->add_initializer() = f32_tensor("k", {3}, {1, 2, 3});
  add_node(g, "Mul", {"x", "x"}, {"xx"}, "square");
  auto* kc = add_node(g, "Constant", {}, {"kc"}, "kc");
  auto* value = kc->add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  *value->mutable_t() = f32_tensor("kc", {3}, {1, 2, 3});
  auto* n = add_node(g, "If", {"c"}, {"y"}, "branch");
  auto* t = graph_attr(n, "then_branch");
  tensor_value(t->add_output(), "yt", {"2", "3"});
  add_node(t, "Add", {"xx", "kc"}, {"yt"}, "plus");
  auto* e = graph_attr(n, "else_branch");
  tensor_value(e->add_output(), "ye", {"2", "3"});
  auto* inner = add_node(e, "If", {"c2"}, {"ye"}, "inner");
  auto* it = graph_attr(inner, "then_branch");
  tensor_value(it->add_output(), "yit", {"2", "3"});
  add_node(it, "Sub", {"xx", "k"}, {"yit"}, "minus");
  auto* ie = graph_attr(inner, "else_branch");
  tensor_value(ie->add_output(), "yie", {"2", "3"});
  add_node(ie, "Mul", {"xx", "k"}, {"yie"}, "times");
  return m;
}

TEST(ControlFlow, IfReadsOuterValuesAndNests) {
  Graph g = import_model(if_model());
  const Node* n = nullptr;
  for (const auto& node : g.nodes())
    if (node->op_type == "If") n = node.get();
  ASSERT_NE(n, nullptr);
  // c, then the captures xx and c2 (k and kc are copied in: constants fold
  // inside the subgraph, and a run passes nothing for them)
  ASSERT_EQ(n->inputs.size(), 3u);
  EXPECT_EQ(n->inputs[1]->name, "xx");
  EXPECT_EQ(n->inputs[2]->name, "c2");
  EXPECT_EQ(*g.find("y")->dims, (std::vector<int64_t>{2, 3}));  // from the branches' declared outputs
  Executor ex(std::move(g));
  const Tensor x = f32({2, 3}, {1, 2, 3, -1, -2, -3});
  const float k[3] = {1, 2, 3};
  for (int c = 0; c < 2; ++c)
    for (int c2 = 0; c2 < 2; ++c2) {
      const std::vector<Tensor> y = ex.run({{"x", x}, {"c", boolean(c)}, {"c2", boolean(c2)}});
      ASSERT_EQ(y.size(), 1u);
      for (int i = 0; i < 6; ++i) {
        const float xx = x.data<float>()[i] * x.data<float>()[i], kk = k[i % 3];
        const float want = c ? xx + kk : c2 ? xx - kk : xx * kk;
        EXPECT_FLOAT_EQ(y[0].data<float>()[i], want) << c << c2 << i;
      }
    }
}

// v_final = v0 + M * x; scan s[i] = 2 * (v0 + (i + 1) * x); the loop also
// stops when the running sum's first element exceeds `limit`.
onnx::ModelProto loop_model() {
  auto m = model();
  auto* g = m.mutable_graph();
  auto* mi = g->add_input();
  mi->set_name("M");
  mi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
  mi->mutable_type()->mutable_tensor_type()->mutable_shape();
  tensor_value(g->add_input(), "v0", {"3"});
  tensor_value(g->add_input(), "x", {"3"});
  tensor_value(g->add_output(), "v", {"3"});
  tensor_value(g->add_output(), "s", {"n", "3"});
  *g->add_initializer() = f32_tensor("limit", {}, {100.f});
  *g->add_initializer() = f32_tensor("two", {}, {2.f});
  add_node(g, "Loop", {"M", "", "v0"}, {"v", "s"}, "loop");
  auto* b = graph_attr(g->mutable_node(0), "body");
  auto* it = b->add_input();
  it->set_name("i");
  it->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
  it->mutable_type()->mutable_tensor_type()->mutable_shape();
  bool_value(b->add_input(), "cond_in");
  tensor_value(b->add_input(), "v_in", {"3"});
  bool_value(b->add_output(), "cond_out");
  tensor_value(b->add_output(), "v_out", {"3"});
  tensor_value(b->add_output(), "s_out", {"3"});
  add_node(b, "Add", {"v_in", "x"}, {"v_out"}, "step");
  add_node(b, "Mul", {"v_out", "two"}, {"s_out"}, "double");
  add_node(b, "Gather", {"v_out", "zero"}, {"first"}, "first");
  *b->add_initializer() = testing::i64_tensor("zero", {}, {0});
  add_node(b, "Less", {"first", "limit"}, {"cond_out"}, "keep_going");
  return m;
}

TEST(ControlFlow, LoopCarriesScansAndStops) {
  Executor ex(import_model(loop_model()));
  Tensor M(DType::i64, Shape(std::vector<int64_t>{}));
  const Tensor v0 = f32({3}, {1, 2, 3}), x = f32({3}, {10, 20, 30});
  for (int64_t trips : {0, 1, 4, 50}) {
    M.data<int64_t>()[0] = trips;
    const std::vector<Tensor> out = ex.run({{"M", M}, {"v0", v0}, {"x", x}});
    // the condition stops the loop once v[0] = 1 + 10 i reaches 100 (i = 10)
    const int64_t ran = std::min<int64_t>(trips, 10);
    ASSERT_EQ(out.size(), 2u);
    for (int j = 0; j < 3; ++j) EXPECT_FLOAT_EQ(out[0].data<float>()[j], v0.data<float>()[j] + ran * x.data<float>()[j]);
    ASSERT_EQ(out[1].shape(), Shape({ran, 3}));  // no iteration: [0, 3], the body's scan output stacked zero times
    ASSERT_EQ(out[1].dtype(), DType::f32);
    for (int64_t i = 0; i < ran; ++i)
      for (int j = 0; j < 3; ++j)
        EXPECT_FLOAT_EQ(out[1].data<float>()[i * 3 + j], 2 * (v0.data<float>()[j] + (i + 1) * x.data<float>()[j]));
  }
}

TEST(ControlFlow, UnsupportedOperatorInsideASubgraphIsNamedAtCompile) {
  auto m = if_model();
  onnx::NodeProto* n = nullptr;
  for (auto& node : *m.mutable_graph()->mutable_node())
    if (node.op_type() == "If") n = &node;
  ASSERT_NE(n, nullptr);
  auto* e = n->mutable_attribute(1)->mutable_g();
  e->mutable_node(0)->mutable_attribute(0)->mutable_g()->mutable_node(0)->set_op_type("FancySub");
  Graph g = import_model(m);
  const std::vector<std::string> missing = unsupported_operators(g);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_NE(missing[0].find("FancySub"), std::string::npos);
  EXPECT_NE(missing[0].find("subgraph"), std::string::npos);
  expect_error([&] { Executor ex(std::move(g)); }, {"FancySub"});
}

}  // namespace
}  // namespace sparta
