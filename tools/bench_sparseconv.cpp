#include "tools/bench_sparseconv.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>

#include "core/cpu.h"
#include "core/error.h"
#include "kernels/isa_kernels.h"
#include "core/npy.h"
#include "data/scenes.h"
#include "runtime/sparse_conv3d.h"
#include "runtime/sparse_nets.h"
#include "tools/peer_script.h"

namespace sparta::tools {

namespace {

struct Case {
  std::string name;
  enum Kind { layer, inverse, net } kind = layer;
  SparseConvGeometry g;  // the layer (inverse: the strided layer it inverts)
  int64_t cin = 0, cout = 0;
  std::string network;  // "minkunet" or "second"
};

std::vector<Case> cases_of(const SparseConvBenchConfig& c) {
  std::vector<Case> all;
  for (int64_t ch : c.channels) {
    Case s{"subm3_c" + std::to_string(ch), Case::layer, {}, ch, ch, ""};
    s.g.subm = true;
    all.push_back(s);
  }
  const int64_t ch = c.strided_channels;
  Case d2{"down2_c" + std::to_string(ch), Case::layer, {}, ch, ch, ""};
  d2.g.k = {2, 2, 2}, d2.g.stride = {2, 2, 2};
  all.push_back(d2);
  Case d3{"down3_c" + std::to_string(ch), Case::layer, {}, ch, ch, ""};
  d3.g.stride = {2, 2, 2}, d3.g.pad = {1, 1, 1};
  all.push_back(d3);
  Case inv = d2;
  inv.name = "inverse2_c" + std::to_string(ch), inv.kind = Case::inverse;
  all.push_back(inv);
  all.push_back({"minkunet", Case::net, {}, 4, 19, "minkunet"});
  all.push_back({"second", Case::net, {}, 4, 128, "second"});
  if (c.cases.empty()) return all;
  std::vector<Case> picked;
  size_t start = 0;
  while (start <= c.cases.size()) {
    const size_t end = std::min(c.cases.find(',', start), c.cases.size());
    const std::string name = c.cases.substr(start, end - start);
    const auto it = std::find_if(all.begin(), all.end(), [&](const Case& k) { return k.name == name; });
    std::string known;
    for (const Case& k : all) known += (known.empty() ? "" : ", ") + k.name;
    SPARTA_CHECK(it != all.end(), "unknown case '", name, "' (", known, ")");
    picked.push_back(*it);
    start = end + 1;
  }
  return picked;
}

template <class F>
double median_ms(int reps, F f) {
  f();  // warm-up
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Tensor random_tensor(Shape s, float scale, std::mt19937_64& rng) {
  Tensor t(DType::f32, std::move(s), Uninitialized{});
  std::normal_distribution<float> d(0.f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// Row order by packed coordinate (batch, x, y, z).
std::vector<int64_t> sorted_rows(const Tensor& coords) {
  std::vector<uint64_t> keys(static_cast<size_t>(coords.dim(0)));
  pack_coords(coords.data<int32_t>(), coords.dim(0), keys.data());
  std::vector<int64_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
  return order;
}

// max |ours - theirs| / max |theirs| with both in coordinate order; an
// error when the sites differ.
double compare(const std::string& name, const VoxelTensor& y, const Tensor& their_coords, const Tensor& their_feats) {
  const int64_t n = y.sites->size(), c = y.feats.dim(1);
  SPARTA_CHECK(their_coords.dim(0) == n && their_feats.dim(0) == n && their_feats.dim(1) == c, name,
               ": spconv has ", their_coords.dim(0), " output sites, sparta ", n);
  const std::vector<int64_t> order = sorted_rows(y.sites->coords);
  double err = 0, scale = 0;
  for (int64_t r = 0; r < n; ++r) {
    const int32_t* a = y.sites->coords.data<int32_t>() + 4 * order[size_t(r)];
    const int32_t* b = their_coords.data<int32_t>() + 4 * r;
    SPARTA_CHECK(std::equal(a, a + 4, b), name, ": output site ", r, " differs from spconv's");
    for (int64_t j = 0; j < c; ++j) {
      const double u = y.feats.data<float>()[order[size_t(r)] * c + j], v = their_feats.data<float>()[r * c + j];
      err = std::max(err, std::fabs(u - v));
      scale = std::max(scale, std::fabs(v));
    }
  }
  return scale > 0 ? err / scale : err;
}

}  // namespace

namespace {

void write_json(const std::string& path, const nlohmann::json& j) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  SPARTA_CHECK(f != nullptr, "cannot write ", path);
  std::fputs(j.dump().c_str(), f);
  std::fclose(f);
}

struct Run {
  Case k;
  const VoxelGrid* scene = nullptr;
  Tensor feats, weight, weight2;  // weight2: the inverse layer's
  StateDict state;                // networks
  VoxelTensor y;                  // sparta's output, for the comparison
  nlohmann::json j;
};

// A layer: map building, the layer with its map cached, and with a fresh
// tensor (map built too).
void run_layer(Run& run, const SparseConvBenchConfig& c) {
  const Case& k = run.k;
  const VoxelGrid& scene = *run.scene;
  SparseConv3dOptions o;
  o.geometry = k.g;
  o.threads = c.threads;
  o.dataflow = parse_dataflow(c.dataflow);
  const auto fresh_tensor = [&] {
    return make_voxel_tensor(scene.coords, run.feats, scene.extent, DuplicateCoords::error, c.threads);
  };
  const double map_ms = median_ms(c.reps, [&] {
    const VoxelTensor t = fresh_tensor();
    sparse_conv3d_map(t, k.g, c.threads, nullptr);
  });
  const VoxelTensor x = fresh_tensor();
  double ms = 0, fresh_ms = 0;
  std::shared_ptr<const KernelMap> map = sparse_conv3d_map(x, k.g, c.threads, nullptr);
  if (k.kind == Case::inverse) {
    const VoxelTensor down = sparse_conv3d(x, run.weight, Tensor(), o);
    ms = median_ms(c.reps, [&] { run.y = sparse_inverse_conv3d(down, run.weight2, Tensor(), o); });
    fresh_ms = ms;  // the map is the strided layer's, reversed
  } else {
    ms = median_ms(c.reps, [&] { run.y = sparse_conv3d(x, run.weight, Tensor(), o); });
    fresh_ms = median_ms(c.reps, [&] { sparse_conv3d(fresh_tensor(), run.weight, Tensor(), o); });
  }
  const int64_t cin = k.kind == Case::inverse ? k.cout : k.cin, cout = k.kind == Case::inverse ? k.cin : k.cout;
  const double flop = 2.0 * double(map->total_pairs()) * double(cin) * double(cout);
  const auto chosen = k.kind == Case::inverse ? std::nullopt : chosen_dataflow(x, k.g, cin, cout, c.threads);
  run.j = {{"case", k.name},
           {"geometry", (k.kind == Case::inverse ? "inverse of " : "") + k.g.str()},
           {"cin", cin},
           {"cout", cout},
           {"pairs", map->total_pairs()},
           {"sparta_ms", ms},
           {"map_ms", k.kind == Case::inverse ? 0.0 : map_ms},
           {"sparta_fresh_ms", fresh_ms},
           {"gflops", flop / (ms * 1e6)},
           {"dataflow", o.dataflow ? o.dataflow->str() : chosen ? chosen->best.str() : "auto"}};
  // The baseline the dataflow choice is measured against: one oneDNN GEMM
  // per offset over gathered rows.
  if (k.kind == Case::layer) {
    SparseConv3dOptions po = o;
    po.dataflow = Dataflow{Dataflow::per_offset, 0};
    const double per_offset = median_ms(c.reps, [&] { sparse_conv3d(x, run.weight, Tensor(), po); });
    run.j["per_offset_ms"] = per_offset;
    run.j["vs_per_offset"] = per_offset / ms;
  }
}

// A network: a forward on a fresh tensor each time (maps built, dataflows
// remembered from the first, untimed, forward).
void run_net(Run& run, const SparseConvBenchConfig& c) {
  const Case& k = run.k;
  const VoxelGrid& scene = *run.scene;
  const SparseNetSpec spec{k.network, k.cin, k.cout, {}};
  run.state = random_sparse_net_state(spec, c.seed);
  const std::unique_ptr<SparseNet> net = make_sparse_net(spec, run.state);
  const auto forward = [&] {
    return net->forward(make_voxel_tensor(scene.coords, run.feats, scene.extent, DuplicateCoords::error, c.threads),
                        c.threads);
  };
  const auto t0 = std::chrono::steady_clock::now();
  run.y = forward();  // measures every layer's dataflow
  const double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double ms = median_ms(c.reps, [&] { run.y = forward(); });
  run.j = {{"case", k.name},  {"geometry", net->name() + " (" + std::to_string(net->layers()) + " convolutions)"},
           {"cin", k.cin},    {"cout", k.cout},
           {"pairs", 0},      {"sparta_ms", ms},
           {"map_ms", 0.0},   {"sparta_fresh_ms", ms},
           {"gflops", 0.0},   {"first_forward_ms", first_ms},
           {"voxels", scene.coords.dim(0)}};
}

}  // namespace

nlohmann::json bench_sparseconv(const SparseConvBenchConfig& c) {
  SPARTA_CHECK(c.threads >= 1 && c.reps >= 1 && c.voxels >= 1 && c.net_voxels >= 1,
               "threads, reps and voxels must be >= 1");
  const std::vector<Case> cases = cases_of(c);
  const bool layers = std::any_of(cases.begin(), cases.end(), [](const Case& k) { return k.kind != Case::net; });
  const bool nets = std::any_of(cases.begin(), cases.end(), [](const Case& k) { return k.kind == Case::net; });
  VoxelGrid scene, net_scene;
  if (layers) {
    std::fprintf(stderr, "bench sparseconv: making the %s scene (~%lld voxels)\n", c.scene.c_str(), (long long)c.voxels);
    scene = make_scene(c.scene, c.voxels, c.seed);
  }
  if (nets) {
    std::fprintf(stderr, "bench sparseconv: making the %s scene for the networks (~%lld voxels)\n", c.net_scene.c_str(),
                 (long long)c.net_voxels);
    net_scene = make_scene(c.net_scene, c.net_voxels, c.seed + 1);
  }
  nlohmann::json r;
  r["scene"] = c.scene;
  r["voxels"] = layers ? scene.coords.dim(0) : 0;
  r["net_scene"] = c.net_scene;
  r["net_voxels"] = nets ? net_scene.coords.dim(0) : 0;
  r["threads"] = c.threads;
  r["reps"] = c.reps;
  // This host's fp32 FMA peak for the threads (a measured FMA loop), for
  // each layer's fraction of it.
  const double peak = isa_kernels(host_isa()).peak_fma_gflops(0.05) * c.threads;
  r["peak_gflops"] = peak;
  r["cases"] = nlohmann::json::array();
  std::mt19937_64 rng(c.seed);
  std::vector<Run> runs;
  for (const Case& k : cases) {
    std::fprintf(stderr, "bench sparseconv: %s\n", k.name.c_str());
    Run run;
    run.k = k;
    run.scene = k.kind == Case::net ? &net_scene : &scene;
    run.feats = random_tensor(Shape{run.scene->coords.dim(0), k.cin}, 1.f, rng);
    if (k.kind == Case::net) {
      run_net(run, c);
    } else {
      const float scale = 1.f / std::sqrt(float(k.cin * k.g.volume()));
      run.weight = random_tensor(Shape{k.g.k[0], k.g.k[1], k.g.k[2], k.cin, k.cout}, scale, rng);
      if (k.kind == Case::inverse)
        run.weight2 = random_tensor(Shape{k.g.k[0], k.g.k[1], k.g.k[2], k.cout, k.cin}, scale, rng);
      run_layer(run, c);
    }
    runs.push_back(std::move(run));
  }
  if (c.peers) {
    const std::string dir =
        (std::filesystem::temp_directory_path() / ("sparta_spconv_" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(dir);
    std::string names;
    for (const Run& run : runs) {
      const std::string base = dir + "/" + run.k.name;
      write_npy(base + ".coords.npy", run.scene->coords);
      Tensor ext(DType::i64, Shape{3});
      for (int a = 0; a < 3; ++a) ext.data<int64_t>()[a] = run.scene->extent[size_t(a)];
      write_npy(base + ".extent.npy", ext);
      write_npy(base + ".feats.npy", run.feats);
      nlohmann::json spec;
      if (run.k.kind == Case::net) {
        std::filesystem::create_directories(base + ".state");
        nlohmann::json params = nlohmann::json::array();
        for (const auto& [name, t] : run.state) {
          write_npy(base + ".state/" + name + ".npy", t);
          params.push_back(name);
        }
        spec = {{"net", run.k.network}, {"in_channels", run.k.cin}, {"num_classes", run.k.cout}, {"params", params}};
      } else {
        write_npy(base + ".weight.npy", run.weight);
        if (run.k.kind == Case::inverse) write_npy(base + ".weight2.npy", run.weight2);
        spec = {{"subm", run.k.g.subm},      {"stride", run.k.g.stride},     {"padding", run.k.g.pad},
                {"dilation", run.k.g.dil}, {"inverse", run.k.kind == Case::inverse}};
      }
      write_json(base + ".json", spec);
      names += (names.empty() ? "" : ",") + run.k.name;
    }
    std::fprintf(stderr, "bench sparseconv: spconv on the same cases\n");
    const std::string cmd = c.python + " " + SPARTA_SOURCE_DIR + "/scripts/spconv_peer.py '" + dir + "' --cases " +
                            names + " --threads " + std::to_string(c.threads) + " --reps " + std::to_string(c.reps);
    nlohmann::json peer;
    try {
      peer = run_peer_script(cmd, "the spconv peer failed (needs " + c.python +
                                      " with spconv: scripts/setup.sh installs it; or --no-peers)");
    } catch (const Error&) {
      std::filesystem::remove_all(dir);
      throw;
    }
    for (Run& run : runs) {
      const std::string& name = run.k.name;
      const double err = compare(name, run.y, read_npy(dir + "/" + name + ".spconv.coords.npy"),
                                 read_npy(dir + "/" + name + ".spconv.feats.npy"));
      if (err > 1e-4) {
        std::filesystem::remove_all(dir);
        SPARTA_CHECK(false, name, ": sparta and spconv disagree (max relative error ", err, ")");
      }
      const nlohmann::json& pj = peer.at(name);
      run.j["max_rel_err"] = err;
      run.j["spconv_fresh_ms"] = pj.at("fresh_ms");
      // Submanifold and inverse layers compare with the map cached on both
      // sides; a strided layer's map is built on every spconv call, and a
      // network builds its maps on every scan, so both sides include them.
      const bool cached = !pj.at("ms").is_null();
      run.j["spconv_ms"] = cached ? pj.at("ms") : pj.at("fresh_ms");
      run.j["compared"] = cached ? "map cached" : "map included";
      run.j["speedup"] = run.j["spconv_ms"].get<double>() /
                         (cached ? run.j["sparta_ms"].get<double>() : run.j["sparta_fresh_ms"].get<double>());
      run.j["spconv_map_ms"] = pj.contains("map_ms") ? pj.at("map_ms") : nlohmann::json();
      if (pj.contains("map_ms") && run.k.kind == Case::layer)
        run.j["map_speedup"] = pj.at("map_ms").get<double>() / run.j["map_ms"].get<double>();
    }
    std::filesystem::remove_all(dir);
  }
  for (Run& run : runs) {
    if (run.k.kind != Case::net) run.j["fraction_of_peak"] = run.j["gflops"].get<double>() / peak;
    r["cases"].push_back(run.j);
  }
  return r;
}

std::string sparseconv_table(const nlohmann::json& r) {
  std::string s;
  char line[640];
  std::snprintf(line, sizeof line,
                "layers: %s scene, %lld voxels; networks: %s scene, %lld voxels; %d thread(s), median of %d; "
                "FMA peak %.0f GFLOP/s\n",
                r["scene"].get<std::string>().c_str(), (long long)r["voxels"].get<int64_t>(),
                r["net_scene"].get<std::string>().c_str(), (long long)r["net_voxels"].get<int64_t>(),
                r["threads"].get<int>(), r["reps"].get<int>(), r["peak_gflops"].get<double>());
  s += line;
  s += "| case | pairs | sparta ms | GFLOP/s | dataflow | vs one GEMM per offset | map ms | spconv ms | spconv map ms | "
       "map speedup | speedup | compared |\n";
  s += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const auto num = [](const nlohmann::json& k, const char* key, const char* fmt) {
    if (!k.contains(key) || k[key].is_null()) return std::string("-");
    char b[64];
    std::snprintf(b, sizeof b, fmt, k[key].get<double>());
    return std::string(b);
  };
  for (const auto& k : r["cases"]) {
    const bool net = k.contains("first_forward_ms");
    std::snprintf(line, sizeof line, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                  k["case"].get<std::string>().c_str(),
                  net ? "-" : std::to_string(k["pairs"].get<int64_t>()).c_str(),
                  num(k, net ? "sparta_fresh_ms" : "sparta_ms", "%.2f").c_str(),
                  net ? "-" : num(k, "gflops", "%.1f").c_str(),
                  k.contains("dataflow") ? k["dataflow"].get<std::string>().c_str() : "-",
                  num(k, "vs_per_offset", "%.2fx").c_str(), net ? "-" : num(k, "map_ms", "%.2f").c_str(),
                  num(k, "spconv_ms", "%.2f").c_str(), num(k, "spconv_map_ms", "%.2f").c_str(),
                  num(k, "map_speedup", "%.2fx").c_str(), num(k, "speedup", "%.2fx").c_str(),
                  k.contains("compared") ? k["compared"].get<std::string>().c_str() : "-");
    s += line;
  }
  return s;
}

}  // namespace sparta::tools
