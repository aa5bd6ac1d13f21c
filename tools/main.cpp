// The `sparta` command line. Every failure is one line on stderr and a
// non-zero exit; nothing a user types can crash it.
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <dnnl.hpp>
#include <iostream>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "core/atomic_file.h"
#include "core/cpu.h"
#include "core/error.h"
#include "analysis/shape_inference.h"
#include "core/npy.h"
#include "frontend/onnx_import.h"
#include "frontend/tesa_spec.h"
#include "runtime/artifact.h"
#include "runtime/report.h"
#include "runtime/compiled_model.h"
#include "runtime/executor.h"
#include "tools/ablation.h"
#include "tools/feeds.h"
#include "tools/peer_script.h"
#include "tools/bench_sparseconv.h"
#include "tools/bench_spmm.h"
#include "tools/prune_cmd.h"

namespace {

using namespace sparta;

// The model, with the TeSA spec (--tesa) applied when one is given: masked
// weights get their zeros, run-time values their promises. One line on
// stderr says what the spec did.
Graph load_model(const std::string& path, const std::string& tesa_path) {
  Graph g = import_onnx_file(path);
  if (tesa_path.empty()) return g;
  const TesaSpec spec = read_tesa_spec(tesa_path);
  infer_shapes(g);  // a run-time value's mask is checked against its shape
  const TesaSpecReport r = apply_tesa_spec(g, spec);
  std::fprintf(stderr, "tesa: %s: %d weight(s) annotated (%lld elements pruned), %d run-time value(s) annotated\n",
               tesa_path.c_str(), r.weights, static_cast<long long>(r.weight_elements_pruned), r.promises);
  return g;
}

// Bindings for a dynamic model's symbolic input dims from the inputs a run
// is given (inputs that do not fit the model are left to the session's
// check, which names them).
std::map<std::string, std::vector<int64_t>> feed_shapes(const Graph& g, const std::map<std::string, Tensor>* feeds) {
  std::map<std::string, std::vector<int64_t>> shapes;
  if (!feeds) return shapes;
  for (const Value* in : g.inputs) {
    auto it = feeds->find(in->name);
    if (it == feeds->end() || !in->dims) continue;
    const std::vector<int64_t>& d = *in->dims;
    const std::vector<int64_t> f = it->second.shape().dims();
    bool symbolic = false, fits = d.size() == f.size();
    for (size_t i = 0; fits && i < d.size(); ++i) {
      symbolic |= d[i] < 0;
      fits = (d[i] < 0 || d[i] == f[i]) && f[i] >= 1;
    }
    if (symbolic && fits) shapes[in->name] = f;
  }
  return shapes;
}

// --layout: the layout pass's block (passes/layout.h).
int parse_layout(const std::string& s) {
  if (s == "auto") return 0;
  if (s == "nchw8c") return 8;
  if (s == "nchw16c") return 16;
  if (s == "nhwc") return -1;
  throw Error("--layout '" + s + "' is not one of auto, nchw8c, nchw16c, nhwc");
}

// --shape NAME=D0,D1,... options.
std::map<std::string, std::vector<int64_t>> parse_shapes(const std::vector<std::string>& specs) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const std::string& spec : specs) {
    std::smatch m;
    SPARTA_CHECK(std::regex_match(spec, m, std::regex(R"(([^=]+)=(\d{1,9}(,\d{1,9})*))")), "--shape '", spec,
                 "' must look like NAME=D0,D1,... (e.g. input_ids=1,128)");
    std::vector<int64_t> d;
    std::stringstream ss(m[2].str());
    for (std::string part; std::getline(ss, part, ',');) d.push_back(std::stoll(part));
    SPARTA_CHECK(shapes.emplace(m[1].str(), d).second, "--shape: '", m[1].str(), "' given twice");
  }
  return shapes;
}

// A model to run: a `.sparta` file loaded as it was compiled, or an ONNX
// model (with its TeSA spec) compiled now, its symbolic input dims bound to
// the shapes of `feeds` when given.
CompiledModel open_model(const std::string& path, const std::string& tesa_path, CompileConfig opt,
                         const std::map<std::string, Tensor>* feeds = nullptr) {
  if (is_compiled_model_file(path)) {
    SPARTA_CHECK(tesa_path.empty(), "--tesa applies to ONNX models; ", path, " is compiled (give the spec to sparta compile)");
    CompiledModel m = load_compiled(path, opt.threads);
    SPARTA_CHECK(opt.sparse || !m.options.sparse, "--dense: ", path, " was compiled with sparsity on (compile it with --dense)");
    SPARTA_CHECK(!opt.keep_promises, "--check-tesa applies to ONNX models with --tesa; ", path, " is compiled");
    SPARTA_CHECK(opt.layout_block == 0, "--layout applies to ONNX models; ", path, " is compiled (give it to sparta compile)");
    return m;
  }
  Graph g = load_model(path, tesa_path);
  if (opt.shapes.empty()) opt.shapes = feed_shapes(g, feeds);
  return compile_model(std::move(g), opt, path);
}

// Runs scripts/peer_bench.py (ONNX Runtime, OpenVINO, PyTorch) on an ONNX
// model; its JSON. ORT's outputs go to out_dir as .npy.
nlohmann::json peer_bench(const std::string& python, const std::string& model, int threads, int reps,
                          const std::vector<std::string>& inputs, const std::string& out_dir) {
  std::string cmd = python + " " + SPARTA_SOURCE_DIR + "/scripts/peer_bench.py '" + model + "' --threads " +
                    std::to_string(threads) + " --reps " + std::to_string(reps) + " --out-dir " + out_dir;
  for (const auto& spec : inputs) cmd += " --input '" + spec + "'";
  return tools::run_peer_script(cmd, "the peer benchmark failed (needs " + python + " with onnxruntime: run scripts/setup.sh)");
}

// Writes text to path through a temporary name (nothing half-written).
void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.stream() << text;
  f.commit();
}

int run(int argc, char** argv) {
  CLI::App app{"sparta: pruned and quantized models, fast on CPUs"};
  app.require_subcommand(1);

  auto* info = app.add_subcommand("info", "Show the host's ISA and library versions");
  info->callback([] {
    const dnnl_version_t* v = dnnl_version();
    std::printf("sparta 0.1.0\nhost isa: %s\noneDNN: %d.%d.%d\n", std::string(isa_name(host_isa())).c_str(),
                v->major, v->minor, v->patch);
  });

  auto* inspect = app.add_subcommand("inspect", "Show a model's nodes, shapes, parameters and weight sparsity");
  std::string model_path;
  inspect->add_option("model", model_path, "an ONNX model or a compiled .sparta model")->required();
  std::string tesa_path;
  const char* tesa_help = "a TeSA spec (JSON): masks and bit-widths per tensor";
  inspect->add_option("--tesa", tesa_path, tesa_help);
  bool inspect_plan = false;
  inspect->add_flag("--plan", inspect_plan,
                    "show the graph as it will run: after folding, fusion and layout assignment (blocked outputs "
                    "are marked @nChw8c or @nChw16c)");
  inspect->callback([&] {
    if (inspect_plan || is_compiled_model_file(model_path)) {
      const CompiledModel m = open_model(model_path, tesa_path, {.threads = 1});
      std::printf("%spasses:\n%s", m.graph.dump().c_str(), m.pipeline.str().c_str());
      std::printf("kernels:\n");
      for (size_t i = 0; i < m.plans.size(); ++i)
        if (m.plans[i]) std::printf("  %s: %s\n", m.graph.nodes()[i]->name.c_str(), m.plans[i]->kernel().c_str());
      return;
    }
    Graph g = load_model(model_path, tesa_path);
    const ShapeInferenceReport rep = infer_shapes(g);
    std::printf("%s", g.dump().c_str());
    if (!rep.unknown_ops.empty()) {
      std::printf("no shape rule yet for:");
      for (const auto& op : rep.unknown_ops) std::printf(" %s", op.c_str());
      std::printf("\n");
    }
    const std::vector<std::string> missing = unsupported_operators(g);
    if (!missing.empty()) {
      std::printf("unsupported operators (opset %lld), the model cannot run until they are:\n",
                  static_cast<long long>(g.default_opset()));
      for (const auto& m : missing) std::printf("  %s\n", m.c_str());
    }
  });

  tools::add_prune_command(app);

  auto* compile = app.add_subcommand(
      "compile", "Compile a model: passes, kernels chosen by measurement, packed weights; write a .sparta file");
  std::string compile_out;
  int compile_threads = 1;
  bool compile_dense = false;
  bool compile_no_jit = false;
  compile->add_option("model", model_path, "an ONNX model")->required();
  compile->add_option("-o,--output", compile_out, "the compiled model (.sparta)")->required();
  compile->add_option("--tesa", tesa_path, tesa_help);
  compile->add_option("--threads", compile_threads, "threads the kernels are chosen for")->capture_default_str();
  compile->add_flag("--dense", compile_dense, "sparsity off: no TeSA propagation, a dense kernel for every weight");
  compile->add_flag("--no-jit", compile_no_jit, "no kernels generated for the weights' patterns (template kernels only)");
  std::string compile_layout = "auto";
  const char* layout_help = "activation layout between convolutions: auto (the host's), nchw8c, nchw16c, nhwc";
  compile->add_option("--layout", compile_layout, layout_help)->capture_default_str();
  std::string compile_report;
  std::vector<std::string> compile_shapes;
  compile->add_option("--shape", compile_shapes,
                      "NAME=D0,D1,...: extents for an input's symbolic dims; kernels are chosen at these shapes, and "
                      "the model still runs at any other");
  compile->add_option("--report", compile_report, "also write the compile report (JSON) to this file");
  compile->callback([&] {
    SPARTA_CHECK(compile_threads >= 1 && compile_threads <= 256, "--threads ", compile_threads, " must be in [1, 256]");
    SPARTA_CHECK(!is_compiled_model_file(model_path), model_path, " is already compiled");
    const auto t0 = std::chrono::steady_clock::now();
    ChoiceCache::global().reset_stats();
    // Progress on a terminal only: a pipe or a log gets the summary line.
    const bool progress = ::isatty(2);
    if (progress) std::fprintf(stderr, "compile: %s: importing\n", model_path.c_str());
    Graph g = load_model(model_path, tesa_path);
    if (progress) std::fprintf(stderr, "compile: passes and kernel choice (%d thread(s))\n", compile_threads);
    const CompiledModel m = compile_model(
        std::move(g), {.threads = compile_threads, .sparse = !compile_dense, .jit = !compile_no_jit,
                       .layout_block = parse_layout(compile_layout),
                       .shapes = parse_shapes(compile_shapes)},
        model_path);
    for (const Value* in : m.graph.inputs)
      if (!m.compiled_shapes.count(in->name))
        std::fprintf(stderr, "sparta: note: input '%s' %s has symbolic dims: its kernels are chosen on the first run "
                     "(give --shape %s=...)\n", in->name.c_str(), in->shape_str().c_str(), in->name.c_str());
    if (progress) std::fprintf(stderr, "compile: writing %s\n", compile_out.c_str());
    save_compiled(m, compile_out);
    if (!compile_report.empty()) write_text_file(compile_report, m.report + "\n");
    const ChoiceCache::Stats st = ChoiceCache::global().stats();
    int planned = 0;
    for (const auto& p : m.plans) planned += p != nullptr;
    std::printf("%s -> %s: %zu nodes, %d with a prepared kernel; passes %.0f ms (propagation %.0f), kernel choice "
                "%.0f ms, packing %.0f ms; kernel choices measured %lld, from the cache %lld; %.1f MB, %.0f ms in all\n",
                model_path.c_str(), compile_out.c_str(), m.graph.nodes().size(), planned, m.times.passes_ms,
                m.times.propagate_ms, m.times.tune_ms, m.times.pack_ms, static_cast<long long>(st.measured),
                static_cast<long long>(st.hits_memory + st.hits_disk),
                std::filesystem::file_size(compile_out) / 1e6,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (m.times.jit.kernels > 0) std::printf("%s; generated again on load\n", jit::stats_str(m.times.jit).c_str());
  });

  auto* report = app.add_subcommand(
      "report", "Per layer: density and shape before and after propagation, pattern, kernel, measured times");
  std::string report_html_path;
  bool report_json = false;
  report->add_option("model", model_path, "a compiled .sparta model (or an ONNX model, compiled now)")->required();
  report->add_option("--tesa", tesa_path, tesa_help);
  report->add_flag("--json", report_json, "print the report as one JSON object");
  report->add_option("--html", report_html_path, "write the report as one self-contained HTML page");
  report->callback([&] {
    const CompiledModel m = open_model(model_path, tesa_path, {.threads = 1});
    if (!report_html_path.empty()) write_text_file(report_html_path, report_html(m.report));
    if (report_json) {
      std::printf("%s\n", m.report.c_str());
      return;
    }
    const nlohmann::json r = nlohmann::json::parse(m.report);
    std::printf("%-40s %-14s %9s %9s %-16s %-30s %9s %9s\n", "layer", "shape after", "density", "after", "pattern",
                "kernel", "ms", "dense ms");
    for (const auto& l : r["layers"]) {
      std::string shape;
      for (const auto& d : l["shape_after"]) shape += (shape.empty() ? "" : "x") + std::to_string(d.get<int64_t>());
      auto ms = [&](const char* k) { return l.contains(k) && l[k].is_number() ? l[k].get<double>() : -1.0; };
      std::printf("%-40s %-14s %9.3f %9.3f %-16s %-30s %9.3f %9.3f\n", l.value("name", "").c_str(), shape.c_str(),
                  l.value("density_before", 0.0), l.value("density_after", 0.0), l.value("pattern", "").c_str(),
                  l.value("kernel", "").c_str(), ms("ms"), ms("dense_ms"));
    }
    const auto& t = r["totals"];
    std::printf("parameters %.2f M -> %.2f M, FLOPs %.2f G -> %.2f G; measured kernels %.2f ms vs %.2f ms dense\n",
                t.value("parameters_before", 0.0) / 1e6, t.value("parameters_after", 0.0) / 1e6,
                t.value("flops_before", 0.0) / 1e9, t.value("flops_after", 0.0) / 1e9, t.value("measured_ms", 0.0),
                t.value("measured_dense_ms", 0.0));
    if (!report_html_path.empty()) std::printf("wrote %s\n", report_html_path.c_str());
  });

  auto* run_cmd = app.add_subcommand("run", "Run a model on .npy (or ONNX .pb) inputs; write every output as .npy");
  std::vector<std::string> run_inputs;
  std::string run_out_dir = "out";
  int run_threads = 1;
  bool run_profile = false;
  run_cmd->add_option("model", model_path, "an ONNX model or a compiled .sparta model")->required();
  run_cmd->add_option("--input", run_inputs, "NAME=FILE.npy (or FILE.pb), once per graph input");
  run_cmd->add_option("--tesa", tesa_path, tesa_help);
  bool run_check_tesa = false, run_dense = false;
  const char* dense_help = "sparsity off: no TeSA propagation, a dense kernel for every weight";
  run_cmd->add_flag("--dense", run_dense, dense_help);
  run_cmd->add_flag("--check-tesa", run_check_tesa,
                    "check on the run that every run-time value the spec annotates is zero where it says pruned");
  run_cmd->add_option("--output-dir", run_out_dir, "folder for <output name>.npy")->capture_default_str();
  run_cmd->add_option("--threads", run_threads, "threads")->capture_default_str();
  run_cmd->add_flag("--profile", run_profile, "print per-node times");
  run_cmd->callback([&] {
    SPARTA_CHECK(run_threads >= 1 && run_threads <= 256, "--threads ", run_threads, " must be in [1, 256]");
    std::map<std::string, Tensor> feeds = tools::read_feeds(run_inputs);
    Executor session(open_model(model_path, tesa_path,
                               {.threads = run_threads, .sparse = !run_dense, .keep_promises = run_check_tesa}, &feeds),
                    {.threads = run_threads, .profile = run_profile, .check_tesa = run_check_tesa});
    std::vector<std::string> names;
    for (const Value* v : session.graph().outputs) names.push_back(v->name);
    const std::vector<Tensor> outs = session.run(feeds);
    std::filesystem::create_directories(run_out_dir);
    for (size_t i = 0; i < outs.size(); ++i) {
      std::string file = names[i];
      for (char& ch : file)
        if (ch == '/' || ch == '\\' || ch == ':') ch = '_';
      const std::string path = run_out_dir + "/" + file + ".npy";
      write_npy(path, outs[i]);
      std::printf("%s %s%s -> %s\n", names[i].c_str(), std::string(dtype_name(outs[i].dtype())).c_str(),
                  outs[i].shape().str().c_str(), path.c_str());
    }
    if (run_profile)
      for (const auto& t : session.profile())
        std::printf("  %8.3f ms  %-20s %s%s%s\n", t.ms, t.op.c_str(), t.node.c_str(), t.impl.empty() ? "" : "  ",
                    t.impl.c_str());
  });

  auto* bench = app.add_subcommand("bench", "Benchmarks against peers, in one run");
  bench->require_subcommand(1);
  auto* bmodel = bench->add_subcommand("model", "Time a whole model: warm-up, then the median of repeated runs");
  std::string bm_path;
  std::vector<std::string> bm_inputs;
  int bm_threads = 1, bm_reps = 10;
  bool bm_json = false, bm_profile = false, bm_peers = false;
  int bm_top = 15;
  std::string bm_python = std::string(SPARTA_SOURCE_DIR) + "/.venv/bin/python";
  bmodel->add_option("model", bm_path, "an ONNX model or a compiled .sparta model")->required();
  bmodel->add_option("--input", bm_inputs, "NAME=FILE.npy; inputs not given are zeros of the model's shape");
  bmodel->add_option("--threads", bm_threads, "threads")->capture_default_str();
  bmodel->add_option("--tesa", tesa_path, tesa_help);
  bool bm_dense = false;
  bmodel->add_flag("--dense", bm_dense, dense_help);
  std::string bm_layout = "auto";
  bmodel->add_option("--layout", bm_layout, layout_help)->capture_default_str();
  bmodel->add_option("--reps", bm_reps, "timed runs")->capture_default_str();
  bmodel->add_flag("--json", bm_json, "print one JSON object");
  bmodel->add_flag("--profile", bm_profile, "per-operator-type time of the median run, and its slowest nodes");
  bmodel->add_option("--top", bm_top, "how many of the slowest nodes --profile lists")->capture_default_str();
  bmodel->add_flag("--peers", bm_peers, "also time ONNX Runtime (and PyTorch, with MODEL.pt) and compare outputs");
  bmodel->add_option("--python", bm_python, "python with onnxruntime, for --peers")->capture_default_str();
  bool bm_ablation = false;
  bmodel->add_flag("--ablation", bm_ablation,
                   "time the model compiled at each stage: dense, sparse_kernels (no propagation), propagation "
                   "(+ shrink), transformation (+ decomposition)");
  bmodel->callback([&] {
    SPARTA_CHECK(bm_threads >= 1 && bm_threads <= 256, "--threads ", bm_threads, " must be in [1, 256]");
    SPARTA_CHECK(bm_reps >= 1, "--reps must be >= 1");
    omp_set_num_threads(bm_threads);
    const auto t0 = std::chrono::steady_clock::now();
    std::map<std::string, Tensor> feeds = tools::read_feeds(bm_inputs);
    if (bm_ablation) {
      SPARTA_CHECK(!is_compiled_model_file(bm_path), "--ablation compiles the model at each stage: give the ONNX file");
      SPARTA_CHECK(!bm_dense, "--ablation and --dense: the dense stage is part of the ablation");
      const auto stages = tools::run_ablation([&] { return load_model(bm_path, tesa_path); }, feeds, bm_threads, bm_reps);
      nlohmann::json j;
      j["model"] = bm_path;
      j["threads"] = bm_threads;
      j["reps"] = bm_reps;
      j["ablation"] = nlohmann::json::array();
      for (const auto& s : stages)
        j["ablation"].push_back({{"stage", s.stage}, {"ms", s.ms}, {"speedup_vs_dense", stages[0].ms / s.ms},
                                 {"compile_ms", s.compile_ms}, {"kernels", s.kernels}});
      if (bm_peers) {
        const std::string dir = (std::filesystem::temp_directory_path() / ("sparta_peers_" + std::to_string(::getpid()))).string();
        const nlohmann::json peer = peer_bench(bm_python, bm_path, bm_threads, bm_reps, bm_inputs, dir);
        std::filesystem::remove_all(dir);
        j["ort_ms"] = peer.at("ort_ms");
        for (auto& st : j["ablation"]) st["speedup_vs_ort"] = peer.at("ort_ms").get<double>() / st["ms"].get<double>();
      }
      if (bm_json) {
        std::printf("%s\n", j.dump().c_str());
        return;
      }
      std::printf("%s: ablation, %d thread(s), median of %d\n", bm_path.c_str(), bm_threads, bm_reps);
      std::printf("  %-16s %10s %14s %12s\n", "stage", "ms", "vs dense", "compile ms");
      for (const auto& s : stages)
        std::printf("  %-16s %10.2f %13.2fx %12.0f\n", s.stage.c_str(), s.ms, stages[0].ms / s.ms, s.compile_ms);
      if (j.contains("ort_ms")) std::printf("  ONNX Runtime     %10.2f\n", j["ort_ms"].get<double>());
      return;
    }
    Executor session(open_model(bm_path, tesa_path,
                                {.threads = bm_threads, .sparse = !bm_dense, .layout_block = parse_layout(bm_layout)}, &feeds),
                    {.threads = bm_threads, .profile = true});
    const double import_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    tools::add_default_feeds(session.model(), feeds);
    const auto t1 = std::chrono::steady_clock::now();
    session.run(feeds);  // first run: prepacks weights, plans oneDNN primitives
    const double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
    session.run(feeds);
    struct Rep {
      double ms;
      std::map<std::string, double> by_op;
      std::vector<Executor::NodeTime> nodes;
    };
    std::vector<Rep> runs;
    std::map<std::string, int> kernels;  // "op: impl" -> nodes
    for (const auto& p : session.profile())
      if (!p.impl.empty()) ++kernels[p.op + ": " + p.impl];
    nlohmann::json peers;
    const std::string peer_dir = (std::filesystem::temp_directory_path() / ("sparta_peers_" + std::to_string(::getpid()))).string();
    // Peers run between two halves of sparta's repetitions, so that drift of
    // a shared machine touches both alike.
    // The peers run the ONNX model; for a compiled model, the one it was
    // compiled from.
    std::string peer_model = bm_path;
    if (bm_peers && is_compiled_model_file(bm_path)) {
      peer_model = session.model().source;
      SPARTA_CHECK(std::filesystem::exists(peer_model), "--peers: ", bm_path, " was compiled from ", peer_model,
                   ", which is not there for the peers to run");
    }
    auto run_peers = [&] { peers = peer_bench(bm_python, peer_model, bm_threads, bm_reps, bm_inputs, peer_dir); };
    for (int r = 0; r < bm_reps; ++r) {
      if (bm_peers && r == bm_reps / 2) run_peers();
      const auto t = std::chrono::steady_clock::now();
      session.run(feeds);
      std::map<std::string, double> by_op;
      for (const auto& p : session.profile()) by_op[p.op] += p.ms;
      runs.push_back({std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count(), by_op,
                      bm_profile ? session.profile() : std::vector<Executor::NodeTime>{}});
    }
    std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.ms < b.ms; });
    const auto& med = runs[runs.size() / 2];
    nlohmann::json j;
    j["model"] = bm_path;
    j["threads"] = bm_threads;
    j["dense"] = bm_dense;
    j["reps"] = bm_reps;
    j["sparta_ms"] = med.ms;
    j["sparta_min_ms"] = runs.front().ms;
    j["import_ms"] = import_ms;  // file to ready session: parse (or map), passes, packed weights
    j["compiled"] = is_compiled_model_file(bm_path);
    j["load_ms"] = session.plan_times().load_ms;
    j["plan_ms"] = session.plan_times().passes_ms + session.plan_times().tune_ms + session.plan_times().pack_ms;
    j["plan_tune_ms"] = session.plan_times().tune_ms;
    j["plan_propagate_ms"] = session.plan_times().propagate_ms;
    j["plan_pack_ms"] = session.plan_times().pack_ms;
    const jit::Stats& gen = session.plan_times().jit;  // generated in planning or loading
    j["jit_kernels"] = gen.kernels;
    j["jit_code_bytes"] = gen.code_bytes;
    j["jit_ms"] = gen.gen_ms;
    j["jit_check_ms"] = gen.check_ms;
    j["first_run_ms"] = first_ms;
    j["ops_ms"] = med.by_op;
    j["kernels"] = kernels;
    if (bm_peers) {
      for (auto& [k, v] : peers.items()) j[k] = v;
      // Outputs against ONNX Runtime's: max |a - b| / max |b| over all outputs.
      const std::vector<Tensor> mine = session.run(feeds);
      double err = 0;
      for (size_t i = 0; i < mine.size(); ++i) {
        std::string file = session.graph().outputs[i]->name;
        for (char& ch : file)
          if (ch == '/' || ch == ':') ch = '_';
        const Tensor ref = read_npy(peer_dir + "/" + file + ".npy");
        SPARTA_CHECK(ref.shape() == mine[i].shape() && ref.dtype() == DType::f32 && mine[i].dtype() == DType::f32,
                     "output ", i, " differs from ONNX Runtime's in shape or type");
        err = std::max(err, tools::max_rel_err(mine[i].data<float>(), ref.data<float>(), ref.numel()));
      }
      j["max_rel_err_vs_ort"] = err;
      std::filesystem::remove_all(peer_dir);
    }
    if (bm_json) {
      std::printf("%s\n", j.dump().c_str());
      return;
    }
    std::printf("%s: %.2f ms median of %d (min %.2f), %d thread(s); import + plan %.1f ms (plan %.1f: tuning %.1f, "
                "packing %.1f), first run %.1f ms\n",
                bm_path.c_str(), med.ms, bm_reps, runs.front().ms, bm_threads, import_ms, double(j["plan_ms"]),
                session.plan_times().tune_ms, session.plan_times().pack_ms, first_ms);
    if (session.plan_times().jit.kernels > 0) std::printf("  %s\n", jit::stats_str(session.plan_times().jit).c_str());
    for (const char* k : {"ort_ms", "openvino_ms", "torch_ms"})
      if (j.contains(k)) std::printf("  %-8s %.2f ms\n", k, double(j[k]));
    if (j.contains("max_rel_err_vs_ort")) std::printf("  max_rel_err_vs_ort %.2e\n", double(j["max_rel_err_vs_ort"]));
    if (bm_profile) {
      std::vector<std::pair<double, std::string>> ops;
      for (const auto& [op, ms] : med.by_op) ops.push_back({ms, op});
      std::sort(ops.rbegin(), ops.rend());
      for (const auto& [ms, op] : ops) std::printf("  %9.3f ms  %s\n", ms, op.c_str());
      for (const auto& [k, count] : kernels) std::printf("  %4d x %s\n", count, k.c_str());
      std::vector<Executor::NodeTime> top = med.nodes;
      std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
      if (top.size() > static_cast<size_t>(bm_top)) top.resize(static_cast<size_t>(bm_top));
      std::printf("  slowest nodes:\n");
      for (const auto& t : top) std::printf("  %9.3f ms  %-12s %s  %s\n", t.ms, t.op.c_str(), t.node.c_str(), t.impl.c_str());
    }
  });

  auto* spmm = bench->add_subcommand("spmm", "Y = X W^T + bias for one sparse weight W[N,K], vs oneDNN dense");
  tools::SpmmBenchConfig c;
  std::string block = "32x1", nm = "2:4", act = "none", out_dir = "out/sweep";
  bool json = false, sweep = false, no_peers = false, no_bias = false, quick = false;
  spmm->add_option("--format", c.format, "dense, csr, bsr, nm, tilewise or structured")->capture_default_str();
  spmm->add_option("--block", block, "BSR block RxC (R along N, C along K)")->capture_default_str();
  spmm->add_option("--nm", nm, "N:M along K")->capture_default_str();
  spmm->add_option("--tile", c.tile, "tile-wise rows per tile G")->capture_default_str();
  spmm->add_option("--density", c.density, "fraction of weights kept")->capture_default_str();
  spmm->add_option("--m", c.m, "rows of X (tokens)")->capture_default_str();
  spmm->add_option("--k", c.k, "input features")->capture_default_str();
  spmm->add_option("--n", c.n, "output features")->capture_default_str();
  spmm->add_option("--threads", c.threads, "threads for every contender")->capture_default_str();
  spmm->add_option("--reps", c.reps, "timed repetitions (median reported)")->capture_default_str();
  spmm->add_option("--warmup", c.warmup, "untimed repetitions first")->capture_default_str();
  spmm->add_option("--seed", c.seed, "seed of the random weight and input")->capture_default_str();
  spmm->add_option("--act", act, "fused activation: none, relu, gelu")->capture_default_str();
  spmm->add_flag("--no-bias", no_bias, "no bias");
  spmm->add_flag("--no-peers", no_peers, "skip Eigen and LIBXSMM");
  spmm->add_flag("--json", json, "print one JSON object");
  spmm->add_flag("--sweep", sweep, "every format x density x BERT-base shape; table, JSON and PNG");
  spmm->add_flag("--quick", quick, "with --sweep: a small grid (smoke test)");
  spmm->add_option("--out-dir", out_dir, "with --sweep: output folder")->capture_default_str();
  bool no_tune = false;
  spmm->add_flag("--no-tune", no_tune, "take the first kernel that accepts instead of timing the candidates");
  spmm->add_flag("--verbose", c.verbose, "log kernels that declined the problem and tuning times");
  spmm->add_option("--kernel", c.kernel, "only this implementation, e.g. jit_csr_avx2 or csr_spmm_mvec__avx512");
  bool no_jit = false;
  spmm->add_flag("--no-jit", no_jit, "no kernels generated for the weight's pattern among the candidates");
  spmm->callback([&] {
    c.block = parse_block_shape(block);
    c.nm = parse_nm_shape(nm);
    c.act = parse_activation(act);
    c.peers = !no_peers;
    c.bias = !no_bias;
    c.tune = !no_tune;
    c.jit = !no_jit;
    if (sweep) {
      tools::SweepConfig s;
      s.threads = c.threads;
      s.peers = c.peers;
      s.out_dir = out_dir;
      s.quick = quick;
      if (spmm->count("--reps")) s.reps = c.reps;
      if (spmm->count("--warmup")) s.warmup = c.warmup;
      tools::bench_spmm_sweep(s);
      return;
    }
    const nlohmann::json r = tools::bench_spmm(c);
    if (json) {
      std::cout << r.dump() << std::endl;
      return;
    }
    std::printf("%s %s density %.3f  M=%lld K=%lld N=%lld  threads %d\n", c.format.c_str(),
                std::string(r["pattern"]).c_str(), double(r["density"]), static_cast<long long>(c.m),
                static_cast<long long>(c.k), static_cast<long long>(c.n), c.threads);
    std::printf("  sparse  %-28s %8.3f ms\n", std::string(r["kernel"]).c_str(), double(r["sparse_ms"]));
    std::printf("  dense   %-28s %8.3f ms\n", std::string(r["dense_kernel"]).c_str(), double(r["dense_ms"]));
    for (const char* p : {"eigen", "xsmm"})
      if (r.contains(std::string(p) + "_ms"))
        std::printf("  peer    %-28s %8.3f ms\n", p, double(r[std::string(p) + "_ms"]));
    std::printf("  speedup vs dense: %.2fx\n", double(r["speedup"]));
  });

  auto* sconv = bench->add_subcommand(
      "sparseconv", "Sparse 3-D convolution layers on a generated scene, vs spconv on the same coordinates and weights");
  tools::SparseConvBenchConfig sc;
  sc.python = bm_python;
  bool sc_json = false, sc_no_peers = false;
  std::string sc_out;
  sconv->add_option("--scene", sc.scene, "shells, lidar or room")->capture_default_str();
  sconv->add_option("--voxels", sc.voxels, "about this many voxels")->capture_default_str();
  sconv->add_option("--channels", sc.channels, "the submanifold 3x3x3 layers' channels (C -> C)")->capture_default_str();
  sconv->add_option("--strided-channels", sc.strided_channels, "the strided and inverse layers' channels")
      ->capture_default_str();
  sconv->add_option("--net-scene", sc.net_scene, "the networks' scene: lidar, room or shells")->capture_default_str();
  sconv->add_option("--net-voxels", sc.net_voxels, "about this many voxels for the networks")->capture_default_str();
  sconv->add_option("--cases", sc.cases, "only these cases (comma-separated names)");
  sconv->add_option("--dataflow", sc.dataflow,
                    "the layers' execution: auto (measured per layer), per_offset, grouped:N (threshold %), fused, blocked:N")
      ->capture_default_str();
  sconv->add_option("--threads", sc.threads, "threads for both engines")->capture_default_str();
  sconv->add_option("--reps", sc.reps, "timed repetitions (median reported)")->capture_default_str();
  sconv->add_option("--seed", sc.seed, "seed of the scene, features and weights")->capture_default_str();
  sconv->add_option("--python", sc.python, "python with spconv, for the peer")->capture_default_str();
  sconv->add_flag("--no-peers", sc_no_peers, "sparta only");
  sconv->add_flag("--json", sc_json, "print one JSON object");
  sconv->add_option("--out", sc_out, "also write the JSON to this file");
  sconv->callback([&] {
    sc.peers = !sc_no_peers;
    const nlohmann::json r = tools::bench_sparseconv(sc);
    if (!sc_out.empty()) write_text_file(sc_out, r.dump(2) + "\n");
    if (sc_json) {
      std::cout << r.dump() << std::endl;
      return;
    }
    std::printf("%s", tools::sparseconv_table(r).c_str());
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "sparta: error: %s (see --help)\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const sparta::Error& e) {
    std::fprintf(stderr, "sparta: error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparta: error: %s\n", e.what());
  }
  return 1;
}
