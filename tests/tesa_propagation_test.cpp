// TeSA propagation: each rule family on a small graph (graph in, attributes
// out), and a property test on random graphs with random masks: every
// element propagation calls pruned is exactly zero when the graph runs,
// every constant is its value, and zeroing the weights no output needs
// leaves the outputs as they were.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "analysis/shape_inference.h"
#include "analysis/tesa_propagation.h"
#include "passes/shrink.h"
#include "runtime/executor.h"

namespace sparta {
namespace {

using Dims = std::vector<int64_t>;

// Builds graphs node by node with static shapes.
struct Builder {
  Graph g;
  int next = 0;
  Value* input(const Dims& d) {
    Value* v = g.add_value("in" + std::to_string(next++));
    v->dims = d;
    v->dtype = DType::f32;
    g.inputs.push_back(v);
    return v;
  }
  Value* constant(const Tensor& t) {
    Value* v = g.add_value("c" + std::to_string(next++));
    v->constant = t;
    v->dtype = t.dtype();
    v->dims = t.shape().dims();
    return v;
  }
  Value* ints(const Dims& values) {
    Tensor t(DType::i64, Shape{static_cast<int64_t>(values.size())});
    std::copy(values.begin(), values.end(), t.data<int64_t>());
    return constant(t);
  }
  Node* node(const std::string& op, std::vector<Value*> in, int outs = 1, const std::string& domain = "") {
    Node* n = g.add_node(op, op + std::to_string(next++));
    n->domain = domain;
    n->inputs = std::move(in);
    for (int i = 0; i < outs; ++i) n->outputs.push_back(g.add_value(n->name + "_out" + std::to_string(i)));
    return n;
  }
  Value* op(const std::string& op, std::vector<Value*> in, const std::string& domain = "") {
    return node(op, std::move(in), 1, domain)->outputs[0];
  }
  static void set_ints(Node* n, const std::string& k, const Dims& v) {
    Attribute a;
    a.kind = Attribute::Kind::is;
    a.is = v;
    n->attrs[k] = a;
  }
  static void set_int(Node* n, const std::string& k, int64_t v) {
    Attribute a;
    a.kind = Attribute::Kind::i;
    a.i = v;
    n->attrs[k] = a;
  }
  void finish(std::vector<Value*> outputs) {
    g.outputs = std::move(outputs);
    g.opsets[""] = 17;
    g.link();
    infer_shapes(g);
  }
};

Tensor filled(const Dims& d, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t(DType::f32, Shape(d));
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// W[K, N] with whole rows, whole columns and single elements zero.
Tensor pruned_weight(int64_t k, int64_t n, std::mt19937& rng) {
  Tensor w = filled({k, n}, rng);
  std::bernoulli_distribution row(0.3), col(0.3), elem(0.2);
  for (int64_t i = 0; i < k; ++i) {
    const bool r = row(rng);
    for (int64_t j = 0; j < n; ++j)
      if (r) w.data<float>()[i * n + j] = 0.f;
  }
  for (int64_t j = 0; j < n; ++j) {
    const bool c = col(rng);
    for (int64_t i = 0; i < k; ++i)
      if (c || elem(rng)) w.data<float>()[i * n + j] = 0.f;
  }
  return w;
}

ElemCode code(const Value* v, int64_t i) { return v->tesa->at(i); }

TEST(TesaPropagation, ProductPrunesRowsAndColumnsAndBiasMakesConstants) {
  std::mt19937 rng(1);
  Builder b;
  Value* x = b.input({4, 6});
  Tensor w = filled({6, 5}, rng);
  for (int64_t i = 0; i < 6; ++i) w.data<float>()[i * 5 + 2] = 0.f;  // column 2 of W
  Tesa promise(Shape{4, 6}, ElemCode::bits32);
  for (int64_t k = 0; k < 6; ++k) promise.set(1 * 6 + k, ElemCode::pruned);  // row 1 of X
  x->tesa = promise;
  Tensor bias = filled({5}, rng);
  bias.data<float>()[3] = 0.f;
  Value* y = b.op("MatMul", {x, b.constant(w)});
  Value* z = b.op("Add", {y, b.constant(bias)});
  Value* r = b.op("Relu", {z});
  b.finish({r});
  const PropagationReport rep = propagate_tesa(b.g);
  EXPECT_TRUE(rep.no_rule.empty());
  for (int64_t j = 0; j < 5; ++j) {
    EXPECT_EQ(code(y, 1 * 5 + j), ElemCode::pruned) << "row 1 of X is pruned";
    EXPECT_EQ(code(y, 0 * 5 + 2), ElemCode::pruned) << "column 2 of W is zero";
  }
  EXPECT_EQ(code(y, 0), ElemCode::bits32);
  // Y + bias: the pruned row becomes the bias (a constant), except where
  // the bias is zero too.
  EXPECT_EQ(code(z, 1 * 5 + 0), ElemCode::constant);
  EXPECT_FLOAT_EQ(z->tesa->constant_value(1 * 5 + 0), bias.data<float>()[0]);
  EXPECT_EQ(code(z, 1 * 5 + 3), ElemCode::pruned);
  EXPECT_EQ(code(z, 0 * 5 + 3), ElemCode::bits32);
  // Relu folds constants and keeps zeros.
  EXPECT_FLOAT_EQ(r->tesa->constant_value(1 * 5 + 0) + 0.f, std::max(bias.data<float>()[0], 0.f));
  EXPECT_EQ(code(r, 1 * 5 + 3), ElemCode::pruned);
}

TEST(TesaPropagation, UnreadChannelsAreDeadAndTheirBiasesZero) {
  // Y = X W1 + b1; Z = Y W2 with rows 1 and 3 of W2 zero: Y's columns 1 and
  // 3 are never needed. b1's entries 1 and 3 are made zero (so Y's columns
  // are then exactly X W1's); W1 keeps its elements (its pattern is its
  // kernel's business; shrink cuts the channels by liveness).
  std::mt19937 rng(2);
  Builder b;
  Value* x = b.input({3, 4});
  Tensor w1 = filled({4, 5}, rng), w2 = filled({5, 2}, rng), b1 = filled({5}, rng);
  for (int64_t j = 0; j < 2; ++j) w2.data<float>()[1 * 2 + j] = w2.data<float>()[3 * 2 + j] = 0.f;
  Value* cw1 = b.constant(w1);
  Value* cb1 = b.constant(b1);
  Value* y = b.op("MatMul", {x, cw1});
  Value* yb = b.op("Add", {y, cb1});
  Value* z = b.op("MatMul", {yb, b.constant(w2)});
  b.finish({z});
  const PropagationReport rep = propagate_tesa(b.g);
  EXPECT_EQ(rep.dead_weight_elements, 2);
  for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(cb1->constant->data<float>()[j] == 0.f, j == 1 || j == 3) << j;
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(cw1->constant->data<float>()[i], w1.data<float>()[i]);
  for (const Value* v : {y, yb}) {
    ASSERT_TRUE(rep.live.count(v)) << v->name;
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(rep.live.at(v)[static_cast<size_t>(i * 5 + j)], j != 1 && j != 3);
  }
  EXPECT_GE(rep.rounds, 2);
}

TEST(TesaPropagation, MovesSoftmaxLayerNormAndConcat) {
  Builder b;
  Value* x = b.input({2, 3});
  Tesa promise(Shape{2, 3}, ElemCode::bits8);
  for (int64_t k = 0; k < 3; ++k) promise.set(3 + k, ElemCode::pruned);  // row 1
  promise.set(0, ElemCode::pruned);
  x->tesa = promise;
  Node* tr = b.node("Transpose", {x});
  Builder::set_ints(tr, "perm", {1, 0});
  Value* t = tr->outputs[0];
  Value* s = b.op("Softmax", {x});
  Value* c = b.op("Concat", {x, x});
  Builder::set_int(b.g.nodes().back().get(), "axis", 1);
  b.finish({t, s, c});
  propagate_tesa(b.g);
  // Transpose [2, 3] -> [3, 2]: X[1, k] -> T[k, 1]; X[0, 0] -> T[0, 0]; widths move.
  for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(code(t, k * 2 + 1), ElemCode::pruned);
  EXPECT_EQ(code(t, 0), ElemCode::pruned);
  EXPECT_EQ(code(t, 1 * 2 + 0), ElemCode::bits8);
  // Softmax of an all-zero row is the constant 1/3; row 0 stays dense.
  for (int64_t k = 0; k < 3; ++k) {
    EXPECT_EQ(code(s, 3 + k), ElemCode::constant);
    EXPECT_NEAR(s->tesa->constant_value(3 + k), 1.0 / 3, 1e-7);
    EXPECT_EQ(code(s, k), ElemCode::bits32);
  }
  // Concat along axis 1: [2, 6], each half the input's row.
  EXPECT_EQ(code(c, 0), ElemCode::pruned);
  EXPECT_EQ(code(c, 3), ElemCode::pruned);
  for (int64_t k = 0; k < 6; ++k) EXPECT_EQ(code(c, 6 + k), ElemCode::pruned);
}

TEST(TesaPropagation, ConvChannelsAndBatchNormConstants) {
  // The conv's output channel 1 is all zero (its weights are); BN turns it
  // into a constant channel (its shift); max pooling keeps it zero.
  std::mt19937 rng(3);
  Builder b;
  Value* x = b.input({1, 2, 5, 5});
  Tensor w1 = filled({3, 2, 3, 3}, rng);
  for (int64_t i = 0; i < 18; ++i) w1.data<float>()[1 * 18 + i] = 0.f;
  Node* c1 = b.node("Conv", {x, b.constant(w1)});
  Builder::set_ints(c1, "pads", {1, 1, 1, 1});
  Tensor scale = filled({3}, rng, 0.5f, 1.f), shift = filled({3}, rng), mean = filled({3}, rng),
         var = filled({3}, rng, 0.5f, 1.f);
  Value* bn = b.op("BatchNormalization",
                   {c1->outputs[0], b.constant(scale), b.constant(shift), b.constant(mean), b.constant(var)});
  Value* pooled = b.op("MaxPool", {c1->outputs[0]});
  Builder::set_ints(b.g.nodes().back().get(), "kernel_shape", {2, 2});
  b.finish({bn, pooled});
  propagate_tesa(b.g);
  const Value* y = c1->outputs[0];
  for (int64_t i = 0; i < 25; ++i) {
    EXPECT_EQ(code(y, 25 + i), ElemCode::pruned);
    EXPECT_EQ(code(y, i), ElemCode::bits32);
    EXPECT_EQ(code(bn, 25 + i), ElemCode::constant);
    const double a = scale.data<float>()[1] / std::sqrt(var.data<float>()[1] + 1e-5);
    EXPECT_NEAR(bn->tesa->constant_value(25 + i), shift.data<float>()[1] - mean.data<float>()[1] * a, 1e-6);
  }
  for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(code(pooled, 16 + i), ElemCode::pruned);
}

// Builds the same model twice, propagates on one, and checks that both
// compute the same outputs on the same input (unneeded elements that were
// zeroed must not reach an output, not even as a NaN).
void expect_outputs_unchanged(const std::function<void(Builder&, std::mt19937&)>& build, const Dims& in) {
  Builder a, b;
  std::mt19937 r1(9), r2(9), rx(10);
  build(a, r1);
  build(b, r2);
  const Tensor x = filled(in, rx);
  propagate_tesa(b.g);
  const std::vector<Tensor> want = Executor(std::move(a.g), {.simplify = false}).run({{"in0", x}});
  const std::vector<Tensor> got = Executor(std::move(b.g), {.simplify = false}).run({{"in0", x}});
  for (size_t o = 0; o < want.size(); ++o)
    for (int64_t i = 0; i < want[o].numel(); ++i) {
      const float w = want[o].data<float>()[i], g = got[o].data<float>()[i];
      ASSERT_TRUE(std::isfinite(g) == std::isfinite(w) && (!std::isfinite(w) || std::fabs(g - w) <= 1e-5f * (1 + std::fabs(w))))
          << "output " << o << "[" << i << "]: " << g << " vs " << w;
    }
}

// Two zeros that would each excuse the other: Mul(a, b) with a and b both
// exactly 0 in column 1 (P + 3 - 3). If both were called unneeded, the 3s
// (biases) would be zeroed and the product become 9.
TEST(TesaPropagation, TwoZerosDoNotExcuseEachOther) {
  expect_outputs_unchanged(
      [](Builder& b, std::mt19937& rng) {
        Value* x = b.input({2, 3});
        Tensor w = filled({3, 4}, rng);
        for (int64_t k = 0; k < 3; ++k) w.data<float>()[k * 4 + 1] = 0.f;
        Tensor c(DType::f32, Shape{4}), s(DType::f32, Shape{1});
        c.data<float>()[1] = 3.f;
        s.data<float>()[0] = -3.f;
        Value* p1 = b.op("MatMul", {x, b.constant(w)});
        Value* p2 = b.op("MatMul", {x, b.constant(w)});
        Value* a1 = b.op("Add", {b.op("Add", {p1, b.constant(c)}), b.constant(s)});
        Value* a2 = b.op("Add", {b.op("Add", {p2, b.constant(c)}), b.constant(s)});
        b.finish({b.op("Mul", {a1, a2})});
      },
      {2, 3});
}

// Div(a, b) with a exactly 0 in column 1 and b = P + c, c[1] = 1: b decides
// nothing (the numerator's zero does, because b is non-zero), so c must
// not be zeroed (0 / 0 is NaN); nor through a Reciprocal before a Mul.
TEST(TesaPropagation, ADivisorStaysNeeded) {
  for (bool reciprocal : {false, true})
    expect_outputs_unchanged(
        [reciprocal](Builder& b, std::mt19937& rng) {
          Value* x = b.input({2, 3});
          Tensor w = filled({3, 4}, rng), w2 = filled({3, 4}, rng);
          for (int64_t k = 0; k < 3; ++k) w.data<float>()[k * 4 + 1] = w2.data<float>()[k * 4 + 1] = 0.f;
          Tensor c = filled({4}, rng, 0.5f, 1.f);
          Value* a = b.op("MatMul", {x, b.constant(w2)});
          Value* d = b.op("Add", {b.op("MatMul", {x, b.constant(w)}), b.constant(c)});
          b.finish({reciprocal ? b.op("Mul", {a, b.op("Reciprocal", {d})}) : b.op("Div", {a, d})});
        },
        {2, 3});
}

// Clip's bounds come from its inputs (opset 11+) or, in older models, its
// min/max attributes: a pruned element clipped at 0.5 is the constant 0.5.
TEST(TesaPropagation, ClipBoundsFromInputsOrAttributes) {
  for (bool attrs : {false, true}) {
    Builder b;
    Value* x = b.input({2, 2});
    Tesa promise(Shape{2, 2}, ElemCode::bits32);
    promise.set(0, ElemCode::pruned);
    x->tesa = promise;
    Tensor lo(DType::f32, Shape{}), hi(DType::f32, Shape{});
    lo.data<float>()[0] = 0.5f;
    hi.data<float>()[0] = 2.f;
    Node* c = attrs ? b.node("Clip", {x}) : b.node("Clip", {x, b.constant(lo), b.constant(hi)});
    if (attrs) {
      c->attrs["min"] = Attribute{Attribute::Kind::f, 0.5f};
      c->attrs["max"] = Attribute{Attribute::Kind::f, 2.f};
    }
    b.finish({c->outputs[0]});
    propagate_tesa(b.g);
    EXPECT_EQ(code(c->outputs[0], 0), ElemCode::constant) << attrs;
    EXPECT_EQ(c->outputs[0]->tesa->constant_value(0), 0.5f) << attrs;
    EXPECT_EQ(code(c->outputs[0], 1), ElemCode::bits32) << attrs;
  }
}

// A model that declares an output shape its operator does not produce
// (stale value_info): the rule is not run on it (found by fuzzing, where
// the rule indexed past the declared extents).
TEST(TesaPropagation, StaleDeclaredShapesKeepEverything) {
  std::mt19937 rng(4);
  Builder b;
  Value* x = b.input({1, 2, 5, 5});
  Tensor w = filled({3, 2, 3, 3}, rng);
  for (int64_t i = 0; i < 18; ++i) w.data<float>()[i] = 0.f;
  Node* c = b.node("Conv", {x, b.constant(w)});
  c->outputs[0]->dims = Dims{1, 3, 9, 2};  // the conv makes [1, 3, 3, 3]
  b.finish({c->outputs[0]});
  const PropagationReport rep = propagate_tesa(b.g);
  ASSERT_EQ(rep.no_rule, std::vector<std::string>{"Conv"});
  EXPECT_EQ(c->outputs[0]->tesa->count_kept(), 1 * 3 * 9 * 2);
}

// A random graph of 2-D values: products with pruned weights and biases,
// elementwise ops, activations, softmax, layer norm, data movement, a
// product of two run-time values; a promise on the input.
struct RandomModel {
  Builder b;
  std::vector<Value*> outputs;
  Tensor input;
  RandomModel(uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t m = 4;
    std::uniform_int_distribution<int64_t> width(2, 9);
    const int64_t k0 = width(rng);
    Value* x = b.input({m, k0});
    input = filled({m, k0}, rng);
    Tesa promise(Shape{m, k0}, ElemCode::bits32);
    std::bernoulli_distribution p(0.3);
    for (int64_t i = 0; i < m * k0; ++i)
      if (p(rng) || (i % k0) == 0) {
        promise.set(i, ElemCode::pruned);
        input.data<float>()[i] = 0.f;
      }
    x->tesa = promise;
    std::vector<Value*> pool = {x};
    auto cols = [](const Value* v) { return (*v->dims)[1]; };
    std::uniform_int_distribution<int> pick_op(0, 11);
    for (int step = 0; step < 14; ++step) {
      Value* a = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
      Value* out = nullptr;
      switch (pick_op(rng)) {
        case 0:
        case 1: {  // linear (+ bias) (+ relu or gelu)
          const int64_t n = width(rng);
          out = b.op("MatMul", {a, b.constant(pruned_weight(cols(a), n, rng))});
          if (p(rng) || p(rng)) {
            Tensor bias = filled({n}, rng);
            for (int64_t j = 0; j < n; ++j)
              if (p(rng)) bias.data<float>()[j] = 0.f;
            out = b.op("Add", {out, b.constant(bias)});
          }
          if (p(rng)) out = b.op("Relu", {out});
          else if (p(rng)) out = b.op("Gelu", {out}, "sparta");
          break;
        }
        case 2: {  // a binary op with a same-shape value
          Value* other = nullptr;
          for (Value* v : pool)
            if (v != a && cols(v) == cols(a)) other = v;
          if (!other) continue;
          const char* ops[] = {"Add", "Mul", "Sub"};
          out = b.op(ops[std::uniform_int_distribution<int>(0, 2)(rng)], {a, other});
          break;
        }
        case 3: out = b.op("Div", {a, b.constant(filled({1}, rng, 0.5f, 2.f))}); break;
        case 4: out = b.op("Softmax", {a}); break;
        case 5: {
          Tensor g = filled({cols(a)}, rng), beta = filled({cols(a)}, rng);
          out = b.op("LayerNormalization", {a, b.constant(g), b.constant(beta)});
          break;
        }
        case 6: {  // attention-like product of run-time values: A x C^T
          Value* c = nullptr;
          for (Value* v : pool)
            if (cols(v) == cols(a)) c = v;
          Node* t = b.node("Transpose", {c});
          Builder::set_ints(t, "perm", {1, 0});
          out = b.op("MatMul", {a, t->outputs[0]});
          break;
        }
        case 7: {
          Node* n = b.node("Concat", {a, pool.back()});
          Builder::set_int(n, "axis", 1);
          out = n->outputs[0];
          break;
        }
        case 8: {
          if (cols(a) < 2) continue;
          out = b.op("Slice", {a, b.ints({1}), b.ints({cols(a)}), b.ints({1})});
          break;
        }
        case 9: {
          Value* flat = b.op("Reshape", {a, b.ints({m * cols(a)})});
          out = b.op("Reshape", {flat, b.ints({m, cols(a)})});
          break;
        }
        case 10: out = b.op("Gelu", {a}, "sparta"); break;
        case 11: {  // Gemm with a transposed weight and a bias
          const int64_t n = width(rng);
          Node* g = b.node("Gemm", {a, b.constant(pruned_weight(n, cols(a), rng)), b.constant(filled({n}, rng))});
          Builder::set_int(g, "transB", 1);
          out = g->outputs[0];
          break;
        }
      }
      infer_shapes(b.g);  // after the attributes are set
      pool.push_back(out);
    }
    outputs = {pool.back()};
    if (pool.size() > 3) outputs.push_back(pool[pool.size() / 2]);
    b.finish(outputs);
  }
};

TEST(TesaPropagation, PropertyPrunedIsZeroConstantsAreExactAndOutputsUnchanged) {
  int64_t pruned = 0, constants = 0, dead = 0, shrunk = 0, folded = 0;
  for (uint32_t seed = 0; seed < 150; ++seed) {
    RandomModel ref(seed), m(seed);
    const std::vector<Tensor> want = Executor(std::move(ref.b.g), {.simplify = false}).run({{"in0", ref.input}});
    const PropagationReport rep = propagate_tesa(m.b.g);
    ASSERT_TRUE(rep.no_rule.empty()) << rep.str();
    const ShrinkReport sr = shrink_channels(m.b.g, rep);  // the outputs below must not change
    shrunk += sr.channels;
    folded += sr.constant_channels;
    pruned += rep.pruned_elements;
    constants += rep.constant_elements;
    dead += rep.dead_weight_elements;
    // Every value with facts becomes an output too (after the real ones), to
    // see it at run time.
    const size_t n_out = m.b.g.outputs.size();
    for (const auto& v : m.b.g.values())
      if (!v->is_constant() && v->tesa && v->producer && !m.b.g.is_output(v.get())) m.b.g.outputs.push_back(v.get());
    const std::vector<const Value*> order(m.b.g.outputs.begin(), m.b.g.outputs.end());
    Executor session(std::move(m.b.g), {.simplify = false});  // keeps the values `order` points to
    const std::vector<Tensor> got = session.run({{"in0", m.input}});
    for (size_t o = 0; o < got.size(); ++o) {
      const Value* v = order[o];
      const Tensor& t = got[o];
      ASSERT_EQ(t.numel(), v->tesa->numel()) << v->name;
      for (int64_t i = 0; i < t.numel(); ++i) {
        const float y = t.data<float>()[i];
        if (v->tesa->at(i) == ElemCode::pruned) ASSERT_EQ(y, 0.f) << "seed " << seed << " " << v->name << "[" << i << "]";
        if (v->tesa->is_constant(i))
          ASSERT_NEAR(y, v->tesa->constant_value(i), 1e-5 + 1e-5 * std::fabs(y)) << "seed " << seed << " " << v->name;
      }
      if (o < n_out) {  // a real output: as before propagation zeroed dead weights
        ASSERT_EQ(t.shape(), want[o].shape());
        for (int64_t i = 0; i < t.numel(); ++i)
          ASSERT_NEAR(t.data<float>()[i], want[o].data<float>()[i], 1e-5 + 1e-5 * std::fabs(want[o].data<float>()[i]))
              << "seed " << seed << " output " << o;
      }
    }
  }
  // The random models give the analysis something to find.
  EXPECT_GT(pruned, 1000);
  EXPECT_GT(constants, 50);
  EXPECT_GT(dead, 100);
  EXPECT_GT(shrunk, 20);
  EXPECT_GT(folded, 3);
  std::printf("random models: %lld pruned, %lld constant, %lld dead weight elements; %lld channels shrunk, %lld folded\n",
              static_cast<long long>(pruned), static_cast<long long>(constants), static_cast<long long>(dead),
              static_cast<long long>(shrunk), static_cast<long long>(folded));
}

}  // namespace
}  // namespace sparta
