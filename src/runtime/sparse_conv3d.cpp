#include "runtime/sparse_conv3d.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <chrono>

#include "core/error.h"
#include "core/cpu.h"
#include "core/hash.h"
#include "kernels/sparse_conv.h"
#include "tuning/choice_cache.h"

namespace sparta {

namespace {

void check_threads(int threads) {
  SPARTA_CHECK(threads >= 1 && threads <= 1024, "threads must be in [1, 1024], not ", threads);
}

void check_coords(const Tensor& coords) {
  SPARTA_CHECK(coords.defined() && coords.dtype() == DType::i32 && coords.rank() == 2 && coords.dim(1) == 4,
               "coordinates must be int32 [N, 4] (batch, x, y, z), got ",
               coords.defined() ? std::string(dtype_name(coords.dtype())) + " " + coords.shape().str() : "nothing");
  SPARTA_CHECK(coords.dim(0) < (int64_t{1} << 31) - 1, "at most 2^31 - 2 voxels, got ", coords.dim(0));
}

Coord coord_at(const Tensor& coords, int64_t i) {
  const int32_t* c = coords.data<int32_t>() + 4 * i;
  return {c[0], c[1], c[2], c[3]};
}

std::shared_ptr<VoxelSites> sites_from_keys(std::vector<uint64_t> keys, int threads) {
  auto s = std::make_shared<VoxelSites>();
  const int64_t n = int64_t(keys.size());
  s->coords = Tensor(DType::i32, Shape{n, 4}, Uninitialized{});
  int32_t* c = s->coords.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    const Coord v = unpack_coord(keys[size_t(i)]);
    c[4 * i] = v.b, c[4 * i + 1] = v.x, c[4 * i + 2] = v.y, c[4 * i + 3] = v.z;
  }
  // Distinct keys; in coordinate order already (a strided layer's output
  // sites) or ordered here (merged duplicates keep first appearance).
  if (!std::is_sorted(keys.begin(), keys.end())) s->order = coordinate_order(keys.data(), n, threads);
  s->keys = std::move(keys);
  return s;
}

}  // namespace

std::shared_ptr<VoxelSites> index_sites(const Tensor& coords, std::optional<std::array<int64_t, 3>> extent,
                                        DuplicateCoords dup, std::vector<int32_t>* merge, int threads) {
  check_coords(coords);
  const int64_t n = coords.dim(0);
  if (extent)
    for (int64_t e : *extent) SPARTA_CHECK(e >= 1 && e <= int64_t(kCoordMax) + 1, "grid extents must be 1..32768, got ", e);
  std::vector<uint64_t> keys(static_cast<size_t>(n));
  const int64_t bad = pack_coords(coords.data<int32_t>(), n, keys.data());
  SPARTA_CHECK(bad < 0, "coordinate row ", bad, " ", coord_at(coords, std::max<int64_t>(bad, 0)).str(),
               " is outside the supported range (batch 0..", kBatchMax, ", x, y, z ", kCoordMin, "..", kCoordMax, ")");
  if (extent)
    for (int64_t i = 0; i < n; ++i) {
      const Coord c = coord_at(coords, i);
      SPARTA_CHECK(c.x >= 0 && c.y >= 0 && c.z >= 0 && c.x < (*extent)[0] && c.y < (*extent)[1] && c.z < (*extent)[2],
                   "coordinate row ", i, " ", c.str(), " is outside the grid's extent ", (*extent)[0], "x",
                   (*extent)[1], "x", (*extent)[2]);
    }
  // Coordinate order once (the maps and blocks of every layer on these
  // sites use it); equal keys end up adjacent, rows ascending within a run
  // (the radix sort is stable), so a run's later rows repeat its first.
  std::vector<int32_t> order = coordinate_order(keys.data(), n, threads);
  int64_t first = -1, earlier = -1;
  for (int64_t j = 1; j < n; ++j)
    if (keys[size_t(order[size_t(j)])] == keys[size_t(order[size_t(j - 1)])] && (first < 0 || order[size_t(j)] < first)) {
      first = order[size_t(j)];
      int64_t r = j - 1;
      while (r > 0 && keys[size_t(order[size_t(r - 1)])] == keys[size_t(order[size_t(j)])]) --r;
      earlier = order[size_t(r)];
    }
  auto s = std::make_shared<VoxelSites>();
  s->extent = extent;
  if (first < 0) {
    s->coords = coords;
    s->keys = std::move(keys);
    s->order = std::move(order);
    if (merge) merge->clear();
    return s;
  }
  if (dup == DuplicateCoords::error)
    SPARTA_CHECK(false, "duplicate coordinates: row ", first, " ", coord_at(coords, first).str(), " repeats row ",
                 earlier, " (merge duplicates to sum or average their features)");
  // Merged: each distinct site once, in order of first appearance.
  std::vector<int32_t> to(static_cast<size_t>(n));
  std::vector<uint64_t> distinct;
  CoordHash seen(n);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t r = seen.insert(keys[size_t(i)], int32_t(distinct.size()));
    if (r == int32_t(distinct.size())) distinct.push_back(keys[size_t(i)]);
    to[size_t(i)] = r;
  }
  auto merged = sites_from_keys(std::move(distinct), threads);
  merged->extent = extent;
  if (merge) *merge = std::move(to);
  return merged;
}

VoxelTensor make_voxel_tensor(const Tensor& coords, const Tensor& feats,
                              std::optional<std::array<int64_t, 3>> extent, DuplicateCoords dup, int threads) {
  check_threads(threads);
  check_coords(coords);
  SPARTA_CHECK(feats.defined() && feats.dtype() == DType::f32 && feats.rank() == 2,
               "features must be float32 [N, C], got ",
               feats.defined() ? std::string(dtype_name(feats.dtype())) + " " + feats.shape().str() : "nothing");
  SPARTA_CHECK(feats.dim(0) == coords.dim(0), "coordinates have ", coords.dim(0), " rows, features ", feats.dim(0));
  std::vector<int32_t> merge;
  VoxelTensor t;
  t.sites = index_sites(coords, extent, dup, &merge, threads);
  if (merge.empty()) {
    t.feats = feats;
    return t;
  }
  const int64_t c = feats.dim(1), m = t.sites->size();
  t.feats = Tensor(DType::f32, Shape{m, c});
  std::vector<int32_t> count(size_t(m), 0);
  float* y = t.feats.data<float>();
  const float* x = feats.data<float>();
  for (size_t i = 0; i < merge.size(); ++i) {
    ++count[size_t(merge[i])];
    for (int64_t j = 0; j < c; ++j) y[merge[i] * c + j] += x[int64_t(i) * c + j];
  }
  if (dup == DuplicateCoords::mean)
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < c; ++j) y[r * c + j] /= float(count[size_t(r)]);
  return t;
}

std::optional<std::array<int64_t, 3>> grid_extent(const std::vector<int64_t>& shape) {
  if (shape.empty()) return std::nullopt;
  SPARTA_CHECK(shape.size() == 3, "spatial_shape must have 3 values (x, y, z), got ", shape.size());
  return std::array<int64_t, 3>{shape[0], shape[1], shape[2]};
}

VoxelTensor with_feats(const VoxelTensor& t, const Tensor& feats) {
  SPARTA_CHECK(feats.defined() && feats.dtype() == DType::f32 && feats.rank() == 2 && feats.dim(0) == t.sites->size(),
               "features for these sites must be float32 [", t.sites->size(), ", C], got ",
               feats.defined() ? std::string(dtype_name(feats.dtype())) + " " + feats.shape().str() : "nothing");
  return VoxelTensor{t.sites, feats};
}

std::string Dataflow::str() const {
  switch (kind) {
    case per_offset: return "per_offset";
    case grouped: return "grouped:" + std::to_string(block);
    case fused: return "fused";
    case blocked: return "blocked:" + std::to_string(block);
  }
  return "?";
}

std::optional<Dataflow> parse_dataflow(const std::string& s) {
  if (s == "auto") return std::nullopt;
  if (s == "per_offset") return Dataflow{Dataflow::per_offset, 0};
  if (s == "fused") return Dataflow{Dataflow::fused, 0};
  if (s.rfind("grouped:", 0) == 0) {
    const std::string n = s.substr(8);
    SPARTA_CHECK(!n.empty() && n.size() <= 3 && std::all_of(n.begin(), n.end(), ::isdigit) && std::stoi(n) >= 1 &&
                     std::stoi(n) <= 100,
                 "dataflow 'grouped:N' needs a threshold of 1..100 percent, got '", s, "'");
    return Dataflow{Dataflow::grouped, std::stoi(n)};
  }
  if (s.rfind("blocked:", 0) == 0) {
    const std::string n = s.substr(8);
    SPARTA_CHECK(!n.empty() && n.size() <= 5 && std::all_of(n.begin(), n.end(), ::isdigit) && std::stoi(n) >= 1,
                 "dataflow 'blocked:N' needs a block of 1..99999 output rows, got '", s, "'");
    return Dataflow{Dataflow::blocked, std::stoi(n)};
  }
  SPARTA_CHECK(false, "unknown dataflow '", s, "' (auto, per_offset, grouped:N, fused or blocked:N)");
  return std::nullopt;
}

std::shared_ptr<const BlockedMap> LayerMap::blocked_map(int block, const uint64_t* out_keys, const int32_t* out_order,
                                                         int threads) {
  std::lock_guard<std::mutex> lock(mu);
  auto& b = blocked[block];
  if (!b) b = std::make_shared<const BlockedMap>(block_kernel_map(*map, out_keys, block, threads, out_order));
  return b;
}

std::shared_ptr<LayerMap> layer_map(const VoxelTensor& x, const SparseConvGeometry& g, int threads) {
  g.check();
  VoxelSites& s = *x.sites;
  const std::string key = g.str();
  std::lock_guard<std::mutex> lock(s.mu);
  auto& lm = s.maps[key];
  if (lm) return lm;
  auto made = std::make_shared<LayerMap>();
  if (g.subm) {
    made->map = std::make_shared<const KernelMap>(build_subm_map(s.keys.data(), s.size(), g, threads, s.order_or_null()));
  } else {
    std::optional<std::array<int64_t, 3>> extent;
    if (s.extent) {
      extent.emplace();
      for (size_t a = 0; a < 3; ++a) {
        // The dense output's extent (no output when the window does not fit).
        const int64_t span = (*s.extent)[a] + 2 * int64_t(g.pad[a]) - int64_t(g.dil[a]) * (g.k[a] - 1) - 1;
        (*extent)[a] = span < 0 ? 0 : std::min<int64_t>(span / g.stride[a] + 1, int64_t(kCoordMax) + 1);
      }
    }
    std::vector<uint64_t> out;
    made->map = std::make_shared<const KernelMap>(
        build_strided_map(s.keys.data(), s.size(), g, extent ? &*extent : nullptr, threads, out));
    auto sites = sites_from_keys(std::move(out), threads);
    sites->extent = extent;
    for (size_t a = 0; a < 3; ++a) sites->stride[a] = s.stride[a] * g.stride[a];
    sites->parent = x.sites;
    sites->parent_map = made->map;
    sites->parent_geometry = g;
    made->out = std::move(sites);
  }
  lm = made;
  return lm;
}

std::shared_ptr<const KernelMap> sparse_conv3d_map(const VoxelTensor& x, const SparseConvGeometry& g, int threads,
                                                   std::shared_ptr<VoxelSites>* out_sites) {
  const auto lm = layer_map(x, g, threads);
  if (out_sites) *out_sites = g.subm ? x.sites : lm->out;
  return lm->map;
}

namespace {

void run_dataflow(const SparseConvArgs& a, const Dataflow& d, LayerMap& lm, const VoxelSites& out, int threads) {
  switch (d.kind) {
    case Dataflow::per_offset: return sparse_conv_per_offset(a);
    case Dataflow::grouped: return sparse_conv_grouped(a, d.block / 100.0);
    case Dataflow::fused: return sparse_conv_fused(a);
    case Dataflow::blocked:
      return sparse_conv_blocked(a, *lm.blocked_map(d.block, out.keys.data(), out.order_or_null(), threads));
  }
}

// The candidates a layer is measured on: the fused per-offset kernel,
// output-stationary blocks of 32, 64 and 128 rows, offsets grouped by map
// size at thresholds 50% and 80%, and one oneDNN GEMM per offset.
std::vector<Dataflow> candidates() {
  return {{Dataflow::fused, 0},       {Dataflow::blocked, 32},    {Dataflow::blocked, 64}, {Dataflow::blocked, 128},
          {Dataflow::grouped, 50},    {Dataflow::grouped, 80},    {Dataflow::per_offset, 0}};
}

// What makes two layers alike for the dataflow choice (the key of the
// choice cache, tuning/choice_cache.h: in memory and on disk, so a later
// scan or a later process does not measure again): geometry, channels,
// threads, ISA, and the map's pair and output counts to within a factor of
// about 1.4.
int size_bucket(int64_t n) { return n <= 0 ? -1 : int(std::lround(2.0 * std::log2(double(n)))); }

ChoiceKey choice_key(const std::string& kind_name, int64_t cin, int64_t cout, int threads, const KernelMap& m) {
  ChoiceKey k;
  k.op = "sparse_conv3d";
  k.format = kind_name;
  k.m = size_bucket(m.total_pairs());
  k.pattern = uint64_t(int64_t(size_bucket(m.n_out)) + 1);
  k.n = cout;
  k.k = cin;
  k.threads = threads;
  k.isa = std::string(isa_name(host_isa()));
  std::string names;
  for (const Dataflow& d : candidates()) names += d.str() + ";";
  k.candidates = hash64(names);
  return k;
}

std::optional<Dataflow> remembered(const ChoiceKey& k) {
  const auto c = ChoiceCache::global().find(k);
  if (!c) return std::nullopt;
  try {
    return parse_dataflow(c->kernel);
  } catch (const Error&) {
    return std::nullopt;  // an entry this build does not know: measure again
  }
}

void remember(const ChoiceKey& k, const LayerMap::Measured& m) {
  Choice c;
  c.kernel = m.best.str();
  for (const auto& [d, ms] : m.times) {
    c.candidates.push_back({d.str(), ms});
    if (d.str() == c.kernel) c.ms = ms;
  }
  ChoiceCache::global().store(k, c);
}

}  // namespace

std::optional<LayerMap::Measured> chosen_dataflow(const VoxelTensor& x, const SparseConvGeometry& g, int64_t cin,
                                                  int64_t cout, int threads) {
  const auto lm = layer_map(x, g, threads);
  std::lock_guard<std::mutex> lock(lm->mu);
  const auto it = lm->chosen.find({cin, cout, threads});
  if (it == lm->chosen.end()) return std::nullopt;
  return it->second;
}

namespace {

// Checks a layer's input, weight and bias; returns (Cin, Cout).
std::pair<int64_t, int64_t> check_layer(const VoxelTensor& x, const Tensor& weight, const Tensor& bias, int threads) {
  check_threads(threads);
  SPARTA_CHECK(x.sites && x.feats.defined() && x.feats.dtype() == DType::f32 && x.feats.rank() == 2 &&
                   x.feats.dim(0) == x.sites->size(),
               "sparse convolution input: features must be float32 [N, C] for its N sites");
  SPARTA_CHECK(weight.defined() && weight.dtype() == DType::f32 && weight.rank() == 5,
               "sparse convolution weight must be float32 [kx, ky, kz, Cin, Cout], got ",
               weight.defined() ? std::string(dtype_name(weight.dtype())) + " " + weight.shape().str() : "nothing");
  const int64_t cin = x.feats.dim(1), cout = weight.dim(4);
  SPARTA_CHECK(weight.dim(3) == cin, "sparse convolution weight ", weight.shape().str(), " takes ", weight.dim(3),
               " input channels, the features have ", cin);
  SPARTA_CHECK(cin >= 1 && cout >= 1, "sparse convolution needs at least one input and one output channel, weight ",
               weight.shape().str());
  SPARTA_CHECK(!bias.defined() || (bias.dtype() == DType::f32 && bias.numel() == cout && bias.rank() == 1),
               "sparse convolution bias must be float32 [", cout, "], got ",
               bias.defined() ? std::string(dtype_name(bias.dtype())) + " " + bias.shape().str() : "");
  for (int a = 0; a < 3; ++a)
    SPARTA_CHECK(weight.dim(a) >= 1 && weight.dim(a) <= 15, "sparse convolution kernel extents must be 1..15, weight ",
                 weight.shape().str());
  return {cin, cout};
}

// Runs a layer over its map with the given, remembered or measured dataflow.
VoxelTensor execute(const VoxelTensor& x, const Tensor& weight, const Tensor& bias, const SparseConv3dOptions& o,
                    LayerMap& lm, const std::shared_ptr<VoxelSites>& out_sites, const std::string& kind_name) {
  const int64_t cin = x.feats.dim(1), cout = weight.dim(4);
  VoxelTensor y;
  y.sites = out_sites;
  y.feats = Tensor(DType::f32, Shape{out_sites->size(), cout}, Uninitialized{});
  if (out_sites->size() == 0) return y;
  SparseConvArgs a;
  a.map = lm.map.get();
  a.x = x.feats.data<float>();
  a.cin = cin;
  a.w = weight.data<float>();
  a.bias = bias.defined() ? bias.data<float>() : nullptr;
  a.relu = o.relu;
  a.y = y.feats.data<float>();
  a.cout = cout;
  a.threads = o.threads;
  if (o.dataflow) {
    run_dataflow(a, *o.dataflow, lm, *out_sites, o.threads);
    return y;
  }
  const std::tuple<int64_t, int64_t, int> key{cin, cout, o.threads};
  std::optional<Dataflow> known;
  {
    std::lock_guard<std::mutex> lock(lm.mu);
    if (auto it = lm.chosen.find(key); it != lm.chosen.end()) known = it->second.best;
  }
  // A layer of the same kind met before on other sites (the next scan
  // through a network): its choice, without measuring again.
  const ChoiceKey kind = choice_key(kind_name, cin, cout, o.threads, *lm.map);
  if (!known) known = remembered(kind);
  if (known) {
    run_dataflow(a, *known, lm, *out_sites, o.threads);
    std::lock_guard<std::mutex> lock(lm.mu);
    lm.chosen.try_emplace(key, LayerMap::Measured{*known, {}});
    return y;
  }
  // First call with these channels and threads: every candidate runs on
  // this input (each leaves the same y); those within 1.5x of the fastest
  // run again, round-robin against the machine's drift; the fastest is
  // kept. A blocked candidate is charged the regrouping of its map too: a
  // new scan's map is regrouped again.
  const std::vector<Dataflow> cands = candidates();
  std::vector<double> ms(cands.size(), 1e300), setup(cands.size(), 0.0);
  const auto since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  run_dataflow(a, cands[0], lm, *out_sites, o.threads);  // warm: y's pages, the caches
  // The regrouping is timed on its second build: the first one's arrays
  // may be fresh pages (a fault per 4 KB, several times the work on a first
  // scan), which a later scan, recycling them through the block cache,
  // does not pay.
  for (size_t i = 0; i < cands.size(); ++i)
    if (cands[i].kind == Dataflow::blocked) {
      lm.blocked_map(cands[i].block, out_sites->keys.data(), out_sites->order_or_null(), o.threads);
      {
        std::lock_guard<std::mutex> lock(lm.mu);
        lm.blocked.erase(cands[i].block);
      }
      const auto t0 = std::chrono::steady_clock::now();
      lm.blocked_map(cands[i].block, out_sites->keys.data(), out_sites->order_or_null(), o.threads);
      setup[i] = since(t0);
    }
  for (int round = 0; round < 2; ++round) {
    const double lead = *std::min_element(ms.begin(), ms.end());
    for (size_t i = 0; i < cands.size(); ++i) {
      if (round > 0 && ms[i] > 1.5 * lead) continue;
      const auto t0 = std::chrono::steady_clock::now();
      run_dataflow(a, cands[i], lm, *out_sites, o.threads);
      ms[i] = std::min(ms[i], since(t0));
    }
  }
  LayerMap::Measured m;
  double best = 1e300;
  for (size_t i = 0; i < cands.size(); ++i) {
    const double t = ms[i] + setup[i];
    m.times.push_back({cands[i], t});
    if (t < best) best = t, m.best = cands[i];
  }
  remember(kind, m);
  std::lock_guard<std::mutex> lock(lm.mu);
  lm.chosen[key] = m;
  // Regroupings no choice uses are dropped.
  for (auto it = lm.blocked.begin(); it != lm.blocked.end();) {
    const bool used = std::any_of(lm.chosen.begin(), lm.chosen.end(), [&](const auto& c) {
      return c.second.best.kind == Dataflow::blocked && c.second.best.block == it->first;
    });
    it = used ? std::next(it) : lm.blocked.erase(it);
  }
  return y;
}

}  // namespace

VoxelTensor sparse_conv3d(const VoxelTensor& x, const Tensor& weight, const Tensor& bias, const SparseConv3dOptions& o) {
  check_layer(x, weight, bias, o.threads);
  SparseConvGeometry g = o.geometry;
  for (size_t a = 0; a < 3; ++a) g.k[a] = int(weight.dim(int(a)));
  const auto lm = layer_map(x, g, o.threads);
  return execute(x, weight, bias, o, *lm, g.subm ? x.sites : lm->out, g.str());
}

VoxelTensor sparse_inverse_conv3d(const VoxelTensor& y, const Tensor& weight, const Tensor& bias,
                                  const SparseConv3dOptions& o) {
  check_layer(y, weight, bias, o.threads);
  VoxelSites& s = *y.sites;
  std::shared_ptr<VoxelSites> parent = s.parent.lock();
  SPARTA_CHECK(s.parent_map && parent,
               "an inverse convolution needs a tensor made by a strided (not submanifold) convolution whose input is "
               "still alive");
  const SparseConvGeometry& g = s.parent_geometry;
  for (int a = 0; a < 3; ++a)
    SPARTA_CHECK(weight.dim(a) == g.k[size_t(a)], "inverse convolution weight ", weight.shape().str(),
                 " must have the kernel extents of the layer it inverts (", g.str(), ")");
  const std::string key = "inverse " + g.str();
  std::shared_ptr<LayerMap> lm;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto& slot = s.maps[key];
    if (!slot) {
      // The strided map reversed: within an offset an input site meets
      // one output site, so the reversed pairs still write each row once.
      const KernelMap& f = *s.parent_map;
      auto inv = std::make_shared<KernelMap>();
      inv->n_in = f.n_out;
      inv->n_out = f.n_in;
      inv->volume = f.volume;
      inv->begin = f.begin;
      inv->in = f.out;
      inv->out = f.in;
      slot = std::make_shared<LayerMap>();
      slot->map = std::move(inv);
    }
    lm = slot;
  }
  return execute(y, weight, bias, o, *lm, parent, key);
}

}  // namespace sparta
