#include "tools/prune_cmd.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "prune/onnx_prune.h"
#include "prune/target_speedup.h"

namespace sparta::tools {
namespace {

struct PruneArgs {
  std::string model, out, pattern = "unstructured", scope = "layer", norm = "l2", block, nm, tesa_out;
  double sparsity = -1, min_density = 0, tile_row_share = 0, remainder = 0, target_speedup = 0;
  int tile = 0, threads = 1;
  std::vector<std::string> skip;
  bool quiet = false;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SPARTA_CHECK(f.good(), path, ": cannot open the model file");
  std::stringstream s;
  s << f.rdbuf();
  SPARTA_CHECK(!s.str().empty(), path, ": the model file is empty");
  return s.str();
}

prune::Options options(const PruneArgs& a, const CLI::App& cmd) {
  prune::Options o;
  o.pattern = prune::parse_pattern(a.pattern);
  o.scope = prune::parse_scope(a.scope);
  o.norm = prune::parse_norm(a.norm);
  auto given = [&](const char* opt) { return cmd.count(opt) > 0; };
  auto only_for = [&](const char* opt, prune::Pattern p) {
    SPARTA_CHECK(!given(opt) || o.pattern == p, opt, " applies to --pattern ", prune::pattern_name(p), ", not ",
                 prune::pattern_name(o.pattern));
  };
  only_for("--block", prune::Pattern::block);
  only_for("--nm", prune::Pattern::nm);
  only_for("--tile", prune::Pattern::tilewise);
  only_for("--tile-row-share", prune::Pattern::tilewise);
  only_for("--remainder", prune::Pattern::tilewise);
  if (given("--block")) o.block = parse_block_shape(a.block);
  if (given("--nm")) o.nm = parse_nm_shape(a.nm);
  if (given("--tile")) o.tile = a.tile;
  if (given("--sparsity")) o.sparsity = a.sparsity;
  o.tile_row_share = a.tile_row_share;
  o.remainder = a.remainder;
  o.min_density = a.min_density;
  o.skip = a.skip;
  o.quiet = a.quiet;
  o.validate();
  return o;
}

void target(const PruneArgs& a, const CLI::App& cmd) {
  for (const char* opt : {"--pattern", "--sparsity", "--block", "--nm", "--tile", "--tile-row-share", "--remainder",
                          "--scope", "--norm", "--min-density"})
    SPARTA_CHECK(!cmd.count(opt), opt, " does not go with --target-speedup (it chooses the pattern per layer)");
  SPARTA_CHECK(a.out != a.model, "-o ", a.out, " would overwrite the input model");
  prune::TargetOptions t;
  t.speedup = a.target_speedup;
  t.threads = a.threads;
  t.skip = a.skip;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string bytes = read_file(a.model);
  const prune::TargetResult r = prune::prune_to_speedup(bytes, a.model, t, [&](const std::string& line) {
    if (!a.quiet) std::fprintf(stderr, "prune: %s\n", line.c_str());
  });
  prune::write_result(r.pruned, a.out, a.tesa_out);
  if (a.quiet) return;
  std::printf("%s", r.text.c_str());
  std::printf("wrote %s%s%s in %.1f s\n", a.out.c_str(), a.tesa_out.empty() ? "" : " and ", a.tesa_out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace

void add_prune_command(CLI::App& app) {
  auto a = std::make_shared<PruneArgs>();
  auto* cmd = app.add_subcommand(
      "prune", "Prune an ONNX model's MatMul, Gemm and Conv weights to a pattern sparta runs fast; write the pruned "
               "model (and optionally the masks as a TeSA spec)");
  cmd->add_option("model", a->model, "an ONNX model")->required();
  cmd->add_option("-o,--output", a->out, "the pruned ONNX model")->required();
  cmd->add_option("--pattern", a->pattern, "unstructured, block, nm, tilewise or channel")->capture_default_str();
  cmd->add_option("--sparsity", a->sparsity, "fraction of each layer's weights pruned, in [0, 1) (nm: 1 - N/M)");
  cmd->add_option("--block", a->block, "block: RxC, R output features x C input features (default 32x1)");
  cmd->add_option("--nm", a->nm, "nm: N:M, N kept in every M consecutive input features (default 2:4)");
  cmd->add_option("--tile", a->tile, "tilewise: output features per tile (default 128)");
  cmd->add_option("--tile-row-share", a->tile_row_share,
                  "tilewise: share of the pruned weights taken as whole output features first, in [0, 1]");
  cmd->add_option("--remainder", a->remainder, "tilewise: density kept back as the largest pruned weights");
  cmd->add_option("--scope", a->scope, "layer (each layer to the sparsity) or global (one threshold)")
      ->capture_default_str();
  cmd->add_option("--norm", a->norm, "block, tile and channel scores: l1 or l2")->capture_default_str();
  cmd->add_option("--skip", a->skip, "a weight or node name to leave alone (repeatable)");
  cmd->add_option("--min-density", a->min_density, "no layer pruned below this density")->capture_default_str();
  cmd->add_option("--tesa-out", a->tesa_out, "also write the masks as a TeSA spec (JSON, masks in SPEC_masks/)");
  cmd->add_option("--target-speedup", a->target_speedup,
                  "choose each layer's pattern and sparsity for this measured speedup over the unpruned model (in "
                  "sparta) at the least estimated accuracy loss; instead of --pattern and --sparsity");
  cmd->add_option("--threads", a->threads, "--target-speedup: threads the kernels and the model are timed on")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", a->quiet, "only errors");
  cmd->callback([a, cmd] {
    if (cmd->count("--target-speedup")) return target(*a, *cmd);
    SPARTA_CHECK(!cmd->count("--threads"), "--threads applies to --target-speedup");
    const prune::Options o = options(*a, *cmd);
    SPARTA_CHECK(a->out != a->model, "-o ", a->out, " would overwrite the input model");
    const auto t0 = std::chrono::steady_clock::now();
    if (!o.quiet && ::isatty(2)) std::fprintf(stderr, "prune: %s: reading\n", a->model.c_str());
    const std::string bytes = read_file(a->model);
    if (!o.quiet && ::isatty(2)) std::fprintf(stderr, "prune: scoring and choosing (%s)\n", prune::pattern_name(o.pattern));
    const prune::Result r = prune::prune_onnx(bytes, a->model, o);
    prune::write_result(r, a->out, a->tesa_out);
    if (o.quiet) return;
    std::printf("%s", prune::format_report(r, o).c_str());
    std::printf("wrote %s%s%s in %.1f s\n", a->out.c_str(), a->tesa_out.empty() ? "" : " and ", a->tesa_out.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}

}  // namespace sparta::tools
