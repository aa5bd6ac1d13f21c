#include "tools/bench_sparseconv.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/npy.h"
#include "data/scenes.h"
#include "runtime/sparse_conv3d.h"

namespace sparta::tools {

namespace {

struct Case {
  std::string name;
  SparseConvGeometry g;
  int64_t cin = 0, cout = 0;
};

std::vector<Case> cases_of(const SparseConvBenchConfig& c) {
  std::vector<Case> all;
  for (int64_t ch : c.channels) {
    Case s{"subm3_c" + std::to_string(ch), {}, ch, ch};
    s.g.subm = true;
    all.push_back(s);
  }
  const int64_t ch = c.strided_channels;
  Case d2{"down2_c" + std::to_string(ch), {}, ch, ch};
  d2.g.k = {2, 2, 2}, d2.g.stride = {2, 2, 2};
  all.push_back(d2);
  Case d3{"down3_c" + std::to_string(ch), {}, ch, ch};
  d3.g.stride = {2, 2, 2}, d3.g.pad = {1, 1, 1};
  all.push_back(d3);
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

nlohmann::json bench_sparseconv(const SparseConvBenchConfig& c) {
  SPARTA_CHECK(c.threads >= 1 && c.reps >= 1 && c.voxels >= 1, "threads, reps and voxels must be >= 1");
  const std::vector<Case> cases = cases_of(c);
  std::fprintf(stderr, "bench sparseconv: making the %s scene (~%lld voxels)\n", c.scene.c_str(), (long long)c.voxels);
  const VoxelGrid scene = make_scene(c.scene, c.voxels, c.seed);
  const int64_t n = scene.coords.dim(0);
  nlohmann::json r;
  r["scene"] = c.scene;
  r["voxels"] = n;
  r["extent"] = scene.extent;
  r["threads"] = c.threads;
  r["reps"] = c.reps;
  r["cases"] = nlohmann::json::array();
  std::mt19937_64 rng(c.seed);
  struct Run {
    Case k;
    Tensor feats, weight;
    VoxelTensor y;
    nlohmann::json j;
  };
  std::vector<Run> runs;
  for (const Case& k : cases) {
    std::fprintf(stderr, "bench sparseconv: %s (%s, %lld -> %lld)\n", k.name.c_str(), k.g.str().c_str(),
                 (long long)k.cin, (long long)k.cout);
    Run run{k, random_tensor(Shape{n, k.cin}, 1.f, rng),
            random_tensor(Shape{k.g.k[0], k.g.k[1], k.g.k[2], k.cin, k.cout},
                          1.f / std::sqrt(float(k.cin * k.g.volume())), rng),
            {}, {}};
    SparseConv3dOptions o;
    o.geometry = k.g;
    o.threads = c.threads;
    const auto fresh_tensor = [&] {
      return make_voxel_tensor(scene.coords, run.feats, scene.extent, DuplicateCoords::error, c.threads);
    };
    const double map_ms = median_ms(c.reps, [&] {
      const VoxelTensor t = fresh_tensor();
      sparse_conv3d_map(t, k.g, c.threads, nullptr);
    });
    const VoxelTensor x = fresh_tensor();
    const double ms = median_ms(c.reps, [&] { run.y = sparse_conv3d(x, run.weight, Tensor(), o); });
    const double fresh_ms = median_ms(c.reps, [&] { sparse_conv3d(fresh_tensor(), run.weight, Tensor(), o); });
    const auto map = sparse_conv3d_map(x, k.g, c.threads, nullptr);
    const double flop = 2.0 * double(map->total_pairs()) * double(k.cin) * double(k.cout);
    run.j = {{"case", k.name},       {"geometry", k.g.str()}, {"cin", k.cin},
             {"cout", k.cout},       {"pairs", map->total_pairs()}, {"out_sites", map->n_out},
             {"sparta_ms", ms},      {"map_ms", map_ms},       {"sparta_fresh_ms", fresh_ms},
             {"gflops", flop / (ms * 1e6)}};
    runs.push_back(std::move(run));
  }
  if (c.peers) {
    const std::string dir =
        (std::filesystem::temp_directory_path() / ("sparta_spconv_" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(dir);
    write_npy(dir + "/coords.npy", scene.coords);
    Tensor ext(DType::i64, Shape{3});
    for (int a = 0; a < 3; ++a) ext.data<int64_t>()[a] = scene.extent[size_t(a)];
    write_npy(dir + "/extent.npy", ext);
    std::string names;
    for (const Run& run : runs) {
      write_npy(dir + "/" + run.k.name + ".feats.npy", run.feats);
      write_npy(dir + "/" + run.k.name + ".weight.npy", run.weight);
      const nlohmann::json spec = {{"subm", run.k.g.subm},
                                   {"stride", run.k.g.stride},
                                   {"padding", run.k.g.pad},
                                   {"dilation", run.k.g.dil}};
      std::FILE* f = std::fopen((dir + "/" + run.k.name + ".json").c_str(), "w");
      SPARTA_CHECK(f != nullptr, "cannot write to ", dir);
      std::fputs(spec.dump().c_str(), f);
      std::fclose(f);
      names += (names.empty() ? "" : ",") + run.k.name;
    }
    std::fprintf(stderr, "bench sparseconv: spconv on the same layers\n");
    const std::string cmd = c.python + " " + SPARTA_SOURCE_DIR + "/scripts/spconv_peer.py '" + dir + "' --cases " +
                            names + " --threads " + std::to_string(c.threads) + " --reps " + std::to_string(c.reps);
    FILE* p = popen(cmd.c_str(), "r");
    SPARTA_CHECK(p != nullptr, "cannot start the spconv peer (", c.python, ")");
    std::string text;
    char buf[4096];
    while (size_t got = fread(buf, 1, sizeof buf, p)) text.append(buf, got);
    const int status = pclose(p);
    if (status != 0 || text.find('{') == std::string::npos) {
      std::filesystem::remove_all(dir);
      SPARTA_CHECK(false, "the spconv peer failed (needs ", c.python,
                   " with spconv: .venv/bin/pip install 'spconv==2.3.8', or --no-peers)");
    }
    // The JSON object is the script's last line.
    while (!text.empty() && text.back() == '\n') text.pop_back();
    const nlohmann::json peer = nlohmann::json::parse(text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1));
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
      // Submanifold layers compare with the map cached on both sides; a
      // strided layer's map is built on every spconv call, so both sides
      // then include it.
      const bool cached = !pj.at("ms").is_null();
      run.j["spconv_ms"] = cached ? pj.at("ms") : pj.at("fresh_ms");
      run.j["compared"] = cached ? "map cached" : "map included";
      run.j["speedup"] = run.j["spconv_ms"].get<double>() /
                         (cached ? run.j["sparta_ms"].get<double>() : run.j["sparta_fresh_ms"].get<double>());
    }
    std::filesystem::remove_all(dir);
  }
  for (const Run& run : runs) r["cases"].push_back(run.j);
  return r;
}

std::string sparseconv_table(const nlohmann::json& r) {
  std::string s;
  char line[512];
  std::snprintf(line, sizeof line, "%s scene, %lld voxels, %d thread(s), median of %d\n",
                r["scene"].get<std::string>().c_str(), (long long)r["voxels"].get<int64_t>(), r["threads"].get<int>(),
                r["reps"].get<int>());
  s += line;
  s += "| case | pairs | sparta ms | GFLOP/s | map ms | spconv ms | speedup | compared |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& k : r["cases"]) {
    std::snprintf(line, sizeof line, "| %s | %lld | %.2f | %.1f | %.2f | %s | %s | %s |\n",
                  k["case"].get<std::string>().c_str(), (long long)k["pairs"].get<int64_t>(), k["sparta_ms"].get<double>(),
                  k["gflops"].get<double>(), k["map_ms"].get<double>(),
                  k.contains("spconv_ms") ? std::to_string(k["spconv_ms"].get<double>()).substr(0, 7).c_str() : "-",
                  k.contains("speedup") ? (std::to_string(k["speedup"].get<double>()).substr(0, 4) + "x").c_str() : "-",
                  k.contains("compared") ? k["compared"].get<std::string>().c_str() : "-");
    s += line;
  }
  return s;
}

}  // namespace sparta::tools
