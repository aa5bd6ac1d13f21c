// Shape inference rules on hand-built graphs: each rule's arithmetic, unknown
// extents staying unknown, and inconsistent models named in the error.
#include <gtest/gtest.h>

#include "analysis/shape_inference.h"
#include "frontend/onnx_import.h"
#include "onnx_models.h"
#include "ops/op_def.h"
#include "runtime/executor.h"
#include "test_util.h"

namespace sparta {
namespace {

using Dims = std::vector<int64_t>;
using testing::expect_error;

// A graph of one node over inputs of the given shapes (-1 unknown).
struct OneNode {
  Graph g;
  Node* n;
  OneNode(const std::string& op, const std::vector<Dims>& in, int outputs = 1) {
    n = g.add_node(op, "n");
    for (size_t i = 0; i < in.size(); ++i) {
      Value* v = g.add_value("in" + std::to_string(i));
      v->dims = in[i];
      v->dtype = DType::f32;
      g.inputs.push_back(v);
      n->inputs.push_back(v);
    }
    for (int o = 0; o < outputs; ++o) n->outputs.push_back(g.add_value("out" + std::to_string(o)));
  }
  Value* constant_input(const Dims& values) {
    Value* v = g.add_value("c" + std::to_string(n->inputs.size()));
    Tensor t(DType::i64, Shape{static_cast<int64_t>(values.size())});
    std::copy(values.begin(), values.end(), t.data<int64_t>());
    v->constant = t;
    v->dtype = DType::i64;
    v->dims = Dims{static_cast<int64_t>(values.size())};
    n->inputs.push_back(v);
    return v;
  }
  void ints(const std::string& k, const Dims& v) {
    Attribute a;
    a.kind = Attribute::Kind::is;
    a.is = v;
    n->attrs[k] = a;
  }
  void integer(const std::string& k, int64_t v) {
    Attribute a;
    a.kind = Attribute::Kind::i;
    a.i = v;
    n->attrs[k] = a;
  }
  std::optional<Dims> out(int o = 0) {
    infer_shapes(g);
    return n->outputs[static_cast<size_t>(o)]->dims;
  }
};

TEST(ShapeInference, SliceAndSplitWithConstantArguments) {
  {  // negative start, clamped end, a step of 2 on axis 1; axis 0 unknown but untouched
    OneNode t("Slice", {{-1, 10, 6}});
    t.constant_input({-8, 0});
    t.constant_input({100, 3});
    t.constant_input({1, 2});
    t.constant_input({2, 1});
    EXPECT_EQ(*t.out(), (Dims{-1, 4, 3}));
  }
  {  // a negative step runs backwards; an unknown sliced dim stays unknown
    OneNode t("Slice", {{7, -1}});
    t.constant_input({-1, 0});
    t.constant_input({-100, 5});
    t.constant_input({0, 1});
    t.constant_input({-3, 1});
    EXPECT_EQ(*t.out(), (Dims{3, -1}));
  }
  {  // run-time starts: only the rank
    OneNode t("Slice", {{4, 5}, {1}, {1}});
    EXPECT_EQ(*t.out(), (Dims{-1, -1}));
  }
  {  // sizes as an input, equal parts, and sizes that do not add up
    OneNode t("Split", {{2, 12}}, 2);
    t.integer("axis", -1);
    t.constant_input({5, 7});
    EXPECT_EQ(*t.out(0), (Dims{2, 5}));
    EXPECT_EQ(*t.out(1), (Dims{2, 7}));
    OneNode e("Split", {{9, 4}}, 3);
    EXPECT_EQ(*e.out(2), (Dims{3, 4}));
    OneNode bad("Split", {{2, 12}}, 2);
    bad.integer("axis", 1);
    bad.constant_input({5, 6});
    expect_error([&] { bad.out(); }, {"node 'n' (Split)", "do not add up"});
  }
}

TEST(ShapeInference, Broadcast) {
  EXPECT_EQ(broadcast_shapes({2, 1, 5}, {3, 1}, "t"), (Dims{2, 3, 5}));
  EXPECT_EQ(broadcast_shapes({-1, 4}, {4}, "t"), (Dims{-1, 4}));
  EXPECT_EQ(broadcast_shapes({-1, 4}, {7, 1}, "t"), (Dims{7, 4}));
  expect_error([] { broadcast_shapes({3, 4}, {5}, "node 'x' (Add)"); }, {"node 'x' (Add)", "4 vs 5"});
}

TEST(ShapeInference, MatMulAndGemm) {
  EXPECT_EQ(OneNode("MatMul", {{2, 128, 768}, {768, 3072}}).out(), (Dims{2, 128, 3072}));
  EXPECT_EQ(OneNode("MatMul", {{768}, {768, 10}}).out(), (Dims{10}));
  EXPECT_EQ(OneNode("MatMul", {{-1, 12, 128, 64}, {-1, 12, 64, 128}}).out(), (Dims{-1, 12, 128, 128}));
  OneNode gemm("Gemm", {{4, 8}, {10, 8}, {10}});
  gemm.integer("transB", 1);
  EXPECT_EQ(gemm.out(), (Dims{4, 10}));
  expect_error([] { OneNode("MatMul", {{2, 3}, {4, 5}}).out(); }, {"node 'n' (MatMul)", "3 vs 4"});
}

TEST(ShapeInference, ConvAndPooling) {
  OneNode conv("Conv", {{1, 3, 224, 224}, {64, 3, 7, 7}});
  conv.ints("strides", {2, 2});
  conv.ints("pads", {3, 3, 3, 3});
  EXPECT_EQ(conv.out(), (Dims{1, 64, 112, 112}));
  OneNode dw("Conv", {{1, 32, 56, 56}, {32, 1, 3, 3}});
  dw.integer("group", 32);
  dw.ints("pads", {1, 1, 1, 1});
  EXPECT_EQ(dw.out(), (Dims{1, 32, 56, 56}));
  OneNode pool("MaxPool", {{1, 64, 112, 112}});
  pool.ints("kernel_shape", {3, 3});
  pool.ints("strides", {2, 2});
  pool.ints("pads", {1, 1, 1, 1});
  EXPECT_EQ(pool.out(), (Dims{1, 64, 56, 56}));
  EXPECT_EQ(OneNode("GlobalAveragePool", {{1, 2048, 7, 7}}).out(), (Dims{1, 2048, 1, 1}));
  OneNode bad("Conv", {{1, 4, 8, 8}, {8, 3, 3, 3}});
  expect_error([&] { bad.out(); }, {"input channels 4"});
}

// Shape inference and the runtime share one window rule: in ceil mode a
// window never starts in the end padding (ONNX Runtime's rule), so inspect
// and run agree on every configuration, with and without padding.
TEST(ShapeInference, PoolingExtentsAgreeWithTheRuntime) {
  struct Case {
    const char* op;
    int64_t in, k, stride, pad_begin, pad_end, ceil;
  };
  const Case cases[] = {{"MaxPool", 4, 2, 2, 0, 1, 1},     {"MaxPool", 4, 2, 2, 0, 1, 0},
                        {"MaxPool", 5, 2, 2, 0, 0, 1},     {"AveragePool", 5, 3, 2, 1, 1, 1},
                        {"AveragePool", 7, 3, 3, 0, 2, 1}, {"MaxPool", 6, 3, 2, 1, 2, 1},
                        {"MaxPool", 1, 1, 3, 0, 2, 1}};
  for (const Case& k : cases) {
    OneNode t(k.op, {{1, 1, k.in, k.in}});
    t.ints("kernel_shape", {k.k, k.k});
    t.ints("strides", {k.stride, k.stride});
    t.ints("pads", {k.pad_begin, k.pad_begin, k.pad_end, k.pad_end});
    t.integer("ceil_mode", k.ceil);
    const std::optional<Dims> inferred = t.out();
    ASSERT_TRUE(inferred.has_value());
    t.g.outputs.push_back(t.n->outputs[0]);
    Executor s(std::move(t.g), {.simplify = false});
    const std::vector<Tensor> y = s.run({{"in0", Tensor(DType::f32, Shape{1, 1, k.in, k.in})}});
    EXPECT_EQ(*inferred, y[0].shape().dims()) << k.op << " in " << k.in << " k " << k.k << " stride " << k.stride
                                              << " pads " << k.pad_begin << "," << k.pad_end << " ceil " << k.ceil;
  }
  // The case that disagreed before: 4x4, kernel 2, stride 2, end pads 1, ceil.
  OneNode t("MaxPool", {{1, 1, 4, 4}});
  t.ints("kernel_shape", {2, 2});
  t.ints("strides", {2, 2});
  t.ints("pads", {0, 0, 1, 1});
  t.integer("ceil_mode", 1);
  EXPECT_EQ(t.out(), (Dims{1, 1, 2, 2}));
}

// Every operator the runtime runs in the default domain has a shape rule,
// so inspect and the passes see its outputs before run time.
TEST(ShapeInference, EveryRunnableOnnxOperatorHasAShapeRule) {
  for (const std::string& key : supported_ops()) {
    if (key.rfind("sparta.", 0) == 0) continue;
    const OpDef* def = find_op_def(key);
    ASSERT_NE(def, nullptr) << key;
    EXPECT_TRUE(def->shape != nullptr) << key;
  }
}

TEST(ShapeInference, ReshapeTransposeUnsqueezeConcatGather) {
  OneNode r("Reshape", {{2, 128, 768}});
  r.constant_input({0, 0, 12, -1});
  EXPECT_EQ(r.out(), (Dims{2, 128, 12, 64}));
  OneNode r2("Reshape", {{-1, 128, 768}});
  r2.constant_input({-1, 768});
  EXPECT_EQ(r2.out(), (Dims{-1, 768}));  // unknown batch: the -1 stays unknown
  OneNode t("Transpose", {{2, 128, 12, 64}});
  t.ints("perm", {0, 2, 1, 3});
  EXPECT_EQ(t.out(), (Dims{2, 12, 128, 64}));
  OneNode u("Unsqueeze", {{128, 768}});
  u.constant_input({0, -1});
  EXPECT_EQ(u.out(), (Dims{1, 128, 768, 1}));
  OneNode sq("Squeeze", {{1, 128, 1}});
  EXPECT_EQ(sq.out(), (Dims{128}));
  OneNode cat("Concat", {{2, 3}, {2, 5}, {-1, 1}});
  cat.integer("axis", 1);
  EXPECT_EQ(cat.out(), (Dims{2, 9}));
  OneNode g("Gather", {{30522, 768}, {1, 128}});
  EXPECT_EQ(g.out(), (Dims{1, 128, 768}));
  OneNode red("ReduceMean", {{1, 128, 768}});
  red.ints("axes", {-1});
  EXPECT_EQ(red.out(), (Dims{1, 128, 1}));
  OneNode fl("Flatten", {{1, 2048, 1, 1}});
  EXPECT_EQ(fl.out(), (Dims{1, 2048}));
  OneNode sh("Shape", {{4, 5, 6}});
  EXPECT_EQ(sh.out(), (Dims{3}));
  OneNode bad("Reshape", {{2, 3, 5}});
  bad.constant_input({4, -1});
  expect_error([&] { bad.out(); }, {"cannot reshape 30"});
}

TEST(ShapeInference, DropoutHasTwoOutputsAndUnknownOpsAreListed) {
  OneNode d("Dropout", {{3, 4}}, 2);
  EXPECT_EQ(d.out(1), (Dims{3, 4}));
  OneNode q("QLinearConv", {{1, 3, 8, 8}});
  const auto rep = infer_shapes(q.g);
  ASSERT_EQ(rep.unknown_ops.size(), 1u);
  EXPECT_EQ(rep.unknown_ops[0], "QLinearConv");
  EXPECT_FALSE(q.n->outputs[0]->dims.has_value());
}

TEST(ShapeInference, MlpEndToEnd) {
  const std::string bytes = testing::serialize(testing::mlp_model());
  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), "mlp.onnx");
  const auto rep = infer_shapes(g);
  EXPECT_TRUE(rep.unknown_ops.empty());
  EXPECT_EQ(*g.find("h0")->dims, (Dims{-1, 16}));
  EXPECT_EQ(*g.find("h2")->dims, (Dims{-1, 16}));
  EXPECT_EQ(g.find("h2")->dtype, DType::f32);
  // The symbolic batch dim follows through MatMul, Add and Relu.
  EXPECT_EQ(g.find("h0")->shape_str(), "[batch, 16]");
  EXPECT_EQ(g.find("h2")->shape_str(), "[batch, 16]");
  EXPECT_EQ(g.find("y")->shape_str(), "[batch, 4]");
}

}  // namespace
}  // namespace sparta
