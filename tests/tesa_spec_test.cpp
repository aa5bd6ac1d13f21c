// TeSA specs: reading, applying to a model, and every kind of bad spec as one
// clear error that leaves the model untouched.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "analysis/shape_inference.h"
#include "core/npy.h"
#include "frontend/onnx_import.h"
#include "frontend/tesa_spec.h"
#include "onnx_models.h"
#include "runtime/executor.h"
#include "test_util.h"

namespace sparta {
namespace {

using testing::expect_error;
namespace fs = std::filesystem;

// The test MLP with a static batch of 2, shapes inferred.
Graph mlp(int64_t batch = 2) {
  const std::string bytes = testing::serialize(testing::mlp_model());
  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), "mlp.onnx");
  if (batch > 0) g.find("x")->dims = std::vector<int64_t>{batch, 8};
  infer_shapes(g);
  return g;
}

// A scratch folder with a spec and its masks.
struct SpecDir {
  fs::path dir;
  SpecDir() {
    dir = fs::temp_directory_path() / ("sparta_tesa_spec_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                       "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir / "masks");
  }
  ~SpecDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name, std::ios::binary) << text;
    return (dir / name).string();
  }
  void mask(const std::string& name, const Tensor& t) const { write_npy((dir / name).string(), t); }
};

Tensor random_mask(DType dt, Shape s, double keep, uint32_t seed) {
  Tensor m(dt, std::move(s));
  std::mt19937 rng(seed);
  std::bernoulli_distribution kept(keep);
  for (int64_t i = 0; i < m.numel(); ++i) {
    const bool k = kept(rng);
    switch (dt) {
      case DType::boolean:
      case DType::u8: static_cast<uint8_t*>(m.raw())[i] = k; break;
      case DType::i64: m.data<int64_t>()[i] = k ? 7 : 0; break;  // any nonzero keeps
      case DType::i32: m.data<int32_t>()[i] = k; break;
      case DType::f32: m.data<float>()[i] = k ? 1.f : 0.f; break;
      default: ADD_FAILURE() << "mask dtype";
    }
  }
  return m;
}

TEST(TesaSpec, MasksZeroWeightsAndAnnotateValues) {
  for (DType dt : {DType::boolean, DType::u8, DType::i32, DType::i64, DType::f32}) {
    SpecDir d;
    const Tensor m1 = random_mask(dt, Shape{8, 16}, 0.3, 1), m2 = random_mask(DType::boolean, Shape{2, 16}, 0.5, 2);
    d.mask("masks/w1.npy", m1);
    d.mask("masks/h2.npy", m2);
    const std::string spec = d.write("spec.json", R"({"version": 1, "tensors": {
        "W1": {"mask": "masks/w1.npy"},
        "h2": {"mask": "masks/h2.npy", "bits": 8},
        "W2": {"bits": 16}}})");
    Graph g = mlp();
    const Tensor w1 = g.find("W1")->constant->clone();
    const TesaSpecReport r = apply_tesa_spec(g, read_tesa_spec(spec));
    EXPECT_EQ(r.weights, 2);
    EXPECT_EQ(r.promises, 1);
    const Tensor& w = *g.find("W1")->constant;
    const Tesa& t = *g.find("W1")->tesa;
    Shape ms;
    const Tesa mt = Tesa::from_mask(Shape{8, 16}, mask_from_npy(format_npy(m1), "m1", &ms));
    EXPECT_EQ(ms, Shape({8, 16}));
    for (int64_t i = 0; i < w.numel(); ++i) {
      EXPECT_EQ(t.kept(i), mt.kept(i)) << i;
      EXPECT_EQ(w.data<float>()[i], mt.kept(i) ? w1.data<float>()[i] : 0.f) << i;
    }
    EXPECT_EQ(g.find("h2")->tesa->shape(), Shape({2, 16}));
    EXPECT_EQ(g.find("h2")->tesa->at(0) == ElemCode::pruned, !static_cast<const uint8_t*>(m2.raw())[0]);
    for (int64_t i = 0; i < 32; ++i)
      if (g.find("h2")->tesa->kept(i)) EXPECT_EQ(g.find("h2")->tesa->at(i), ElemCode::bits8);
    // bits alone: W2's zeros stay pruned, every other element needs 16 bits.
    const Tesa& t2 = *g.find("W2")->tesa;
    for (int64_t i = 0; i < t2.numel(); ++i)
      EXPECT_EQ(t2.at(i), g.find("W2")->constant->data<float>()[i] == 0.f ? ElemCode::pruned : ElemCode::bits16);
  }
}

// A model run with a spec computes what the same model with the masked
// weights zeroed by hand computes.
TEST(TesaSpec, RunMatchesHandZeroedWeights) {
  SpecDir d;
  const Tensor m = random_mask(DType::boolean, Shape{16, 4}, 0.25, 3);
  d.mask("w2.npy", m);
  const std::string spec = d.write("spec.json", R"({"version": 1, "tensors": {"W2": {"mask": "w2.npy"}}})");
  Graph a = mlp(0), b = mlp(0);
  apply_tesa_spec(a, read_tesa_spec(spec));
  Tensor w2 = b.find("W2")->constant->clone();
  for (int64_t i = 0; i < w2.numel(); ++i)
    if (!static_cast<const uint8_t*>(m.raw())[i]) w2.data<float>()[i] = 0.f;
  b.find("W2")->constant = w2;
  Tensor x(DType::f32, Shape{3, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.1f * static_cast<float>(i % 11) - 0.4f;
  Executor sa(std::move(a)), sb(std::move(b));
  const Tensor ya = sa.run({{"x", x}})[0], yb = sb.run({{"x", x}})[0];
  ASSERT_EQ(ya.shape(), yb.shape());
  for (int64_t i = 0; i < ya.numel(); ++i) EXPECT_EQ(ya.data<float>()[i], yb.data<float>()[i]) << i;
}

// --check-tesa: a promise on a run-time value that a run breaks is an
// error naming the value; one that holds runs.
TEST(TesaSpec, CheckedPromises) {
  SpecDir d;
  Tensor x(DType::f32, Shape{2, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = i < 8 ? -0.5f : 0.5f;  // row 0: Relu gives zeros
  // What the model computes for h2 (Relu output): its zeros are a true promise.
  Graph probe = mlp();
  probe.outputs.push_back(probe.find("h2"));
  const Tensor h2 = Executor(std::move(probe), {.simplify = false}).run({{"x", x}})[1];
  Tensor truth(DType::boolean, h2.shape()), lie(DType::boolean, h2.shape());
  int zeros = 0;
  for (int64_t i = 0; i < h2.numel(); ++i) {
    static_cast<uint8_t*>(truth.raw())[i] = h2.data<float>()[i] != 0.f;
    zeros += h2.data<float>()[i] == 0.f;
  }
  ASSERT_GT(zeros, 0);
  ASSERT_LT(zeros, h2.numel());
  d.mask("truth.npy", truth);
  d.mask("lie.npy", lie);  // all pruned: false wherever h2 is not zero
  for (const char* mask : {"truth.npy", "lie.npy"}) {
    Graph g = mlp();
    const std::string spec = std::string("{\"version\": 1, \"tensors\": {\"h2\": {\"mask\": \"") + mask + "\"}}}";
    apply_tesa_spec(g, read_tesa_spec(d.write("s.json", spec)));
    Executor s(std::move(g), {.check_tesa = true});
    if (std::string(mask) == "truth.npy") EXPECT_NO_THROW(s.run({{"x", x}}));
    else expect_error([&] { s.run({{"x", x}}); }, {"--check-tesa", "'h2'", "not zero", "pruned"});
  }
}

TEST(TesaSpec, BadSpecsAreOneClearErrorAndChangeNothing) {
  SpecDir d;
  d.mask("w1.npy", random_mask(DType::boolean, Shape{8, 16}, 0.5, 4));
  d.mask("wrong.npy", random_mask(DType::boolean, Shape{16, 8}, 0.5, 5));
  d.mask("half.npy", Tensor(DType::f32, Shape{8, 16}));
  {
    Tensor t(DType::f32, Shape{8, 16});
    t.data<float>()[3] = 0.5f;
    d.mask("half.npy", t);
  }
  d.write("garbage.npy", "\x93NUMPY this is not a header");
  const std::string w1 = R"("W1": {"mask": "w1.npy"})";
  struct Case {
    std::string text;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"{\"version\": 1, \"tensors\": {", {"not valid JSON"}},
      {"[1, 2]", {"JSON object"}},
      {R"({"tensors": {}})", {"missing \"version\""}},
      {R"({"version": 2, "tensors": {}})", {"\"version\" must be 1"}},
      {R"({"version": 1})", {"missing \"tensors\""}},
      {R"({"version": 1, "tensors": {}, "extra": 1})", {"unknown field \"extra\""}},
      {R"({"version": 1, "tensors": {"W1": {"mask": "w1.npy", "density": 0.5}}})", {"'W1'", "unknown field \"density\""}},
      {R"({"version": 1, "tensors": {"W1": {"bits": 7}}})", {"'W1'", "4, 8, 16 or 32"}},
      {R"({"version": 1, "tensors": {"W1": {}}})", {"'W1'", "neither"}},
      {R"({"version": 1, "tensors": {"W1": "w1.npy"}})", {"'W1'", "expected an object"}},
      {R"({"version": 1, "tensors": {"W1": {"mask": "nothere.npy"}}})", {"'W1'", "cannot open the mask file"}},
      {R"({"version": 1, "tensors": {"W1": {"mask": "garbage.npy"}}})", {"'W1'", "garbage.npy"}},
      {R"({"version": 1, "tensors": {"W1": {"mask": "half.npy"}}})", {"'W1'", "only 0 and 1"}},
      {"{\"version\": 1, \"tensors\": {" + w1 + R"(, "W9": {"bits": 8}}})", {"'W9'", "no tensor of that name"}},
      {"{\"version\": 1, \"tensors\": {" + w1 + R"(, "W2": {"mask": "wrong.npy"}}})",
       {"'W2'", "shape [16, 8]", "[16, 4]"}},
  };
  for (const Case& c : cases) {
    const std::string spec = d.write("spec.json", c.text);
    Graph g = mlp();
    const Tensor before = g.find("W1")->constant->clone();
    expect_error([&] { apply_tesa_spec(g, read_tesa_spec(spec)); }, c.needles);
    const Tensor& after = *g.find("W1")->constant;
    EXPECT_FALSE(g.find("W1")->tesa.has_value()) << c.text;
    for (int64_t i = 0; i < after.numel(); ++i) ASSERT_EQ(after.data<float>()[i], before.data<float>()[i]) << c.text;
  }
  expect_error([&] { read_tesa_spec((d.dir / "nothere.json").string()); }, {"nothere.json", "cannot open"});
  // A promise on a value whose shape depends on the batch.
  d.mask("h2.npy", random_mask(DType::boolean, Shape{2, 16}, 0.5, 6));
  Graph dyn = mlp(0);
  expect_error([&] { apply_tesa_spec(dyn, read_tesa_spec(d.write("s.json", R"({"version": 1, "tensors": {"h2": {"mask": "h2.npy"}}})"))); },
               {"'h2'", "dynamic shape"});
}

}  // namespace
}  // namespace sparta
