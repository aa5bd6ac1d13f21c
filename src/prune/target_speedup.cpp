#include "prune/target_speedup.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/error.h"
#include "frontend/onnx_import.h"
#include "ops/weight_plan.h"
#include "runtime/executor.h"

namespace sparta::prune {
namespace {

struct Candidate {
  std::string label;
  Options o;
};

std::vector<Candidate> candidates() {
  std::vector<Candidate> c;
  auto add = [&](const std::string& label, Pattern p, double s, auto&& set) {
    Options o;
    o.pattern = p;
    if (p != Pattern::nm) o.sparsity = s;
    set(o);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s %.0f%%", label.c_str(), 100 * o.target());
    c.push_back({buf, o});
  };
  auto none = [](Options&) {};
  for (double s : {0.5, 0.75, 0.9}) add("block 32x1", Pattern::block, s, [](Options& o) { o.block = {32, 1}; });
  for (double s : {0.75, 0.9}) add("block 1x32", Pattern::block, s, [](Options& o) { o.block = {1, 32}; });
  for (double s : {0.75, 0.9}) add("unstructured", Pattern::unstructured, s, none);
  add("nm 2:4", Pattern::nm, 0.5, none);
  for (double s : {0.5, 0.75, 0.9}) add("tilewise G=128", Pattern::tilewise, s, [](Options& o) { o.tile = 128; });
  return c;
}

double energy_removed(const Layer& l, const std::vector<uint8_t>& keep) {
  double all = 0, gone = 0;
  for (size_t i = 0; i < l.w.size(); ++i) {
    const double e = double(l.w[i]) * l.w[i];
    all += e;
    if (!keep[i]) gone += e;
  }
  return all > 0 ? gone / all : 0;
}

std::map<std::string, Tensor> zero_feeds(const Graph& g) {
  std::map<std::string, Tensor> feeds;
  for (const Value* v : g.inputs) {
    std::vector<int64_t> d = v->dims.value_or(std::vector<int64_t>{});
    for (int64_t& x : d) x = std::max<int64_t>(1, x);
    feeds[v->name] = Tensor(v->dtype.value_or(DType::f32), Shape(d));
  }
  return feeds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double time_once(Executor& e, const std::map<std::string, Tensor>& feeds) {
  const auto t0 = std::chrono::steady_clock::now();
  e.run(feeds);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string ms_str(double ms) {
  char b[32];
  std::snprintf(b, sizeof b, ms < 1 ? "%.3f" : "%.2f", ms);
  return b;
}

}  // namespace

TargetResult prune_to_speedup(const std::string& bytes, const std::string& what, const TargetOptions& t,
                              const std::function<void(const std::string&)>& progress) {
  SPARTA_CHECK(std::isfinite(t.speedup) && t.speedup > 1.0 && t.speedup <= 1000, "--target-speedup ", t.speedup,
               " must be above 1");
  SPARTA_CHECK(t.threads >= 1 && t.threads <= 256, "--threads ", t.threads, " must be in [1, 256]");
  SPARTA_CHECK(t.reps >= 1, "reps must be at least 1");
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  OnnxWeights model(bytes, what);
  const auto& ws = model.weights();
  model.check_skip(t.skip);
  SPARTA_CHECK(!ws.empty(), what, ": no MatMul, Gemm or Conv with a constant f32 weight to prune");

  // The unpruned model, measured, and each node's share of it (a product
  // runs slower in the model than alone, its weight and X coming from
  // memory: the estimate scales the in-model time by the kernels' ratio).
  // Both models are run with the per-node profile on, so that they compare.
  say("timing the unpruned model");
  const ExecutorOptions run_opt{.threads = t.threads, .profile = true};
  Executor base(import_onnx_bytes(bytes.data(), bytes.size(), what), run_opt);
  const auto feeds = zero_feeds(base.graph());
  base.run(feeds);
  std::vector<double> base_times;
  std::map<std::string, std::vector<double>> node_times;
  for (int i = 0; i < t.reps; ++i) {
    base_times.push_back(time_once(base, feeds));
    for (const auto& p : base.profile()) node_times[p.node].push_back(p.ms);
  }
  const double t0 = median(base_times);
  std::map<std::string, double> in_model;  // node -> median ms
  for (auto& [node, ms] : node_times) in_model[node] = median(ms);

  // Per layer: its options (time, loss); times measured once per product
  // shape and candidate, on the first layer of that shape.
  const std::vector<Candidate> cands = candidates();
  struct Option {
    int cand = -1;  // -1: as it is
    double ms = 0, loss = 0;
    std::string kernel;
  };
  std::vector<std::vector<Option>> opts(ws.size());
  std::map<std::string, ProductTiming> timed;
  double layers_ms = 0;
  const auto scoring = std::chrono::steady_clock::now();
  for (size_t i = 0; i < ws.size(); ++i) {
    const PrunableWeight& w = ws[i];
    const bool skipped = model.skipped(i, t.skip);
    const Layer l = model.layer(i);
    const int64_t m = model.activation_rows(i);
    const std::string shape = std::to_string(w.rows) + "x" + std::to_string(w.cols) + "@" + std::to_string(m);
    char line[256];
    const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - scoring).count();
    std::snprintf(line, sizeof line, "layer %zu/%zu %s: [%lld, %lld], %lld rows; %.0f s, eta %.0f s", i + 1, ws.size(),
                  w.weight->name.c_str(), (long long)w.rows, (long long)w.cols, (long long)m, spent,
                  i ? spent / double(i) * double(ws.size() - i) : 0.0);
    say(line);
    const bool conv = w.kind == PrunableWeight::Kind::conv;  // convolutions stay dense (oneDNN): timed as they are
    auto timing = [&](const std::string& key, const std::vector<uint8_t>* keep) {
      auto it = timed.find(key);
      if (it != timed.end()) return it->second;
      Tensor wt(DType::f32, Shape{l.rows, l.cols}, Uninitialized{});
      for (size_t j = 0; j < l.w.size(); ++j) wt.data<float>()[j] = keep && !(*keep)[j] ? 0.0f : l.w[j];
      return timed[key] = time_product(wt, m, t.threads);
    };
    const ProductTiming dense = timing(shape + " dense", nullptr);
    auto found = in_model.find(w.node->name);
    const double here = found != in_model.end() && found->second > 0 ? found->second : dense.dense_ms;
    const double scale = dense.dense_ms > 0 ? here / dense.dense_ms : 1.0;  // in the model against alone
    opts[i].push_back({-1, here, 0, dense.kernel});
    layers_ms += here;
    if (skipped || conv) continue;
    for (size_t c = 0; c < cands.size(); ++c) {
      std::string why;
      if (!fits(cands[c].o, l, why)) continue;
      if (cands[c].o.pattern == Pattern::tilewise && l.rows < 2 * cands[c].o.tile) continue;  // a tile of the whole
      const auto keep = compute_masks({l}, cands[c].o)[0];
      const ProductTiming pt = timing(shape + " " + cands[c].label, &keep);
      opts[i].push_back({int(c), scale * std::min(pt.ms, dense.dense_ms), energy_removed(l, keep), pt.kernel});
    }
  }

  // Greedy: the move with the most time saved per loss added, until the
  // estimate reaches the goal. If the chosen model then measures short of
  // the target, the goal is lowered by the shortfall and the search goes on
  // from there (up to three times).
  const double rest = std::max(0.0, t0 - layers_ms);
  double goal = t0 / t.speedup;
  std::vector<size_t> cur(ws.size(), 0);
  auto estimate = [&] {
    double e = rest;
    for (size_t i = 0; i < ws.size(); ++i) e += opts[i][cur[i]].ms;
    return e;
  };
  auto search = [&] {
    double e = estimate();
    while (e > goal) {
      double best = -1;
      size_t bl = 0, bo = 0;
      for (size_t i = 0; i < ws.size(); ++i)
        for (size_t o = 1; o < opts[i].size(); ++o) {
          const double gain = opts[i][cur[i]].ms - opts[i][o].ms;
          if (gain <= 1e-6) continue;
          const double score = gain / std::max(1e-6, opts[i][o].loss - opts[i][cur[i]].loss);
          if (score > best) best = score, bl = i, bo = o;
        }
      if (best < 0) break;
      cur[bl] = bo;
      e = estimate();
    }
    return e;
  };
  double est = search();
  if (est > goal) {
    char msg[256];
    std::snprintf(msg, sizeof msg, ": a %.2fx speedup is out of reach with sparta's patterns: the fastest choice for "
                  "every layer is estimated at %.2fx (unpruned %s ms, estimated %s ms)", t.speedup, t0 / est,
                  ms_str(t0).c_str(), ms_str(est).c_str());
    throw Error(what + msg);
  }

  TargetResult r;
  std::vector<Decision> decisions;
  for (int round = 0;; ++round) {
    // The chosen masks, the model, and the measurement.
    decisions.assign(ws.size(), Decision{});
    double loss = 0;
    for (size_t i = 0; i < ws.size(); ++i) {
      const Option& o = opts[i][cur[i]];
      const Option& d = opts[i][0];
      if (o.cand < 0) {
        decisions[i].skipped = opts[i].size() == 1 ? "kept: no pattern fits, or skipped" : "kept: not needed for the target";
        continue;
      }
      decisions[i].keep = compute_masks({model.layer(i)}, cands[size_t(o.cand)].o)[0];
      char note[200];
      std::snprintf(note, sizeof note, "%s: %s -> %s ms, %.1f%% of the weight's energy",
                    cands[size_t(o.cand)].label.c_str(), ms_str(d.ms).c_str(), ms_str(o.ms).c_str(), 100 * o.loss);
      decisions[i].note = note;
      loss += o.loss;
    }
    r.pruned = model.apply(decisions, false);
    r.estimated_ms = est;
    r.loss = loss;
    say("compiling and timing the chosen model against the unpruned one");
    Executor chosen(import_onnx_bytes(r.pruned.onnx.data(), r.pruned.onnx.size(), what), run_opt);
    chosen.run(feeds);
    std::vector<double> a, b;
    for (int k = 0; k < 3; ++k)
      for (int i = 0; i < std::max(1, t.reps / 3 + 1); ++i) {
        a.push_back(time_once(base, feeds));
        b.push_back(time_once(chosen, feeds));
      }
    r.unpruned_ms = median(a);
    r.measured_ms = median(b);
    const double short_by = r.measured_ms * t.speedup / r.unpruned_ms;  // > 1: slower than asked
    if (round == 3 || short_by <= 1.0) break;
    goal /= short_by;
    const std::vector<size_t> before = cur;
    const double e = search();
    if (cur == before) break;  // nothing faster left
    est = e;
    char line[160];
    std::snprintf(line, sizeof line, "measured %.2fx, short of %.2fx: choosing again for an estimate of %.2fx",
                  r.unpruned_ms / r.measured_ms, t.speedup, t0 / goal);
    say(line);
  }

  std::ostringstream s;
  char line[512];
  std::snprintf(line, sizeof line, "%-40s %-44s %s\n", "weight", "choice: time dense -> pruned, energy removed", "kernel");
  s << line;
  for (size_t i = 0; i < ws.size(); ++i) {
    const std::string& n = ws[i].weight->name;
    const std::string name = n.size() > 40 ? "..." + n.substr(n.size() - 37) : n;
    const Option& o = opts[i][cur[i]];
    std::snprintf(line, sizeof line, "%-40s %-44s %s\n", name.c_str(),
                  (decisions[i].note.empty() ? decisions[i].skipped : decisions[i].note).c_str(), o.kernel.c_str());
    s << line;
  }
  std::snprintf(line, sizeof line,
                "target %.2fx: unpruned %s ms, estimated %s ms (%.2fx), measured %s ms (%.2fx), %zu of %zu layers "
                "pruned, summed energy removed %.2f\n",
                t.speedup, ms_str(r.unpruned_ms).c_str(), ms_str(est).c_str(), t0 / est, ms_str(r.measured_ms).c_str(),
                r.unpruned_ms / r.measured_ms, r.pruned.masks.size(), ws.size(), r.loss);
  s << line;
  r.text = s.str();
  return r;
}

}  // namespace sparta::prune
