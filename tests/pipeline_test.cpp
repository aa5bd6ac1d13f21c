// The compile pipeline: passes run in their order and are logged; the IR
// check finds what a broken pass would leave.
#include <gtest/gtest.h>

#include "frontend/onnx_import.h"
#include "onnx_models.h"
#include "passes/pipeline.h"

namespace sparta {
namespace {

Graph mlp() {
  const std::string bytes = testing::serialize(testing::mlp_model());
  return import_onnx_bytes(bytes.data(), bytes.size(), "mlp.onnx");
}

std::vector<std::string> names(const PipelineResult& r) {
  std::vector<std::string> v;
  for (const PassLogEntry& e : r.log) v.push_back(e.pass);
  return v;
}

TEST(Pipeline, PassesRunInOrderAndAreLogged) {
  Graph g = mlp();
  const PipelineResult r = run_pipeline(g);
  EXPECT_EQ(names(r), (std::vector<std::string>{"reset-shapes", "infer-shapes", "fold", "infer-shapes", "propagate",
                                                "shrink", "fuse", "shrink-heads", "layout"}));
  EXPECT_EQ(r.fuse.linear, 2);
  EXPECT_NE(r.str().find("pass propagate"), std::string::npos);
  EXPECT_EQ(verify_graph(g), "");
  Graph d = mlp();
  EXPECT_EQ(names(run_pipeline(d, {.propagate = false})),
            (std::vector<std::string>{"reset-shapes", "infer-shapes", "fold", "infer-shapes", "fuse", "layout"}));
}

TEST(Pipeline, VerifyFindsBrokenGraphs) {
  {  // a node reading a value computed later
    Graph g = mlp();
    Node* first = g.nodes().front().get();
    Node* last = g.nodes().back().get();
    first->inputs[0] = last->outputs[0];
    EXPECT_NE(verify_graph(g).find("before it is computed"), std::string::npos) << verify_graph(g);
  }
  {  // a value written twice
    Graph g = mlp();
    Node* a = g.nodes()[0].get();
    Node* b = g.nodes()[1].get();
    b->outputs[0] = a->outputs[0];
    EXPECT_NE(verify_graph(g).find("written twice"), std::string::npos) << verify_graph(g);
  }
  {  // links not refreshed after an edit
    Graph g = mlp();
    Node* b = g.nodes()[1].get();
    b->inputs[0] = g.inputs[0];
    EXPECT_NE(verify_graph(g).find("does not list its reader"), std::string::npos) << verify_graph(g);
  }
}

}  // namespace
}  // namespace sparta
