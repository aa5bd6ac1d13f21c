// The graph runtime end to end on a small model, and its input checking.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "frontend/onnx_import.h"
#include "graph_builders.h"
#include "onnx_models.h"
#include "ops/op_def.h"
#include "formats/formats.h"
#include "kernels/spmm.h"
#include "runtime/compiled_model.h"
#include "runtime/executor.h"
#include "test_util.h"

namespace sparta {
namespace {

using testing::expect_error;

Graph mlp_graph() {
  const std::string bytes = testing::serialize(testing::mlp_model());
  return import_onnx_bytes(bytes.data(), bytes.size(), "mlp.onnx");
}

TEST(Executor, MlpMatchesAHandComputation) {
  Graph g = mlp_graph();
  const Tensor w1 = *g.find("W1")->constant, b1 = *g.find("b1")->constant, w2 = *g.find("W2")->constant;
  Executor plain(mlp_graph(), {.threads = 1, .profile = true, .simplify = false});
  Executor s(std::move(g), {.threads = 1, .profile = true});
  Tensor x(DType::f32, Shape{3, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.1f * static_cast<float>(i % 11) - 0.4f;
  const std::vector<Tensor> out = s.run({{"x", x}});
  const std::vector<Tensor> out_plain = plain.run({{"x", x}});
  ASSERT_EQ(out_plain.size(), 1u);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape(), (Shape{3, 4}));
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t j = 0; j < 4; ++j) {
      double y = 0;
      for (int64_t h = 0; h < 16; ++h) {
        double a = b1.data<float>()[h];
        for (int64_t k = 0; k < 8; ++k) a += double(x.data<float>()[r * 8 + k]) * w1.data<float>()[k * 16 + h];
        y += std::max(a, 0.0) * w2.data<float>()[h * 4 + j];
      }
      EXPECT_NEAR(out[0].data<float>()[r * 4 + j], y, 1e-5);
      EXPECT_NEAR(out_plain[0].data<float>()[r * 4 + j], y, 1e-5);
    }
  // MatMul + Add + Relu became one Linear, and the last MatMul another.
  ASSERT_EQ(plain.profile().size(), 4u);
  EXPECT_EQ(plain.profile()[0].op, "MatMul");
  ASSERT_EQ(s.profile().size(), 2u);
  EXPECT_EQ(s.profile()[0].op, "Linear");
  EXPECT_EQ(s.fuse_report().linear, 2);
}

TEST(Executor, BadInputsAreOneClearError) {
  Executor s(mlp_graph());
  Tensor x(DType::f32, Shape{2, 8});
  expect_error([&] { s.run({}); }, {"missing input 'x'", "[batch, 8]"});
  expect_error([&] { s.run({{"x", x}, {"extra", x}}); }, {"'extra' is not an input"});
  expect_error([&] { s.run({{"x", Tensor(DType::i64, Shape{2, 8})}}); }, {"input 'x' must be f32", "i64"});
  expect_error([&] { s.run({{"x", Tensor(DType::f32, Shape{2, 9})}}); }, {"input 'x' must have shape [batch, 8]", "[2, 9]"});
  EXPECT_NO_THROW(s.run({{"x", x}}));
}

TEST(Executor, UnsupportedOperatorNamesOpNodeAndOpset) {
  auto m = testing::mlp_model();
  m.mutable_graph()->mutable_node(2)->set_op_type("FancyRelu");
  const std::string bytes = testing::serialize(m);
  expect_error([&] { Executor s(import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx")); },
               {"unsupported operator 'FancyRelu'", "node 'relu1'", "opset 13"});
}

TEST(Executor, OpErrorsNameTheNode) {
  auto m = testing::mlp_model();
  // W2 replaced by a [15, 4] weight: the MatMul's inner dimensions disagree,
  // which shape inference finds when the session is made.
  *m.mutable_graph()->mutable_initializer(2) = testing::f32_tensor("W2", {15, 4}, std::vector<float>(60, 0.f));
  const std::string bytes = testing::serialize(m);
  expect_error([&] { Executor s(import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx")); },
               {"node 'fc2' (MatMul)", "16 vs 15"});
  // Unchecked until run time (no passes): the fused kernel is not involved.
  Executor s(import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx"), {.simplify = false});
  expect_error([&] { s.run({{"x", Tensor(DType::f32, Shape{1, 8})}}); }, {"node 'fc2' (MatMul)", "16 vs 15"});
}

TEST(Executor, StaleDeclaredShapesAreNotTrusted) {
  // x[batch, 8] -> Relu -> h; Reshape(h, Shape(h)) -> y, with value_info
  // still declaring h as [1, 8] (the input was made dynamic after export).
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(14);
  auto* g = m.mutable_graph();
  g->set_name("stale");
  testing::tensor_value(g->add_input(), "x", {"batch", "8"});
  testing::add_node(g, "Relu", {"x"}, {"h"}, "relu");
  testing::add_node(g, "Shape", {"h"}, {"s"}, "shape");
  testing::add_node(g, "Reshape", {"h", "s"}, {"y"}, "reshape");
  testing::tensor_value(g->add_value_info(), "h", {"1", "8"});
  testing::tensor_value(g->add_output(), "y", {"batch", "8"});
  const std::string bytes = testing::serialize(m);
  Executor s(import_onnx_bytes(bytes.data(), bytes.size(), "stale.onnx"));
  Tensor x(DType::f32, Shape{3, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i) - 10.f;
  const auto out = s.run({{"x", x}});
  ASSERT_EQ(out[0].shape(), (Shape{3, 8}));
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(out[0].data<float>()[i], std::max(0.f, x.data<float>()[i]));
}

// A weight 98% zeros in 32x1 blocks gets a sparse kernel (it measures far
// faster); with sparse = false (--dense) every weight gets a dense one and
// nothing is propagated or shrunk.
TEST(Executor, DenseTurnsSparsityOff) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (bool sparse : {true, false}) {
    Graph g;
    Value* x = g.add_value("x");
    x->dtype = DType::f32;
    x->dims = std::vector<int64_t>{64, 512};
    g.inputs.push_back(x);
    Tensor w(DType::f32, Shape{512, 512});
    for (int64_t k = 0; k < 512; ++k)
      for (int64_t b = 0; b < 16; ++b) {
        const bool keep = (k * 16 + b) % 50 == 0;
        for (int64_t j = 0; j < 32; ++j) w.data<float>()[k * 512 + b * 32 + j] = keep ? u(rng) : 0.f;
      }
    Value* wv = g.add_value("w");
    wv->dtype = DType::f32;
    wv->dims = std::vector<int64_t>{512, 512};
    wv->constant = w;
    Node* n = g.add_node("MatMul", "mm");
    n->inputs = {x, wv};
    n->outputs = {g.add_value("y")};
    g.outputs = {n->outputs[0]};
    g.opsets[""] = 17;
    g.link();
    Executor s(std::move(g), {.profile = true, .sparse = sparse});
    s.run({{"x", Tensor(DType::f32, Shape{64, 512})}});
    ASSERT_EQ(s.profile().size(), 1u);
    EXPECT_EQ(s.profile()[0].impl.find("spmm") != std::string::npos, sparse) << s.profile()[0].impl;
    EXPECT_EQ(s.propagation_report().rounds > 0, sparse);
  }
}

TEST(Executor, EveryRegisteredOpIsListed) {
  const auto ops = supported_ops();
  for (const char* op : {"MatMul", "Gemm", "Add", "Relu", "Softmax", "Reshape", "Transpose", "Gather", "Where",
                         "LayerNormalization", "Erf", "Cast", "Concat", "Constant"})
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
}

}  // namespace
}  // namespace sparta

namespace sparta {
namespace {

// A weight pruned in 32x1 blocks plus a sprinkle of single elements (a
// fine-tuned block-pruned model) is unstructured to pattern analysis; its
// plan also measures decompositions (block cover + remainder, threshold
// from measured costs) and runs whichever is fastest, correctly.
TEST(Executor, MixedPatternWeightsMeasureDecompositions) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::bernoulli_distribution block(0.15), extra(0.01);
  const int64_t m = 16, k = 128, n = 256;
  Tensor w(DType::f32, Shape{k, n});  // MatMul's [K, N]: blocks of 32 outputs x 1 input
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t b = 0; b < n; b += 32) {
      const bool keep = block(rng);
      for (int64_t j = b; j < b + 32; ++j)
        if (keep || extra(rng)) w.data<float>()[kk * n + j] = u(rng);
    }
  Graph g;
  g.outputs = {testing::add_op(g, "MatMul", {testing::add_input(g, "x", {m, k}), testing::add_constant(g, "W", w)}, "y")
                   ->outputs[0]};
  g.opsets[""] = 17;
  g.link();
  Executor e(std::move(g), {});
  const std::optional<PlanRecord> r = e.model().plans[0]->record();
  ASSERT_TRUE(r);
  bool decomposed = false;
  for (const Candidate& c : r->candidates) decomposed |= c.kernel.rfind("decomposed bsr 32x1 + csr", 0) == 0;
  EXPECT_TRUE(decomposed) << "no decomposition measured";
  Tensor xt(DType::f32, Shape{m, k});
  for (int64_t i = 0; i < xt.numel(); ++i) xt.data<float>()[i] = u(rng);
  const Tensor y = e.run({{"x", xt}})[0];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double want = 0;
      for (int64_t kk = 0; kk < k; ++kk) want += double(xt.data<float>()[i * k + kk]) * w.data<float>()[kk * n + j];
      ASSERT_NEAR(y.data<float>()[i * n + j], want, 1e-4) << r->kernel;
    }
}

// Every Linear's plan made the generated CSR kernel of the host's ISA (what
// a measured choice usually is for these weights); false on a host
// without AVX2. Returns with the plans unlinked.
bool force_generated_csr(CompiledModel& cm) {
  if (host_isa() == Isa::portable) return false;
  for (size_t i = 0; i < cm.graph.nodes().size(); ++i) {
    const Node& nd = *cm.graph.nodes()[i];
    if (nd.op_type != "Linear") continue;
    const Tensor& w = *nd.inputs[1]->constant;
    Tensor wnk(DType::f32, Shape{w.dim(1), w.dim(0)});
    weight_to_nk(w.data<float>(), w.dim(1), w.dim(0), true, wnk.data<float>());
    std::ostringstream packed;
    save(pack_csr(wnk, Tesa::from_zeros(wnk)), packed);
    PlanRecord r{.kernel = "jit_csr_" + std::string(isa_name(host_isa())), .packed_kind = PlanRecord::Packed::format,
                 .packed = Bytes::of(packed.str()), .held_inputs = {1}};
    cm.plans[i] = cm.defs[i]->load_plan(nd, r, {});
  }
  return true;
}

// y[i][j] = b[j] + sum_k x[i][k] w[k][j], in double.
std::vector<double> reference_linear(const std::vector<double>& x, int64_t m, int64_t k, const Tensor& w, const Tensor& b) {
  const int64_t n = w.dim(1);
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double a = b.data<float>()[j];
      for (int64_t q = 0; q < k; ++q) a += x[static_cast<size_t>(i * k + q)] * w.data<float>()[q * n + j];
      y[static_cast<size_t>(i * n + j)] = a;
    }
  return y;
}

// x W + b as MatMul and Add (which the fusion pass makes a sparta.Linear).
Value* add_linear(Graph& g, Value* x, const std::string& name, const Tensor& w, const Tensor& b) {
  Node* mm = testing::add_op(g, "MatMul", {x, testing::add_constant(g, name + "_w", w)}, name + "0");
  return testing::add_op(g, "Add", {mm->outputs[0], testing::add_constant(g, name + "_b", b)}, name)->outputs[0];
}

// y within 1e-4 (relative, above 1) of the double-precision want.
void expect_close(const Tensor& y, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(y.numel(), static_cast<int64_t>(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(y.data<float>()[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << what << " at " << i;
}

// Two pruned products in a row, both with a generated CSR kernel of one
// tile width: the first hands its activation to the second packed (no
// transposed store, no packing), at the compiled M and at other M.
TEST(Executor, PackedHandoffBetweenProducts) {
  std::mt19937 rng(21);
  const int64_t k = 96, h = 160, n = 48;
  const Tensor w1 = testing::random_tensor({k, h}, rng, 0.1), w2 = testing::random_tensor({h, n}, rng, 0.1);
  const Tensor b1 = testing::random_tensor({h}, rng), b2 = testing::random_tensor({n}, rng);
  Graph g;
  Value* x = testing::add_input(g, "x", {-1, k});
  x->dim_names = {"batch", ""};
  g.outputs = {add_linear(g, add_linear(g, x, "h", w1, b1), "y", w2, b2)};
  g.opsets[""] = 17;
  g.link();
  CompiledModel cm = compile_model(std::move(g), {.threads = 1, .shapes = {{"x", {64, k}}}});
  if (!force_generated_csr(cm)) GTEST_SKIP() << "generated kernels need AVX2";
  EXPECT_EQ(link_packed_handoffs(cm), 1);
  Executor e(std::move(cm), {});
  for (int64_t m : {int64_t{64}, int64_t{1}, int64_t{33}, int64_t{100}}) {
    Tensor xt = testing::random_tensor({m, k}, rng);
    const Tensor y = e.run({{"x", xt}})[0];
    ASSERT_EQ(y.shape(), Shape({m, n}));
    const std::vector<double> x(xt.data<float>(), xt.data<float>() + xt.numel());
    expect_close(y, reference_linear(reference_linear(x, m, k, w1, b1), m, h, w2, b2), "m=" + std::to_string(m));
  }
}

// One input read by two products (as Q, K and V read theirs): the second
// reuses the first's packing of it within a run, and never across runs
// (new X, same storage size) or models.
TEST(Executor, SharedInputIsPackedOncePerRun) {
  std::mt19937 rng(22);
  const int64_t m = 40, k = 64, n = 80;
  const Tensor w1 = testing::random_tensor({k, n}, rng, 0.2), w2 = testing::random_tensor({k, n}, rng, 0.2);
  const Tensor b1 = testing::random_tensor({n}, rng), b2 = testing::random_tensor({n}, rng);
  Graph g;
  Value* x = testing::add_input(g, "x", {m, k});
  g.outputs = {add_linear(g, x, "q", w1, b1), add_linear(g, x, "k", w2, b2)};
  g.opsets[""] = 17;
  g.link();
  CompiledModel cm = compile_model(std::move(g), {.threads = 2});
  if (!force_generated_csr(cm)) GTEST_SKIP() << "generated kernels need AVX2";
  Executor e(std::move(cm), {.threads = 2});
  for (int rep = 0; rep < 3; ++rep) {
    Tensor xt = testing::random_tensor({m, k}, rng);
    const std::vector<Tensor> ys = e.run({{"x", xt}});
    const std::vector<double> xd(xt.data<float>(), xt.data<float>() + xt.numel());
    expect_close(ys[0], reference_linear(xd, m, k, w1, b1), "run " + std::to_string(rep) + " q");
    expect_close(ys[1], reference_linear(xd, m, k, w2, b2), "run " + std::to_string(rep) + " k");
  }
}

}  // namespace
}  // namespace sparta
