#include "runtime/executor.h"

#include <atomic>
#include <chrono>
#include <unordered_map>

#include "core/error.h"
#include "ops/op_def.h"

namespace sparta {

Executor::Executor(Graph g, ExecutorOptions opt)
    : Executor(compile_model(std::move(g),
                            CompileConfig{.threads = opt.threads,
                                           .simplify = opt.simplify,
                                           .sparse = opt.sparse,
                                           .propagate = opt.propagate,
                                           .layout_block = opt.layout_block,
                                           .keep_promises = opt.check_tesa}),
              opt) {}

namespace {

// A subgraph of an If or Loop node, run by an Executor of its own.
class ExecutorRunner final : public SubgraphRunner {
 public:
  ExecutorRunner(CompiledModel m, ExecutorOptions o) : e_(std::move(m), o) {}
  const Graph& graph() const override { return e_.graph(); }
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs) override { return e_.run(inputs); }

 private:
  Executor e_;
};

void register_subgraph_compiler() {
  static const bool done = [] {
    set_subgraph_compiler([](Graph g, const std::map<std::string, std::vector<int64_t>>& shapes, int threads,
                             bool sparse) -> std::unique_ptr<SubgraphRunner> {
      CompileConfig cfg;
      cfg.threads = threads;
      cfg.sparse = sparse;
      cfg.shapes = shapes;
      ExecutorOptions o;
      o.threads = threads;
      o.sparse = sparse;
      return std::make_unique<ExecutorRunner>(compile_model(std::move(g), cfg), o);
    });
    return true;
  }();
  (void)done;
}

}  // namespace

Executor::Executor(CompiledModel m, ExecutorOptions opt) : m_(std::move(m)), opt_(opt) {
  register_subgraph_compiler();  // before any If or Loop of this model runs
  SPARTA_CHECK(opt_.threads >= 1, "threads must be >= 1");
  SPARTA_ASSERT(m_.defs.size() == m_.graph.nodes().size() && m_.plans.size() == m_.graph.nodes().size(),
                "a compiled model has one definition and one plan slot per node");
}

std::vector<Tensor> Executor::run(const std::map<std::string, Tensor>& inputs) {
  std::unordered_map<const Value*, Tensor> live;
  std::unordered_map<const Value*, int> pending;  // consumers still to run
  for (const auto& v : m_.graph.values()) pending[v.get()] = static_cast<int>(v->consumers.size());
  for (const auto& [name, t] : inputs) {
    const Value* v = m_.graph.find(name);
    bool is_input = false;
    for (const Value* in : m_.graph.inputs) is_input |= in == v;
    SPARTA_CHECK(is_input, "'", name, "' is not an input of the model");
  }
  for (const Value* in : m_.graph.inputs) {
    auto it = inputs.find(in->name);
    SPARTA_CHECK(it != inputs.end(), "missing input '", in->name, "' (", in->dtype ? dtype_name(*in->dtype) : "?",
                 in->shape_str(), ")");
    const Tensor& t = it->second;
    if (in->dtype)
      SPARTA_CHECK(t.dtype() == *in->dtype, "input '", in->name, "' must be ", dtype_name(*in->dtype), ", got ",
                   dtype_name(t.dtype()));
    if (in->dims) {
      bool ok = static_cast<int>(in->dims->size()) == t.rank();
      for (int i = 0; ok && i < t.rank(); ++i) ok = (*in->dims)[static_cast<size_t>(i)] < 0 || (*in->dims)[static_cast<size_t>(i)] == t.dim(i);
      SPARTA_CHECK(ok, "input '", in->name, "' must have shape ", in->shape_str(), ", got ", t.shape().str());
    }
    live[in] = t;
    if (auto p = m_.promises.find(in); p != m_.promises.end()) check_promise(in, t);
  }
  auto get = [&](const Value* v) -> const Tensor* {
    if (!v) return nullptr;
    if (v->constant) return &*v->constant;
    auto it = live.find(v);
    SPARTA_ASSERT(it != live.end(), "value ", v->name, " not computed");
    return &it->second;
  };
  profile_.clear();
  const int64_t opset = m_.graph.default_opset();
  static std::atomic<uint64_t> next_run{1};  // process-wide: no two runs share a number
  const uint64_t run = next_run++;
  for (size_t ni = 0; ni < m_.graph.nodes().size(); ++ni) {
    const auto& n = m_.graph.nodes()[ni];
    OpCall call{*n, {}, {}, opt_.threads, opset, &m_.plans[ni]};
    call.sparse = m_.options.sparse;
    call.run = run;
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Value* in = n->inputs[i];
      call.in.push_back(get(in));
      // pending counts one per read, so 1 means this is the only read left.
      const bool last = in && !in->constant && pending[in] == 1 && !m_.graph.is_output(in);
      call.last_use.push_back(last);
    }
    const auto t0 = std::chrono::steady_clock::now();
    m_.defs[ni]->run(call);
    if (opt_.profile)
      profile_.push_back({n->name, n->op_type,
                          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                          call.impl});
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      if (!n->outputs[i]) continue;
      SPARTA_CHECK(i < call.out.size(), "node '", n->name, "' (", n->op_type, "): output ", i, " ('",
                   n->outputs[i]->name, "') is not supported");
      live[n->outputs[i]] = std::move(call.out[i]);
      if (auto p = m_.promises.find(n->outputs[i]); p != m_.promises.end()) check_promise(n->outputs[i], live[n->outputs[i]]);
    }
    // Release inputs whose last consumer this was (graph outputs stay).
    for (const Value* in : n->inputs)
      if (in && !in->constant && --pending[in] == 0) {
        if (!m_.graph.is_output(in)) live.erase(in);
      }
  }
  std::vector<Tensor> out;
  for (const Value* o : m_.graph.outputs) out.push_back(*get(o));
  return out;
}

void Executor::check_promise(const Value* v, const Tensor& t) const {
  const Tesa& p = m_.promises.at(v);
  // Values the passes put in a blocked layout or fused away are not seen.
  if (v->layout != Layout::plain || t.shape() != p.shape()) return;
  const uint8_t* raw = static_cast<const uint8_t*>(t.raw());
  const size_t es = dtype_size(t.dtype());
  for (int64_t i = 0; i < p.numel(); ++i) {
    if (p.kept(i)) continue;
    bool zero = true;
    for (size_t b = 0; b < es; ++b) zero = zero && raw[static_cast<size_t>(i) * es + b] == 0;
    if (t.dtype() == DType::f32) zero = t.data<float>()[i] == 0.f;  // -0 is zero too
    SPARTA_CHECK(zero, "--check-tesa: '", v->name, "' element ", i, " of ", t.shape().str(),
                 " is not zero, but the TeSA spec says it is pruned");
  }
}

}  // namespace sparta
