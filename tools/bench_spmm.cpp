#include "tools/bench_spmm.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "core/cpu.h"
#include "core/error.h"
#include "formats/random_weight.h"
#include "jit/jit_stats.h"
#include "kernels/isa_kernels.h"
#include "kernels/onednn_kernels.h"
#if SPARTA_HAVE_PEERS
#include "peers.h"
#endif

namespace sparta::tools {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  return max_rel_err(a.data(), b.data(), static_cast<int64_t>(a.size()));
}

struct Contender {
  std::string key;  // json field prefix: "dense", "sparse", "eigen", "xsmm"
  std::function<void()> run;
  std::vector<double> ms;
};

void check_config(const SpmmBenchConfig& c) {
  SPARTA_CHECK(c.density >= 0.0 && c.density <= 1.0, "--density ", c.density, " must be in [0, 1]");
  SPARTA_CHECK(c.m >= 1 && c.k >= 1 && c.n >= 1, "--m/--k/--n must be >= 1 (got ", c.m, ", ", c.k, ", ", c.n, ")");
  SPARTA_CHECK(c.m * c.k <= (int64_t{1} << 31) && c.n * c.k <= (int64_t{1} << 31), "problem too large");
  SPARTA_CHECK(c.threads >= 1 && c.threads <= 256, "--threads ", c.threads, " must be in [1, 256]");
  SPARTA_CHECK(c.reps >= 1 && c.warmup >= 0, "--reps must be >= 1 and --warmup >= 0");
  SPARTA_CHECK(c.nm.n >= 1 && c.nm.m >= 1 && c.nm.n <= c.nm.m, "--nm ", c.nm.str(), ": need 1 <= N <= M");
}

}  // namespace

double max_rel_err(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return den > 0 ? num / den : num;
}

json bench_spmm(const SpmmBenchConfig& c) {
  check_config(c);
  // The OpenMP pool gets exactly the threads under test: a spare worker
  // spinning after a wider region steals cycles from the measured thread
  // (seen as ~30% of samples in libgomp on a 2-vCPU machine, halving dense).
  omp_set_num_threads(c.threads);
  PackOptions opt;
  opt.block = c.block;
  opt.nm = c.nm;
  opt.tile = c.tile;
  const Tensor w = random_pruned_weight(c.format, opt, c.n, c.k, c.density, c.seed);
  const Tesa tesa = Tesa::from_zeros(w);
  const WeightFormat f = pack(c.format, w, tesa, opt);
  std::vector<std::string> log;
  KernelOptions kopt;
  kopt.jit = c.jit;
  kopt.require = c.kernel;
  if (c.tune && c.kernel.empty()) {
    kopt.tune_m = c.m;
    kopt.tune_threads = c.threads;
  }
  const jit::Stats gen0 = jit::stats();
  const auto sparse = make_spmm(f, kopt, &log);
  const jit::Stats gen = jit::since(gen0);  // every generated candidate, timed or not
  if (c.verbose)
    for (const auto& l : log) std::fprintf(stderr, "  %s\n", l.c_str());
  OnednnDenseKernel dense(c.n, c.k, std::vector<float>(w.data<float>(), w.data<float>() + w.numel()), true);
  dense.prepare(c.m, c.bias, c.act);

  std::vector<float> x(static_cast<size_t>(c.m * c.k)), bias(static_cast<size_t>(c.n));
  std::mt19937_64 rng(c.seed + 1);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (auto& v : x) v = d(rng);
  for (auto& v : bias) v = d(rng);
  const size_t ysize = static_cast<size_t>(c.m * c.n);
  std::vector<float> y_dense(ysize), y_sparse(ysize), y_peer(ysize);
  const Epilogue ep{c.bias ? bias.data() : nullptr, c.act, false};
  const SpmmArgs ad{x.data(), c.m, c.k, y_dense.data(), c.n, ep, c.threads};
  SpmmArgs as = ad;
  as.y = y_sparse.data();

  std::vector<Contender> cs;
  cs.push_back({"dense", [&] { dense.run(ad); }, {}});
  cs.push_back({"sparse", [&] { sparse->run(as); }, {}});
  json out;
  out["format"] = c.format;
  out["block"] = c.format == "bsr" ? c.block.str() : "";
  out["nm"] = c.format == "nm" ? c.nm.str() : "";
  out["tile"] = c.format == "tilewise" ? c.tile : 0;
  out["density"] = tesa.density();
  out["m"] = c.m;
  out["k"] = c.k;
  out["n"] = c.n;
  out["threads"] = c.threads;
  out["kernel"] = sparse->name();
  out["kernel_log"] = log;
  out["isa"] = std::string(isa_name(host_isa()));
  out["pattern"] = analyze_pattern(tesa).summary();
  out["stored_fraction"] = double(format_stored(f)) / double(c.n * c.k);
  out["activation"] = activation_name(c.act);
  out["bias"] = c.bias;

  // Correctness first: the sparse result must match dense.
  dense.run(ad);
  sparse->run(as);
  const double err = rel_err(y_sparse, y_dense);
  out["max_rel_err"] = err;
  SPARTA_CHECK(err <= 1e-4, "sparse kernel ", sparse->name(), " disagrees with oneDNN dense: max relative error ",
               err, " (format ", c.format, ", density ", c.density, ")");
  out["dense_kernel"] = "onednn:" + dense.impl_info();
  out["jit_kernels"] = gen.kernels;
  out["jit_code_bytes"] = gen.code_bytes;
  out["jit_gen_ms"] = gen.gen_ms;

#if SPARTA_HAVE_PEERS
  // Peers compute the plain product (no bias/activation): they are compared
  // against dense without those, and timed as they are.
  std::vector<std::unique_ptr<bench::Peer>> peers;
  if (c.peers && c.format != "dense") {
    const CsrMatrix csr = pack_csr(w, tesa);
    std::vector<float> y_plain(ysize);
    {
      SpmmArgs ap = ad;
      ap.y = y_plain.data();
      ap.ep = Epilogue{};
      OnednnDenseKernel plain(c.n, c.k, std::vector<float>(w.data<float>(), w.data<float>() + w.numel()), false);
      plain.run(ap);
    }
    using Maker = std::unique_ptr<bench::Peer> (*)(const CsrMatrix&, int64_t, int);
    const std::pair<const char*, Maker> makers[] = {{"eigen", &bench::make_eigen_peer},
                                                    {"xsmm", &bench::make_xsmm_peer}};
    for (auto [key, make] : makers) {
      auto p = make(csr, c.m, c.threads);
      if (!p) continue;
      std::fill(y_peer.begin(), y_peer.end(), 0.f);
      p->run(x.data(), y_peer.data());
      const double perr = rel_err(y_peer, y_plain);
      SPARTA_CHECK(perr <= 1e-4, "peer ", key, " disagrees with oneDNN dense: max relative error ", perr);
      bench::Peer* raw = p.get();
      peers.push_back(std::move(p));
      cs.push_back({key, [raw, &x, &y_peer] { raw->run(x.data(), y_peer.data()); }, {}});
    }
  }
#endif

  for (int i = 0; i < c.warmup; ++i)
    for (auto& ct : cs) ct.run();
  // Interleaved repetitions, rotating the order so no contender always runs
  // right after another one's cache footprint.
  for (int r = 0; r < c.reps; ++r)
    for (size_t j = 0; j < cs.size(); ++j) {
      Contender& ct = cs[(j + static_cast<size_t>(r)) % cs.size()];
      const auto t0 = Clock::now();
      ct.run();
      ct.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
  for (auto& ct : cs) {
    out[ct.key + "_ms"] = median(ct.ms);
    out[ct.key + "_min_ms"] = *std::min_element(ct.ms.begin(), ct.ms.end());
  }
  const double dense_ms = out["dense_ms"], sparse_ms = out["sparse_ms"];
  out["speedup"] = dense_ms / sparse_ms;
  // Useful work (kept weights x M rows x 2) over time, and how much of the
  // one-core FMA peak x threads that is, for every contender.
  const double flop = 2.0 * double(format_stored(f)) * double(c.m), dense_flop = 2.0 * double(c.m * c.k * c.n);
  const double peak = isa_kernels(host_isa()).peak_fma_gflops(0.05) * c.threads;
  out["peak_gflops"] = peak;
  out["sparse_gflops"] = flop / sparse_ms / 1e6;
  out["sparse_peak_fraction"] = flop / sparse_ms / 1e6 / peak;
  out["dense_gflops"] = dense_flop / dense_ms / 1e6;
  out["dense_peak_fraction"] = dense_flop / dense_ms / 1e6 / peak;
  for (const char* p : {"eigen", "xsmm"})
    if (out.contains(std::string(p) + "_ms")) out[std::string(p) + "_speedup"] = dense_ms / double(out[std::string(p) + "_ms"]);
  out["reps"] = c.reps;
  return out;
}

void bench_spmm_sweep(const SweepConfig& s) {
  struct Variant {
    std::string format;
    BlockShape block{32, 1};
    NmShape nm{2, 4};
  };
  std::vector<Variant> variants = {{"csr"},          {"bsr", {32, 1}}, {"bsr", {1, 32}}, {"bsr", {16, 16}},
                                   {"bsr", {4, 1}},  {"tilewise"},     {"structured"},   {"nm", {}, {2, 4}},
                                   {"nm", {}, {1, 4}}, {"nm", {}, {2, 8}}};
  std::vector<double> densities = {0.5, 0.3, 0.2, 0.1, 0.05};
  std::vector<std::pair<int64_t, int64_t>> shapes = {{768, 768}, {768, 3072}, {3072, 768}};  // (K, N)
  if (s.quick) {
    variants = {{"csr"}, {"bsr", {32, 1}}, {"nm", {}, {2, 4}}, {"tilewise"}, {"structured"}};
    densities = {0.5, 0.1};
    shapes = {{256, 512}};
  }
  std::filesystem::create_directories(s.out_dir);
  json rows = json::array();
  int done = 0;
  const int total = static_cast<int>(shapes.size() * variants.size() * densities.size());
  for (auto [k, n] : shapes)
    for (const Variant& v : variants)
      for (double d : densities) {
        ++done;
        // N:M fixes its own density: run it once per shape.
        if (v.format == "nm" && d != densities.front()) continue;
        SpmmBenchConfig c;
        c.format = v.format;
        c.block = v.block;
        c.nm = v.nm;
        c.density = d;
        c.m = 128;
        c.k = k;
        c.n = n;
        c.threads = s.threads;
        c.reps = s.reps;
        c.warmup = s.warmup;
        c.peers = s.peers && v.format == "csr";
        json r = bench_spmm(c);
        std::fprintf(stderr, "[%3d/%3d] %4lldx%-4lld %-10s %-5s density %.3f  sparse %7.3f ms  dense %7.3f ms  %5.2fx  %s\n",
                     done, total, static_cast<long long>(k), static_cast<long long>(n), v.format.c_str(),
                     (std::string(r["block"]) + std::string(r["nm"])).c_str(), double(r["density"]),
                     double(r["sparse_ms"]), double(r["dense_ms"]), double(r["speedup"]),
                     std::string(r["kernel"]).c_str());
        rows.push_back(r);
      }
  const std::string base = s.out_dir + "/sweep";
  std::ofstream(base + ".json") << rows.dump(1) << "\n";
  std::ofstream md(base + ".md");
  md << "| K->N | format | density | kernel | sparse ms | dense ms | speedup | eigen | libxsmm |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  for (const auto& r : rows) {
    std::string fmt = std::string(r["format"]) + " " + std::string(r["block"]) + std::string(r["nm"]);
    auto peer = [&](const char* key) {
      const std::string f = std::string(key) + "_speedup";
      if (!r.contains(f)) return std::string("");
      char b[32];
      std::snprintf(b, sizeof b, "%.2fx", double(r[f]));
      return std::string(b);
    };
    std::snprintf(buf, sizeof buf, "| %lld->%lld | %s | %.3f | %s | %.3f | %.3f | %.2fx | %s | %s |\n",
                  static_cast<long long>(r["k"]), static_cast<long long>(r["n"]), fmt.c_str(), double(r["density"]),
                  std::string(r["kernel"]).c_str(), double(r["sparse_ms"]), double(r["dense_ms"]),
                  double(r["speedup"]), peer("eigen").c_str(), peer("xsmm").c_str());
    md << buf;
  }
  md.close();
  std::ifstream in(base + ".md");
  std::printf("%s", std::string(std::istreambuf_iterator<char>(in), {}).c_str());
  const std::string cmd = std::string("/usr/bin/python3 ") + SPARTA_SOURCE_DIR + "/scripts/plot_sweep.py " + base +
                          ".json " + base + ".png";
  if (std::system(cmd.c_str()) == 0)
    std::fprintf(stderr, "wrote %s.json, %s.md, %s.png\n", base.c_str(), base.c_str(), base.c_str());
  else
    std::fprintf(stderr, "wrote %s.json and %s.md; plotting failed (needs python3-matplotlib)\n", base.c_str(),
                 base.c_str());
}

}  // namespace sparta::tools
