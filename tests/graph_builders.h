// Graph builders shared by the unit tests that make IR graphs by hand.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace sparta::testing {

using Dims = std::vector<int64_t>;

// Uniform in [-1, 1), each element kept (non-zero) with probability `keep`.
inline Tensor random_tensor(const Dims& d, std::mt19937& rng, double keep = 1.0) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::bernoulli_distribution k(keep);
  Tensor t(DType::f32, Shape(d));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = keep >= 1.0 || k(rng) ? u(rng) : 0.f;
  return t;
}

inline Value* add_constant(Graph& g, const std::string& name, Tensor t) {
  Value* v = g.add_value(name);
  v->dtype = t.dtype();
  v->dims = t.shape().dims();
  v->constant = std::move(t);
  return v;
}

// A node `op` reading `in`, writing one new value named `out` (also the node's name).
inline Node* add_op(Graph& g, const std::string& op, std::vector<Value*> in, const std::string& out) {
  Node* n = g.add_node(op, out);
  n->inputs = std::move(in);
  n->outputs = {g.add_value(out)};
  return n;
}

inline Value* add_input(Graph& g, const std::string& name, Dims d) {
  Value* v = g.add_value(name);
  v->dtype = DType::f32;
  v->dims = std::move(d);
  g.inputs.push_back(v);
  return v;
}

}  // namespace sparta::testing
