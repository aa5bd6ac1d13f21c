// Operators whose ONNX node tests use only data types sparta does not have
// (CumSum's are all double): checked here on f32 against hand results.
#include <gtest/gtest.h>

#include "graph_builders.h"
#include "runtime/executor.h"

namespace sparta {
namespace {

using testing::add_constant;
using testing::add_input;
using testing::add_op;
using testing::Dims;

std::vector<float> cumsum(const std::vector<float>& x, Dims d, int64_t axis, bool exclusive, bool reverse) {
  Graph g;
  Value* in = add_input(g, "x", d);
  Tensor a(DType::i64, Shape{1});
  a.data<int64_t>()[0] = axis;
  Node* n = add_op(g, "CumSum", {in, add_constant(g, "axis", a)}, "y");
  n->attrs["exclusive"] = Attribute{.kind = Attribute::Kind::i, .i = exclusive};
  n->attrs["reverse"] = Attribute{.kind = Attribute::Kind::i, .i = reverse};
  g.outputs = {n->outputs[0]};
  g.link();
  Executor e(std::move(g));
  Tensor t(DType::f32, Shape(d));
  std::copy(x.begin(), x.end(), t.data<float>());
  const Tensor y = e.run({{"x", t}})[0];
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

TEST(Ops, CumSum) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(cumsum(x, {6}, 0, false, false), (std::vector<float>{1, 3, 6, 10, 15, 21}));
  EXPECT_EQ(cumsum(x, {6}, 0, true, false), (std::vector<float>{0, 1, 3, 6, 10, 15}));
  EXPECT_EQ(cumsum(x, {6}, 0, false, true), (std::vector<float>{21, 20, 18, 15, 11, 6}));
  EXPECT_EQ(cumsum(x, {6}, 0, true, true), (std::vector<float>{20, 18, 15, 11, 6, 0}));
  EXPECT_EQ(cumsum(x, {2, 3}, 0, false, false), (std::vector<float>{1, 2, 3, 5, 7, 9}));
  EXPECT_EQ(cumsum(x, {2, 3}, -1, false, false), (std::vector<float>{1, 3, 6, 4, 9, 15}));
}

}  // namespace
}  // namespace sparta
