// Compiled models: a `.sparta` file loads into a session that computes
// exactly what the compiled session computed, measures nothing, keeps
// weights the plans hold out of the file, and every corrupt, truncated or
// mismatched file is one sparta::Error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "analysis/shape_inference.h"
#include "formats/formats.h"
#include "kernels/onednn_kernels.h"
#include "ops/op_def.h"
#include "runtime/artifact.h"
#include "runtime/executor.h"
#include "graph_builders.h"
#include "test_util.h"

namespace sparta {
namespace {

using Dims = std::vector<int64_t>;

using testing::add_constant;
using testing::add_input;
using testing::add_op;
using testing::random_tensor;

Value* constant(Graph& g, const std::string& name, Tensor t) { return add_constant(g, name, std::move(t)); }
Value* op(Graph& g, const std::string& type, std::vector<Value*> in, const std::string& out) {
  return add_op(g, type, std::move(in), out)->outputs[0];
}
Value* input(Graph& g, const std::string& name, Dims d) { return add_input(g, name, std::move(d)); }

// x[8, 64] -> MatMul W1 (90% of its 32x1 blocks zero) -> Add b1 -> Relu
// -> MatMul W2 (unstructured, 70% zero) -> Add b2 -> MatMul W3 (dense)
Graph mlp() {
  Graph g;
  std::mt19937 rng(5);
  Tensor w1 = random_tensor({64, 64}, rng);
  std::bernoulli_distribution keep_block(0.1);
  for (int64_t k = 0; k < 64; ++k)
    for (int64_t b = 0; b < 2; ++b)
      if (!keep_block(rng))
        for (int64_t j = 0; j < 32; ++j) w1.data<float>()[k * 64 + b * 32 + j] = 0.f;
  Value* h = op(g, "MatMul", {input(g, "x", {8, 64}), constant(g, "W1", std::move(w1))}, "h1");
  h = op(g, "Relu", {op(g, "Add", {h, constant(g, "b1", random_tensor({64}, rng))}, "h1b")}, "h1r");
  h = op(g, "MatMul", {h, constant(g, "W2", random_tensor({64, 48}, rng, 0.3))}, "h2");
  h = op(g, "Add", {h, constant(g, "b2", random_tensor({48}, rng))}, "h2b");
  g.outputs = {op(g, "MatMul", {h, constant(g, "W3", random_tensor({48, 16}, rng))}, "y")};
  g.opsets[""] = 17;
  g.link();
  return g;
}

// x[1, 16, 8, 8] -> Conv (some output channels zero) -> BN -> Relu -> Conv
// -> Add x (residual) -> MaxPool: channel-blocked layouts on the way.
Graph convnet() {
  Graph g;
  std::mt19937 rng(9);
  Tensor w1 = random_tensor({16, 16, 3, 3}, rng);
  for (int64_t c : {1, 4, 5})
    for (int64_t i = 0; i < 16 * 9; ++i) w1.data<float>()[c * 16 * 9 + i] = 0.f;
  Value* x = input(g, "x", {1, 16, 8, 8});
  auto pads = [&](Value* v) {
    Attribute a;
    a.kind = Attribute::Kind::is;
    a.is = {1, 1, 1, 1};
    v->producer = nullptr;
    return a;
  };
  Value* c1 = op(g, "Conv", {x, constant(g, "W1", std::move(w1))}, "c1");
  Tensor var(DType::f32, Shape{16});
  for (int64_t i = 0; i < 16; ++i) var.data<float>()[i] = 1.f;
  Value* bn = op(g, "BatchNormalization", {c1, constant(g, "s", random_tensor({16}, rng)), constant(g, "sh", random_tensor({16}, rng)),
                                           constant(g, "m", random_tensor({16}, rng)), constant(g, "v", var)}, "bn");
  Value* c2 = op(g, "Conv", {op(g, "Relu", {bn}, "r"), constant(g, "W2", random_tensor({16, 16, 3, 3}, rng))}, "c2");
  Value* y = op(g, "MaxPool", {op(g, "Add", {c2, x}, "res")}, "y");
  for (const auto& n : g.nodes()) {
    if (n->op_type == "Conv") n->attrs["pads"] = pads(n->outputs[0]);
    if (n->op_type == "MaxPool") {
      Attribute k;
      k.kind = Attribute::Kind::is;
      k.is = {2, 2};
      n->attrs["kernel_shape"] = k;
      n->attrs["strides"] = k;
    }
  }
  g.outputs = {y};
  g.opsets[""] = 17;
  g.link();
  return g;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("sparta_artifact_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

CompiledModel load_image(const std::string& bytes) {
  auto keep = std::make_shared<std::string>(bytes);
  return load_compiled_bytes(keep, reinterpret_cast<const uint8_t*>(keep->data()), keep->size(), 1, "image");
}

void expect_same(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].shape(), b[i].shape());
    for (int64_t e = 0; e < a[i].numel(); ++e) ASSERT_EQ(a[i].data<float>()[e], b[i].data<float>()[e]) << "output " << i << " element " << e;
  }
}

// Compiles g, saves, loads; the loaded session must run the same kernels
// and give bit-identical outputs, without measuring anything.
void round_trip(Graph g, const std::map<std::string, Tensor>& feeds, int layout_block = 0) {
  ChoiceCache::global().set_folder("");
  CompiledModel m = compile_model(std::move(g), {.threads = 1, .layout_block = layout_block}, "test");
  const std::string path = temp_path("rt.sparta");
  save_compiled(m, path);
  std::vector<std::string> kernels;
  for (const auto& p : m.plans) kernels.push_back(p ? p->kernel() : "");
  Executor compiled(std::move(m), {});
  const std::vector<Tensor> want = compiled.run(feeds);

  ChoiceCache::global().reset_stats();
  CompiledModel l = load_compiled(path);
  EXPECT_EQ(ChoiceCache::global().stats().measured, 0) << "loading measured a kernel";
  EXPECT_EQ(ChoiceCache::global().stats().misses, 0) << "loading asked for a kernel choice";
  ASSERT_EQ(l.plans.size(), kernels.size());
  for (size_t i = 0; i < kernels.size(); ++i) EXPECT_EQ(l.plans[i] ? l.plans[i]->kernel() : "", kernels[i]) << "node " << i;
  // Weights held by plans are in the file as shapes only.
  for (const auto& v : l.graph.values())
    if (v->constant && !v->constant->defined() && v->constant->numel() > 0) {
      for (const Node* n : v->consumers) {
        size_t ni = 0;
        while (l.graph.nodes()[ni].get() != n) ++ni;
        ASSERT_TRUE(l.plans[ni]) << v->name;
        ASSERT_TRUE(l.plans[ni]->record()) << v->name;
      }
    }
  Executor loaded(std::move(l), {});
  expect_same(want, loaded.run(feeds));
  // Twice: plans made on the first run are reused.
  expect_same(want, loaded.run(feeds));
  std::filesystem::remove(path);
}

TEST(Artifact, MlpRoundTripsBitExactly) {
  std::mt19937 rng(1);
  round_trip(mlp(), {{"x", random_tensor({8, 64}, rng)}});
}

TEST(Artifact, ConvNetRoundTripsInEveryLayout) {
  std::mt19937 rng(2);
  const Tensor x = random_tensor({1, 16, 8, 8}, rng);
  for (int block : {8, 16, -1}) round_trip(convnet(), {{"x", x}}, block);
}

TEST(Artifact, ElidesWeightsHeldByTheirPlans) {
  ChoiceCache::global().set_folder("");
  CompiledModel m = compile_model(mlp(), {}, "test");
  const std::string path = temp_path("elide.sparta");
  save_compiled(m, path);
  CompiledModel l = load_compiled(path);
  int held = 0;
  for (size_t ni = 0; ni < m.plans.size(); ++ni)
    if (m.plans[ni] && m.plans[ni]->record() && m.plans[ni]->record()->packed_kind != PlanRecord::Packed::none) ++held;
  int elided = 0;
  for (const auto& v : l.graph.values()) elided += v->constant && !v->constant->defined();
  EXPECT_EQ(elided, held);
  EXPECT_GT(held, 0);
  // The file is smaller than the weights it would otherwise carry.
  std::filesystem::remove(path);
}

TEST(Artifact, PromisesSurviveAndAreChecked) {
  Graph g = mlp();
  infer_shapes(g);
  Tesa promise(Shape{8, 64}, ElemCode::bits32);
  for (int64_t i = 0; i < 8; ++i) promise.set(i * 64 + 3, ElemCode::pruned);  // column 3 of x is zero
  g.find("x")->tesa = promise;
  CompiledModel m = compile_model(std::move(g), {.keep_promises = true}, "test");
  const std::string path = temp_path("promise.sparta");
  save_compiled(m, path);
  Executor s(load_compiled(path), {.check_tesa = true});
  std::mt19937 rng(3);
  Tensor x = random_tensor({8, 64}, rng);
  for (int64_t i = 0; i < 8; ++i) x.data<float>()[i * 64 + 3] = 0.f;
  EXPECT_NO_THROW(s.run({{"x", x}}));
  x.data<float>()[5 * 64 + 3] = 1.f;
  testing::expect_error([&] { s.run({{"x", x}}); }, {"--check-tesa", "'x'", "element 323"});
  std::filesystem::remove(path);
}

TEST(Artifact, OnednnPackedWeightLoadsInPlace) {
  std::mt19937 rng(4);
  const Tensor w = random_tensor({96, 80}, rng);  // [N, K]
  for (bool prepacked : {true, false}) {
    OnednnDenseKernel k(96, 80, std::vector<float>(w.data<float>(), w.data<float>() + w.numel()), prepacked);
    k.prepare_rows(12);
    const PackedWeight pw = *k.packed_weight();
    const std::string copy = pw.data.str();  // as a file would hold it
    auto loaded = OnednnDenseKernel::from_packed(96, 80, prepacked, PackedWeight{pw.params, Bytes::of(copy)});
    const Tensor x = random_tensor({12, 80}, rng);
    Tensor y1(DType::f32, Shape{12, 96}), y2(DType::f32, Shape{12, 96});
    k(x, y1, Tensor(), Activation::gelu, 1);
    (*loaded)(x, y2, Tensor(), Activation::gelu, 1);
    expect_same({y1}, {y2});
    // A descriptor that is not the one this oneDNN makes is refused.
    std::string bad = pw.params;
    bad[bad.size() / 2] ^= 0x5a;
    testing::expect_error([&] { OnednnDenseKernel::from_packed(96, 80, prepacked, PackedWeight{bad, Bytes::of(copy)}); },
                          {"compile the model again"});
    testing::expect_error([&] { OnednnDenseKernel::from_packed(96, 80, prepacked, PackedWeight{pw.params, Bytes::of(copy.substr(4))}); },
                          {"bytes"});
  }
}

// A saved sparse choice loads as that kernel on that packed weight, and
// computes what the dense weight computes; a packed weight of another
// shape is refused.
TEST(Artifact, SavedSparseChoiceLoadsAsThatKernel) {
  Graph g = mlp();
  infer_shapes(g);
  const Node& n = *g.nodes()[0];  // MatMul x W1, W1 [K=64, N=64] block-sparse
  const Tensor& w = *n.inputs[1]->constant;
  Tensor wnk(DType::f32, Shape{64, 64});
  weight_to_nk(w.data<float>(), 64, 64, true, wnk.data<float>());
  std::ostringstream packed;
  save(pack_bsr(wnk, Tesa::from_zeros(wnk), {32, 1}), packed);
  PlanRecord r{.kernel = "bsr_spmm_nvec__portable", .packed_kind = PlanRecord::Packed::format,
               .packed = Bytes::of(packed.str()), .held_inputs = {1}};
  const OpDef* def = find_op_def(n);
  auto plan = def->load_plan(n, r, {});
  EXPECT_EQ(plan->kernel(), "bsr_spmm_nvec__portable");
  std::ostringstream other;
  save(pack_bsr(Tensor(DType::f32, Shape{32, 64}), Tesa(Shape{32, 64}, ElemCode::pruned), {32, 1}), other);
  r.packed = Bytes::of(other.str());
  testing::expect_error([&] { def->load_plan(n, r, {}); }, {"the saved weight is [32, 64]"});
  r.packed = Bytes::of(packed.str().substr(0, 20));
  EXPECT_THROW(def->load_plan(n, r, {}), Error);
  // A generated kernel is generated again for the saved pattern (on every
  // host ISA it was made for that this host runs).
  for (Isa isa : host_isas()) {
    if (isa == Isa::portable) continue;
    r.kernel = "jit_bsr_" + std::string(isa_name(isa));
    r.packed = Bytes::of(packed.str());
    EXPECT_EQ(def->load_plan(n, r, {})->kernel(), r.kernel);
  }
}

// x[batch, 6] -> MatMul W[6, 8] -> h; Reshape(h, Concat(Shape(h)[0:1], [2, 4]))
// -> y[batch, 2, 4]: the usual shape arithmetic of a dynamic export.
Graph dynamic_model() {
  Graph g;
  std::mt19937 rng(8);
  Value* x = input(g, "x", {-1, 6});
  x->dim_names = {"batch", ""};
  Value* h = op(g, "MatMul", {x, constant(g, "W", random_tensor({6, 8}, rng, 0.3))}, "h");
  Value* shape = op(g, "Shape", {h}, "shape");
  Tensor starts(DType::i64, Shape{1}), ends(DType::i64, Shape{1}), tail(DType::i64, Shape{2});
  ends.data<int64_t>()[0] = 1;
  tail.data<int64_t>()[0] = 2;
  tail.data<int64_t>()[1] = 4;
  Value* lead = op(g, "Slice", {shape, constant(g, "s0", starts), constant(g, "s1", ends)}, "lead");
  Node* cat = g.add_node("Concat", "target");
  cat->inputs = {lead, constant(g, "tail", tail)};
  cat->outputs = {g.add_value("target")};
  Attribute axis;
  axis.kind = Attribute::Kind::i;
  cat->attrs["axis"] = axis;
  g.outputs = {op(g, "Reshape", {h, cat->outputs[0]}, "y")};
  g.opsets[""] = 17;
  g.link();
  return g;
}

TEST(Artifact, BoundShapesPlanAndStillRunAtOtherShapes) {
  ChoiceCache::global().set_folder("");
  CompiledModel m = compile_model(dynamic_model(), {.shapes = {{"x", {4, 6}}}}, "dyn");
  EXPECT_EQ(m.compiled_shapes.at("x"), (Dims{4, 6}));
  EXPECT_EQ(*m.graph.find("x")->dims, (Dims{-1, 6}));  // symbolic again
  EXPECT_EQ(m.graph.find("x")->dim_names[0], "batch");
  int shape_nodes = 0, planned = 0;
  for (size_t i = 0; i < m.graph.nodes().size(); ++i) {
    shape_nodes += m.graph.nodes()[i]->op_type == "Shape";
    planned += m.plans[i] != nullptr;
  }
  EXPECT_EQ(shape_nodes, 1) << "shape arithmetic folded into a constant";
  EXPECT_EQ(planned, 1) << "the product was not planned at the bound shape";
  EXPECT_EQ(*m.graph.find("y")->dims, (Dims{4, 2, 4}));  // known to the passes
  const std::string path = temp_path("dyn.sparta");
  save_compiled(m, path);
  Executor s(load_compiled(path), {});
  std::mt19937 rng(9);
  for (int64_t batch : {4, 1, 7}) {
    const Tensor x = random_tensor({batch, 6}, rng);
    const std::vector<Tensor> y = s.run({{"x", x}});
    ASSERT_EQ(y[0].shape(), Shape({batch, 2, 4}));
    const Tensor want = Executor(dynamic_model(), {.simplify = false}).run({{"x", x}})[0];
    for (int64_t i = 0; i < want.numel(); ++i) EXPECT_NEAR(y[0].data<float>()[i], want.data<float>()[i], 1e-5);
  }
  std::filesystem::remove(path);
  testing::expect_error([] { compile_model(dynamic_model(), {.shapes = {{"z", {1, 6}}}}); }, {"'z' is not an input"});
  testing::expect_error([] { compile_model(dynamic_model(), {.shapes = {{"x", {1, 6, 1}}}}); }, {"rank 2"});
  testing::expect_error([] { compile_model(dynamic_model(), {.shapes = {{"x", {1, 5}}}}); }, {"extent 6 in dim 1"});
}

// Float attributes keep their bits, Inf and NaN included (JSON has neither).
TEST(Artifact, FloatAttributesKeepTheirBits) {
  ChoiceCache::global().set_folder("");
  Graph g = dynamic_model();
  Attribute f;
  f.kind = Attribute::Kind::f;
  f.f = INFINITY;
  Attribute fs;
  fs.kind = Attribute::Kind::fs;
  fs.fs = {-INFINITY, NAN, -0.f, 1e-40f};
  for (const auto& n : g.nodes())
    if (n->op_type == "Reshape") n->attrs["test_f"] = f, n->attrs["test_fs"] = fs;
  const std::string path = temp_path("floats.sparta");
  save_compiled(compile_model(std::move(g), {}, "test"), path);
  const CompiledModel l = load_compiled(path);
  int seen = 0;
  for (const auto& n : l.graph.nodes()) {
    if (!n->attr("test_fs")) continue;
    ++seen;
    EXPECT_TRUE(std::isinf(n->attr("test_f")->f));
    const auto& got = n->attr("test_fs")->fs;
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0], -INFINITY);
    EXPECT_TRUE(std::isnan(got[1]));
    EXPECT_TRUE(std::signbit(got[2]));
    EXPECT_EQ(got[3], 1e-40f);
  }
  EXPECT_EQ(seen, 1);
  std::filesystem::remove(path);
}

class ArtifactBytes : public ::testing::Test {
 protected:
  void SetUp() override {
    ChoiceCache::global().set_folder("");
    const std::string path = temp_path("bytes.sparta");
    save_compiled(compile_model(mlp(), {}, "test"), path);
    image_ = read_file(path);
    std::filesystem::remove(path);
  }
  std::string image_;
};

TEST_F(ArtifactBytes, HeaderProblemsAreNamed) {
  EXPECT_NO_THROW(load_image(image_));
  testing::expect_error([&] { load_image(image_.substr(0, image_.size() - 1)); }, {"image", "truncated"});
  testing::expect_error([&] { load_image(image_.substr(0, 40)); }, {"truncated"});
  testing::expect_error([&] { load_image(image_ + "x"); }, {"after its end"});
  testing::expect_error([&] { load_image("GARBAGE!" + image_.substr(8)); }, {"not a compiled sparta model"});
  std::string v = image_;
  v[8] = 7;  // format version 7
  testing::expect_error([&] { load_image(v); }, {"format version 7", "compile the model again"});
  std::string flip = image_;
  flip[flip.size() / 2] ^= 1;
  testing::expect_error([&] { load_image(flip); }, {"checksum"});
  testing::expect_error([&] { load_compiled(temp_path("missing.sparta")); }, {"cannot open"});
}

// The image with its metadata changed by f (in place: it must still fit
// before the data section), resealed.
std::string rewrite_meta(const std::string& image, const std::function<void(nlohmann::json&)>& f) {
  uint64_t meta_size, data_offset;
  std::memcpy(&meta_size, image.data() + 32, 8);
  std::memcpy(&data_offset, image.data() + 40, 8);
  nlohmann::json j = nlohmann::json::parse(image.substr(64, meta_size));
  f(j);
  const std::string text = j.dump();
  EXPECT_LE(64 + text.size(), data_offset);
  std::string out = image;
  std::fill(out.begin() + 64, out.begin() + static_cast<std::ptrdiff_t>(data_offset), '\0');
  std::copy(text.begin(), text.end(), out.begin() + 64);
  const uint64_t n = text.size();
  std::memcpy(out.data() + 32, &n, 8);
  reseal_artifact(reinterpret_cast<uint8_t*>(out.data()), out.size());
  return out;
}

TEST_F(ArtifactBytes, HostMismatchesAreHandled) {
  EXPECT_NO_THROW(load_image(rewrite_meta(image_, [](nlohmann::json&) {})));
  testing::expect_error([&] { load_image(rewrite_meta(image_, [](nlohmann::json& j) { j["host"]["isa"] = "avx1024"; })); },
                        {"unknown ISA 'avx1024'"});
  if (host_isa() != Isa::avx512)
    testing::expect_error([&] { load_image(rewrite_meta(image_, [](nlohmann::json& j) { j["host"]["isa"] = "avx512"; })); },
                          {"compiled for avx512", "compile the model again on this host"});
  // Another CPU model: loads (with a warning), choices measured there.
  EXPECT_NO_THROW(load_image(rewrite_meta(image_, [](nlohmann::json& j) { j["host"]["cpu"] = "another cpu"; })));
  // Structure that the checksum cannot catch once resealed.
  testing::expect_error([&] { load_image(rewrite_meta(image_, [](nlohmann::json& j) { j["graph"]["nodes"][0]["op"] = "NoSuchOp"; })); },
                        {"unsupported operator 'NoSuchOp'"});
  testing::expect_error([&] { load_image(rewrite_meta(image_, [](nlohmann::json& j) { j["graph"]["outputs"][0] = 999; })); },
                        {"value index 999 out of range"});
  testing::expect_error([&] {
    load_image(rewrite_meta(image_, [](nlohmann::json& j) {
      for (auto& v : j["graph"]["values"])
        if (v.contains("constant")) v["constant"]["offset"] = uint64_t{1} << 40;
    }));
  }, {"outside the data section"});
  testing::expect_error([&] {
    load_image(rewrite_meta(image_, [](nlohmann::json& j) {
      for (auto& n : j["graph"]["nodes"]) n.erase("plan");  // weights stored as shapes, now read by nobody's plan
    }));
  }, {"stored without data"});
  // A saved choice is never measured again: a product's plan cannot be
  // marked for planning at load instead.
  testing::expect_error([&] {
    load_image(rewrite_meta(image_, [](nlohmann::json& j) {
      for (auto& n : j["graph"]["nodes"])
        if (n.contains("plan")) {
          n.erase("plan");
          n["replan"] = true;
        }
    }));
  }, {"plans are loaded, not made"});
  // Numbers that are not integers where integers belong (1e30 would be an
  // out-of-range cast).
  testing::expect_error([&] {
    load_image(rewrite_meta(image_, [](nlohmann::json& j) {
      for (auto& v : j["graph"]["values"])
        if (v.contains("constant") && v["constant"].contains("offset")) v["constant"]["offset"] = 1e30;
    }));
  }, {"expected an integer"});
  testing::expect_error([&] { load_image(rewrite_meta(image_, [](nlohmann::json& j) { j["options"]["threads"] = 5000; })); },
                        {"threads: 5000 outside"});
}

// Every single-byte change, truncation or extension of a valid file is an
// error (the checksum); with the checksum made valid again, changes inside
// the metadata and data must still be one sparta::Error or a model that
// loads, never a crash.
TEST_F(ArtifactBytes, MutationsNeverCrash) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<size_t> pos(0, image_.size() - 1);
  for (int i = 0; i < 200; ++i) {
    std::string m = image_;
    const size_t p = pos(rng);
    m[p] = static_cast<char>(m[p] ^ (1 + rng() % 255));
    EXPECT_THROW(load_image(m), Error) << "byte " << p;
  }
  // Resealed: the metadata is where the structure is; mutate it mostly.
  size_t meta_size;
  std::memcpy(&meta_size, image_.data() + 32, 8);
  std::uniform_int_distribution<size_t> meta_pos(64, 64 + meta_size - 1);
  int loaded = 0, refused = 0;
  for (int i = 0; i < 400; ++i) {
    std::string m = image_;
    for (int k = 0; k < 1 + i % 3; ++k) {
      const size_t p = i % 4 == 3 ? pos(rng) : meta_pos(rng);
      const char repl[] = {'0', '9', '-', '"', '{', ']', ',', 'x', '1', '\0'};
      m[p] = i % 2 ? repl[rng() % sizeof repl] : static_cast<char>(m[p] ^ (1 + rng() % 255));
    }
    reseal_artifact(reinterpret_cast<uint8_t*>(m.data()), m.size());
    try {
      load_image(m);
      ++loaded;
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(loaded + refused, 400);
}

}  // namespace
}  // namespace sparta
