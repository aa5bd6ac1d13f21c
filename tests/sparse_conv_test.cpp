// Sparse 3-D convolution: the coordinate table's properties, kernel maps and
// executions against a dense conv3d on small grids (every mode, kernel
// sizes, strides, dilations, paddings, batches, channel counts off every
// vector width), the executions against the pair-by-pair reference, and
// bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "core/cpu.h"
#include "data/scenes.h"
#include "kernels/isa_kernels.h"
#include "kernels/sparse_conv.h"
#include "runtime/sparse_conv3d.h"
#include "test_util.h"

namespace sparta {
namespace {

using testing::expect_error;

Tensor coords_tensor(const std::vector<Coord>& cs) {
  Tensor t(DType::i32, Shape{int64_t(cs.size()), 4});
  for (size_t i = 0; i < cs.size(); ++i) {
    int32_t* r = t.data<int32_t>() + 4 * i;
    r[0] = cs[i].b, r[1] = cs[i].x, r[2] = cs[i].y, r[3] = cs[i].z;
  }
  return t;
}

Tensor random_f32(Shape s, std::mt19937& rng) {
  Tensor t(DType::f32, s);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

TEST(CoordHash, FindsEveryKeyAndNoOther) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> c(kCoordMin, kCoordMax), b(0, 3);
  std::vector<uint64_t> keys;
  std::set<uint64_t> seen;
  while (keys.size() < 20000) {  // negative and positive coordinates, several batches
    const uint64_t k = pack_coord({b(rng), c(rng) / 1000, c(rng) / 1000, c(rng) / 1000});
    if (seen.insert(k).second) keys.push_back(k);
  }
  for (int threads : {1, 2}) {
    CoordHash h(int64_t(keys.size()));
    EXPECT_EQ(h.insert_rows(keys.data(), int64_t(keys.size()), threads), -1);
    EXPECT_EQ(h.size(), int64_t(keys.size()));
    for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(h.find(keys[i]), int32_t(i));
    for (int i = 0; i < 2000; ++i) {
      const uint64_t k = pack_coord({b(rng), c(rng), c(rng), c(rng)});
      if (!seen.count(k)) {
        ASSERT_EQ(h.find(k), -1);
      }
    }
  }
}

// Neighbouring voxels of one column collide often in a poor hash: a table
// of a single bucket's worth of keys and one of a dense block both work.
TEST(CoordHash, DenseBlocksAndTinyTables) {
  for (int n : {1, 7, 8, 9, 4096}) {
    std::vector<uint64_t> keys;
    for (int i = 0; i < n; ++i) keys.push_back(pack_coord({0, i % 16 - 8, (i / 16) % 16 - 8, i / 256}));
    CoordHash h(n);
    ASSERT_EQ(h.insert_rows(keys.data(), n, 2), -1);
    for (int i = 0; i < n; ++i) ASSERT_EQ(h.find(keys[size_t(i)]), i);
    EXPECT_EQ(h.find(pack_coord({1, 0, 0, 0})), -1);
  }
}

TEST(CoordHash, PackingKeepsOrderAndRange) {
  std::vector<Coord> cs = {{0, -32768, 5, 7}, {0, -1, 0, 0}, {0, 0, -32768, 0}, {0, 0, 0, 32767}, {1, -5, -5, -5}, {65534, 32767, 32767, 32767}};
  for (size_t i = 0; i < cs.size(); ++i) {
    EXPECT_TRUE(coord_in_range(cs[i]));
    EXPECT_EQ(unpack_coord(pack_coord(cs[i])), cs[i]);
    if (i) {
      EXPECT_LT(pack_coord(cs[i - 1]), pack_coord(cs[i]));  // listed in (b, x, y, z) order
    }
    EXPECT_NE(pack_coord(cs[i]), CoordHash::kEmpty);
  }
  EXPECT_FALSE(coord_in_range({0, 32768, 0, 0}));
  EXPECT_FALSE(coord_in_range({-1, 0, 0, 0}));
  EXPECT_FALSE(coord_in_range({65535, 0, 0, 0}));
}

// Coordinate order is a stable sort by key, on both of its paths (the
// row index packed beside a compact key, or beside too spread a key) and
// whatever the threads: compared with std::stable_sort.
TEST(CoordinateOrder, StableSortByKeyWhateverTheThreads) {
  std::mt19937 rng(21);
  const auto check = [&](const std::vector<uint64_t>& keys, const std::string& what) {
    const int64_t n = int64_t(keys.size());
    std::vector<int32_t> want(keys.size());
    for (int64_t i = 0; i < n; ++i) want[size_t(i)] = int32_t(i);
    std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
    for (int threads : {1, 2, 3}) EXPECT_EQ(coordinate_order(keys.data(), n, threads), want) << what << ", " << threads << " threads";
  };
  for (int64_t n : {0, 1, 2, 7, 1000, 100000}) {
    std::vector<uint64_t> compact(static_cast<size_t>(n)), spread(compact.size()), offset(compact.size());
    for (int64_t i = 0; i < n; ++i) {
      // Many repeats (a few hundred cells), negative coordinates included.
      const auto c = [&](int span) { return int32_t(rng() % uint32_t(span)) - span / 2; };
      compact[size_t(i)] = pack_coord({int32_t(rng() % 3), c(12), c(40), c(7)});
      // Every field's full range: too wide to pack beside the row index.
      spread[size_t(i)] = pack_coord({int32_t(rng() % 65535), c(65536), c(65536), c(65536)});
      // A narrow range straddling a power of two, far from the origin.
      offset[size_t(i)] = pack_coord({0, 30000 + c(40), 1020 + c(9), -1000 + c(2)});
    }
    check(compact, "compact keys, n " + std::to_string(n));
    check(spread, "spread keys, n " + std::to_string(n));
    check(offset, "offset keys, n " + std::to_string(n));
  }
}

TEST(CoordHash, FirstDuplicateIsReportedWhateverTheThreads) {
  std::vector<uint64_t> keys;
  for (int i = 0; i < 50000; ++i) keys.push_back(pack_coord({0, i, 0, 0}));
  keys[40000] = keys[123];
  keys[30000] = keys[29999];
  for (int threads : {1, 2}) {
    CoordHash h(int64_t(keys.size()));
    EXPECT_EQ(h.insert_rows(keys.data(), int64_t(keys.size()), threads), 30000);
  }
}

// A random cloud on a small grid: each site active with probability p.
std::vector<Coord> random_cloud(int batches, const std::array<int64_t, 3>& d, double p, std::mt19937& rng) {
  std::vector<Coord> cs;
  std::bernoulli_distribution on(p);
  for (int b = 0; b < batches; ++b)
    for (int x = 0; x < d[0]; ++x)
      for (int y = 0; y < d[1]; ++y)
        for (int z = 0; z < d[2]; ++z)
          if (on(rng)) cs.push_back({b, x, y, z});
  std::shuffle(cs.begin(), cs.end(), rng);  // rows in no particular order
  return cs;
}

struct DenseCase {
  std::array<int, 3> k, stride, pad, dil;
  bool subm;
  bool bounded;  // the grid's extent given (else unbounded above)
  int64_t cin, cout;
};

// Dense conv3d over the grid (zeros where no site), the oracle: at every
// output site of the grid whose receptive field holds a site, the sparse
// result must hold that site with this value; no other site.
void expect_matches_dense(const DenseCase& t, std::mt19937& rng, int threads) {
  const std::array<int64_t, 3> grid{6, 5, 7};
  const int batches = 2;
  const std::vector<Coord> cs = random_cloud(batches, grid, 0.25, rng);
  const int64_t n = int64_t(cs.size());
  const Tensor feats = random_f32(Shape{n, t.cin}, rng);
  const Tensor w = random_f32(Shape{t.k[0], t.k[1], t.k[2], t.cin, t.cout}, rng);
  const Tensor bias = random_f32(Shape{t.cout}, rng);
  VoxelTensor x = make_voxel_tensor(coords_tensor(cs), feats, t.bounded ? std::optional(grid) : std::nullopt,
                                    DuplicateCoords::error, threads);
  SparseConv3dOptions o;
  o.geometry.k = t.k, o.geometry.stride = t.stride, o.geometry.pad = t.pad, o.geometry.dil = t.dil;
  o.geometry.subm = t.subm;
  o.threads = threads;
  const VoxelTensor y = sparse_conv3d(x, w, bias, o);
  // Dense input grid, with room above for an unbounded layer's outputs.
  std::array<int64_t, 3> in = grid, out{};
  const std::array<int, 3> pad = t.subm ? o.geometry.effective_pad() : t.pad;
  for (size_t a = 0; a < 3; ++a) {
    if (!t.bounded) in[a] += int64_t(t.dil[a]) * (t.k[a] - 1);
    out[a] = t.subm ? grid[a] : (in[a] + 2 * pad[a] - int64_t(t.dil[a]) * (t.k[a] - 1) - 1) / t.stride[a] + 1;
  }
  const auto at = [&](int b, int64_t x0, int64_t y0, int64_t z0) { return ((b * in[0] + x0) * in[1] + y0) * in[2] + z0; };
  std::vector<int64_t> row(size_t(batches * in[0] * in[1] * in[2]), -1);
  for (int64_t i = 0; i < n; ++i) row[size_t(at(cs[size_t(i)].b, cs[size_t(i)].x, cs[size_t(i)].y, cs[size_t(i)].z))] = i;
  std::map<uint64_t, int64_t> got;
  const Tensor& yc = y.sites->coords;
  for (int64_t r = 0; r < yc.dim(0); ++r) {
    const int32_t* c = yc.data<int32_t>() + 4 * r;
    got[pack_coord({c[0], c[1], c[2], c[3]})] = r;
    if (!t.subm && r) {  // sorted by (batch, x, y, z)
      const int32_t* p = c - 4;
      ASSERT_LT(pack_coord({p[0], p[1], p[2], p[3]}), pack_coord({c[0], c[1], c[2], c[3]}));
    }
  }
  if (t.subm) {
    ASSERT_EQ(yc.dim(0), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(unpack_coord(pack_coord(cs[size_t(i)])), Coord({yc.data<int32_t>()[4 * i], yc.data<int32_t>()[4 * i + 1], yc.data<int32_t>()[4 * i + 2], yc.data<int32_t>()[4 * i + 3]}));
  }
  int64_t expected_sites = 0;
  for (int b = 0; b < batches; ++b)
    for (int64_t ox = 0; ox < out[0]; ++ox)
      for (int64_t oy = 0; oy < out[1]; ++oy)
        for (int64_t oz = 0; oz < out[2]; ++oz) {
          if (t.subm && row[size_t(at(b, ox, oy, oz))] < 0) continue;  // submanifold: input sites only
          std::vector<double> acc(size_t(t.cout), 0.0);
          bool touched = false;
          for (int kx = 0; kx < t.k[0]; ++kx)
            for (int ky = 0; ky < t.k[1]; ++ky)
              for (int kz = 0; kz < t.k[2]; ++kz) {
                const int64_t ix = ox * t.stride[0] - pad[0] + kx * t.dil[0];
                const int64_t iy = oy * t.stride[1] - pad[1] + ky * t.dil[1];
                const int64_t iz = oz * t.stride[2] - pad[2] + kz * t.dil[2];
                if (ix < 0 || iy < 0 || iz < 0 || ix >= in[0] || iy >= in[1] || iz >= in[2]) continue;
                const int64_t r = row[size_t(at(b, ix, iy, iz))];
                if (r < 0) continue;
                touched = true;
                const float* wk = w.data<float>() + int64_t((kx * t.k[1] + ky) * t.k[2] + kz) * t.cin * t.cout;
                for (int64_t ci = 0; ci < t.cin; ++ci)
                  for (int64_t co = 0; co < t.cout; ++co)
                    acc[size_t(co)] += double(feats.data<float>()[r * t.cin + ci]) * wk[ci * t.cout + co];
              }
          if (!touched && !t.subm) continue;
          ++expected_sites;
          const auto it = got.find(pack_coord({b, int32_t(ox), int32_t(oy), int32_t(oz)}));
          ASSERT_NE(it, got.end()) << "missing output site " << Coord{b, int32_t(ox), int32_t(oy), int32_t(oz)}.str();
          for (int64_t co = 0; co < t.cout; ++co)
            ASSERT_NEAR(y.feats.data<float>()[it->second * t.cout + co], acc[size_t(co)] + bias.data<float>()[co], 1e-4)
                << "site " << Coord{b, int32_t(ox), int32_t(oy), int32_t(oz)}.str() << " channel " << co;
        }
  EXPECT_EQ(int64_t(got.size()), expected_sites);
}

TEST(SparseConv3d, MatchesDenseConvolution) {
  std::mt19937 rng(11);
  std::vector<DenseCase> cases;
  // Submanifold: odd kernels 1, 3, 5 (also unequal), dilations 1, 2.
  for (auto k : {std::array<int, 3>{1, 1, 1}, {3, 3, 3}, {5, 5, 5}, {3, 1, 5}})
    for (int d : {1, 2}) cases.push_back({k, {1, 1, 1}, {0, 0, 0}, {d, d, d}, true, true, 3, 16});
  // Generalized: kernels 1-5, strides 1-3, paddings 0-2, dilations 1-2,
  // bounded and unbounded grids.
  cases.push_back({{2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, false, true, 5, 8});
  cases.push_back({{3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, false, true, 17, 33});
  cases.push_back({{3, 3, 3}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, false, false, 1, 2});
  cases.push_back({{4, 2, 3}, {3, 1, 2}, {2, 0, 1}, {1, 2, 1}, false, true, 8, 7});
  cases.push_back({{5, 5, 5}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, false, false, 4, 16});
  cases.push_back({{1, 1, 1}, {2, 3, 1}, {0, 0, 0}, {1, 1, 1}, false, true, 9, 3});
  cases.push_back({{3, 3, 3}, {2, 2, 2}, {0, 1, 2}, {2, 2, 1}, false, false, 16, 17});
  for (int threads : {1, 2})
    for (const DenseCase& t : cases) {
      SparseConvGeometry g;
      g.k = t.k, g.stride = t.stride, g.pad = t.pad, g.dil = t.dil, g.subm = t.subm;
      SCOPED_TRACE(g.str() + (t.bounded ? ", bounded grid" : ", unbounded") + ", threads " + std::to_string(threads));
      expect_matches_dense(t, rng, threads);
    }
}

// The executions (per offset through oneDNN; fused, with every ISA this
// host runs) against the pair-by-pair reference on a larger cloud, with
// bias and ReLU, at 1 and 2 threads, channels on and off every vector width.
TEST(SparseConv3d, ExecutionsMatchReference) {
  std::mt19937 rng(5);
  const std::vector<Coord> cs = random_cloud(1, {24, 24, 24}, 0.1, rng);
  for (bool subm : {true, false})
    for (auto [cin, cout] : {std::pair<int64_t, int64_t>{1, 1}, {16, 32}, {19, 24}, {64, 64}, {3, 47}})
      for (int threads : {1, 2}) {
        VoxelTensor x = make_voxel_tensor(coords_tensor(cs), random_f32(Shape{int64_t(cs.size()), cin}, rng), std::nullopt,
                                          DuplicateCoords::error, threads);
        SparseConvGeometry g;
        g.subm = subm;
        if (!subm) g.stride = {2, 2, 2}, g.pad = {1, 1, 1};
        std::shared_ptr<VoxelSites> out;
        const auto map = sparse_conv3d_map(x, g, threads, &out);
        const Tensor w = random_f32(Shape{27, cin, cout}, rng), b = random_f32(Shape{cout}, rng);
        Tensor want(DType::f32, Shape{map->n_out, cout});
        SparseConvArgs a{map.get(), x.feats.data<float>(), cin, w.data<float>(), b.data<float>(), true,
                         want.data<float>(), cout, threads};
        sparse_conv_reference(a);
        const auto expect_same = [&](const Tensor& got, const std::string& what) {
          for (int64_t i = 0; i < want.numel(); ++i)
            ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-4)
                << what << " subm " << subm << " cin " << cin << " cout " << cout << " threads " << threads << " at " << i;
        };
        Tensor got(DType::f32, Shape{map->n_out, cout});
        a.y = got.data<float>();
        sparse_conv_per_offset(a);
        expect_same(got, "per offset");
        for (double threshold : {0.01, 0.5, 1.0}) {
          std::fill(got.data<float>(), got.data<float>() + got.numel(), 7.f);
          sparse_conv_grouped(a, threshold);
          expect_same(got, "grouped " + std::to_string(threshold));
        }
        for (Isa isa : host_isas()) {
          std::fill(got.data<float>(), got.data<float>() + got.numel(), 7.f);  // every element must be written
          sparse_conv_fused(a, isa_kernels(isa).sparse_conv);
          expect_same(got, "fused " + std::string(isa_name(isa)));
          for (int block : {1, 7, 64}) {
            const BlockedMap bm = block_kernel_map(*map, out->keys.data(), block, threads);
            std::fill(got.data<float>(), got.data<float>() + got.numel(), 7.f);
            sparse_conv_blocked(a, bm, isa_kernels(isa).sparse_conv);
            expect_same(got, "blocked " + std::to_string(block) + " " + std::string(isa_name(isa)));
          }
        }
        // The map is cached on the sites: asking again returns the same one.
        EXPECT_EQ(sparse_conv3d_map(x, g, threads, nullptr), map);
      }
}

// Every execution on a cloud large enough that each offset's pairs split
// over two threads (the per-thread scratch of one thread must not be what
// another writes to), narrow channels to keep the reference quick.
TEST(SparseConv3d, ExecutionsSplitOverThreads) {
  std::mt19937 rng(13);
  const std::vector<Coord> cs = random_cloud(1, {40, 40, 40}, 0.15, rng);
  for (bool subm : {true, false}) {
    VoxelTensor x = make_voxel_tensor(coords_tensor(cs), random_f32(Shape{int64_t(cs.size()), 3}, rng), std::nullopt,
                                      DuplicateCoords::error, 2);
    SparseConvGeometry g;
    g.subm = subm;
    if (!subm) g.stride = {2, 2, 2}, g.pad = {1, 1, 1};
    std::shared_ptr<VoxelSites> out;
    const auto map = sparse_conv3d_map(x, g, 2, &out);
    ASSERT_GT(map->pairs(0), 1024);  // two threads share every offset (512 pairs each at least)
    const Tensor w = random_f32(Shape{27, 3, 5}, rng), b = random_f32(Shape{5}, rng);
    Tensor want(DType::f32, Shape{map->n_out, 5}), got(DType::f32, Shape{map->n_out, 5});
    SparseConvArgs a{map.get(), x.feats.data<float>(), 3, w.data<float>(), b.data<float>(), true, want.data<float>(), 5, 2};
    sparse_conv_reference(a);
    a.y = got.data<float>();
    const BlockedMap bm = block_kernel_map(*map, out->keys.data(), 64, 2);
    const std::vector<std::pair<std::string, std::function<void()>>> runs = {
        {"per offset", [&] { sparse_conv_per_offset(a); }},
        {"grouped", [&] { sparse_conv_grouped(a, 0.5); }},
        {"fused", [&] { sparse_conv_fused(a); }},
        {"blocked", [&] { sparse_conv_blocked(a, bm); }}};
    for (const auto& [name, run] : runs) {
      std::fill(got.data<float>(), got.data<float>() + got.numel(), 7.f);
      run();
      for (int64_t i = 0; i < want.numel(); ++i)
        ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-4) << name << " subm " << subm << " at " << i;
    }
  }
}

// Two maps with the same pairs per offset (in any order).
void expect_same_pairs(const KernelMap& a, const KernelMap& b, const std::string& what) {
  ASSERT_EQ(a.begin, b.begin) << what;
  for (int o = 0; o < a.volume; ++o) {
    std::set<std::pair<int32_t, int32_t>> pa, pb;
    for (int64_t p = a.begin[size_t(o)]; p < a.begin[size_t(o) + 1]; ++p) pa.insert({a.in[size_t(p)], a.out[size_t(p)]});
    for (int64_t p = b.begin[size_t(o)]; p < b.begin[size_t(o) + 1]; ++p) pb.insert({b.in[size_t(p)], b.out[size_t(p)]});
    ASSERT_EQ(pa, pb) << what << " offset " << o;
  }
}

// The merged submanifold map and the strided one equal the hash-probing
// reference pair for pair, on clouds with several batches, negative
// coordinates and sites at the very edges of the coordinate range (where a
// shifted key would carry into the next field): submanifold kernels 1, 3, 5
// (dilated) and unequal extents, strided 2x2x2 and 3x3x3 with padding.
TEST(SparseConv3d, MapsEqualTheReference) {
  std::mt19937 rng(21);
  // Enough sites (~38k) that 2 threads split the builders' outputs.
  std::vector<Coord> cloud = random_cloud(3, {40, 40, 40}, 0.2, rng);
  for (Coord& c : cloud) c.x -= 20, c.y -= 3;  // negative coordinates
  const auto keys_of = [&](std::vector<Coord> cs) {
    std::sort(cs.begin(), cs.end(), [](const Coord& a, const Coord& b) { return pack_coord(a) < pack_coord(b); });
    cs.erase(std::unique(cs.begin(), cs.end()), cs.end());
    std::shuffle(cs.begin(), cs.end(), rng);
    std::vector<uint64_t> keys;
    for (const Coord& c : cs) keys.push_back(pack_coord(c));
    return keys;
  };
  // With sites at the range's ends (a shifted key may carry: every match
  // checked field by field), and without (sites exactly a 3x3x3 padding
  // from the ends: no match needs the check).
  std::vector<Coord> edges = cloud, inner = cloud;
  for (int32_t e : {kCoordMin, kCoordMin + 1, kCoordMax - 1, kCoordMax})
    for (int32_t f : {kCoordMin, 0, kCoordMax}) {
      edges.push_back({0, e, f, e});
      edges.push_back({1, f, e, kCoordMax});
      edges.push_back({2, kCoordMax, kCoordMax, e});
    }
  inner.push_back({0, kCoordMin + 1, 0, 0}), inner.push_back({1, 5, kCoordMax - 1, kCoordMin + 1});
  for (const std::vector<uint64_t>& keys : {keys_of(edges), keys_of(inner)}) {
    const int64_t n = int64_t(keys.size());
    CoordHash table(n);
    ASSERT_EQ(table.insert_rows(keys.data(), n, 1), -1);
    for (auto [k, d] : {std::pair<std::array<int, 3>, int>{{1, 1, 1}, 1}, {{3, 3, 3}, 1}, {{5, 5, 5}, 2}, {{3, 1, 5}, 1}})
      for (int threads : {1, 2}) {
        SparseConvGeometry g;
        g.subm = true, g.k = k, g.dil = {d, d, d};
        expect_same_pairs(build_subm_map(keys.data(), n, g, threads), build_kernel_map(table, n, keys.data(), n, g),
                          g.str());
      }
    // The strided builder against the same reference over its output
    // sites, on an unbounded grid and on a bounded one.
    const std::array<int64_t, 3> extent{10, 10, 10};
    for (auto [k, s, p] : {std::tuple<int, int, int>{2, 2, 0}, {3, 2, 1}, {3, 3, 2}})
      for (int threads : {1, 2})
        for (const std::array<int64_t, 3>* bound : {static_cast<const std::array<int64_t, 3>*>(nullptr), &extent}) {
          SparseConvGeometry g;
          g.k = {k, k, k}, g.stride = {s, s, s}, g.pad = {p, p, p};
          std::vector<uint64_t> out;
          const KernelMap a = build_strided_map(keys.data(), n, g, bound, threads, out);
          expect_same_pairs(a, build_kernel_map(table, n, out.data(), int64_t(out.size()), g), g.str());
          if (bound)
            for (uint64_t o : out) {
              const Coord c = unpack_coord(o);
              ASSERT_TRUE(c.x >= 0 && c.x < 10 && c.y >= 0 && c.y < 10 && c.z >= 0 && c.z < 10) << c.str();
            }
        }
  }
  // An output past coordinate 32767 is an error only when an input lands
  // there: a grid wider than 32768 may hold a window of the range.
  {
    SparseConvGeometry g;
    g.k = {1, 1, 1}, g.pad = {2, 0, 0};
    const std::vector<uint64_t> two{pack_coord({0, 0, 0, 0}), pack_coord({0, kCoordMax, 0, 0})};
    const std::array<int64_t, 3> wide{32769, 32768, 32768};
    std::vector<uint64_t> out;
    const KernelMap a = build_strided_map(two.data(), 2, g, &wide, 1, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(unpack_coord(out[0]), (Coord{0, 2, 0, 0}));
    EXPECT_EQ(a.total_pairs(), 1);
    expect_error([&] { build_strided_map(two.data(), 2, g, nullptr, 1, out); }, {"past coordinate 32767"});
  }
  std::vector<uint64_t> keys = keys_of(edges);
  const int64_t n = int64_t(keys.size());
  // Coordinate order is a sort by key.
  const std::vector<int32_t> order = coordinate_order(keys.data(), n);
  for (int64_t i = 1; i < n; ++i) ASSERT_LT(keys[size_t(order[size_t(i - 1)])], keys[size_t(order[size_t(i)])]);
}

TEST(SparseConv3d, SubmanifoldMapIsSymmetric) {
  std::mt19937 rng(8);
  const std::vector<Coord> cs = random_cloud(1, {10, 10, 10}, 0.3, rng);
  VoxelTensor x = make_voxel_tensor(coords_tensor(cs), Tensor(DType::f32, Shape{int64_t(cs.size()), 1}), std::nullopt,
                                    DuplicateCoords::error, 1);
  SparseConvGeometry g;
  g.subm = true;
  const auto m = sparse_conv3d_map(x, g, 2, nullptr);
  EXPECT_EQ(m->pairs(m->centre), 0);
  for (int k = 0; k < m->volume; ++k) {
    if (k == m->centre) continue;
    std::set<std::pair<int32_t, int32_t>> a, b;
    for (int64_t p = m->begin[size_t(k)]; p < m->begin[size_t(k) + 1]; ++p) a.insert({m->in[size_t(p)], m->out[size_t(p)]});
    const int j = m->volume - 1 - k;
    for (int64_t p = m->begin[size_t(j)]; p < m->begin[size_t(j) + 1]; ++p) b.insert({m->out[size_t(p)], m->in[size_t(p)]});
    EXPECT_EQ(a, b) << "offset " << k;
    std::set<int32_t> outs;
    for (int64_t p = m->begin[size_t(k)]; p < m->begin[size_t(k) + 1]; ++p) EXPECT_TRUE(outs.insert(m->out[size_t(p)]).second);
  }
}

// Cached maps never own the sites they were made from or return to: once
// the tensors go, every set of sites goes (no cycle), and an inverse layer
// whose strided layer's input is gone is an error, not a dangling map.
TEST(SparseConv3d, MapsDoNotKeepSitesAlive) {
  std::mt19937 rng(2);
  const std::vector<Coord> cs = random_cloud(1, {12, 12, 12}, 0.2, rng);
  std::weak_ptr<VoxelSites> in_sites, down_sites;
  VoxelTensor orphan;
  {
    VoxelTensor x = make_voxel_tensor(coords_tensor(cs), random_f32(Shape{int64_t(cs.size()), 4}, rng), std::nullopt,
                                      DuplicateCoords::error, 1);
    SparseConv3dOptions sub;
    sub.geometry.subm = true;
    const VoxelTensor h = sparse_conv3d(x, random_f32(Shape{3, 3, 3, 4, 4}, rng), Tensor(), sub);
    SparseConv3dOptions down;
    down.geometry.stride = {2, 2, 2};
    const VoxelTensor y = sparse_conv3d(h, random_f32(Shape{2, 2, 2, 4, 8}, rng), Tensor(), down);
    const VoxelTensor z = sparse_inverse_conv3d(y, random_f32(Shape{2, 2, 2, 8, 4}, rng), Tensor(), {});
    EXPECT_EQ(z.sites, x.sites);
    in_sites = x.sites;
    down_sites = y.sites;
    orphan = y;
  }
  EXPECT_TRUE(in_sites.expired());
  EXPECT_FALSE(down_sites.expired());  // held by `orphan`
  expect_error([&] { sparse_inverse_conv3d(orphan, Tensor(DType::f32, Shape{2, 2, 2, 8, 4}), Tensor(), {}); },
               {"still alive"});
  orphan = VoxelTensor();
  EXPECT_TRUE(down_sites.expired());
}

// Generated scenes: a pure function of the seed, distinct voxels inside
// the reported extent, about the size asked; a LiDAR scan's points lie on
// the ground or on objects within range of the sensor.
TEST(Scenes, SeededDistinctAndInRange) {
  for (const char* name : {"lidar", "room", "shells"}) {
    SCOPED_TRACE(name);
    const VoxelGrid a = make_scene(name, 20000, 7), b = make_scene(name, 20000, 7), c = make_scene(name, 20000, 8);
    ASSERT_EQ(a.coords.shape(), b.coords.shape());
    EXPECT_EQ(std::memcmp(a.coords.raw(), b.coords.raw(), a.coords.nbytes()), 0);
    EXPECT_TRUE(a.coords.shape() != c.coords.shape() ||
                std::memcmp(a.coords.raw(), c.coords.raw(), a.coords.nbytes()) != 0);
    const int64_t n = a.coords.dim(0);
    EXPECT_GT(n, 20000 * 7 / 10);
    EXPECT_LT(n, 20000 * 13 / 10);
    std::set<uint64_t> seen;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t* r = a.coords.data<int32_t>() + 4 * i;
      for (int ax = 0; ax < 3; ++ax) {
        ASSERT_GE(r[1 + ax], 0);
        ASSERT_LT(r[1 + ax], a.extent[size_t(ax)]);
      }
      ASSERT_TRUE(seen.insert(pack_coord({r[0], r[1], r[2], r[3]})).second) << "row " << i << " repeats a voxel";
    }
  }
  LidarOptions o;
  o.seed = 3;
  const std::vector<Point3> pts = simulate_lidar(o);
  EXPECT_GT(pts.size(), size_t(o.beams) * size_t(o.azimuths) / 2);  // most beams return
  for (const Point3& p : pts) {
    ASSERT_GT(p.z, -0.1f);  // nothing below the ground (range noise aside)
    ASSERT_LT(std::sqrt(p.x * p.x + p.y * p.y + (p.z - o.height) * (p.z - o.height)), o.range + 0.1f);
  }
  expect_error([] { make_scene("forest", 100, 1); }, {"unknown scene", "forest"});
}

TEST(SparseConv3d, BadInputIsOneLineError) {
  const Tensor f = Tensor(DType::f32, Shape{3, 2});
  const Tensor dup = coords_tensor({{0, 1, 2, 3}, {0, 4, 5, 6}, {0, 1, 2, 3}});
  expect_error([&] { make_voxel_tensor(dup, f, std::nullopt, DuplicateCoords::error, 1); },
               {"duplicate coordinates", "row 2", "(0, 1, 2, 3)", "row 0"});
  // Several repeats: the first repeating row is named, with the row it repeats.
  const Tensor many = coords_tensor({{0, 9, 9, 9}, {0, 1, 1, 1}, {0, 5, 5, 5}, {0, 1, 1, 1}, {0, 9, 9, 9}, {0, 5, 5, 5}});
  expect_error([&] { make_voxel_tensor(many, Tensor(DType::f32, Shape{6, 1}), std::nullopt, DuplicateCoords::error, 2); },
               {"row 3 (0, 1, 1, 1) repeats row 1"});
  expect_error([&] { make_voxel_tensor(coords_tensor({{0, 1, 2, 3}, {0, 40000, 0, 0}, {0, 0, 0, 0}}), f, std::nullopt,
                                       DuplicateCoords::error, 1); },
               {"row 1", "outside the supported range"});
  expect_error([&] { make_voxel_tensor(coords_tensor({{-1, 1, 2, 3}}), Tensor(DType::f32, Shape{1, 2}), std::nullopt,
                                       DuplicateCoords::error, 1); },
               {"row 0", "outside the supported range"});
  expect_error([&] { make_voxel_tensor(coords_tensor({{0, 6, 0, 0}}), Tensor(DType::f32, Shape{1, 2}),
                                       std::array<int64_t, 3>{6, 6, 6}, DuplicateCoords::error, 1); },
               {"outside the grid's extent"});
  expect_error([&] { make_voxel_tensor(Tensor(DType::i64, Shape{3, 4}), f, std::nullopt, DuplicateCoords::error, 1); },
               {"int32 [N, 4]"});
  expect_error([&] { make_voxel_tensor(Tensor(DType::i32, Shape{3, 3}), f, std::nullopt, DuplicateCoords::error, 1); },
               {"int32 [N, 4]"});
  expect_error([&] { make_voxel_tensor(dup, Tensor(DType::f32, Shape{2, 2}), std::nullopt, DuplicateCoords::sum, 1); },
               {"3 rows, features 2"});
  VoxelTensor x = make_voxel_tensor(coords_tensor({{0, 1, 2, 3}}), Tensor(DType::f32, Shape{1, 2}), std::nullopt,
                                    DuplicateCoords::error, 1);
  SparseConv3dOptions o;
  expect_error([&] { sparse_conv3d(x, Tensor(DType::f32, Shape{3, 3, 3, 4, 8}), Tensor(), o); }, {"input channels"});
  expect_error([&] { sparse_conv3d(x, Tensor(DType::f32, Shape{3, 3, 4, 8}), Tensor(), o); }, {"[kx, ky, kz, Cin, Cout]"});
  expect_error([&] { sparse_conv3d(x, Tensor(DType::f32, Shape{3, 3, 3, 2, 8}), Tensor(DType::f32, Shape{7}), o); },
               {"bias"});
  o.geometry.subm = true;
  expect_error([&] { sparse_conv3d(x, Tensor(DType::f32, Shape{2, 2, 2, 2, 8}), Tensor(), o); }, {"odd kernel"});
  o.geometry.subm = false;
  o.geometry.stride = {0, 1, 1};
  expect_error([&] { sparse_conv3d(x, Tensor(DType::f32, Shape{3, 3, 3, 2, 8}), Tensor(), o); }, {"strides"});
  o.geometry.stride = {1, 1, 1};
  o.geometry.dil = {1 << 30, 1, 1};  // would overflow the offsets' arithmetic
  expect_error([&] { sparse_conv3d(x, Tensor(DType::f32, Shape{3, 3, 3, 2, 8}), Tensor(), o); }, {"dilations"});
  o.geometry.dil = {1, 1, 1};
  o.geometry.pad = {2, 0, 0};  // an output at x = 32768 and 32769: past the range, an error, not dropped
  const VoxelTensor edge = make_voxel_tensor(coords_tensor({{0, kCoordMax, 0, 0}}), Tensor(DType::f32, Shape{1, 2}),
                                             std::nullopt, DuplicateCoords::error, 1);
  expect_error([&] { sparse_conv3d(edge, Tensor(DType::f32, Shape{3, 3, 3, 2, 8}), Tensor(), o); },
               {"past coordinate 32767"});
}

// A window wider than the grid gives no output site, as the dense
// convolution's output has no extent there (extent 2, kernel 3, stride 2).
TEST(SparseConv3d, WindowWiderThanTheGridHasNoOutput) {
  const VoxelTensor x = make_voxel_tensor(coords_tensor({{0, 0, 3, 3}, {0, 1, 4, 4}}), Tensor(DType::f32, Shape{2, 1}),
                                          std::array<int64_t, 3>{2, 8, 8}, DuplicateCoords::error, 1);
  SparseConv3dOptions o;
  o.geometry.stride = {2, 2, 2};
  const VoxelTensor y = sparse_conv3d(x, Tensor(DType::f32, Shape{3, 3, 3, 1, 1}), Tensor(), o);
  EXPECT_EQ(y.sites->size(), 0);
  ASSERT_TRUE(y.sites->extent);
  EXPECT_EQ((*y.sites->extent)[0], 0);
}

TEST(SparseConv3d, DuplicatesMergeAndEmptyCloudsAreValid) {
  Tensor f(DType::f32, Shape{3, 2});
  for (int i = 0; i < 6; ++i) f.data<float>()[i] = float(i + 1);
  const Tensor dup = coords_tensor({{0, 1, 2, 3}, {0, 4, 5, 6}, {0, 1, 2, 3}});
  const VoxelTensor s = make_voxel_tensor(dup, f, std::nullopt, DuplicateCoords::sum, 1);
  ASSERT_EQ(s.sites->size(), 2);
  EXPECT_EQ(s.feats.data<float>()[0], 1.f + 5.f);
  EXPECT_EQ(s.feats.data<float>()[3], 4.f);
  const VoxelTensor m = make_voxel_tensor(dup, f, std::nullopt, DuplicateCoords::mean, 1);
  EXPECT_EQ(m.feats.data<float>()[1], (2.f + 6.f) / 2);
  // An empty cloud: valid, and every layer gives an empty output.
  const VoxelTensor e = make_voxel_tensor(Tensor(DType::i32, Shape{0, 4}), Tensor(DType::f32, Shape{0, 5}), std::nullopt,
                                          DuplicateCoords::error, 2);
  for (bool subm : {true, false}) {
    SparseConv3dOptions o;
    o.geometry.subm = subm;
    if (!subm) o.geometry.stride = {2, 2, 2};
    const VoxelTensor y = sparse_conv3d(e, Tensor(DType::f32, Shape{3, 3, 3, 5, 4}), Tensor(DType::f32, Shape{4}), o);
    EXPECT_EQ(y.sites->size(), 0);
    EXPECT_EQ(y.feats.shape(), Shape({0, 4}));
  }
}

}  // namespace
}  // namespace sparta
