// The shrink pass: channels no output needs are cut out of a product, the
// elementwise operators after it and the product that consumes it, and the
// model computes what it computed before.
#include <gtest/gtest.h>

#include <random>

#include "analysis/shape_inference.h"
#include "analysis/tesa_propagation.h"
#include "passes/shrink.h"
#include "runtime/session.h"

namespace sparta {
namespace {

using Dims = std::vector<int64_t>;

// x[3, 5] -> MatMul W1[5, 8] -> Add b1[8] -> Mul 0.5 -> Relu -> MatMul W2[8, 4]
// (-> y), with rows `dead_rows` of W2 zero; `extra` adds a second reader of
// the Relu output.
struct Mlp {
  Graph g;
  Tensor x;
  Mlp(const std::vector<int64_t>& dead_rows, const std::string& extra = "") {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    auto tensor = [&](const Dims& d) {
      Tensor t(DType::f32, Shape(d));
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
      return t;
    };
    auto constant = [&](const std::string& name, Tensor t) {
      Value* v = g.add_value(name);
      v->dtype = DType::f32;
      v->dims = t.shape().dims();
      v->constant = std::move(t);
      return v;
    };
    auto node = [&](const std::string& op, std::vector<Value*> in, const std::string& out) {
      Node* n = g.add_node(op, out);
      n->inputs = std::move(in);
      n->outputs = {g.add_value(out)};
      return n->outputs[0];
    };
    Value* in = g.add_value("x");
    in->dtype = DType::f32;
    in->dims = Dims{3, 5};
    g.inputs.push_back(in);
    x = tensor({3, 5});
    Tensor w2 = tensor({8, 4});
    for (int64_t r : dead_rows)
      for (int64_t j = 0; j < 4; ++j) w2.data<float>()[r * 4 + j] = 0.f;
    Value* h = node("MatMul", {in, constant("W1", tensor({5, 8}))}, "h");
    h = node("Add", {h, constant("b1", tensor({8}))}, "hb");
    h = node("Mul", {h, constant("half", Tensor(DType::f32, Shape{1}))}, "hm");
    g.find("half")->constant->data<float>()[0] = 0.5f;
    h = node("Relu", {h}, "hr");
    Value* y = node("MatMul", {h, constant("W2", w2)}, "y");
    g.outputs = {y};
    if (extra == "output") g.outputs.push_back(h);
    if (extra == "reshape") g.outputs.push_back(node("Reshape", {h, constant("shape", Tensor(DType::i64, Shape{1}))}, "flat"));
    if (extra == "reshape") g.find("shape")->constant->data<int64_t>()[0] = 24;
    g.opsets[""] = 17;
    g.link();
    infer_shapes(g);
  }
};

std::vector<Tensor> run(Graph g, const Tensor& x) { return Session(std::move(g), {.simplify = false}).run({{"x", x}}); }

TEST(Shrink, CutsUnneededChannelsThroughElementwiseOps) {
  Mlp ref({1, 4, 5}), m({1, 4, 5});
  const PropagationReport prop = propagate_tesa(m.g);
  const ShrinkReport rep = shrink_channels(m.g, prop);
  EXPECT_EQ(rep.regions, 1);
  EXPECT_EQ(rep.channels, 3);
  EXPECT_EQ(rep.weight_elements, 3 * 5 + 3 * 4);
  const Node& fc1 = *m.g.nodes()[0];
  EXPECT_EQ(fc1.inputs[1]->constant->shape(), Shape({5, 5}));
  EXPECT_EQ(*m.g.find("hr")->dims, (Dims{3, 5}));
  EXPECT_EQ(m.g.nodes()[1]->inputs[1]->constant->shape(), Shape({5}));  // the bias, sliced
  EXPECT_EQ(m.g.nodes()[4]->inputs[1]->constant->shape(), Shape({5, 4}));
  const Tensor a = run(std::move(ref.g), ref.x)[0], b = run(std::move(m.g), m.x)[0];
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 1e-6) << i;
}

TEST(Shrink, LeavesRegionsItCannotCutThrough) {
  for (const char* extra : {"output", "reshape"}) {
    Mlp m({1, 4, 5}, extra);
    const ShrinkReport rep = shrink_channels(m.g, propagate_tesa(m.g));
    EXPECT_EQ(rep.regions, 0) << extra;
    EXPECT_EQ(m.g.nodes()[0]->inputs[1]->constant->shape(), Shape({5, 8})) << extra;
  }
  Mlp none({});  // nothing unneeded: nothing cut
  EXPECT_EQ(shrink_channels(none.g, propagate_tesa(none.g)).regions, 0);
}

}  // namespace
}  // namespace sparta
