// Constant folding and dead-node removal on hand-built graphs.
#include <gtest/gtest.h>

#include "passes/simplify.h"
#include "runtime/executor.h"

namespace sparta {
namespace {

Value* constant(Graph& g, const std::string& name, std::vector<int64_t> v) {
  Value* c = g.add_value(name);
  Tensor t(DType::i64, Shape{static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  c->constant = t;
  c->dtype = DType::i64;
  return c;
}

Node* node(Graph& g, const std::string& op, std::vector<Value*> in, std::vector<Value*> out) {
  Node* n = g.add_node(op);
  n->inputs = std::move(in);
  n->outputs = std::move(out);
  return n;
}

TEST(Simplify, FoldsConstantChainsAndRemovesDeadNodes) {
  Graph g;
  Value* x = g.add_value("x");
  x->dtype = DType::f32;
  x->dims = std::vector<int64_t>{2, 6};
  g.inputs.push_back(x);
  // shape = Concat(Identity(a), b) is constant; y = Reshape(x, shape); an
  // unused Relu(x) is dead.
  Value *a = constant(g, "a", {3}), *b = constant(g, "b", {4});
  Value *ia = g.add_value("ia"), *shape = g.add_value("shape"), *y = g.add_value("y"), *unused = g.add_value("unused");
  node(g, "Identity", {a}, {ia});
  Node* cat = node(g, "Concat", {ia, b}, {shape});
  cat->attrs["axis"] = Attribute{Attribute::Kind::i, 0, 0, {}, {}, {}, {}, {}};
  node(g, "Reshape", {x, shape}, {y});
  node(g, "Relu", {x}, {unused});
  g.outputs.push_back(y);
  g.link();
  const SimplifyReport r = simplify(g);
  EXPECT_EQ(r.folded, 2);
  EXPECT_EQ(r.removed, 1);
  ASSERT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.nodes()[0]->op_type, "Reshape");
  ASSERT_TRUE(shape->is_constant());
  EXPECT_EQ(shape->constant->data<int64_t>()[0], 3);
  EXPECT_EQ(shape->constant->data<int64_t>()[1], 4);
  // The simplified graph still runs.
  Executor s(std::move(g), {.simplify = false});
  Tensor in(DType::f32, Shape{2, 6});
  EXPECT_EQ(s.run({{"x", in}})[0].shape(), (Shape{3, 4}));
}

TEST(Simplify, LargeResultsAndFailingNodesStayForRunTime) {
  Graph g;
  Value *big = constant(g, "big", {4096, 4096}), *zeros = g.add_value("zeros");
  node(g, "ConstantOfShape", {big}, {zeros});
  Value *bad = constant(g, "idx", {7}), *data = constant(g, "data", {1, 2}), *gathered = g.add_value("gathered");
  node(g, "Gather", {data, bad}, {gathered});  // index 7 out of range: an error at run time, not here
  g.outputs = {zeros, gathered};
  g.link();
  const SimplifyReport r = simplify(g, /*max_fold_elements=*/1 << 20);
  EXPECT_EQ(r.folded, 0);
  EXPECT_EQ(g.nodes().size(), 2u);
}

}  // namespace
}  // namespace sparta
