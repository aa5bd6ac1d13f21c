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
  schedule();
}

// Replays a run's bookkeeping once: each read of a value counts down its
// readers, and the node that brings the count to zero releases it.
void Executor::schedule() {
  std::unordered_map<const Value*, int> slot;
  std::vector<int> pending;  // reads still to come, per slot
  for (const auto& v : m_.graph.values()) {
    if (v->constant) continue;
    slot[v.get()] = static_cast<int>(slot_values_.size());
    slot_values_.push_back(v.get());
    pending.push_back(static_cast<int>(v->consumers.size()));
  }
  const auto operand = [&](const Value* v) {
    Operand o;
    if (!v) return o;
    if (v->constant) {
      o.constant = &*v->constant;
      return o;
    }
    o.slot = slot.at(v);
    return o;
  };
  for (const Value* in : m_.graph.inputs) input_slots_.push_back(operand(in).slot);
  for (const Value* o : m_.graph.outputs) output_ops_.push_back(operand(o));
  for (const auto& n : m_.graph.nodes()) {
    Step s;
    for (const Value* in : n->inputs) {
      s.in.push_back(operand(in));
      // pending counts one per read, so 1 means this is the only read left.
      s.last_use.push_back(s.in.back().slot >= 0 && pending[size_t(s.in.back().slot)] == 1 && !m_.graph.is_output(in));
    }
    for (const Value* o : n->outputs) s.out.push_back(o ? operand(o).slot : -1);
    for (const Operand& o : s.in)
      if (o.slot >= 0 && --pending[size_t(o.slot)] == 0 && !m_.graph.is_output(slot_values_[size_t(o.slot)]))
        s.release.push_back(o.slot);
    for (int o : s.out)  // results nobody reads go at once
      if (o >= 0 && pending[size_t(o)] == 0 && !m_.graph.is_output(slot_values_[size_t(o)])) s.release.push_back(o);
    steps_.push_back(std::move(s));
  }
}

std::vector<Tensor> Executor::run(const std::map<std::string, Tensor>& inputs) {
  std::vector<Tensor> slots(slot_values_.size());
  for (const auto& [name, t] : inputs) {
    const Value* v = m_.graph.find(name);
    bool is_input = false;
    for (const Value* in : m_.graph.inputs) is_input |= in == v;
    SPARTA_CHECK(is_input, "'", name, "' is not an input of the model");
  }
  for (size_t k = 0; k < m_.graph.inputs.size(); ++k) {
    const Value* in = m_.graph.inputs[k];
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
    if (input_slots_[k] >= 0) slots[size_t(input_slots_[k])] = t;  // an input that is also a constant is read in place
    if (auto p = m_.promises.find(in); p != m_.promises.end()) check_promise(in, t);
  }
  const auto get = [&](const Operand& o, const Node& n) -> const Tensor* {
    if (o.slot < 0) return o.constant;
    const Tensor& t = slots[size_t(o.slot)];
    SPARTA_ASSERT(t.defined() || t.numel() == 0, "value ", slot_values_[size_t(o.slot)]->name, " read by node ", n.name,
                  " is not computed");
    return &t;
  };
  profile_.clear();
  const int64_t opset = m_.graph.default_opset();
  static std::atomic<uint64_t> next_run{1};  // process-wide: no two runs share a number
  const uint64_t run = next_run++;
  std::vector<const Tensor*> in_buf;
  std::vector<Tensor> out_buf;
  for (size_t ni = 0; ni < steps_.size(); ++ni) {
    const Node& n = *m_.graph.nodes()[ni];
    const Step& s = steps_[ni];
    OpCall call{n, std::move(in_buf), std::move(out_buf), opt_.threads, opset, &m_.plans[ni]};
    call.in.clear();
    call.out.clear();
    call.sparse = m_.options.sparse;
    call.run = run;
    call.last_use = &s.last_use;
    for (const Operand& o : s.in) call.in.push_back(o.slot < 0 && !o.constant ? nullptr : get(o, n));
    if (opt_.profile) {
      const auto t0 = std::chrono::steady_clock::now();
      m_.defs[ni]->run(call);
      profile_.push_back({n.name, n.op_type,
                          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                          call.impl});
    } else {
      m_.defs[ni]->run(call);
    }
    for (size_t i = 0; i < s.out.size(); ++i) {
      if (s.out[i] < 0) continue;
      SPARTA_CHECK(i < call.out.size(), "node '", n.name, "' (", n.op_type, "): output ", i, " ('",
                   n.outputs[i]->name, "') is not supported");
      Tensor& dst = slots[size_t(s.out[i])];
      dst = std::move(call.out[i]);
      if (!m_.promises.empty())
        if (auto p = m_.promises.find(n.outputs[i]); p != m_.promises.end()) check_promise(n.outputs[i], dst);
    }
    // Release inputs whose last reader this was (graph outputs stay).
    for (int r : s.release) slots[size_t(r)] = Tensor();
    in_buf = std::move(call.in);
    out_buf = std::move(call.out);
  }
  std::vector<Tensor> out;
  out.reserve(output_ops_.size());
  for (size_t k = 0; k < output_ops_.size(); ++k) {
    const Operand& o = output_ops_[k];
    SPARTA_CHECK(o.slot >= 0 || o.constant, "graph output '", m_.graph.outputs[k]->name, "' is not computed");
    out.push_back(o.slot < 0 ? *o.constant : slots[size_t(o.slot)]);
  }
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
