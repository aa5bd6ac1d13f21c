// Operators whose ONNX node tests use only data types sparta does not have
// (CumSum's are all double): checked here on f32 against hand results.
#include <gtest/gtest.h>

#include <cmath>

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

// Seeded values in [-2, 2] (a linear congruential generator: the same on
// every host).
struct Lcg {
  uint32_t seed;
  float operator()() {
    seed = seed * 1664525u + 1013904223u;
    return float(int(seed >> 9) % 2001 - 1000) / 500.f;
  }
};

// Runs graph g with output y on input x; with a residual `res` (graph input
// dims rd), the output is Relu(y + res), which fuses into the convolution.
Tensor run_conv_graph(Graph& g, Value* y, const Tensor& x, const Tensor* res, const Dims& rd) {
  if (res) {
    Node* add = add_op(g, "Add", {y, add_input(g, "r", rd)}, "s");
    y = add_op(g, "Relu", {add->outputs[0]}, "y")->outputs[0];
  }
  g.outputs = {y};
  g.link();
  Executor e(std::move(g));
  std::map<std::string, Tensor> feeds = {{"x", x}};
  if (res) feeds["r"] = *res;
  return e.run(feeds)[0];
}

// Depthwise convolution on plain data (dynamic extents: no blocked layout is
// planned, so the direct loop runs) against the definition, 1-D and 2-D,
// over strides, dilations, pads, columns (width 1) and a residual + Relu.
TEST(Ops, DepthwiseConvPlainMatchesDefinition) {
  struct Case {
    Dims x, k, stride, dil, pads;
  };
  const std::vector<Case> cases = {
      {{2, 5, 9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}}, {{1, 4, 10, 7}, {3, 5}, {2, 1}, {1, 2}, {0, 2, 1, 3}},
      {{1, 3, 12, 1}, {5, 1}, {1, 1}, {2, 1}, {2, 0, 1, 0}},  {{1, 6, 13}, {4}, {3}, {1}, {1, 2}},
      {{2, 2, 8}, {8}, {1}, {1}, {0, 0}},                      {{1, 3, 4, 4}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}},
      // planes narrower than 16 with 8 channels or more: vectors across
      // channels (whole and partial blocks of 16)
      {{1, 20, 29, 1}, {20, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}}, {{2, 33, 6, 5}, {3, 3}, {2, 1}, {1, 2}, {1, 2, 0, 1}},
      {{1, 16, 13}, {4}, {3}, {2}, {1, 2}},                     {{1, 8, 3, 3}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}}};
  Lcg rnd{1};
  for (const Case& t : cases)
    for (bool residual : {false, true}) {
      const size_t sp = t.k.size();
      const int64_t C = t.x[1];
      Dims wd = {C, 1};
      wd.insert(wd.end(), t.k.begin(), t.k.end());
      Tensor w(DType::f32, Shape(wd)), b(DType::f32, Shape{C}), x(DType::f32, Shape(t.x));
      for (Tensor* v : {&w, &b, &x})
        for (int64_t i = 0; i < v->numel(); ++i) v->data<float>()[i] = rnd();
      Dims od = {t.x[0], C};
      for (size_t i = 0; i < sp; ++i)
        od.push_back((t.x[2 + i] + t.pads[i] + t.pads[i + sp] - t.dil[i] * (t.k[i] - 1) - 1) / t.stride[i] + 1);
      Tensor res(DType::f32, Shape(od));
      for (int64_t i = 0; i < res.numel(); ++i) res.data<float>()[i] = rnd();
      Graph g;
      Dims dyn = t.x;
      dyn[0] = -1;  // dynamic batch: no blocked layout
      Value* in = add_input(g, "x", dyn);
      Node* cv = add_op(g, "Conv", {in, add_constant(g, "w", w), add_constant(g, "b", b)}, "c");
      cv->attrs["group"] = Attribute{.kind = Attribute::Kind::i, .i = C};
      cv->attrs["strides"] = Attribute{.kind = Attribute::Kind::is, .is = t.stride};
      cv->attrs["dilations"] = Attribute{.kind = Attribute::Kind::is, .is = t.dil};
      cv->attrs["pads"] = Attribute{.kind = Attribute::Kind::is, .is = t.pads};
      Dims rd = od;
      rd[0] = -1;
      const Tensor got = run_conv_graph(g, cv->outputs[0], x, residual ? &res : nullptr, rd);
      ASSERT_EQ(got.shape(), Shape(od));
      const int64_t OH = sp == 2 ? od[2] : 1, OW = od.back(), IH = sp == 2 ? t.x[2] : 1, IW = t.x.back();
      const int64_t KH = sp == 2 ? t.k[0] : 1, KW = t.k.back();
      for (int64_t n = 0; n < od[0]; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              double acc = b.data<float>()[c];
              for (int64_t kh = 0; kh < KH; ++kh)
                for (int64_t kw = 0; kw < KW; ++kw) {
                  const int64_t ih = sp == 2 ? oh * t.stride[0] - t.pads[0] + kh * t.dil[0] : 0;
                  const int64_t iw = ow * t.stride[sp - 1] - t.pads[sp - 1] + kw * t.dil[sp - 1];
                  if (ih < 0 || ih >= IH || iw < 0 || iw >= IW) continue;
                  acc += double(w.data<float>()[(c * KH + kh) * KW + kw]) * x.data<float>()[((n * C + c) * IH + ih) * IW + iw];
                }
              const int64_t at = ((n * C + c) * OH + oh) * OW + ow;
              if (residual) acc = std::max(0.0, acc + res.data<float>()[at]);
              EXPECT_NEAR(got.data<float>()[at], acc, 1e-4) << "case x" << Shape(t.x).str() << " at " << at;
            }
    }
}

// 1-D convolution without groups (im2col times the prepacked weight)
// against its definition: strides, dilations, pads, long kernels, a
// residual + Relu, batch > 1.
TEST(Ops, Conv1dMatchesDefinition) {
  struct Case {
    int64_t n, ci, co, len, k, stride, dil, pb, pe;
  };
  const std::vector<Case> cases = {{2, 3, 5, 11, 3, 1, 1, 1, 1}, {1, 1, 7, 40, 16, 5, 1, 0, 0},
                                   {3, 4, 2, 9, 2, 2, 3, 2, 0},  {1, 6, 4, 5, 5, 1, 1, 4, 4}};
  Lcg rnd{7};
  for (const Case& t : cases)
    for (bool residual : {false, true}) {
      Tensor w(DType::f32, Shape{t.co, t.ci, t.k}), b(DType::f32, Shape{t.co}), x(DType::f32, Shape{t.n, t.ci, t.len});
      for (Tensor* v : {&w, &b, &x})
        for (int64_t i = 0; i < v->numel(); ++i) v->data<float>()[i] = rnd();
      const int64_t L = (t.len + t.pb + t.pe - t.dil * (t.k - 1) - 1) / t.stride + 1;
      Tensor res(DType::f32, Shape{t.n, t.co, L});
      for (int64_t i = 0; i < res.numel(); ++i) res.data<float>()[i] = rnd();
      Graph g;
      Value* in = add_input(g, "x", {-1, t.ci, -1});
      Node* cv = add_op(g, "Conv", {in, add_constant(g, "w", w), add_constant(g, "b", b)}, "c");
      cv->attrs["strides"] = Attribute{.kind = Attribute::Kind::is, .is = {t.stride}};
      cv->attrs["dilations"] = Attribute{.kind = Attribute::Kind::is, .is = {t.dil}};
      cv->attrs["pads"] = Attribute{.kind = Attribute::Kind::is, .is = {t.pb, t.pe}};
      const Tensor got = run_conv_graph(g, cv->outputs[0], x, residual ? &res : nullptr, {-1, t.co, -1});
      ASSERT_EQ(got.shape(), Shape({t.n, t.co, L}));
      for (int64_t n = 0; n < t.n; ++n)
        for (int64_t o = 0; o < t.co; ++o)
          for (int64_t l = 0; l < L; ++l) {
            double acc = b.data<float>()[o];
            for (int64_t i = 0; i < t.ci; ++i)
              for (int64_t q = 0; q < t.k; ++q) {
                const int64_t pos = l * t.stride - t.pb + q * t.dil;
                if (pos >= 0 && pos < t.len)
                  acc += double(w.data<float>()[(o * t.ci + i) * t.k + q]) * x.data<float>()[(n * t.ci + i) * t.len + pos];
              }
            const int64_t at = (n * t.co + o) * L + l;
            if (residual) acc = std::max(0.0, acc + res.data<float>()[at]);
            EXPECT_NEAR(got.data<float>()[at], acc, 1e-4) << "len " << t.len << " k " << t.k << " at " << at;
          }
    }
}

// The vectorized unary ops (the host's ISA, a tail shorter than a vector,
// threaded) against the C library: large and tiny magnitudes, infinities
// and NaN (which must stay NaN).
TEST(Ops, VectorizedUnaryMatchesLibm) {
  struct Case {
    const char* op;
    float (*f)(float);
  };
  const Case cases[] = {{"Sigmoid", [](float v) { return 1.f / (1.f + std::exp(-v)); }},
                        {"Exp", [](float v) { return std::exp(v); }},
                        {"Erf", [](float v) { return std::erf(v); }}};
  std::vector<float> x = {0.f, -0.f, 1e-30f, -1e-30f, 1e-6f, 30.f, -30.f, 80.f, -80.f, 100.f, -100.f,
                          INFINITY, -INFINITY, NAN};
  Lcg rnd{7};
  for (int i = 0; i < 37; ++i) x.push_back(rnd() * 10.f);
  for (const Case& k : cases)
    for (size_t n : {size_t{1}, size_t{7}, x.size()})
      for (int threads : {1, 2}) {
        Graph g;
        Node* node = add_op(g, k.op, {add_input(g, "x", {int64_t(n)})}, "y");
        g.outputs = {node->outputs[0]};
        g.link();
        Executor e(std::move(g), {.threads = threads});
        Tensor t(DType::f32, Shape{int64_t(n)});
        std::copy(x.begin(), x.begin() + long(n), t.data<float>());
        const Tensor y = e.run({{"x", t}})[0];
        for (size_t i = 0; i < n; ++i) {
          const float want = k.f(x[i]), got = y.data<float>()[i];
          SCOPED_TRACE(std::string(k.op) + "(" + std::to_string(x[i]) + ")");
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got)) << got;
          } else if (std::isinf(want)) {
            EXPECT_EQ(got, want);
          } else {
            EXPECT_NEAR(got, want, 1e-6f * std::fabs(want) + 1e-7f);
          }
        }
      }
}

}  // namespace
}  // namespace sparta
