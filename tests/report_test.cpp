// The compile report: one entry per weighted operator, with what shrinking
// did to its weight, the kernel chosen and its measured alternatives;
// totals that add up; an HTML page that shows the same.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "runtime/compiled_model.h"
#include "runtime/report.h"
#include "test_util.h"

namespace sparta {
namespace {

// x[4, 6] -> MatMul W1[6, 10] (output channels 2, 3, 7 zero) -> Relu
// -> MatMul W2[10, 5] -> Add b2 -> y: the zero channels of W1 make rows
// 2, 3, 7 of W2 dead, and shrinking removes them from both.
Graph model() {
  Graph g;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.1f, 1.f);
  auto constant = [&](const std::string& name, std::vector<int64_t> d, const std::vector<int64_t>& zero_cols) {
    Value* v = g.add_value(name);
    Tensor t(DType::f32, Shape(d));
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data<float>()[i] = std::count(zero_cols.begin(), zero_cols.end(), i % d.back()) ? 0.f : u(rng);
    v->dtype = DType::f32;
    v->dims = d;
    v->constant = t;
    return v;
  };
  auto op = [&](const std::string& type, std::vector<Value*> in, const std::string& out) {
    Node* n = g.add_node(type, out);
    n->inputs = std::move(in);
    n->outputs = {g.add_value(out)};
    return n->outputs[0];
  };
  Value* x = g.add_value("x");
  x->dtype = DType::f32;
  x->dims = std::vector<int64_t>{4, 6};
  g.inputs.push_back(x);
  Value* h = op("Relu", {op("MatMul", {x, constant("W1", {6, 10}, {2, 3, 7})}, "fc1")}, "r");
  g.outputs = {op("Add", {op("MatMul", {h, constant("W2", {10, 5}, {})}, "fc2"), constant("b2", {5}, {})}, "y")};
  g.opsets[""] = 17;
  g.link();
  return g;
}

TEST(Report, ShowsWhatShrinkingDidToEachWeight) {
  const CompiledModel m = compile_model(model(), {}, "model.onnx");
  const nlohmann::json r = nlohmann::json::parse(m.report);
  EXPECT_EQ(r["model"], "model.onnx");
  ASSERT_EQ(r["layers"].size(), 2u);
  const auto& fc1 = r["layers"][0];
  const auto& fc2 = r["layers"][1];
  EXPECT_EQ(fc1["name"], "fc1");
  EXPECT_EQ(fc1["shape_before"], (std::vector<int64_t>{6, 10}));
  EXPECT_NEAR(fc1["density_before"].get<double>(), 0.7, 1e-9);
  EXPECT_EQ(fc2["shape_before"], (std::vector<int64_t>{10, 5}));
  EXPECT_EQ(fc2["density_before"], 1.0);
  // W2's rows for the dead channels are gone: its density after counts
  // them as pruned.
  EXPECT_EQ(fc2["shape_after"], (std::vector<int64_t>{7, 5}));
  EXPECT_NEAR(fc2["density_after"].get<double>(), 0.7, 1e-9);
  EXPECT_EQ(fc1["shape_after"], (std::vector<int64_t>{6, 7}));
  for (const auto& l : r["layers"]) {
    EXPECT_FALSE(l["kernel"].get<std::string>().empty());
    ASSERT_TRUE(l["ms"].is_number());
    EXPECT_GT(l["ms"].get<double>(), 0);
    EXPECT_GE(l["candidates"].size(), 1u);
    EXPECT_LT(l["flops_after"].get<double>(), l["flops_before"].get<double>());
  }
  const auto& t = r["totals"];
  EXPECT_EQ(t["parameters_before"].get<double>(), 42 + 50);
  EXPECT_EQ(t["parameters_after"].get<double>(), 42 + 35);
  EXPECT_EQ(t["parameters_removed"].get<double>(), 15);
  EXPECT_EQ(t["flops_before"].get<double>(), 2.0 * 4 * (60 + 50));
  EXPECT_NEAR(t["flops_removed"].get<double>(),
              t["flops_before"].get<double>() - t["flops_after"].get<double>(), 1e-9);
  EXPECT_FALSE(r["passes"].empty());
}

TEST(Report, DenseCompileReportsNoShrinking) {
  const nlohmann::json r = nlohmann::json::parse(compile_model(model(), {.sparse = false}).report);
  EXPECT_EQ(r["layers"][1]["shape_after"], (std::vector<int64_t>{10, 5}));
  EXPECT_EQ(r["totals"]["parameters_removed"].get<double>(), 0);
}

TEST(Report, HtmlIsOnePageWithTheTableAndTheChart) {
  const CompiledModel m = compile_model(model(), {}, "a<b>.onnx");
  const std::string h = report_html(m.report);
  EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(h.find("<svg"), std::string::npos);
  EXPECT_NE(h.find(">fc1<"), std::string::npos);
  EXPECT_NE(h.find(">fc2<"), std::string::npos);
  EXPECT_NE(h.find("a&lt;b&gt;.onnx"), std::string::npos);
  EXPECT_EQ(h.find("a<b>"), std::string::npos);
  EXPECT_EQ(h.find("http"), h.find("http://www.w3.org/2000/svg"));  // nothing fetched
  testing::expect_error([] { report_html("{not json"); }, {"not a sparta report"});
  testing::expect_error([] { report_html("{}"); }, {"not a sparta report"});
}

}  // namespace
}  // namespace sparta
