// Fusion and layout passes end to end: a model run with the passes must give
// what the same model gives op by op (ExecutorOptions::simplify = false), and
// the passes must have fired where the patterns are.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>

#include "frontend/onnx_import.h"
#include "onnx_models.h"
#include "runtime/executor.h"

namespace sparta {
namespace {

using namespace sparta::testing;

std::vector<float> randn(size_t n, uint32_t seed, float scale = 0.5f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

onnx::ModelProto new_model(const char* name) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("sparta-tests");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(14);
  m.mutable_graph()->set_name(name);
  return m;
}

void weight(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims, uint32_t seed) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  *g->add_initializer() = f32_tensor(name, dims, randn(n, seed));
}

void scalar(onnx::GraphProto* g, const std::string& name, float v) { *g->add_initializer() = f32_tensor(name, {}, {v}); }

// A ResNet-style block and a MobileNet-style tail: conv + relu, a residual
// add with relu, pooling, a depthwise conv, global pooling. Two outputs: the
// pooled features, and a blocked value read by an op that needs NCHW.
onnx::ModelProto conv_model() {
  auto m = new_model("convs");
  auto* g = m.mutable_graph();
  weight(g, "W1", {16, 4, 3, 3}, 1);
  weight(g, "B1", {16}, 2);
  weight(g, "W2", {16, 16, 1, 1}, 3);
  weight(g, "Wd", {16, 4, 1, 1}, 4);
  weight(g, "W3", {16, 1, 3, 3}, 5);
  weight(g, "B3", {16}, 6);
  // 4 input channels: fewer than a block, as an image's (oneDNN's blocked
  // convolutions take plain input only so)
  tensor_value(g->add_input(), "x", {"1", "4", "10", "10"});
  set_ints(add_node(g, "Conv", {"x", "W1", "B1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
  add_node(g, "Relu", {"c1"}, {"r1"}, "relu1");
  add_node(g, "Conv", {"r1", "W2"}, {"c2"}, "conv2");
  add_node(g, "Conv", {"x", "Wd"}, {"d"}, "down");
  add_node(g, "Add", {"c2", "d"}, {"s"}, "residual");
  add_node(g, "Relu", {"s"}, {"r2"}, "relu2");
  auto* mp = add_node(g, "MaxPool", {"r2"}, {"p"}, "pool");
  set_ints(mp, "kernel_shape", {3, 3});
  set_ints(mp, "strides", {2, 2});
  set_ints(mp, "pads", {1, 1, 1, 1});
  auto* dw = add_node(g, "Conv", {"p", "W3", "B3"}, {"c3"}, "depthwise");
  set_int(dw, "group", 16);
  set_ints(dw, "pads", {1, 1, 1, 1});
  add_node(g, "Add", {"c3", "p"}, {"s2"}, "residual2");  // no activation after it
  add_node(g, "GlobalAveragePool", {"s2"}, {"gap"}, "gap");
  add_node(g, "Flatten", {"gap"}, {"y"}, "flatten");
  add_node(g, "Sigmoid", {"r1"}, {"z"}, "needs_plain");
  tensor_value(g->add_output(), "y", {"1", "16"});
  tensor_value(g->add_output(), "z", {"1", "16", "10", "10"});
  return m;
}

// Conv -> BatchNormalization -> Relu, as exporters write it in training
// mode's structure (statistics as constants), and a BN whose statistics
// feed nothing else but which follows a conv that is read twice (kept).
onnx::ModelProto conv_bn_model() {
  auto m = new_model("conv_bn");
  auto* g = m.mutable_graph();
  weight(g, "W", {16, 8, 3, 3}, 31);
  weight(g, "B", {16}, 32);
  weight(g, "scale", {16}, 33);
  weight(g, "shift", {16}, 34);
  weight(g, "mean", {16}, 35);
  std::vector<float> var = randn(16, 36);
  for (float& v : var) v = v * v + 0.1f;  // positive
  *g->add_initializer() = f32_tensor("var", {16}, var);
  tensor_value(g->add_input(), "x", {"1", "8", "10", "10"});
  set_ints(add_node(g, "Conv", {"x", "W", "B"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  add_node(g, "BatchNormalization", {"c", "scale", "shift", "mean", "var"}, {"n"}, "bn");
  add_node(g, "Relu", {"n"}, {"y"}, "relu");
  add_node(g, "Conv", {"x", "W"}, {"c2"}, "conv_shared");
  add_node(g, "BatchNormalization", {"c2", "scale", "shift", "mean", "var"}, {"n2"}, "bn2");
  add_node(g, "Add", {"n2", "c2"}, {"z"}, "reads_conv_twice");
  tensor_value(g->add_output(), "y", {"1", "16", "10", "10"});
  tensor_value(g->add_output(), "z", {"1", "16", "8", "8"});
  return m;
}

// One post-LN transformer layer as PyTorch exports it: Q/K/V projections,
// head split by Reshape + Transpose, scaled scores, softmax, output
// projection with a residual, decomposed LayerNorm, an MLP with decomposed
// GELU. x is [2, 4, 16], 2 heads of 8.
onnx::ModelProto transformer_model() {
  auto m = new_model("layer");
  auto* g = m.mutable_graph();
  for (const char* p : {"q", "k", "v", "o"}) {
    weight(g, std::string("W") + p, {16, 16}, static_cast<uint32_t>(p[0]));
    weight(g, std::string("b") + p, {16}, static_cast<uint32_t>(p[0] + 1));
  }
  weight(g, "W1", {16, 32}, 20);
  weight(g, "b1", {32}, 21);
  weight(g, "W2", {32, 16}, 22);
  weight(g, "b2", {16}, 23);
  weight(g, "gamma", {16}, 24);
  weight(g, "beta", {16}, 25);
  *g->add_initializer() = i64_tensor("split", {4}, {2, 4, 2, 8});
  *g->add_initializer() = i64_tensor("merge", {3}, {2, 4, 16});
  scalar(g, "sqrt_d", std::sqrt(8.f));
  scalar(g, "two", 2.f);
  scalar(g, "eps", 1e-5f);
  scalar(g, "sqrt2", 1.41421356f);
  scalar(g, "one", 1.f);
  scalar(g, "half", 0.5f);
  tensor_value(g->add_input(), "x", {"2", "4", "16"});
  for (const char* p : {"q", "k", "v"}) {
    const std::string s(p);
    add_node(g, "MatMul", {"x", "W" + s}, {s + "0"}, s + "/MatMul");
    add_node(g, "Add", {"b" + s, s + "0"}, {s + "1"}, s + "/Add");
    add_node(g, "Reshape", {s + "1", "split"}, {s + "2"}, s + "/Reshape");
    set_ints(add_node(g, "Transpose", {s + "2"}, {s + "3"}, s + "/Transpose"), "perm",
             s == "k" ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 2, 1, 3});
  }
  add_node(g, "MatMul", {"q3", "k3"}, {"sc"}, "scores");
  add_node(g, "Div", {"sc", "sqrt_d"}, {"sc2"}, "scale");
  // An additive mask per batch row, broadcast over heads and query rows.
  *g->add_initializer() = f32_tensor("mask", {2, 1, 1, 4}, {0.f, 0.f, -1e4f, 0.f, 0.f, -1e4f, -1e4f, 0.f});
  add_node(g, "Add", {"sc2", "mask"}, {"sc3"}, "mask");
  set_int(add_node(g, "Softmax", {"sc3"}, {"pr"}, "softmax"), "axis", -1);
  add_node(g, "MatMul", {"pr", "v3"}, {"ctx"}, "context");
  set_ints(add_node(g, "Transpose", {"ctx"}, {"ctx2"}, "merge/Transpose"), "perm", {0, 2, 1, 3});
  add_node(g, "Reshape", {"ctx2", "merge"}, {"ctx3"}, "merge/Reshape");
  add_node(g, "MatMul", {"ctx3", "Wo"}, {"o0"}, "o/MatMul");
  add_node(g, "Add", {"bo", "o0"}, {"o1"}, "o/Add");
  add_node(g, "Add", {"x", "o1"}, {"h"}, "residual");
  set_ints(add_node(g, "ReduceMean", {"h"}, {"mu"}, "ln/ReduceMean"), "axes", {-1});
  add_node(g, "Sub", {"h", "mu"}, {"dev"}, "ln/Sub");
  add_node(g, "Pow", {"dev", "two"}, {"sq"}, "ln/Pow");
  set_ints(add_node(g, "ReduceMean", {"sq"}, {"var"}, "ln/ReduceMean_1"), "axes", {-1});
  add_node(g, "Add", {"var", "eps"}, {"ve"}, "ln/Add");
  add_node(g, "Sqrt", {"ve"}, {"sd"}, "ln/Sqrt");
  add_node(g, "Div", {"dev", "sd"}, {"nrm"}, "ln/Div");
  add_node(g, "Mul", {"nrm", "gamma"}, {"sc_"}, "ln/Mul");
  add_node(g, "Add", {"sc_", "beta"}, {"ln"}, "ln/Add_1");
  add_node(g, "MatMul", {"ln", "W1"}, {"f0"}, "f1/MatMul");
  add_node(g, "Add", {"b1", "f0"}, {"f1"}, "f1/Add");
  add_node(g, "Div", {"f1", "sqrt2"}, {"g0"}, "gelu/Div");
  add_node(g, "Erf", {"g0"}, {"g1"}, "gelu/Erf");
  add_node(g, "Add", {"g1", "one"}, {"g2"}, "gelu/Add");
  add_node(g, "Mul", {"f1", "g2"}, {"g3"}, "gelu/Mul");
  add_node(g, "Mul", {"g3", "half"}, {"g4"}, "gelu/Mul_1");
  add_node(g, "MatMul", {"g4", "W2"}, {"f2"}, "f2/MatMul");
  add_node(g, "Add", {"b2", "f2"}, {"y"}, "f2/Add");
  tensor_value(g->add_output(), "y", {"2", "4", "16"});
  return m;
}

// Linear layers whose epilogue is finished outside the kernel: a residual
// that broadcasts (r [4, 16] over [2, 4, 16]) before a Relu, and a Gemm
// with an empty K (Y = bias + residual).
onnx::ModelProto linear_edges_model() {
  auto m = new_model("linear_edges");
  auto* g = m.mutable_graph();
  weight(g, "W", {16, 16}, 41);
  weight(g, "b", {16}, 42);
  *g->add_initializer() = f32_tensor("W0", {0, 16}, {});
  weight(g, "b0", {16}, 43);
  tensor_value(g->add_input(), "x", {"2", "4", "16"});
  tensor_value(g->add_input(), "r", {"4", "16"});
  tensor_value(g->add_input(), "e", {"3", "0"});
  tensor_value(g->add_input(), "q", {"3", "16"});
  add_node(g, "MatMul", {"x", "W"}, {"h0"}, "fc");
  add_node(g, "Add", {"h0", "b"}, {"h1"}, "bias");
  add_node(g, "Add", {"h1", "r"}, {"h2"}, "residual");
  add_node(g, "Relu", {"h2"}, {"y"}, "relu");
  add_node(g, "Relu", {"q"}, {"qr"}, "intermediate");  // a residual the fused node may write into
  add_node(g, "Gemm", {"e", "W0", "b0"}, {"g0"}, "empty_k");
  add_node(g, "Add", {"g0", "qr"}, {"z"}, "residual_k0");
  tensor_value(g->add_output(), "y", {"2", "4", "16"});
  tensor_value(g->add_output(), "z", {"3", "16"});
  return m;
}

// Patterns that look fusable but are not: a residual that broadcasts into
// a blocked convolution's output, and a scalar of higher rank that grows
// the rank of a product. The passes must leave them alone (same answers).
onnx::ModelProto fusion_guards_model() {
  auto m = new_model("guards");
  auto* g = m.mutable_graph();
  weight(g, "W1", {8, 3, 3, 3}, 51);
  weight(g, "W2", {8, 8, 3, 3}, 52);
  *g->add_initializer() = f32_tensor("two", {1, 1, 1, 1}, {2.f});
  tensor_value(g->add_input(), "x", {"1", "3", "8", "8"});
  tensor_value(g->add_input(), "b", {"1", "8", "1", "1"});
  tensor_value(g->add_input(), "p", {"2", "3", "4"});
  tensor_value(g->add_input(), "q", {"2", "4", "5"});
  add_node(g, "Conv", {"x", "W1"}, {"c1"}, "conv1");
  set_ints(add_node(g, "Conv", {"c1", "W2"}, {"c2"}, "conv2"), "pads", {1, 1, 1, 1});
  add_node(g, "Add", {"c2", "b"}, {"y1"}, "broadcast_residual");
  add_node(g, "MatMul", {"p", "q"}, {"pq"}, "product");
  add_node(g, "Div", {"pq", "two"}, {"y2"}, "rank_growing_scale");
  tensor_value(g->add_output(), "y1", {"1", "8", "6", "6"});
  tensor_value(g->add_output(), "y2", {"1", "2", "3", "5"});
  return m;
}

// Runs the model with and without the passes on the same random input;
// returns the session with the passes.
std::unique_ptr<Executor> expect_same(const onnx::ModelProto& m, const std::map<std::string, Shape>& inputs,
                                     int threads, int layout_block = 0) {
  const std::string bytes = serialize(m);
  Executor plain(import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx"), {.threads = 1, .simplify = false});
  auto keep = std::make_unique<Executor>(import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx"),
                                        ExecutorOptions{.threads = threads, .layout_block = layout_block});
  std::map<std::string, Tensor> feeds;
  uint32_t seed = 99;
  for (const auto& [name, shape] : inputs) {
    Tensor x(DType::f32, shape);
    const auto v = randn(static_cast<size_t>(x.numel()), seed++, 1.f);
    std::copy(v.begin(), v.end(), x.data<float>());
    feeds[name] = x;
  }
  const auto want = plain.run(feeds);
  for (int rep = 0; rep < 2; ++rep) {  // twice: the second run reuses plans and buffers
    const auto got = keep->run(feeds);
    EXPECT_EQ(got.size(), want.size());
    for (size_t o = 0; o < got.size() && o < want.size(); ++o) {
      EXPECT_EQ(got[o].shape(), want[o].shape()) << "output " << o;
      if (got[o].shape() != want[o].shape()) continue;
      float scale = 0;
      for (int64_t i = 0; i < want[o].numel(); ++i) scale = std::max(scale, std::fabs(want[o].data<float>()[i]));
      for (int64_t i = 0; i < want[o].numel(); ++i)
        EXPECT_NEAR(got[o].data<float>()[i], want[o].data<float>()[i], 1e-5f * (1.f + scale))
            << "output " << o << " element " << i << " threads " << threads;
    }
  }
  return keep;
}

// Blocks of 8 and of 16 channels (nChw8c, nChw16c) and channels last
// (NHWC), whatever the host's.
TEST(Fusion, ConvBlocksMatchUnfused) {
  for (int block : {8, 16, -1})
    for (int threads : {1, 2}) {
      const auto s = expect_same(conv_model(), {{"x", Shape{1, 4, 10, 10}}}, threads, block);
      EXPECT_EQ(s->fuse_report().conv_residual, 2);
      EXPECT_EQ(s->fuse_report().conv_act, 1);
      EXPECT_EQ(s->layout_report().layout, block == 8 ? Layout::nchw8c : block == 16 ? Layout::nchw16c : Layout::nhwc);
      EXPECT_GE(s->layout_report().blocked, 4);
      // only for the Sigmoid (GlobalAveragePool reads blocked); NHWC also
      // reorders the plain input of the first convolution
      EXPECT_EQ(s->layout_report().reorders, block == -1 ? 2 : 1);
    }
}

// Channel counts that are not multiples of the block (a MobileNetV2
// block: 3 -> 24 -> 144 depthwise -> 24): every layout gives the same
// results and no convolution falls to oneDNN's reference code.
TEST(Fusion, NoLayoutLeavesAConvolutionOnReferenceCode) {
  auto m = new_model("mbv2");
  auto* g = m.mutable_graph();
  weight(g, "W1", {24, 3, 3, 3}, 1);
  weight(g, "W2", {144, 24, 1, 1}, 2);
  weight(g, "W3", {144, 1, 3, 3}, 3);
  weight(g, "W4", {24, 144, 1, 1}, 4);
  tensor_value(g->add_input(), "x", {"1", "3", "16", "16"});
  set_ints(add_node(g, "Conv", {"x", "W1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
  add_node(g, "Conv", {"c1", "W2"}, {"c2"}, "expand");
  auto* dw = add_node(g, "Conv", {"c2", "W3"}, {"c3"}, "depthwise");
  set_int(dw, "group", 144);
  set_ints(dw, "pads", {1, 1, 1, 1});
  add_node(g, "Conv", {"c3", "W4"}, {"c4"}, "project");
  add_node(g, "Add", {"c4", "c1"}, {"y"}, "residual");
  tensor_value(g->add_output(), "y", {"1", "24", "16", "16"});
  for (int block : {8, 16, -1}) {
    expect_same(m, {{"x", Shape{1, 3, 16, 16}}}, 1, block);
    const std::string bytes = serialize(m);
    Executor p(import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx"), {.profile = true, .layout_block = block});
    p.run({{"x", Tensor(DType::f32, Shape{1, 3, 16, 16})}});
    for (const auto& t : p.profile())
      EXPECT_EQ(t.impl.find("ref"), std::string::npos) << t.node << " runs " << t.impl << " under layout " << block;
  }
}

TEST(Fusion, LinearEpilogueEdges) {
  for (int threads : {1, 2}) {
    const auto s = expect_same(linear_edges_model(),
                               {{"x", Shape{2, 4, 16}}, {"r", Shape{4, 16}}, {"e", Shape{3, 0}}, {"q", Shape{3, 16}}},
                               threads);
    EXPECT_EQ(s->fuse_report().linear, 2);
  }
}

TEST(Fusion, ShapeChangingPatternsStayUnfused) {
  for (int threads : {1, 2}) {
    const auto s = expect_same(
        fusion_guards_model(),
        {{"x", Shape{1, 3, 8, 8}}, {"b", Shape{1, 8, 1, 1}}, {"p", Shape{2, 3, 4}}, {"q", Shape{2, 4, 5}}}, threads);
    EXPECT_EQ(s->fuse_report().conv_residual, 0);
    EXPECT_EQ(s->fuse_report().batch_matmul, 0);
  }
}

// Binary elementwise ops on tensors large enough to be split over threads
// (67 rows: the split falls inside a row), with every fast broadcast
// pattern (same shape, scalar, trailing block, value per row), against
// values computed here.
TEST(Elementwise, ThreadedBroadcastPatternsMatch) {
  auto m = new_model("binary");
  auto* g = m.mutable_graph();
  tensor_value(g->add_input(), "a", {"67", "1000"});
  tensor_value(g->add_input(), "b", {"67", "1000"});
  tensor_value(g->add_input(), "row", {"1000"});
  tensor_value(g->add_input(), "col", {"67", "1"});
  tensor_value(g->add_input(), "s", {});
  add_node(g, "Add", {"a", "b"}, {"full"}, "full");
  add_node(g, "Mul", {"s", "a"}, {"scalar"}, "scalar");
  add_node(g, "Sub", {"row", "a"}, {"suffix"}, "suffix");
  add_node(g, "Div", {"a", "col"}, {"prefix"}, "prefix");
  for (const char* o : {"full", "scalar", "suffix", "prefix"}) tensor_value(g->add_output(), o, {"67", "1000"});
  const std::string bytes = serialize(m);
  std::map<std::string, Tensor> feeds;
  uint32_t seed = 5;
  for (const auto& [name, shape] : std::map<std::string, Shape>{
           {"a", Shape{67, 1000}}, {"b", Shape{67, 1000}}, {"row", Shape{1000}}, {"col", Shape{67, 1}}, {"s", Shape{}}}) {
    Tensor t(DType::f32, shape);
    const auto v = randn(static_cast<size_t>(t.numel()), seed++, 1.f);
    std::copy(v.begin(), v.end(), t.data<float>());
    feeds[name] = t;
  }
  const float *a = feeds["a"].data<float>(), *b = feeds["b"].data<float>(), *row = feeds["row"].data<float>(),
              *col = feeds["col"].data<float>(), s = feeds["s"].data<float>()[0];
  for (int threads : {1, 2}) {
    Executor sess(import_onnx_bytes(bytes.data(), bytes.size(), "binary.onnx"), {.threads = threads});
    const auto out = sess.run(feeds);
    ASSERT_EQ(out.size(), 4u);
    for (int64_t i = 0; i < 67 * 1000; ++i) {
      const int64_t r = i / 1000, j = i % 1000;
      ASSERT_EQ(out[0].data<float>()[i], a[i] + b[i]) << i;
      ASSERT_EQ(out[1].data<float>()[i], s * a[i]) << i;
      ASSERT_EQ(out[2].data<float>()[i], row[j] - a[i]) << i;
      ASSERT_EQ(out[3].data<float>()[i], a[i] / col[r]) << i;
    }
  }
}

// A pruned linear layer (90% of its weights zero, in blocks of 32 output
// features) runs on a sparse kernel, chosen by measured time, with the same
// answers as the model run op by op.
TEST(Fusion, PrunedLinearRunsSparse) {
  auto m = new_model("pruned");
  auto* g = m.mutable_graph();
  const int64_t k = 512, n = 512;
  std::vector<float> w = randn(static_cast<size_t>(k * n), 61);
  std::mt19937 rng(62);
  std::bernoulli_distribution keep(0.1);
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t n0 = 0; n0 < n; n0 += 32)
      if (!keep(rng))
        for (int64_t j = 0; j < 32; ++j) w[static_cast<size_t>(kk * n + n0 + j)] = 0.f;
  *g->add_initializer() = f32_tensor("W", {k, n}, w);
  weight(g, "b", {n}, 63);
  tensor_value(g->add_input(), "x", {"64", "512"});
  add_node(g, "MatMul", {"x", "W"}, {"h"}, "fc");
  add_node(g, "Add", {"h", "b"}, {"y"}, "bias");
  tensor_value(g->add_output(), "y", {"64", "512"});
  const auto s = expect_same(m, {{"x", Shape{64, 512}}}, 1);
  const std::string bytes = serialize(m);
  Executor prof(import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx"), {.threads = 1, .profile = true});
  Tensor x(DType::f32, Shape{64, 512});
  prof.run({{"x", x}});
  ASSERT_EQ(prof.profile().size(), 1u);
  // A BSR kernel: a template one (bsr_spmm_*) or one generated for it (jit_bsr_*).
  EXPECT_NE(prof.profile()[0].impl.find("bsr_"), std::string::npos) << prof.profile()[0].impl;
}

// A feature pyramid's top-down path (Resize nearest x2 added to a lateral
// convolution, Max and Mul with scalars, Concat along channels, a linear
// Resize by sizes) and a
// squeeze-and-excitation scaling (GlobalAveragePool, 1x1 convolution,
// HardSigmoid, per-channel Mul): in every blocked layout these run on the
// blocked data, so only the image input and the output are reordered.
onnx::ModelProto pyramid_model() {
  auto m = new_model("pyramid");
  auto* g = m.mutable_graph();
  weight(g, "Wa", {16, 4, 3, 3}, 51);
  weight(g, "Wb", {16, 4, 1, 1}, 52);
  weight(g, "Wse", {32, 32, 1, 1}, 53);
  weight(g, "Wc", {8, 32, 3, 3}, 54);
  *g->add_initializer() = f32_tensor("up2", {4}, {1, 1, 2, 2});
  *g->add_initializer() = f32_tensor("roi", {0}, {});
  *g->add_initializer() = i64_tensor("half", {4}, {1, 32, 6, 6});
  tensor_value(g->add_input(), "x", {"1", "4", "12", "12"});
  auto* a = add_node(g, "Conv", {"x", "Wa"}, {"a"}, "top");
  set_ints(a, "pads", {1, 1, 1, 1});
  set_ints(a, "strides", {2, 2});
  add_node(g, "Resize", {"a", "roi", "up2"}, {"up"}, "upsample");  // nearest
  add_node(g, "Conv", {"x", "Wb"}, {"b"}, "lateral");
  add_node(g, "Add", {"up", "b"}, {"s0"}, "merge");
  scalar(g, "floor", -0.25f);
  scalar(g, "half_scale", 0.5f);
  add_node(g, "Max", {"s0", "floor"}, {"s1"}, "floor_at");  // scalars combine with blocked data too
  add_node(g, "Mul", {"half_scale", "s1"}, {"s"}, "halve");
  auto* cat = add_node(g, "Concat", {"s", "b"}, {"cat"}, "concat");
  set_int(cat, "axis", 1);
  add_node(g, "GlobalAveragePool", {"cat"}, {"gap"}, "squeeze");
  add_node(g, "Conv", {"gap", "Wse"}, {"e"}, "excite");
  add_node(g, "HardSigmoid", {"e"}, {"gate"}, "gate");
  add_node(g, "Mul", {"cat", "gate"}, {"scaled"}, "scale");
  auto* lin = add_node(g, "Resize", {"scaled", "roi", "", "half"}, {"down"}, "downsample");
  auto* mode = lin->add_attribute();
  mode->set_name("mode");
  mode->set_type(onnx::AttributeProto::STRING);
  mode->set_s("linear");
  set_ints(add_node(g, "Conv", {"down", "Wc"}, {"y"}, "head"), "pads", {1, 1, 1, 1});
  tensor_value(g->add_output(), "y", {"1", "8", "6", "6"});
  return m;
}

TEST(Fusion, PyramidRunsBlockedWithoutReorders) {
  for (int block : {8, 16, -1}) {
    SCOPED_TRACE(block);
    const auto s = expect_same(pyramid_model(), {{"x", Shape{1, 4, 12, 12}}}, 1, block);
    // NHWC: the image in; every layout: the output out (a reorder of a
    // [N, C, 1, 1] value copies nothing: the bytes are the same)
    int reorders = 0, plain = 0;
    for (const auto& n : s->graph().nodes()) {
      if (n->op_type == "Reorder") reorders += (*n->inputs[0]->dims)[2] * (*n->inputs[0]->dims)[3] > 1;
      if (n->op_type == "Resize" || n->op_type == "Concat" || n->op_type == "Mul" || n->op_type == "Max")
        plain += n->outputs[0]->layout == Layout::plain;
    }
    EXPECT_LE(reorders, 2) << s->graph().dump();
    EXPECT_EQ(plain, 0);
  }
}

// Every activation oneDNN takes as a post-op fuses into the convolution
// before it, 2-D and 1-D (a 1-D convolution runs as a 2-D one of height 1).
TEST(Fusion, ConvPostOpActivationsMatchUnfused) {
  struct Act {
    const char* op;
    std::vector<std::pair<const char*, float>> attrs;
  };
  const std::vector<Act> acts = {{"Relu", {}},
                                 {"LeakyRelu", {{"alpha", 0.1f}}},
                                 {"HardSigmoid", {{"alpha", 0.3f}, {"beta", 0.4f}}},
                                 {"HardSwish", {}},
                                 {"Sigmoid", {}},
                                 {"Tanh", {}}};
  for (const Act& a : acts)
    for (int rank : {4, 3}) {
      auto m = new_model("conv_act");
      auto* g = m.mutable_graph();
      weight(g, "W", rank == 4 ? std::vector<int64_t>{16, 8, 3, 3} : std::vector<int64_t>{16, 8, 3}, 41);
      weight(g, "B", {16}, 42);
      tensor_value(g->add_input(), "x", rank == 4 ? std::vector<std::string>{"2", "8", "9", "9"}
                                                  : std::vector<std::string>{"2", "8", "9"});
      auto* cv = add_node(g, "Conv", {"x", "W", "B"}, {"c"}, "conv");
      set_ints(cv, "pads", rank == 4 ? std::vector<int64_t>{1, 1, 1, 1} : std::vector<int64_t>{1, 1});
      auto* act = add_node(g, a.op, {"c"}, {"y"}, "act");
      for (const auto& [k, v] : a.attrs) {
        auto* at = act->add_attribute();
        at->set_name(k);
        at->set_type(onnx::AttributeProto::FLOAT);
        at->set_f(v);
      }
      tensor_value(g->add_output(), "y", rank == 4 ? std::vector<std::string>{"2", "16", "9", "9"}
                                                   : std::vector<std::string>{"2", "16", "9"});
      SCOPED_TRACE(std::string(a.op) + " rank " + std::to_string(rank));
      const auto s = expect_same(m, {{"x", rank == 4 ? Shape{2, 8, 9, 9} : Shape{2, 8, 9}}}, 1);
      EXPECT_EQ(s->fuse_report().conv_act, 1);
    }
}

// Affine maps by constants after convolutions, as Paddle2ONNX writes its
// learnable affine blocks: before the activation they fold into the
// weights (scalar and per-channel Mul, Add, Sub, Div; c - conv negates),
// after it or after a residual sum they become a post-op; a full-size
// constant is no per-channel map and stays a node.
onnx::ModelProto conv_affine_model() {
  auto m = new_model("conv_affine");
  auto* g = m.mutable_graph();
  weight(g, "W1", {16, 8, 3, 3}, 71);
  weight(g, "B1", {16}, 72);
  weight(g, "W2", {16, 8, 3}, 73);
  weight(g, "W3", {8, 8, 1, 1}, 74);
  weight(g, "per4", {1, 16, 1, 1}, 75);
  std::vector<float> div = randn(16, 76);
  for (float& v : div) v = 0.5f + v * v;  // no zero
  *g->add_initializer() = f32_tensor("per3", {16, 1, 1}, div);
  weight(g, "full", {1, 16, 9, 9}, 77);
  scalar(g, "s", 1.5f);
  scalar(g, "b", -0.25f);
  scalar(g, "s2", 0.75f);
  scalar(g, "b2", 0.5f);
  tensor_value(g->add_input(), "x", {"2", "8", "9", "9"});
  tensor_value(g->add_input(), "t", {"2", "8", "9"});
  set_ints(add_node(g, "Conv", {"x", "W1", "B1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
  add_node(g, "Mul", {"s", "c1"}, {"a1"}, "lab_scale");
  add_node(g, "Add", {"a1", "b"}, {"a2"}, "lab_bias");
  add_node(g, "Sub", {"a2", "per4"}, {"a3"}, "center");
  add_node(g, "Div", {"a3", "per3"}, {"a4"}, "normalize");
  add_node(g, "HardSwish", {"a4"}, {"h"}, "act");
  add_node(g, "Mul", {"h", "s2"}, {"h2"}, "lab_scale2");
  add_node(g, "Add", {"b2", "h2"}, {"y1"}, "lab_bias2");
  set_ints(add_node(g, "Conv", {"t", "W2"}, {"c2"}, "conv1d"), "pads", {1, 1});
  add_node(g, "Sub", {"b", "c2"}, {"n2"}, "negate");
  add_node(g, "Relu", {"n2"}, {"r2"}, "relu");
  add_node(g, "Sub", {"r2", "s"}, {"y2"}, "shift");
  add_node(g, "Conv", {"x", "W3"}, {"c3"}, "conv_res");
  add_node(g, "Add", {"c3", "x"}, {"sum"}, "residual");
  add_node(g, "Div", {"sum", "s"}, {"y3"}, "scale_sum");
  set_ints(add_node(g, "Conv", {"x", "W1"}, {"c4"}, "conv_full"), "pads", {1, 1, 1, 1});
  add_node(g, "Mul", {"c4", "full"}, {"y4"}, "full_size");
  tensor_value(g->add_output(), "y1", {"2", "16", "9", "9"});
  tensor_value(g->add_output(), "y2", {"2", "16", "9"});
  tensor_value(g->add_output(), "y3", {"2", "8", "9", "9"});
  tensor_value(g->add_output(), "y4", {"2", "16", "9", "9"});
  return m;
}

TEST(Fusion, AffineMapsFoldIntoConv) {
  for (int block : {0, 8, 16, -1}) {
    SCOPED_TRACE(block);
    const auto s = expect_same(conv_affine_model(), {{"x", Shape{2, 8, 9, 9}}, {"t", Shape{2, 8, 9}}}, 1, block);
    const FuseReport& r = s->fuse_report();
    EXPECT_EQ(r.conv_affine, 5);       // Mul, Add, Sub, Div; the negation
    EXPECT_EQ(r.conv_post_linear, 4);  // Mul, Add; Sub after Relu; Div after the residual sum
    std::map<std::string, int> ops;
    for (const auto& n : s->graph().nodes()) ++ops[n->op_type];
    EXPECT_EQ(ops["Mul"], 1);  // the full-size one
    EXPECT_EQ(ops["Add"] + ops["Sub"] + ops["Div"] + ops["HardSwish"] + ops["Relu"], 0) << s->graph().dump();
  }
}

TEST(Fusion, BatchNormFoldsIntoConv) {
  for (int threads : {1, 2}) {
    const auto s = expect_same(conv_bn_model(), {{"x", Shape{1, 8, 10, 10}}}, threads);
    EXPECT_EQ(s->fuse_report().conv_bn, 1);
    int bn = 0;
    for (const auto& n : s->graph().nodes()) bn += n->op_type == "BatchNormalization";
    EXPECT_EQ(bn, 1);  // the one after the conv read twice stays
  }
}

TEST(Fusion, TransformerLayerMatchesUnfused) {
  for (int threads : {1, 2}) {
    const auto s = expect_same(transformer_model(), {{"x", Shape{2, 4, 16}}}, threads);
    const FuseReport& r = s->fuse_report();
    EXPECT_EQ(r.gelu, 1);
    EXPECT_EQ(r.layer_norm, 1);
    EXPECT_EQ(r.linear, 6);
    EXPECT_EQ(r.batch_matmul, 2);
    EXPECT_EQ(r.masked_softmax, 1);
    std::map<std::string, int> ops;
    for (const auto& n : s->graph().nodes()) ++ops[n->op_type];
    EXPECT_EQ(ops["Linear"], 6);
    EXPECT_EQ(ops["BatchMatMul"], 2);
    EXPECT_EQ(ops["Transpose"], 0);  // all folded into strides
    EXPECT_EQ(ops["Erf"], 0);
    EXPECT_EQ(ops["ReduceMean"], 0);
  }
}

// A pruned head (its rows of the output projection zero) is cut from Q, K,
// V, both attention products, the softmax and O, through the reshapes;
// the layer computes what it computed.
TEST(Fusion, PrunedAttentionHeadsAreCut) {
  auto m = transformer_model();
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.name() != "Wo") continue;
    std::string raw = t.raw_data();
    float* w = reinterpret_cast<float*>(raw.data());
    for (int r = 0; r < 8; ++r)  // head 0: input features 0-7 of O
      for (int c = 0; c < 16; ++c) w[r * 16 + c] = 0.f;
    t.set_raw_data(raw);
  }
  for (int threads : {1, 2}) {
    const auto s = expect_same(m, {{"x", Shape{2, 4, 16}}}, threads);
    EXPECT_EQ(s->pipeline().heads.attentions, 1);
    EXPECT_EQ(s->pipeline().heads.heads, 1);
    for (const auto& n : s->graph().nodes())
      if (n->op_type == "Linear" && (n->name == "q/MatMul" || n->name == "k/MatMul" || n->name == "v/MatMul"))
        EXPECT_EQ(n->inputs[1]->constant->shape(), Shape({16, 8})) << n->name;
  }
  // Every head alive: nothing is cut.
  EXPECT_EQ(expect_same(transformer_model(), {{"x", Shape{2, 4, 16}}}, 1)->pipeline().heads.attentions, 0);
}

}  // namespace
}  // namespace sparta
