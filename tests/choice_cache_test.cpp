// The kernel-choice cache: a choice measured once is never measured again,
// in this process or (from disk) the next; a corrupt or foreign entry is
// ignored, never trusted.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "formats/formats.h"
#include "kernels/spmm.h"
#include "runtime/compiled_model.h"
#include "tuning/choice_cache.h"

namespace sparta {
namespace {

class ChoiceCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("sparta_cache_test_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir_);
    ChoiceCache::global().set_folder(dir_);
    ChoiceCache::global().clear_memory();
    ChoiceCache::global().reset_stats();
  }
  void TearDown() override {
    ChoiceCache::global().set_folder("");
    ChoiceCache::global().clear_memory();
    std::filesystem::remove_all(dir_);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/choices")) v.push_back(e.path().string());
    return v;
  }
  std::string dir_;
};

WeightFormat weight(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor w(DType::f32, Shape{64, 96});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = rng() % 3 ? 0.f : u(rng);
  return pack_csr(w, Tesa::from_zeros(w));
}

KernelOptions tuned() {
  KernelOptions o;
  o.tune_m = 8;
  return o;
}

TEST_F(ChoiceCacheTest, MeasuredOnceThenRemembered) {
  const WeightFormat w = weight(1);
  Choice first, second;
  auto k1 = make_spmm(w, tuned(), nullptr, &first);
  EXPECT_EQ(ChoiceCache::global().stats().measured, 1);
  EXPECT_FALSE(first.candidates.empty());
  EXPECT_EQ(first.kernel, k1->name());
  std::vector<std::string> log;
  auto k2 = make_spmm(w, tuned(), &log, &second);
  EXPECT_EQ(ChoiceCache::global().stats().measured, 1) << "timed again";
  EXPECT_EQ(k2->name(), k1->name());
  EXPECT_EQ(second.ms, first.ms);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("kernel-choice cache"), std::string::npos);
  // Another pattern of the same shape is another choice.
  make_spmm(weight(2), tuned());
  EXPECT_EQ(ChoiceCache::global().stats().measured, 2);
  // So is another thread count.
  KernelOptions two = tuned();
  two.tune_threads = 2;
  make_spmm(w, two);
  EXPECT_EQ(ChoiceCache::global().stats().measured, 3);
}

// A build with another candidate list (new or renamed kernels) does not
// trust choices made without them.
TEST_F(ChoiceCacheTest, TheCandidateListIsPartOfTheKey) {
  ChoiceKey a{"spmm", "csr", 1, 8, 64, 96, 1, "avx2", 11};
  ChoiceKey b = a;
  b.candidates = 12;
  EXPECT_NE(a.str(), b.str());
  ChoiceCache::global().store(a, Choice{"csr_spmm_mvec__avx2", 1.0, {}});
  EXPECT_FALSE(ChoiceCache::global().find(b));
  EXPECT_TRUE(ChoiceCache::global().find(a));
}

TEST_F(ChoiceCacheTest, TheDiskAnswersTheNextProcess) {
  const WeightFormat w = weight(3);
  Choice first;
  make_spmm(w, tuned(), nullptr, &first);
  ASSERT_EQ(entries().size(), 1u);
  ChoiceCache::global().clear_memory();  // as a new process
  Choice again;
  make_spmm(w, tuned(), nullptr, &again);
  EXPECT_EQ(ChoiceCache::global().stats().measured, 1);
  EXPECT_EQ(ChoiceCache::global().stats().hits_disk, 1);
  EXPECT_EQ(again.kernel, first.kernel);
  ASSERT_EQ(again.candidates.size(), first.candidates.size());
}

TEST_F(ChoiceCacheTest, CorruptAndForeignEntriesAreIgnored) {
  const WeightFormat w = weight(4);
  make_spmm(w, tuned());
  const std::string entry = entries().at(0);
  for (const std::string& bad :
       {std::string("{not json"), std::string(""),
        std::string(R"({"version":1,"key":"another machine's key","kernel":"csr_spmm_mvec__avx2","ms":1,"candidates":[]})"),
        std::string(R"({"version":1,"kernel":"x"})")}) {
    ChoiceCache::global().clear_memory();
    std::ofstream(entry, std::ios::trunc) << bad;
    const int64_t ignored = ChoiceCache::global().stats().ignored, measured = ChoiceCache::global().stats().measured;
    auto k = make_spmm(w, tuned());
    EXPECT_EQ(ChoiceCache::global().stats().ignored, ignored + 1) << bad;
    EXPECT_EQ(ChoiceCache::global().stats().measured, measured + 1) << "not measured again after '" << bad << "'";
    EXPECT_NE(k->name().find("csr"), std::string::npos);
  }
  // An entry naming a kernel that does not exist (a newer sparta's) is
  // timed again, not an error.
  std::ifstream in(entry);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const size_t at = text.find("\"kernel\":\"");
  ASSERT_NE(at, std::string::npos);
  const size_t end = text.find('"', at + 10);
  text.replace(at + 10, end - at - 10, "csr_spmm_from_the_future");
  std::ofstream(entry, std::ios::trunc) << text;
  ChoiceCache::global().clear_memory();
  std::vector<std::string> log;
  auto k = make_spmm(w, tuned(), &log);
  EXPECT_NE(k->name().find("csr"), std::string::npos);
}

TEST_F(ChoiceCacheTest, SecondCompileMeasuresNothing) {
  // A small pruned MLP compiled twice, the second time as a new process
  // would (memory cleared): every choice comes from the disk.
  auto build = [] {
    Graph g;
    std::mt19937 rng(6);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    Value* x = g.add_value("x");
    x->dtype = DType::f32;
    x->dims = std::vector<int64_t>{16, 64};
    g.inputs.push_back(x);
    Value* h = x;
    for (int l = 0; l < 3; ++l) {
      Value* w = g.add_value("W" + std::to_string(l));
      Tensor t(DType::f32, Shape{64, 64});
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = (l == 2 || rng() % 4 == 0) ? u(rng) : 0.f;
      w->dtype = DType::f32;
      w->dims = t.shape().dims();
      w->constant = t;
      Node* n = g.add_node("MatMul", "m" + std::to_string(l));
      n->inputs = {h, w};
      n->outputs = {g.add_value("h" + std::to_string(l))};
      h = n->outputs[0];
    }
    g.outputs = {h};
    g.opsets[""] = 17;
    g.link();
    return g;
  };
  compile_model(build(), {});
  EXPECT_GT(ChoiceCache::global().stats().measured, 0);
  ChoiceCache::global().clear_memory();
  ChoiceCache::global().reset_stats();
  compile_model(build(), {});
  EXPECT_EQ(ChoiceCache::global().stats().measured, 0);
  EXPECT_GT(ChoiceCache::global().stats().hits_disk, 0);
}

}  // namespace
}  // namespace sparta
