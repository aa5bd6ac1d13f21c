// The shrink pass: channels no output needs are cut out of a product, the
// elementwise operators after it and the product that consumes it, and the
// model computes what it computed before.
#include <gtest/gtest.h>

#include <random>

#include "analysis/shape_inference.h"
#include "analysis/tesa_propagation.h"
#include "passes/shrink.h"
#include "runtime/executor.h"
#include "graph_builders.h"

namespace sparta {
namespace {

using Dims = std::vector<int64_t>;

using testing::add_constant;
using testing::add_op;
using testing::random_tensor;

// x[3, 5] -> MatMul W1[5, 8] -> Add b1[8] -> Mul 0.5 -> Relu -> MatMul W2[8, 4]
// (-> y), with rows `dead_rows` of W2 zero; `extra` adds a second reader of
// the Relu output.
struct Mlp {
  Graph g;
  Tensor x;
  Mlp(const std::vector<int64_t>& dead_rows, const std::string& extra = "", const std::vector<int64_t>& zero_cols = {}) {
    std::mt19937 rng(7);
    auto tensor = [&](const Dims& d) { return random_tensor(d, rng); };
    auto constant = [&](const std::string& name, Tensor t) { return add_constant(g, name, std::move(t)); };
    auto node = [&](const std::string& op, std::vector<Value*> in, const std::string& out) {
      return add_op(g, op, std::move(in), out)->outputs[0];
    };
    Value* in = g.add_value("x");
    in->dtype = DType::f32;
    in->dims = Dims{3, 5};
    g.inputs.push_back(in);
    x = tensor({3, 5});
    Tensor w2 = tensor({8, 4});
    for (int64_t r : dead_rows)
      for (int64_t j = 0; j < 4; ++j) w2.data<float>()[r * 4 + j] = 0.f;
    Tensor w1 = tensor({5, 8});
    for (int64_t c : zero_cols)  // a pruned channel whose bias is kept: a constant
      for (int64_t k = 0; k < 5; ++k) w1.data<float>()[k * 8 + c] = 0.f;
    Value* h = node("MatMul", {in, constant("W1", w1)}, "h");
    h = node("Add", {h, constant("b1", tensor({8}))}, "hb");
    h = node("Mul", {h, constant("half", Tensor(DType::f32, Shape{1}))}, "hm");
    g.find("half")->constant->data<float>()[0] = 0.5f;
    h = node("Relu", {h}, "hr");
    Value* y = node("MatMul", {h, constant("W2", w2)}, "y");
    if (extra == "bias2") y = node("Add", {y, constant("b2", tensor({4}))}, "yb");
    g.outputs = {y};
    if (extra == "output") g.outputs.push_back(h);
    if (extra == "reshape") g.outputs.push_back(node("Reshape", {h, constant("shape", Tensor(DType::i64, Shape{1}))}, "flat"));
    if (extra == "reshape") g.find("shape")->constant->data<int64_t>()[0] = 24;
    g.opsets[""] = 17;
    g.link();
    infer_shapes(g);
  }
};

std::vector<Tensor> run(Graph g, const Tensor& x) { return Executor(std::move(g), {.simplify = false}).run({{"x", x}}); }

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

TEST(Shrink, FoldsConstantChannelsIntoTheNextBias) {
  // Channels 2 and 6 of W1 are zero, their biases kept: Relu(0.5 b) makes
  // channel 2 the constant 0.4 and channel 6 the constant 0, both read by W2
  // (their rows are not zero); channel 4 is dead (W2's row 4 is zero).
  auto biases = [](Mlp& m) {
    Tensor b = m.g.find("b1")->constant->clone();
    b.data<float>()[2] = 0.8f;
    b.data<float>()[6] = -0.6f;
    m.g.find("b1")->constant = b;
    return &m;
  };
  Mlp ref({4}, "bias2", {2, 6}), m({4}, "bias2", {2, 6});
  biases(ref);
  biases(m);
  const ShrinkReport rep = shrink_channels(m.g, propagate_tesa(m.g));
  EXPECT_EQ(rep.channels, 3);
  EXPECT_EQ(rep.constant_channels, 2);
  EXPECT_EQ(*m.g.find("hr")->dims, (Dims{3, 5}));
  const Tensor a = run(std::move(ref.g), ref.x)[0], b = run(std::move(m.g), m.x)[0];
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 1e-5) << i;
  // Without a bias after W2 the constant 0.4 has nowhere to go: kept; the
  // zero one and the dead one still go.
  Mlp nobias({4}, "", {2, 6});
  biases(nobias);
  const ShrinkReport r2 = shrink_channels(nobias.g, propagate_tesa(nobias.g));
  EXPECT_EQ(r2.channels, 2);
  EXPECT_EQ(r2.constant_channels, 1);
}

// W1 pruned in blocks of 4 channels (each block of columns shares its zeros):
// channels go only in whole blocks, so W1 keeps the pattern its kernel runs.
TEST(Shrink, CutsBlockPrunedChannelsOnlyInWholeBlocks) {
  auto blocks = [](Mlp& m) {
    Tensor w = m.g.find("W1")->constant->clone();
    for (int64_t c = 0; c < 4; ++c) w.data<float>()[0 * 8 + c] = 0.f;  // k = 0 pruned in block 0
    for (int64_t c = 4; c < 8; ++c) w.data<float>()[1 * 8 + c] = 0.f;  // k = 1 pruned in block 1
    m.g.find("W1")->constant = w;
  };
  // Channels 4-7 (block 1) are all dead; of block 0 only channel 1 is.
  Mlp ref({1, 4, 5, 6, 7}), m({1, 4, 5, 6, 7});
  blocks(ref);
  blocks(m);
  const ShrinkReport rep = shrink_channels(m.g, propagate_tesa(m.g));
  EXPECT_EQ(rep.channels, 4);
  EXPECT_EQ(*m.g.find("hr")->dims, (Dims{3, 4}));
  const Tensor a = run(std::move(ref.g), ref.x)[0], b = run(std::move(m.g), m.x)[0];
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 1e-6) << i;
}

// Convolutions: output channels of conv1 pruned whole, BN and Relu after it;
// a channel whose BN shift is 0 stays exactly zero and is cut from conv1,
// the BN parameters and conv2's input channels; one whose shift is not 0 is
// a constant channel, which a padded conv2 sees differently at the borders,
// so it stays.
TEST(Shrink, CutsZeroChannelsBetweenConvolutions) {
  auto build = [](Graph& g) {
    std::mt19937 rng(11);
    auto tensor = [&](const Dims& d) { return random_tensor(d, rng); };
    auto constant = [&](const std::string& name, Tensor t) { return add_constant(g, name, std::move(t)); };
    Value* x = g.add_value("x");
    x->dtype = DType::f32;
    x->dims = Dims{1, 3, 6, 6};
    g.inputs.push_back(x);
    Tensor w1 = tensor({8, 3, 3, 3});
    for (int64_t c : {2, 5, 6})
      for (int64_t i = 0; i < 27; ++i) w1.data<float>()[c * 27 + i] = 0.f;
    Tensor scale(DType::f32, Shape{8}), shift(DType::f32, Shape{8}), mean(DType::f32, Shape{8}), var(DType::f32, Shape{8});
    for (int64_t c = 0; c < 8; ++c) {
      scale.data<float>()[c] = 1.f;
      var.data<float>()[c] = 1.f;
    }
    shift.data<float>()[6] = 0.7f;  // channel 6: the constant relu(0.7)
    auto node = [&](const std::string& op, std::vector<Value*> in, const std::string& out) {
      return add_op(g, op, std::move(in), out);
    };
    Node* c1 = node("Conv", {x, constant("W1", w1)}, "c1");
    Node* bn = node("BatchNormalization", {c1->outputs[0], constant("s", scale), constant("b", shift),
                                            constant("m", mean), constant("v", var)}, "bn");
    Node* relu = node("Relu", {bn->outputs[0]}, "r");
    Node* c2 = node("Conv", {relu->outputs[0], constant("W2", tensor({4, 8, 3, 3}))}, "c2");
    for (Node* c : {c1, c2}) {
      Attribute pads;
      pads.kind = Attribute::Kind::is;
      pads.is = {1, 1, 1, 1};
      c->attrs["pads"] = pads;
    }
    g.outputs = {c2->outputs[0]};
    g.opsets[""] = 17;
    g.link();
    infer_shapes(g);
  };
  Graph ref, m;
  build(ref);
  build(m);
  const ShrinkReport rep = shrink_channels(m, propagate_tesa(m));
  EXPECT_EQ(rep.regions, 1);
  EXPECT_EQ(rep.channels, 2);
  EXPECT_EQ(*m.find("r")->dims, (Dims{1, 6, 6, 6}));
  Tensor x(DType::f32, Shape{1, 3, 6, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.01f * static_cast<float>(i % 37) - 0.2f;
  const Tensor a = Executor(std::move(ref), {.simplify = false}).run({{"x", x}})[0];
  const Tensor b = Executor(std::move(m), {.simplify = false}).run({{"x", x}})[0];
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 1e-5) << i;
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
