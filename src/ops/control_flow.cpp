// Control flow: If (two branches) and Loop (a body run while a trip count
// and a condition allow). Each subgraph is a self-contained model (see
// Attribute::Kind::g), compiled once by the runtime (subgraph_compiler) on
// first use with the run's thread count and sparsity; outer-scope values
// arrive as the node's captured inputs.
#include <algorithm>
#include <cstring>

#include "frontend/onnx_import.h"
#include "ops/op_def.h"

namespace sparta {
namespace {

struct SubgraphPlan : NodePlan {
  std::map<std::string, std::unique_ptr<SubgraphRunner>> graphs;  // by attribute name
  std::string kernel() const override { return "subgraph"; }
};

// The executor of the node's graph attribute `key`. On first use the
// subgraph is compiled with the extents of the first call's inputs
// (`feed_for` names them from the subgraph's inputs), as a model compiled
// for given shapes: kernels chosen and layouts planned for them, any other
// shape still allowed.
SubgraphRunner& subgraph(OpCall& c, SubgraphPlan& p, const std::string& key,
                   const std::function<std::map<std::string, Tensor>(const Graph&)>& feed_for) {
  auto& slot = p.graphs[key];
  if (!slot) {
    const Attribute* a = c.node.attr(key);
    if (!a || a->kind != Attribute::Kind::g) c.fail("needs the graph attribute '" + key + "'");
    try {
      Graph g = import_onnx_bytes(a->s.data(), a->s.size(), "subgraph '" + key + "' of node '" + c.node.name + "'");
      std::map<std::string, std::vector<int64_t>> shapes;
      for (const auto& [name, t] : feed_for(g)) shapes[name] = t.shape().dims();
      slot = subgraph_compiler()(std::move(g), shapes, c.threads, c.sparse);
    } catch (const Error& e) {
      c.fail(e.what());
    }
  }
  return *slot;
}

SubgraphPlan& plan_of(OpCall& c, std::shared_ptr<NodePlan>& local) {
  if (!c.plan) c.plan = &local;  // constant folding keeps no plan: a local one serves this call
  return c.plan_as<SubgraphPlan>([] { return std::make_shared<SubgraphPlan>(); });
}

// How many of the node's inputs are its own (the rest are captures).
size_t own_inputs(const OpCall& c) {
  const Attribute* cap = c.node.attr("sparta.captures");
  const size_t n = cap ? cap->ss.size() : 0;
  if (c.node.inputs.size() < n) c.fail("has fewer inputs than captured values");
  return c.node.inputs.size() - n;
}

// The subgraph's inputs from index `first` on, fed from the captures.
void feed_captures(const OpCall& c, const Graph& g, size_t first, std::map<std::string, Tensor>& feed) {
  const Attribute* cap = c.node.attr("sparta.captures");
  const size_t own = own_inputs(c);
  for (size_t i = first; i < g.inputs.size(); ++i) {
    const std::string& name = g.inputs[i]->name;
    size_t k = 0;
    while (cap && k < cap->ss.size() && cap->ss[k] != name) ++k;
    if (!cap || k == cap->ss.size()) c.fail("subgraph input '" + name + "' is neither its own nor captured");
    feed[name] = c.input(own + k);
  }
}

bool truth(const Tensor& t, const OpCall& c, const char* what) {
  if (t.numel() != 1) c.fail(std::string(what) + " must hold one value, got " + t.shape().str());
  switch (t.dtype()) {
    case DType::boolean:
    case DType::u8:
    case DType::i8: return static_cast<const uint8_t*>(t.raw())[0] != 0;
    case DType::i32: return t.data<int32_t>()[0] != 0;
    case DType::i64: return t.data<int64_t>()[0] != 0;
    case DType::f32: return t.data<float>()[0] != 0.f;
    default: c.fail(std::string(what) + " has an unsupported dtype");
  }
  return false;
}

void if_op(OpCall& c) {
  std::shared_ptr<NodePlan> local;
  SubgraphPlan& p = plan_of(c, local);
  const std::string key = truth(c.input(0), c, "the condition") ? "then_branch" : "else_branch";
  const auto feed_for = [&c](const Graph& g) {
    std::map<std::string, Tensor> feed;
    feed_captures(c, g, 0, feed);
    return feed;
  };
  SubgraphRunner& e = subgraph(c, p, key, feed_for);
  std::vector<Tensor> out = e.run(feed_for(e.graph()));
  if (out.size() != c.node.outputs.size())
    c.fail(key + " has " + std::to_string(out.size()) + " outputs, the node " + std::to_string(c.node.outputs.size()));
  c.out = std::move(out);
}

// Stacks equally shaped tensors along a new leading axis; none: an empty
// tensor of the body output's declared dtype and rank (unknown extents 0).
Tensor stack(const std::vector<Tensor>& parts, const Value* declared, const OpCall& c) {
  if (parts.empty()) {
    std::vector<int64_t> d = {0};
    if (declared && declared->dims)
      for (int64_t e : *declared->dims) d.push_back(std::max<int64_t>(e, 0));
    return Tensor(declared && declared->dtype ? *declared->dtype : DType::f32, Shape(d));
  }
  std::vector<int64_t> d = parts[0].shape().dims();
  d.insert(d.begin(), static_cast<int64_t>(parts.size()));
  Tensor y(parts[0].dtype(), Shape(d), Uninitialized{});
  char* py = static_cast<char*>(y.raw());
  for (const Tensor& t : parts) {
    if (t.shape() != parts[0].shape() || t.dtype() != parts[0].dtype())
      c.fail("scan output changes shape or dtype between iterations: " + t.shape().str() + " vs " +
             parts[0].shape().str());
    std::memcpy(py, t.raw(), t.nbytes());
    py += t.nbytes();
  }
  return y;
}

Tensor scalar_like(const Value* v, DType t) {
  const bool one_d = v && v->dims && v->dims->size() == 1;
  return Tensor(t, one_d ? Shape{1} : Shape(std::vector<int64_t>{}));
}

void loop_op(OpCall& c) {
  std::shared_ptr<NodePlan> local;
  SubgraphPlan& p = plan_of(c, local);
  const size_t own = own_inputs(c);
  // The first iteration's inputs: iteration 0, the condition, the initial
  // loop-carried values, the captures.
  const auto first_feed = [&c, own](const Graph& g) {
    std::map<std::string, Tensor> feed;
    if (g.inputs.size() < own) return feed;  // reported below
    Tensor iter = scalar_like(g.inputs[0], DType::i64);
    iter.data<int64_t>()[0] = 0;
    feed[g.inputs[0]->name] = iter;
    feed[g.inputs[1]->name] = scalar_like(g.inputs[1], DType::boolean);
    for (size_t i = 2; i < own; ++i)
      if (c.has_input(i)) feed[g.inputs[i]->name] = c.input(i);
    feed_captures(c, g, own, feed);
    return feed;
  };
  SubgraphRunner& body = subgraph(c, p, "body", first_feed);
  if (own < 2) c.fail("needs the trip count and condition inputs (either may be empty)");
  const size_t n_carried = own - 2;
  const auto& bin = body.graph().inputs;
  if (bin.size() < 2 + n_carried) c.fail("body must take the iteration number, the condition and every loop-carried value");
  const size_t n_scan = body.graph().outputs.size() >= 1 + n_carried ? body.graph().outputs.size() - 1 - n_carried : 0;
  if (body.graph().outputs.size() != 1 + n_carried + n_scan || c.node.outputs.size() != n_carried + n_scan)
    c.fail("body outputs do not match the node's loop-carried and scan outputs");
  int64_t trips = INT64_MAX;
  if (c.has_input(0)) {
    const std::vector<int64_t> m = int_values(c.input(0), c);
    if (m.size() != 1) c.fail("the trip count must hold one value");
    trips = m[0];
  }
  bool cond = c.has_input(1) ? truth(c.input(1), c, "the condition") : true;
  if (!c.has_input(0) && !c.has_input(1)) c.fail("has neither a trip count nor a condition: it would never end");
  std::vector<Tensor> carried;
  for (size_t i = 0; i < n_carried; ++i) carried.push_back(c.input(2 + i));
  std::vector<std::vector<Tensor>> scans(n_scan);
  std::map<std::string, Tensor> feed;
  feed_captures(c, body.graph(), 2 + n_carried, feed);
  for (int64_t it = 0; it < trips && cond; ++it) {
    Tensor iter = scalar_like(bin[0], DType::i64);
    iter.data<int64_t>()[0] = it;
    Tensor cin = scalar_like(bin[1], DType::boolean);
    static_cast<uint8_t*>(cin.raw())[0] = cond ? 1 : 0;
    feed[bin[0]->name] = iter;
    feed[bin[1]->name] = cin;
    for (size_t i = 0; i < n_carried; ++i) feed[bin[2 + i]->name] = carried[i];
    std::vector<Tensor> out = body.run(feed);
    cond = truth(out[0], c, "the body's condition");
    for (size_t i = 0; i < n_carried; ++i) carried[i] = std::move(out[1 + i]);
    for (size_t k = 0; k < n_scan; ++k) scans[k].push_back(std::move(out[1 + n_carried + k]));
  }
  c.out = std::move(carried);
  for (size_t k = 0; k < n_scan; ++k) c.out.push_back(stack(scans[k], body.graph().outputs[1 + n_carried + k], c));
}

// The declared outputs of a graph attribute (dtype and dims where the
// subgraph states them), or nothing when it does not import.
std::optional<std::vector<std::pair<std::optional<DType>, std::optional<ShapeCtx::Dims>>>> declared_outputs(
    const Node& n, const std::string& key) {
  const Attribute* a = n.attr(key);
  if (!a || a->kind != Attribute::Kind::g) return std::nullopt;
  try {
    const Graph g = import_onnx_bytes(a->s.data(), a->s.size(), key);
    std::vector<std::pair<std::optional<DType>, std::optional<ShapeCtx::Dims>>> out;
    for (const Value* v : g.outputs) out.push_back({v->dtype, v->dims});
    return out;
  } catch (const Error&) {
    return std::nullopt;  // reported when the node runs
  }
}

// If: each output as the branches declare it (extents that differ unknown).
void if_shape(const ShapeCtx& c) {
  const auto t = declared_outputs(c.n, "then_branch"), e = declared_outputs(c.n, "else_branch");
  if (!t || !e || t->size() != e->size()) return;
  for (size_t i = 0; i < t->size(); ++i) {
    const auto& [td, ts] = (*t)[i];
    const auto& [ed, es] = (*e)[i];
    std::optional<ShapeCtx::Dims> dims;
    if (ts && es && ts->size() == es->size()) {
      dims = *ts;
      for (size_t k = 0; k < dims->size(); ++k)
        if ((*ts)[k] != (*es)[k]) (*dims)[k] = -1;
    }
    c.set(int(i), dims, td == ed ? td : std::nullopt);
  }
}

// Loop: loop-carried outputs as the body declares them; scan outputs gain
// a leading axis of unknown extent.
void loop_shape(const ShapeCtx& c) {
  const auto b = declared_outputs(c.n, "body");
  if (!b || b->empty()) return;
  const Attribute* cap = c.n.attr("sparta.captures");
  const int own = c.inputs() - (cap ? int(cap->ss.size()) : 0);
  const size_t carried = size_t(std::max(0, own - 2));
  for (size_t i = 1; i < b->size(); ++i) {
    auto [dt, dims] = (*b)[i];
    if (i > carried && dims) dims->insert(dims->begin(), -1);
    c.set(int(i - 1), i > carried && !dims ? std::nullopt : dims, dt);
  }
}

}  // namespace

void define_control_flow_ops() {
  define_op({"If"}, {.shape = if_shape, .run = if_op});
  define_op({"Loop"}, {.shape = loop_shape, .run = loop_op});
}

}  // namespace sparta
