// The pruners (prune/): every pattern's masks have the pattern sparta's
// analysis recognizes, the sparsity asked, and keep the largest units;
// channel ties follow residual adds, concats and depthwise convolutions;
// an ONNX model comes back pruned and its spec reproduces it; bad options
// and models are errors, never crashes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <unistd.h>

#include "analysis/channel_ties.h"
#include "analysis/shape_inference.h"
#include "core/error.h"
#include "core/pattern.h"
#include "core/tesa.h"
#include "frontend/onnx_import.h"
#include "frontend/tesa_spec.h"
#include "onnx_models.h"
#include "prune/onnx_prune.h"

namespace sparta {
namespace {

using prune::Layer;
using prune::Options;
using prune::Pattern;

Layer random_layer(const std::string& name, int64_t rows, int64_t cols, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, scale);
  Layer l;
  l.name = name;
  l.rows = rows, l.cols = cols;
  l.w.resize(size_t(rows * cols));
  for (auto& v : l.w) v = nd(rng);
  return l;
}

Options opts(Pattern p, double s) {
  Options o;
  o.pattern = p;
  if (p != Pattern::nm) o.sparsity = s;
  return o;
}

double density(const std::vector<uint8_t>& m) {
  double k = 0;
  for (uint8_t v : m) k += v;
  return m.empty() ? 0 : k / double(m.size());
}

Tesa tesa(const Layer& l, const std::vector<uint8_t>& m) { return Tesa::from_mask(Shape({l.rows, l.cols}), m); }

TEST(Prune, UnstructuredKeepsTheLargest) {
  for (double s : {0.0, 0.3, 0.7, 0.9, 0.99}) {
    const Layer l = random_layer("w", 64, 96, 1);
    const auto m = prune::compute_masks({l}, opts(Pattern::unstructured, s))[0];
    EXPECT_EQ(std::count(m.begin(), m.end(), 0), std::llround(s * 64 * 96)) << s;
    float min_kept = INFINITY, max_pruned = 0;
    for (size_t i = 0; i < m.size(); ++i)
      (m[i] ? min_kept : max_pruned) = m[i] ? std::min(min_kept, std::abs(l.w[i])) : std::max(max_pruned, std::abs(l.w[i]));
    EXPECT_GE(min_kept, max_pruned) << s;
  }
}

TEST(Prune, BlocksAreWholeAndBySize) {
  for (BlockShape b : {BlockShape{32, 1}, BlockShape{1, 32}, BlockShape{4, 4}, BlockShape{2, 3}}) {
    Options o = opts(Pattern::block, 0.75);
    o.block = b;
    for (prune::Norm n : {prune::Norm::l1, prune::Norm::l2}) {
      o.norm = n;
      const Layer l = random_layer("w", 64, 96, 2);
      const auto m = prune::compute_masks({l}, o)[0];
      EXPECT_TRUE(satisfies_block(tesa(l, m), b)) << b.str();
      EXPECT_NEAR(density(m), 0.25, 1e-9) << b.str();
    }
  }
  Options o = opts(Pattern::block, 0.5);
  o.block = {3, 1};
  std::string why;
  EXPECT_FALSE(prune::fits(o, random_layer("w", 64, 96, 3), why));
  EXPECT_NE(why.find("3x1 blocks do not divide [64, 96]"), std::string::npos) << why;
  EXPECT_THROW(prune::compute_masks({random_layer("w", 64, 96, 3)}, o), Error);
}

TEST(Prune, NmKeepsTheLargestOfEachGroup) {
  for (NmShape nm : {NmShape{2, 4}, NmShape{1, 4}, NmShape{4, 8}, NmShape{3, 3}}) {
    Options o = opts(Pattern::nm, 0);
    o.nm = nm;
    const Layer l = random_layer("w", 16, 48, 4);
    const auto m = prune::compute_masks({l}, o)[0];
    EXPECT_TRUE(satisfies_nm(tesa(l, m), nm)) << nm.str();
    EXPECT_NEAR(density(m), double(nm.n) / nm.m, 1e-9);
    for (size_t g = 0; g < m.size(); g += size_t(nm.m)) {
      float min_kept = INFINITY, max_pruned = 0;
      for (size_t i = g; i < g + size_t(nm.m); ++i)
        if (m[i]) min_kept = std::min(min_kept, std::abs(l.w[i]));
        else max_pruned = std::max(max_pruned, std::abs(l.w[i]));
      EXPECT_GE(min_kept, max_pruned);
    }
  }
  Options o = opts(Pattern::nm, 0);
  o.sparsity = 0.7;  // contradicts 2:4
  EXPECT_THROW(o.validate(), Error);
}

TEST(Prune, TilewiseTilesShareTheirColumns) {
  for (int g : {16, 32, 24}) {
    Options o = opts(Pattern::tilewise, 0.75);
    o.tile = g;
    const Layer l = random_layer("w", 96, 64, 5);
    const auto m = prune::compute_masks({l}, o)[0];
    EXPECT_TRUE(satisfies_tilewise(tesa(l, m), g)) << g;
    EXPECT_NEAR(density(m), 0.25, double(g) / (96 * 64)) << g;
  }
  // Whole rows first, then tiles of the surviving rows, then a remainder.
  Options o = opts(Pattern::tilewise, 0.75);
  o.tile = 16;
  o.tile_row_share = 0.4;
  o.remainder = 0.05;
  const Layer l = random_layer("w", 96, 64, 6);
  const auto m = prune::compute_masks({l}, o)[0];
  int zero_rows = 0;
  for (int64_t r = 0; r < 96; ++r) zero_rows += std::none_of(m.begin() + r * 64, m.begin() + (r + 1) * 64, [](uint8_t v) { return v; });
  EXPECT_NEAR(zero_rows, std::llround(0.4 * 0.75 * 96), 1);
  EXPECT_NEAR(density(m), 0.25, 0.01);
}

TEST(Prune, GlobalScopeOneThresholdAndMinDensity) {
  const Layer small = random_layer("small", 32, 32, 7, 0.01f), big = random_layer("big", 32, 32, 8, 1.f);
  Options o = opts(Pattern::unstructured, 0.5);
  o.scope = prune::Scope::global;
  auto m = prune::compute_masks({small, big}, o);
  EXPECT_LT(density(m[0]), 0.1);  // the small weights go first
  EXPECT_GT(density(m[1]), 0.9);
  EXPECT_NEAR((density(m[0]) + density(m[1])) / 2, 0.5, 1.0 / 2048);
  o.min_density = 0.3;
  m = prune::compute_masks({small, big}, o);
  EXPECT_GE(density(m[0]), 0.3 - 1e-9);
  EXPECT_NEAR((density(m[0]) + density(m[1])) / 2, 0.5, 1.0 / 2048);
  // Blocks globally: the same, by block.
  o = opts(Pattern::block, 0.5);
  o.scope = prune::Scope::global;
  o.block = {4, 1};
  m = prune::compute_masks({small, big}, o);
  EXPECT_TRUE(satisfies_block(tesa(small, m[0]), {4, 1}));
  EXPECT_LT(density(m[0]), density(m[1]));
}

TEST(Prune, GradientsGiveFirstOrderScores) {
  Layer l = random_layer("w", 8, 8, 9);
  l.grad.assign(l.w.size(), 1.f);
  l.w[0] = 100.f;
  l.grad[0] = 0.f;  // the largest weight, but the loss does not care
  const auto m = prune::compute_masks({l}, opts(Pattern::unstructured, 0.5))[0];
  EXPECT_EQ(m[0], 0);
}

TEST(Prune, EdgeCases) {
  // One element: never pruned away; sparsity 0 keeps all; a zero weight.
  EXPECT_EQ(prune::compute_masks({random_layer("w", 1, 1, 1)}, opts(Pattern::unstructured, 0.99))[0][0], 1);
  EXPECT_EQ(density(prune::compute_masks({random_layer("w", 5, 7, 1)}, opts(Pattern::unstructured, 0.0))[0]), 1.0);
  Layer z = random_layer("z", 8, 8, 1);
  std::fill(z.w.begin(), z.w.end(), 0.f);
  EXPECT_NEAR(density(prune::compute_masks({z}, opts(Pattern::unstructured, 0.5))[0]), 0.5, 1e-9);
  for (double s : {1.0, -0.1, double(NAN), 2.0}) EXPECT_THROW(opts(Pattern::unstructured, s).validate(), Error) << s;
  Options none;
  none.pattern = Pattern::block;
  EXPECT_THROW(none.validate(), Error);  // --sparsity is required
  EXPECT_THROW(prune::parse_pattern("diagonal"), Error);
  EXPECT_THROW(prune::parse_scope("model"), Error);
}

// Random layers, patterns and options: masks of the right size, the
// sparsity within one unit, at least one unit kept, never a crash.
TEST(Prune, PropertyRandomOptions) {
  std::mt19937 rng(11);
  const Pattern pats[] = {Pattern::unstructured, Pattern::block, Pattern::nm, Pattern::tilewise};
  for (int it = 0; it < 300; ++it) {
    Options o = opts(pats[rng() % 4], double(rng() % 100) / 100.0);
    o.scope = rng() % 2 ? prune::Scope::global : prune::Scope::layer;
    o.block = {int(1 + rng() % 8), int(1 + rng() % 8)};
    o.nm = {int(1 + rng() % 4), int(4 + rng() % 5)};
    o.tile = int(1 + rng() % 40);
    o.min_density = rng() % 3 ? 0.0 : 0.2;
    std::vector<Layer> ls;
    for (int i = 0, n = int(1 + rng() % 3); i < n; ++i) {
      Layer l = random_layer("l" + std::to_string(i), int64_t(1 + rng() % 40), int64_t(1 + rng() % 40), rng());
      std::string why;
      if (prune::fits(o, l, why)) ls.push_back(std::move(l));
    }
    if (ls.empty()) continue;
    const auto m = prune::compute_masks(ls, o);
    ASSERT_EQ(m.size(), ls.size());
    for (size_t i = 0; i < ls.size(); ++i) {
      ASSERT_EQ(m[i].size(), ls[i].w.size());
      EXPECT_GT(density(m[i]), 0) << "iteration " << it;
      const Tesa t = tesa(ls[i], m[i]);
      if (o.pattern == Pattern::block) {
        EXPECT_TRUE(satisfies_block(t, o.block));
      } else if (o.pattern == Pattern::nm) {
        EXPECT_TRUE(satisfies_nm(t, o.nm));
      } else if (o.pattern == Pattern::tilewise) {
        EXPECT_TRUE(satisfies_tilewise(t, o.tile));
      }
    }
  }
}

Graph residual_graph() {
  const std::string bytes = testing::serialize(testing::residual_cnn_model());
  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), "residual");
  infer_shapes(g);
  return g;
}

TEST(ChannelTies, ResidualConcatDepthwise) {
  Graph g = residual_graph();
  const auto ws = prunable_weights(g);
  ASSERT_EQ(ws.size(), 6u);
  const ChannelTies t = analyze_channel_ties(g, ws);
  const auto &a = t.units.at("WA"), &b = t.units.at("WB"), &dw = t.units.at("Wdw"), &c = t.units.at("WC"),
             &d = t.units.at("WD"), &fc = t.units.at("Wfc");
  EXPECT_EQ(a, b);   // the residual Add
  EXPECT_EQ(a, dw);  // depthwise: channel c in, channel c out
  std::set<int64_t> ids(a.begin(), a.end());
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_EQ(std::count(a.begin(), a.end(), -1), 0);
  for (int64_t u : c) EXPECT_TRUE(u >= 0 && !ids.count(u));
  for (int64_t u : d) EXPECT_GE(u, 0);  // read by pooling and the classifier only
  for (int64_t u : fc) EXPECT_EQ(u, -1);  // the model's output
  EXPECT_TRUE(ws[2].depthwise);
  EXPECT_EQ(ws[0].bias ? ws[0].bias->name : "", "bA");
}

TEST(ChannelTies, MixingOperatorsPin) {
  // The MLP: fc1's channels go through Add(bias) and Relu into fc2 (free);
  // fc2's are the output (pinned).
  const std::string bytes = testing::serialize(testing::mlp_model());
  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), "mlp");
  infer_shapes(g);
  const auto ws = prunable_weights(g);
  ASSERT_EQ(ws.size(), 2u);
  EXPECT_EQ(ws[0].bias ? ws[0].bias->name : "", "b1");
  const ChannelTies t = analyze_channel_ties(g, ws);
  for (int64_t u : t.units.at("W1")) EXPECT_GE(u, 0);
  for (int64_t u : t.units.at("W2")) EXPECT_EQ(u, -1);
}

TEST(ChannelTies, FlattenKeepsChannelRuns) {
  // x[1, 2, 4, 4] -> Conv (4) -> Flatten [1, 64] -> Gemm (3): the conv's
  // channels are runs of 16 inputs of the Gemm, free to go.
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  *g->add_initializer() = testing::f32_tensor("Wc", {4, 2, 3, 3}, std::vector<float>(72, 0.5f));
  *g->add_initializer() = testing::f32_tensor("Wf", {3, 64}, std::vector<float>(192, 0.25f));
  testing::tensor_value(g->add_input(), "x", {"1", "2", "4", "4"});
  testing::set_ints(testing::add_node(g, "Conv", {"x", "Wc"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  testing::add_node(g, "Flatten", {"c"}, {"f"}, "flatten");
  testing::set_int(testing::add_node(g, "Gemm", {"f", "Wf"}, {"y"}, "fc"), "transB", 1);
  testing::tensor_value(g->add_output(), "y", {"1", "3"});
  const std::string bytes = testing::serialize(m);
  Graph gr = import_onnx_bytes(bytes.data(), bytes.size(), "flatten");
  infer_shapes(gr);
  const ChannelTies t = analyze_channel_ties(gr, prunable_weights(gr));
  for (int64_t u : t.units.at("Wc")) EXPECT_GE(u, 0);
  for (int64_t u : t.units.at("Wf")) EXPECT_EQ(u, -1);
}

std::map<std::string, Tensor> weights(const std::string& bytes) {
  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), "m");
  std::map<std::string, Tensor> out;
  for (const auto& v : g.values())
    if (v->is_constant()) out[v->name] = *v->constant;
  return out;
}

std::vector<int64_t> zero_rows(const Tensor& t) {
  std::vector<int64_t> z;
  const int64_t rows = t.dim(0), per = t.numel() / rows;
  for (int64_t r = 0; r < rows; ++r)
    if (std::all_of(t.data<float>() + r * per, t.data<float>() + (r + 1) * per, [](float v) { return v == 0.f; }))
      z.push_back(r);
  return z;
}

TEST(PruneOnnx, ChannelsTiedAndBiasesZeroed) {
  const std::string bytes = testing::serialize(testing::residual_cnn_model());
  Options o = opts(Pattern::channel, 0.5);
  const prune::Result r = prune::prune_onnx(bytes, "residual", o);
  ASSERT_EQ(r.layers.size(), 6u);
  EXPECT_NE(r.layers[5].skipped.find("skipped"), std::string::npos);  // fc
  auto w = weights(r.onnx);
  const auto za = zero_rows(w.at("WA"));
  EXPECT_EQ(za.size(), 4u);
  EXPECT_EQ(za, zero_rows(w.at("WB")));
  EXPECT_EQ(za, zero_rows(w.at("Wdw")));
  EXPECT_EQ(zero_rows(w.at("WC")).size(), 3u);
  for (int64_t row : za) EXPECT_EQ(w.at("bA").data<float>()[row], 0.f);
  // The unpruned weights are untouched.
  const auto before = weights(bytes);
  for (const char* name : {"Wfc", "bfc", "bn_scale"})
    EXPECT_EQ(std::memcmp(before.at(name).data<float>(), w.at(name).data<float>(), before.at(name).nbytes()), 0);
}

TEST(PruneOnnx, SpecReproducesThePrunedModel) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("sparta_prune_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string bytes = testing::serialize(testing::residual_cnn_model());
  Options o = opts(Pattern::unstructured, 0.8);
  o.skip = {"convD"};
  const prune::Result r = prune::prune_onnx(bytes, "residual", o);
  prune::write_result(r, (dir / "p.onnx").string(), (dir / "p.json").string());
  ASSERT_TRUE(fs::exists(dir / "p.onnx") && fs::exists(dir / "p_masks"));
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos);
  // The original model with the spec applied has the pruned model's weights.
  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), "residual");
  apply_tesa_spec(g, read_tesa_spec((dir / "p.json").string()));
  const auto pruned = weights(r.onnx);
  for (const char* name : {"WA", "WB", "Wdw", "WC", "WD", "Wfc"}) {
    const Tensor& a = *g.find(name)->constant;
    EXPECT_EQ(std::memcmp(a.data<float>(), pruned.at(name).data<float>(), a.nbytes()), 0) << name;
  }
  EXPECT_EQ(r.layers[4].skipped, "skipped (--skip)");
  EXPECT_EQ(zero_rows(pruned.at("WD")).size(), 0u);
  // A failed write leaves nothing behind (the spec's folder would be inside a file).
  EXPECT_THROW(prune::write_result(r, (dir / "p2.onnx").string(), (dir / "p.onnx" / "p2.json").string()), Error);
  EXPECT_FALSE(fs::exists(dir / "p2.onnx"));
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos);
  fs::remove_all(dir);
}

TEST(PruneOnnx, BadInputIsAnError) {
  const std::string bytes = testing::serialize(testing::residual_cnn_model());
  Options o = opts(Pattern::unstructured, 0.5);
  o.skip = {"nothere"};
  EXPECT_THROW(prune::prune_onnx(bytes, "m", o), Error);
  o = opts(Pattern::block, 0.5);
  o.block = {7, 7};  // fits no layer
  try {
    prune::prune_onnx(bytes, "m", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no layer to prune as block"), std::string::npos) << e.what();
  }
  EXPECT_THROW(prune::prune_onnx("garbage", "m", opts(Pattern::unstructured, 0.5)), Error);
  prune::Gradients grads{{"WA", std::vector<float>(3)}};
  EXPECT_THROW(prune::prune_onnx(bytes, "m", opts(Pattern::unstructured, 0.5), grads), Error);
}

}  // namespace
}  // namespace sparta
