#include "runtime/compiled_model.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <algorithm>
#include <set>

#include "core/error.h"
#include "frontend/onnx_import.h"
#include "jit/jit_stats.h"
#include "kernels/parallel.h"
#include "passes/layout.h"
#include "runtime/report.h"

namespace sparta {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Nodes whose kernel choice is new are planned one at a time (their timing
// must not share the machine), then the rest on opt.threads threads:
// packing BERT-base's weights is most of its compile time.
void plan_nodes(CompiledModel& m) {
  const PlanOptions po{m.options.threads, m.options.sparse, m.options.decompose, m.options.jit};
  std::vector<size_t> first, rest;
  std::set<std::string> seen;
  const auto& nodes = m.graph.nodes();
  for (size_t ni = 0; ni < nodes.size(); ++ni) {
    const OpDef* def = m.defs[ni];
    if (!def->plan_key) continue;
    const std::string key = def->plan_key(*nodes[ni], po);
    if (key.empty()) continue;
    (seen.insert(key).second ? first : rest).push_back(ni);
  }
  auto plan = [&](size_t ni) { m.plans[ni] = m.defs[ni]->plan(*nodes[ni], po); };
  const jit::Stats gen0 = jit::stats();
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t ni : first) plan(ni);
  m.times.tune_ms = ms_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  parallel_each(m.options.threads, rest.size(), [&](size_t i) { plan(rest[i]); });
  m.times.pack_ms = ms_since(t1);
  m.times.jit = jit::since(gen0);
}

}  // namespace

int link_packed_handoffs(CompiledModel& m) {
  const auto& nodes = m.graph.nodes();
  std::map<const Node*, size_t> index;
  for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i].get()] = i;
  std::vector<int> in_tile(nodes.size(), 0), out_tile(nodes.size(), 0);
  int pairs = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n1 = *nodes[i];
    const NodePlan* p1 = m.plans[i].get();
    if (!p1 || n1.outputs.size() != 1 || m.promises.count(n1.outputs[0])) continue;
    const int t = p1->packed_output_tile(n1);
    const Node* n2 = t > 0 ? m.graph.sole_consumer(n1.outputs[0]) : nullptr;
    if (!n2) continue;
    const size_t j = index.at(n2);
    const NodePlan* p2 = m.plans[j].get();
    const auto uses = std::count(n2->inputs.begin(), n2->inputs.end(), n1.outputs[0]);
    if (!p2 || uses != 1 || j == i) continue;
    const size_t at = static_cast<size_t>(std::find(n2->inputs.begin(), n2->inputs.end(), n1.outputs[0]) - n2->inputs.begin());
    if (p2->packed_input_tile(*n2, at) != t) continue;
    out_tile[i] = t;
    in_tile[j] = t;
    ++pairs;
  }
  for (size_t i = 0; i < nodes.size(); ++i)
    if (m.plans[i]) m.plans[i]->set_packed(in_tile[i], out_tile[i]);
  return pairs;
}

void parallel_each(int threads, size_t n, const std::function<void(size_t)>& f) {
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  parallel_run(std::min<int>(threads, static_cast<int>(n)), [&](int, int) {
    for (size_t i; (i = next++) < n;) {
      try {
        f(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
      }
    }
  });
  if (error) std::rethrow_exception(error);
}

namespace {

// Operator -> (nodes, the first one's name), subgraphs (If, Loop) included.
void collect_unsupported(const Graph& g, const std::string& where,
                         std::map<std::string, std::pair<int, std::string>>& ops) {
  for (const auto& n : g.nodes()) {
    for (const auto& [key, a] : n->attrs) {
      if (a.kind != Attribute::Kind::g) continue;
      const std::string inside = "subgraph '" + key + "' of '" + n->name + "'";
      collect_unsupported(import_onnx_bytes(a.s.data(), a.s.size(), inside), " in " + inside, ops);
    }
    const bool domain_ok = n->domain.empty() || n->domain == "sparta";
    const OpDef* def = domain_ok ? find_op_def(*n) : nullptr;
    if (def && def->run) continue;
    auto& e = ops[n->domain.empty() ? n->op_type : n->domain + "." + n->op_type];
    if (e.first++ == 0) e.second = n->name + "'" + where;
  }
}

}  // namespace

std::vector<std::string> unsupported_operators(const Graph& g) {
  std::map<std::string, std::pair<int, std::string>> ops;  // operator -> nodes, the first one
  collect_unsupported(g, "", ops);
  std::vector<std::string> out;
  for (const auto& [op, e] : ops)
    out.push_back(op + " (" + std::to_string(e.first) + (e.first == 1 ? " node, '" : " nodes, first '") + e.second + ")");
  return out;
}

void bind_op_defs(CompiledModel& m) {
  m.defs.clear();
  const Graph& g = m.graph;
  const std::vector<std::string> missing = unsupported_operators(g);
  const std::string others =
      missing.size() > 1 ? " and " + std::to_string(missing.size() - 1) + " other unsupported operator(s); `sparta inspect` lists them all"
                         : "";
  for (const auto& n : g.nodes()) {
    SPARTA_CHECK(n->domain.empty() || n->domain == "sparta", "unsupported operator '", n->domain, ".", n->op_type,
                 "' (node '", n->name, "'): only the default ONNX domain is supported", others);
    for (size_t i = 0; i < n->inputs.size(); ++i)
      SPARTA_CHECK(!n->inputs[i] || accepts_layout(*n, i, n->inputs[i]->layout), "node '", n->name,
                   "' cannot read input ", i, " in layout ", layout_name(n->inputs[i]->layout));
    const OpDef* def = find_op_def(*n);
    SPARTA_CHECK(def && def->run, "unsupported operator '", n->op_type, "' (node '", n->name, "', opset ",
                 g.default_opset(), ")", others);
    m.defs.push_back(def);
  }
  SPARTA_CHECK(missing.empty(), "unsupported operator ", missing.empty() ? "" : missing[0],
               missing.size() > 1 ? "; `sparta inspect` lists them all" : "");
  m.plans.assign(g.nodes().size(), nullptr);
}

namespace {

// Gives the graph inputs the extents of opt.shapes for the compile; returns
// their dims as they were, to restore after.
std::map<Value*, std::pair<std::optional<std::vector<int64_t>>, std::vector<std::string>>> bind_shapes(
    Graph& g, const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::map<Value*, std::pair<std::optional<std::vector<int64_t>>, std::vector<std::string>>> saved;
  for (const auto& [name, dims] : shapes) {
    Value* in = nullptr;
    for (Value* v : g.inputs) in = v->name == name ? v : in;
    SPARTA_CHECK(in, "shapes: '", name, "' is not an input of the model");
    if (in->dims) {
      SPARTA_CHECK(in->dims->size() == dims.size(), "shapes: input '", name, "' has rank ", in->dims->size(), ", not ",
                   dims.size());
      for (size_t i = 0; i < dims.size(); ++i)
        SPARTA_CHECK((*in->dims)[i] < 0 || (*in->dims)[i] == dims[i], "shapes: input '", name, "' has extent ",
                     (*in->dims)[i], " in dim ", i, ", not ", dims[i]);
    }
    int64_t numel = 1;
    for (int64_t d : dims) {
      SPARTA_CHECK(d >= 1 && d <= (int64_t{1} << 31), "input '", name, "': extent ", d, " out of range");
      SPARTA_CHECK(numel <= (int64_t{1} << 32) / d, "input '", name, "': more than 2^32 elements");
      numel *= d;
    }
    saved[in] = {in->dims, in->dim_names};
    in->dims = dims;
    in->dim_names.clear();
  }
  if (!saved.empty()) g.shapes_bound = true;
  return saved;
}

}  // namespace

// compile_model without the out-of-memory translation.
static CompiledModel compile_graph(Graph g, const CompileConfig& opt, std::string source);

CompiledModel compile_model(Graph g, const CompileConfig& opt, std::string source) {
  SPARTA_CHECK(opt.threads >= 1 && opt.threads <= 1024, "threads must be in [1, 1024]");
  try {
    return compile_graph(std::move(g), opt, std::move(source));
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while compiling the model (shapes too large for this machine?)");
  }
}

static CompiledModel compile_graph(Graph g, const CompileConfig& opt, std::string source) {
  CompiledModel m;
  m.graph = std::move(g);
  m.options = opt;
  m.source = std::move(source);
  const auto t0 = std::chrono::steady_clock::now();
  const auto unbound = bind_shapes(m.graph, opt.shapes);
  // Checked promises are not used: a transformation that trusted one could
  // make it come true (the weights that only feed a promised zero are made
  // zero), and the check would prove nothing.
  if (opt.keep_promises)
    for (const auto& v : m.graph.values())
      if (!v->is_constant() && v->tesa) {
        m.promises[v.get()] = *v->tesa;
        v->tesa.reset();
      }
  const std::vector<WeightBefore> before = weights_before(m.graph);
  if (opt.simplify) {
    m.pipeline = run_pipeline(m.graph, {.propagate = opt.sparse && opt.propagate, .layout_block = opt.layout_block});
    for (const PassLogEntry& e : m.pipeline.log)
      if (e.pass == "propagate" || e.pass == "shrink") m.times.propagate_ms += e.ms;
  }
  m.graph.link();  // consumer lists as the passes left the nodes
  m.graph.drop_unused_constants();
  bind_op_defs(m);
  m.times.passes_ms = ms_since(t0);
  plan_nodes(m);
  {
    const auto t0 = std::chrono::steady_clock::now();
    const int pairs = link_packed_handoffs(m);
    m.pipeline.log.push_back({"packed-handoff", ms_since(t0),
                              std::to_string(pairs) + " product pair(s) hand their activation over packed"});
  }
  m.report = build_report(m, before);
  for (const Value* in : m.graph.inputs)
    if (in->dims && std::all_of(in->dims->begin(), in->dims->end(), [](int64_t d) { return d >= 0; }))
      m.compiled_shapes[in->name] = *in->dims;
  // The inputs take their symbolic dims back: the compiled model runs at
  // any shape (intermediate values keep the compile-time extents, for
  // reading; nothing at run time checks them).
  for (auto& [v, d] : unbound) {
    v->dims = d.first;
    v->dim_names = d.second;
  }
  return m;
}

}  // namespace sparta
