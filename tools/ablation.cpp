#include "tools/ablation.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "runtime/executor.h"
#include "tools/feeds.h"

namespace sparta::tools {

std::vector<AblationStage> run_ablation(const std::function<Graph()>& load, std::map<std::string, Tensor> feeds,
                                        int threads, int reps) {
  struct Stage {
    const char* name;
    CompileConfig config;
  };
  const Stage stages[] = {
      {"dense", {.threads = threads, .sparse = false}},
      {"sparse_kernels", {.threads = threads, .sparse = true, .propagate = false, .decompose = false, .jit = false}},
      {"propagation", {.threads = threads, .sparse = true, .propagate = true, .decompose = false, .jit = false}},
      {"transformation", {.threads = threads, .sparse = true, .propagate = true, .decompose = true, .jit = false}},
      {"specialization", {.threads = threads, .sparse = true, .propagate = true, .decompose = true, .jit = true}},
  };
  std::vector<AblationStage> out;
  std::vector<std::unique_ptr<Executor>> runners;
  for (const Stage& s : stages) {
    const auto t0 = std::chrono::steady_clock::now();
    auto e = std::make_unique<Executor>(compile_model(load(), s.config), ExecutorOptions{.threads = threads, .profile = true});
    AblationStage a{s.name, 0, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(), {}};
    add_default_feeds(e->model(), feeds);
    e->run(feeds);  // warm-up: first-run plans and buffers
    e->run(feeds);
    for (const auto& p : e->profile())
      if (!p.impl.empty()) ++a.kernels[p.op + ": " + p.impl];
    out.push_back(std::move(a));
    runners.push_back(std::move(e));
  }
  // The stages' repetitions interleaved, so that drift of a shared machine
  // touches every stage alike.
  std::vector<std::vector<double>> ms(runners.size());
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < runners.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      runners[i]->run(feeds);
      ms[i].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  for (size_t i = 0; i < runners.size(); ++i) {
    std::sort(ms[i].begin(), ms[i].end());
    out[i].ms = ms[i][ms[i].size() / 2];
  }
  return out;
}

}  // namespace sparta::tools
