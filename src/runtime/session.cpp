#include "runtime/session.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "kernels/parallel.h"
#include "analysis/shape_inference.h"
#include "passes/fuse.h"
#include "passes/pipeline.h"
#include "passes/simplify.h"
#include "ops/op_def.h"

namespace sparta {

Session::Session(Graph g, SessionOptions opt) : g_(std::move(g)), opt_(opt) {
  SPARTA_CHECK(opt_.threads >= 1, "threads must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  // Checked promises are not used: a transformation that trusted one could
  // make it come true (the weights that only feed a promised zero are made
  // zero), and the check would prove nothing.
  if (opt_.check_tesa)
    for (const auto& v : g_.values())
      if (!v->is_constant() && v->tesa) {
        promises_[v.get()] = *v->tesa;
        v->tesa.reset();
      }
  if (opt_.simplify) {
    pipeline_ = run_pipeline(g_, {.propagate = opt_.propagate && opt_.sparse, .layout_block = opt_.layout_block});
    for (const PassLogEntry& e : pipeline_.log)
      if (e.pass == "propagate" || e.pass == "shrink") plan_times_.propagate_ms += e.ms;
  }
  for (const auto& n : g_.nodes()) {
    SPARTA_CHECK(n->domain.empty() || n->domain == "sparta", "unsupported operator '", n->domain, ".", n->op_type,
                 "' (node '", n->name, "'): only the default ONNX domain is supported");
    for (size_t i = 0; i < n->inputs.size(); ++i)
      SPARTA_ASSERT(!n->inputs[i] || accepts_layout(*n, i, n->inputs[i]->layout), "node '", n->name,
                    "' cannot read input ", i, " in layout ", layout_name(n->inputs[i]->layout));
    const OpDef* def = find_op_def(*n);
    SPARTA_CHECK(def && def->run, "unsupported operator '", n->op_type, "' (node '", n->name,
                 "', opset ", g_.default_opset(), ")");
    node_def_.push_back(def);
  }
  node_plan_.resize(g_.nodes().size());
  plan_times_.passes_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  prepare();
}

void Session::prepare() {
  // Nodes whose kernel choice is new are prepared one at a time (their
  // timing must not share the machine), then the rest on opt_.threads
  // threads: packing BERT-base's weights is most of its load time.
  std::vector<size_t> first, rest;
  std::set<std::string> seen;
  for (size_t ni = 0; ni < g_.nodes().size(); ++ni) {
    const OpDef* def = node_def_[ni];
    if (!def->plan_key) continue;
    const std::string key = def->plan_key(*g_.nodes()[ni], PlanOptions{opt_.threads, opt_.sparse});
    if (key.empty()) continue;
    (seen.insert(key).second ? first : rest).push_back(ni);
  }
  auto run = [&](size_t ni) {
    const Node& n = *g_.nodes()[ni];
    node_plan_[ni] = node_def_[ni]->plan(n, PlanOptions{opt_.threads, opt_.sparse});
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t ni : first) run(ni);
  const auto t1 = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  parallel_run(std::min<int>(opt_.threads, static_cast<int>(rest.size())), [&](int, int) {
    for (size_t i; (i = next++) < rest.size();) {
      try {
        run(rest[i]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
      }
    }
  });
  if (error) std::rethrow_exception(error);
  plan_times_.tune_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  plan_times_.pack_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
}

std::vector<Tensor> Session::run(const std::map<std::string, Tensor>& inputs) {
  std::unordered_map<const Value*, Tensor> live;
  std::unordered_map<const Value*, int> pending;  // consumers still to run
  for (const auto& v : g_.values()) pending[v.get()] = static_cast<int>(v->consumers.size());
  for (const auto& [name, t] : inputs) {
    const Value* v = g_.find(name);
    bool is_input = false;
    for (const Value* in : g_.inputs) is_input |= in == v;
    SPARTA_CHECK(is_input, "'", name, "' is not an input of the model");
  }
  for (const Value* in : g_.inputs) {
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
    if (auto p = promises_.find(in); p != promises_.end()) check_promise(in, t);
  }
  auto get = [&](const Value* v) -> const Tensor* {
    if (!v) return nullptr;
    if (v->constant) return &*v->constant;
    auto it = live.find(v);
    SPARTA_ASSERT(it != live.end(), "value ", v->name, " not computed");
    return &it->second;
  };
  profile_.clear();
  const int64_t opset = g_.default_opset();
  for (size_t ni = 0; ni < g_.nodes().size(); ++ni) {
    const auto& n = g_.nodes()[ni];
    OpCall call{*n, {}, {}, opt_.threads, opset, &node_plan_[ni]};
    call.sparse = opt_.sparse;
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Value* in = n->inputs[i];
      call.in.push_back(get(in));
      // pending counts one per read, so 1 means this is the only read left.
      const bool last = in && !in->constant && pending[in] == 1 && !g_.is_output(in);
      call.last_use.push_back(last);
    }
    const auto t0 = std::chrono::steady_clock::now();
    node_def_[ni]->run(call);
    if (opt_.profile)
      profile_.push_back({n->name, n->op_type,
                          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                          call.impl});
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      if (!n->outputs[i]) continue;
      SPARTA_CHECK(i < call.out.size(), "node '", n->name, "' (", n->op_type, "): output ", i, " ('",
                   n->outputs[i]->name, "') is not supported");
      live[n->outputs[i]] = std::move(call.out[i]);
      if (auto p = promises_.find(n->outputs[i]); p != promises_.end()) check_promise(n->outputs[i], live[n->outputs[i]]);
    }
    // Release inputs whose last consumer this was (graph outputs stay).
    for (const Value* in : n->inputs)
      if (in && !in->constant && --pending[in] == 0) {
        if (!g_.is_output(in)) live.erase(in);
      }
  }
  std::vector<Tensor> out;
  for (const Value* o : g_.outputs) out.push_back(*get(o));
  return out;
}

void Session::check_promise(const Value* v, const Tensor& t) const {
  const Tesa& p = promises_.at(v);
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
