// Every optimized kernel against the scalar reference, on every ISA the host
// runs: seeded random inputs, sizes that are not multiples of any tile or
// vector width, M/N/K = 1, empty rows and blocks, density 0 and 1, bias and
// each activation, several thread counts, and strided X/Y.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>

#include "core/error.h"
#include "formats/formats.h"
#include "jit/jit_code.h"
#include "jit/jit_kernels.h"
#include "kernels/spmm.h"

namespace sparta {
namespace {

struct Problem {
  std::string format;
  PackOptions opt;
  int64_t m, n, k;
  double density;
  // structured only: prune whole rows and columns (0), only rows (1: every
  // column kept, a pruned head's Q/K/V), only columns (2: its O), in runs
  // of 4 when `runs` (heads are runs of consecutive indices).
  int structured_axes = 0;
  bool runs = false;
};

std::string describe(const Problem& p) {
  std::string s = p.format;
  if (p.format == "bsr") s += " " + p.opt.block.str();
  if (p.format == "nm") s += " " + p.opt.nm.str();
  if (p.format == "tilewise") s += " G=" + std::to_string(p.opt.tile);
  if (p.format == "decomposed") s += " " + p.opt.main + " " + (p.opt.main == "bsr" ? p.opt.block.str() : p.opt.nm.str());
  return s + " M=" + std::to_string(p.m) + " N=" + std::to_string(p.n) + " K=" + std::to_string(p.k) +
         " density=" + std::to_string(p.density);
}

// A random weight whose zeros follow the structure the format wants, so the
// format is exercised as intended (blocks are whole, N:M holds, ...).
Tensor make_weight(const Problem& p, std::mt19937& rng) {
  Tensor w(DType::f32, Shape{p.n, p.k});
  float* d = w.data<float>();
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  std::bernoulli_distribution keep(p.density);
  auto set = [&](int64_t r, int64_t c) {
    float v = val(rng);
    d[r * p.k + c] = v == 0.f ? 0.5f : v;
  };
  if (p.format == "decomposed" && p.opt.main == "bsr") {
    // Blocks, some full and some thin (below the main part's threshold),
    // plus unstructured elements for the remainder.
    const int br = p.opt.block.r, bc = p.opt.block.c;
    std::bernoulli_distribution thin(0.3), in_block(0.85), extra(p.density * 0.1);
    for (int64_t r0 = 0; r0 < p.n; r0 += br)
      for (int64_t c0 = 0; c0 < p.k; c0 += bc) {
        if (!keep(rng)) continue;
        const bool t = thin(rng);
        for (int i = 0; i < br; ++i)
          for (int j = 0; j < bc; ++j)
            if (t ? (i + j == 0) : in_block(rng)) set(r0 + i, c0 + j);
      }
    for (int64_t i = 0; i < p.n * p.k; ++i)
      if (extra(rng) && d[i] == 0.f) set(i / p.k, i % p.k);
  } else if (p.format == "bsr") {
    const int br = p.opt.block.r, bc = p.opt.block.c;
    for (int64_t r0 = 0; r0 < p.n; r0 += br)
      for (int64_t c0 = 0; c0 < p.k; c0 += bc)
        if (keep(rng))
          for (int i = 0; i < br; ++i)
            for (int j = 0; j < bc; ++j) set(r0 + i, c0 + j);
  } else if (p.format == "nm") {
    const int nn = p.opt.nm.n, mm = p.opt.nm.m;
    for (int64_t r = 0; r < p.n; ++r)
      for (int64_t g = 0; g < p.k / mm; ++g) {
        std::vector<int> pos(static_cast<size_t>(mm));
        for (int j = 0; j < mm; ++j) pos[static_cast<size_t>(j)] = j;
        std::shuffle(pos.begin(), pos.end(), rng);
        // density scales how many of the N slots are used (0 -> empty groups)
        const int used = static_cast<int>(std::lround(nn * std::min(1.0, p.density * 2)));
        for (int j = 0; j < used; ++j) set(r, g * mm + pos[static_cast<size_t>(j)]);
      }
  } else if (p.format == "tilewise") {
    const int g = p.opt.tile;
    for (int64_t r0 = 0; r0 < p.n; r0 += g) {
      std::vector<uint8_t> cols(static_cast<size_t>(p.k));
      for (auto& c : cols) c = keep(rng);
      for (int64_t r = r0; r < std::min<int64_t>(p.n, r0 + g); ++r)
        for (int64_t c = 0; c < p.k; ++c)
          if (cols[static_cast<size_t>(c)]) set(r, c);
    }
    // plus a sprinkle of unstructured elements for the remainder
    std::bernoulli_distribution extra(p.density * 0.1);
    for (int64_t i = 0; i < p.n * p.k; ++i)
      if (extra(rng) && d[i] == 0.f) set(i / p.k, i % p.k);
  } else if (p.format == "structured") {
    std::vector<uint8_t> rows(static_cast<size_t>(p.n)), cols(static_cast<size_t>(p.k));
    std::bernoulli_distribution k2(p.structured_axes ? p.density : std::sqrt(p.density));
    const size_t step = p.runs ? 4 : 1;
    for (size_t r = 0; r < rows.size(); r += step) std::fill_n(rows.begin() + r, std::min(step, rows.size() - r), k2(rng));
    for (size_t c = 0; c < cols.size(); c += step) std::fill_n(cols.begin() + c, std::min(step, cols.size() - c), k2(rng));
    if (p.structured_axes == 1) std::fill(cols.begin(), cols.end(), 1);
    if (p.structured_axes == 2) std::fill(rows.begin(), rows.end(), 1);
    for (int64_t r = 0; r < p.n; ++r)
      for (int64_t c = 0; c < p.k; ++c)
        if (rows[static_cast<size_t>(r)] && cols[static_cast<size_t>(c)]) set(r, c);
  } else {
    for (int64_t r = 0; r < p.n; ++r) {
      if (r % 5 == 3) continue;  // empty rows
      for (int64_t c = 0; c < p.k; ++c)
        if (keep(rng)) set(r, c);
    }
  }
  return w;
}

void fill(std::vector<float>& v, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (auto& x : v) x = d(rng);
}

// Every optimized implementation that takes this format on this host.
std::vector<std::unique_ptr<SpmmKernel>> candidates(const WeightFormat& f) {
  std::vector<std::unique_ptr<SpmmKernel>> ks;
  for (const SpmmImpl& impl : spmm_impls()) {
    if (impl.name == "spmm_ref") continue;
    KernelOptions opt;
    opt.require = impl.name;
    try {
      ks.push_back(make_spmm(f, opt));
    } catch (const Error&) {
      // declined: another format, an ISA this host lacks, or a shape it does not take
    }
  }
  return ks;
}

// Runs every candidate kernel and the reference on the same inputs and
// compares with a tolerance scaled by the magnitude of the dot products.
void check(const Problem& p, int threads, Activation act, bool bias, int64_t pad, std::mt19937& rng,
           bool accumulate = false) {
  Tensor w = make_weight(p, rng);
  WeightFormat f = pack(p.format, w, Tesa::from_zeros(w), p.opt);
  auto ref = make_spmm_reference(f);
  auto kernels = candidates(f);
  ASSERT_FALSE(kernels.empty()) << describe(p);
  // The generated family of the format takes every case the sweeps make
  // (a declined self-check would otherwise only drop it from the list).
  if (p.format == "csr" || p.format == "bsr" || p.format == "nm" || p.format == "tilewise")
    for (Isa isa : host_isas()) {
      if (isa == Isa::portable) continue;
      const std::string want = jit::kernel_name(p.format.c_str(), isa);
      bool found = false;
      for (const auto& k : kernels) found |= k->name().rfind(want, 0) == 0;
      if (!found) {
        KernelOptions o;
        o.require = want;
        try {
          make_spmm(f, o);
        } catch (const Error& e) {
          FAIL() << describe(p) << ": " << e.what();
        }
      }
    }
  for (const auto& kernel : kernels) {

  const int64_t ldx = p.k + pad, ldy = p.n + pad;
  std::vector<float> x(static_cast<size_t>(std::max<int64_t>(1, p.m * ldx))), b(static_cast<size_t>(p.n + 1));
  fill(x, rng);
  fill(b, rng);
  // Y starts as noise: a kernel must overwrite every element (and leave the
  // padding columns alone).
  std::vector<float> y(static_cast<size_t>(std::max<int64_t>(1, p.m * ldy))), yr;
  fill(y, rng);
  yr = y;
  SpmmArgs a{x.data(), p.m, ldx, y.data(), ldy, Epilogue{bias ? b.data() : nullptr, act, accumulate}, threads};
  kernel->run(a);
  SpmmArgs ar = a;
  ar.y = yr.data();
  ar.threads = 1;
  ref->run(ar);
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < ldy; ++j) {
      const float got = y[static_cast<size_t>(i * ldy + j)], want = yr[static_cast<size_t>(i * ldy + j)];
      const float tol = 2e-5f * std::sqrt(static_cast<float>(p.k) + 1.f) * (1.f + std::fabs(want));
      ASSERT_TRUE(std::fabs(got - want) <= tol)
          << describe(p) << " kernel=" << kernel->name() << " threads=" << threads
          << " act=" << activation_name(act) << " bias=" << bias << " accumulate=" << accumulate << " at (" << i << "," << j << "): got " << got
          << " want " << want;
    }
  }
}

void sweep(const std::string& format, const PackOptions& opt, const std::vector<int64_t>& ns,
           const std::vector<int64_t>& ks, uint32_t seed) {
  std::mt19937 rng(seed);
  int variant = 0;
  for (int64_t m : {1, 7, 33})
      for (int64_t n : ns)
        for (int64_t k : ks)
          for (double d : {0.0, 0.3, 1.0}) {
            const Problem p{format, opt, m, n, k, d};
            const int threads = 1 + variant % 3;
            const Activation act = static_cast<Activation>(variant % 3);
            const bool bias = variant % 2 == 0;
            const int64_t pad = variant % 4 == 1 ? 3 : 0;
            const bool accumulate = variant % 5 == 2;  // Y += (a fused residual)
            ++variant;
            check(p, threads, act, bias, pad, rng, accumulate);
            if (::testing::Test::HasFatalFailure()) return;
          }
}

TEST(Kernels, Dense) { sweep("dense", {}, {1, 17, 40, 64}, {1, 13, 64}, 1); }

TEST(Kernels, Csr) { sweep("csr", {}, {1, 17, 40, 67}, {1, 13, 64, 300}, 2); }

TEST(Kernels, CsrLargeM) {
  std::mt19937 rng(3);
  for (int t : {1, 2}) check({"csr", {}, 130, 96, 200, 0.1}, t, Activation::gelu, true, 0, rng);
}

TEST(Kernels, Bsr) {
  const std::vector<BlockShape> blocks = {{1, 4}, {4, 1}, {1, 16}, {16, 1}, {1, 32}, {32, 1},
                                          {8, 8}, {16, 16}, {32, 32}, {2, 2}, {3, 1}, {1, 3}, {1, 128}, {2, 67}};
  uint32_t seed = 10;
  for (const BlockShape& b : blocks) {
    PackOptions o;
    o.block = b;
    SCOPED_TRACE("block " + b.str());
    sweep("bsr", o, {b.r, int64_t{b.r} * 3, int64_t{b.r} * 5}, {b.c, int64_t{b.c} * 4, int64_t{b.c} * 9}, seed++);
    if (HasFatalFailure()) return;
  }
}

TEST(Kernels, BsrLargeM) {
  std::mt19937 rng(4);
  PackOptions o;
  o.block = {32, 1};
  for (int t : {1, 2}) check({"bsr", o, 131, 96, 100, 0.2}, t, Activation::relu, true, 0, rng);
}

TEST(Kernels, NM) {
  uint32_t seed = 30;
  for (NmShape nm : std::vector<NmShape>{{2, 4}, {1, 4}, {2, 8}, {4, 8}, {3, 8}}) {
    PackOptions o;
    o.nm = nm;
    SCOPED_TRACE("nm " + nm.str());
    sweep("nm", o, {1, 17, 40}, {int64_t{nm.m}, int64_t{nm.m} * 3, int64_t{nm.m} * 40}, seed++);
    if (HasFatalFailure()) return;
  }
}

TEST(Kernels, Tilewise) {
  uint32_t seed = 40;
  for (int g : {128, 32, 20, 8}) {
    PackOptions o;
    o.tile = g;
    SCOPED_TRACE("G " + std::to_string(g));
    sweep("tilewise", o, {1, 40, 130}, {1, 13, 64}, seed++);
    if (HasFatalFailure()) return;
  }
}

// The generated kernels with their patterns in tables instead of baked
// into the code (what large weights get), over the same sweeps.
TEST(Kernels, JitTables) {
  jit::set_bake_policy(jit::Bake::never);
  sweep("csr", {}, {1, 17, 67}, {1, 13, 300}, 70);
  PackOptions o;
  for (BlockShape b : std::vector<BlockShape>{{1, 32}, {32, 1}, {2, 2}, {3, 1}, {8, 8}}) {
    o.block = b;
    if (!HasFatalFailure()) sweep("bsr", o, {b.r, int64_t{b.r} * 5}, {b.c, int64_t{b.c} * 9}, 71);
  }
  o.nm = {2, 4};
  if (!HasFatalFailure()) sweep("nm", o, {1, 17, 40}, {4, 160}, 72);
  o.tile = 20;
  if (!HasFatalFailure()) sweep("tilewise", o, {1, 40, 130}, {13, 64}, 73);
  jit::set_bake_policy(jit::Bake::automatic);
}

// Two products handing their activation over packed (SpmmArgs::x_packed /
// y_packed): the same result as through Y, for every kernel pair of one
// tile width, at M off every tile and with 1-2 threads.
TEST(Kernels, PackedHandoffMatchesReference) {
  std::mt19937 rng(80);
  const int64_t k = 40, n1 = 56, n2 = 24;
  const Problem p1{"csr", {}, 1, n1, k, 0.3}, p2{"csr", {}, 1, n2, n1, 0.3};
  const Tensor w1 = make_weight(p1, rng), w2 = make_weight(p2, rng);
  const WeightFormat f1 = pack("csr", w1, Tesa::from_zeros(w1)), f2 = pack("csr", w2, Tesa::from_zeros(w2));
  auto r1 = make_spmm_reference(f1), r2 = make_spmm_reference(f2);
  int pairs = 0;
  for (const auto& a : candidates(f1))
    for (const auto& b : candidates(f2)) {
      const int t = a->packed_tile();
      if (t == 0 || b->packed_tile() != t) continue;
      ++pairs;
      for (int64_t m : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{70}}) {
        const int threads = 1 + static_cast<int>(m % 2);
        std::vector<float> x(static_cast<size_t>(m * k)), b1(static_cast<size_t>(n1)), b2(static_cast<size_t>(n2));
        fill(x, rng);
        fill(b1, rng);
        fill(b2, rng);
        std::vector<float> h(static_cast<size_t>(packed_floats(m, n1, t))), y(static_cast<size_t>(m * n2));
        a->run({x.data(), m, k, h.data(), 0, Epilogue{b1.data(), Activation::gelu, false}, threads, 0, t});
        b->run({h.data(), m, 0, y.data(), n2, Epilogue{b2.data(), Activation::relu, false}, threads, t, 0});
        std::vector<float> hr(static_cast<size_t>(m * n1)), yr(static_cast<size_t>(m * n2));
        r1->run({x.data(), m, k, hr.data(), n1, Epilogue{b1.data(), Activation::gelu, false}, 1});
        r2->run({hr.data(), m, n1, yr.data(), n2, Epilogue{b2.data(), Activation::relu, false}, 1});
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y[i], yr[i], 1e-4f * (1.f + std::fabs(yr[i]))) << a->name() << " -> " << b->name() << " m=" << m << " at " << i;
      }
    }
  EXPECT_GT(pairs, 0);  // the generated CSR kernels hand over on every AVX host
}

TEST(Kernels, Structured) { sweep("structured", {}, {1, 17, 40}, {1, 13, 64}, 50); }

TEST(Kernels, Decomposed) {
  uint32_t seed = 60;
  for (BlockShape b : std::vector<BlockShape>{{4, 1}, {16, 1}, {1, 4}}) {
    PackOptions o;
    o.main = "bsr";
    o.block = b;
    SCOPED_TRACE("decomposed bsr " + b.str());
    sweep("decomposed", o, {int64_t{b.r}, int64_t{b.r} * 5, int64_t{b.r} * 9}, {int64_t{b.c}, int64_t{b.c} * 7, int64_t{b.c} * 20}, seed++);
    if (HasFatalFailure()) return;
  }
  for (NmShape nm : std::vector<NmShape>{{2, 4}, {1, 4}}) {
    PackOptions o;
    o.main = "nm";
    o.nm = nm;
    SCOPED_TRACE("decomposed nm " + nm.str());
    sweep("decomposed", o, {1, 17, 40}, {int64_t{nm.m}, int64_t{nm.m} * 3, int64_t{nm.m} * 20}, seed++);
    if (HasFatalFailure()) return;
  }
}

// The parts are disjoint and together exactly the weight; the main part
// takes blocks by their kept fraction.
TEST(Kernels, DecomposedSplitsExactly) {
  std::mt19937 rng(5);
  Problem p{"decomposed", {}, 1, 64, 48, 0.4};
  p.opt.block = {4, 1};
  const Tensor w = make_weight(p, rng);
  for (double t : {0.0, 0.5, 1.0}) {
    p.opt.min_block_density = t;
    const WeightFormat f = pack("decomposed", w, Tesa::from_zeros(w), p.opt);
    const Tensor back = unpack(f);
    for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(back.data<float>()[i], w.data<float>()[i]) << i;
    const auto& d = std::get<DecomposedMatrix>(f);
    const auto& blocks = std::get<BsrMatrix>(d.main);
    // every stored block of the main part holds at least t of its 4 elements
    for (int64_t b = 0; b < blocks.nblocks(); ++b) {
      int kept = 0;
      for (int e = 0; e < 4; ++e) kept += blocks.values[static_cast<size_t>(b * 4 + e)] != 0.f;
      EXPECT_GE(kept, t * 4) << "block " << b;
    }
    if (t == 0.0) {
      EXPECT_EQ(d.remainder.nnz(), 0);
    }
    std::ostringstream os;
    save(f, os);
    std::istringstream is(os.str());
    const Tensor again = unpack(load(is));
    for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(again.data<float>()[i], w.data<float>()[i]) << i;
  }
}

// Rows only or columns only, in runs: the kernel reads X or writes Y in place
// on the side that keeps everything, and copies runs on the other.
TEST(Kernels, StructuredRowsOrColumnsInRuns) {
  std::mt19937 rng(51);
  int variant = 0;
  for (int axes : {1, 2})
    for (int64_t m : {1, 7, 33})
      for (double d : {0.0, 0.5, 1.0}) {
        Problem p{"structured", {}, m, 40, 24, d, axes, true};
        check(p, 1 + variant % 2, static_cast<Activation>(variant % 3), variant % 2 == 0, variant % 3 == 1 ? 3 : 0, rng,
              variant % 4 == 1);
        ++variant;
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(Kernels, ZeroRowsOfX) {
  std::mt19937 rng(5);
  check({"csr", {}, 0, 16, 16, 0.5}, 2, Activation::none, true, 0, rng);
}

TEST(Kernels, NMLargeM) {
  std::mt19937 rng(6);
  for (NmShape nm : std::vector<NmShape>{{2, 4}, {2, 8}}) {
    PackOptions o;
    o.nm = nm;
    for (int t : {1, 2}) check({"nm", o, 131, 75, 96, 0.5}, t, Activation::gelu, true, 0, rng);
  }
}

// Every ISA this host runs has its kernels exercised by the tests above.
TEST(Kernels, EveryHostIsaIsCovered) {
  Tensor w(DType::f32, Shape{32, 32});
  w.data<float>()[0] = 1.f;
  std::vector<std::string> names;
  for (const auto& k : candidates(pack_csr(w, Tesa::from_zeros(w)))) names.push_back(k->name());
  for (Isa isa : host_isas()) {
    bool found = false;
    for (const auto& n : names) found |= n == "csr_spmm_mvec__" + std::string(isa_name(isa));
    EXPECT_TRUE(found) << isa_name(isa);
  }
}

TEST(Kernels, TuningPicksAnAcceptingKernel) {
  ChoiceCache::global().set_folder("");  // measured here, not taken from a cache
  ChoiceCache::global().clear_memory();
  Tensor w(DType::f32, Shape{64, 64});
  for (int i = 0; i < 64 * 64; i += 3) w.data<float>()[i] = 0.25f;
  KernelOptions o;
  o.tune_m = 16;
  std::vector<std::string> log;
  auto k = make_spmm(pack("nm", w, Tesa::from_zeros(w), PackOptions{{32, 1}, {2, 4}, 128, 0.5}), o, &log);
  EXPECT_EQ(k->name().rfind("nm_spmm_", 0), 0u) << k->name();
  int timed = 0;
  for (const auto& l : log) timed += l.find("tuning") != std::string::npos;
  EXPECT_GE(timed, 2);
}

TEST(Kernels, RequireUnknownOrDecliningKernelIsAnError) {
  Tensor w(DType::f32, Shape{4, 4});
  KernelOptions o;
  o.require = "no_such_kernel";
  EXPECT_THROW(make_spmm(pack_csr(w, Tesa::from_zeros(w)), o), Error);
  o.require = "bsr_spmm_nvec__portable";
  EXPECT_THROW(make_spmm(pack_csr(w, Tesa::from_zeros(w)), o), Error);
}

TEST(Kernels, ReferenceIsForcible) {
  Tensor w(DType::f32, Shape{4, 4});
  KernelOptions o;
  o.reference = true;
  EXPECT_EQ(make_spmm(pack_csr(w, Tesa::from_zeros(w)), o)->name(), "csr_spmm_ref");
}

TEST(Kernels, RejectionsAreLogged) {
  Tensor w(DType::f32, Shape{6, 4});
  PackOptions o;
  o.block = {3, 1};
  std::vector<std::string> log;
  auto k = make_spmm(pack("bsr", w, Tesa::from_zeros(w), o), {}, &log);
  bool nvec_rejected = false;
  for (const auto& l : log) nvec_rejected |= l.find("bsr_spmm_nvec") != std::string::npos;
  EXPECT_TRUE(nvec_rejected);
  EXPECT_NE(k->name().find("bsr_spmm_mvec"), std::string::npos);
}

TEST(Kernels, CheckedEntryRejectsBadShapes) {
  Tensor w(DType::f32, Shape{8, 5});
  auto k = make_spmm(pack_csr(w, Tesa::from_zeros(w)));
  Tensor x(DType::f32, Shape{3, 5}), y(DType::f32, Shape{3, 8}), bias(DType::f32, Shape{8});
  EXPECT_NO_THROW((*k)(x, y, bias, Activation::relu, 2));
  Tensor xbad(DType::f32, Shape{3, 6}), ybad(DType::f32, Shape{3, 7}), bbad(DType::f32, Shape{7});
  Tensor xint(DType::i32, Shape{3, 5});
  auto msg = [&](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg([&] { (*k)(xbad, y, bias, Activation::none, 1); }).find("K=6"), std::string::npos);
  EXPECT_NE(msg([&] { (*k)(x, ybad, bias, Activation::none, 1); }).find("Y must be"), std::string::npos);
  EXPECT_NE(msg([&] { (*k)(x, y, bbad, Activation::none, 1); }).find("bias"), std::string::npos);
  EXPECT_NE(msg([&] { (*k)(xint, y, bias, Activation::none, 1); }).find("X must be"), std::string::npos);
  EXPECT_NE(msg([&] { (*k)(x, y, bias, Activation::none, 0); }).find("threads"), std::string::npos);
  EXPECT_THROW(parse_activation("swish"), Error);
}

}  // namespace
}  // namespace sparta

namespace sparta {
namespace {

// The graph runtime's entry for dense weights: from [N, K] or [K, N], first
// measured (both candidates built), then from the remembered choice (packed
// straight from the given order), always equal to the reference.
TEST(Kernels, MakeDenseFromEitherOrder) {
  std::mt19937 rng(11);
  for (int64_t n : {16, 40, 64})
    for (int64_t k : {1, 13, 64}) {
      DenseMatrix d;
      d.rows = n;
      d.cols = k;
      d.values.resize(static_cast<size_t>(n * k));
      fill(d.values, rng);
      std::vector<float> kn(d.values.size());
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < k; ++j) kn[static_cast<size_t>(j * n + i)] = d.values[static_cast<size_t>(i * k + j)];
      const int64_t m = 7;
      std::vector<float> x(static_cast<size_t>(m * k)), b(static_cast<size_t>(n));
      fill(x, rng);
      fill(b, rng);
      std::vector<float> want(static_cast<size_t>(m * n));
      make_spmm_reference(d)->run({x.data(), m, k, want.data(), n, Epilogue{b.data(), Activation::gelu, false}, 1});
      for (bool k_major : {false, true})
        for (int round = 0; round < 2; ++round) {
          KernelOptions opt;
          opt.tune_m = m;
          std::vector<std::string> log;
          auto kern = make_dense(k_major ? kn.data() : d.values.data(), n, k, k_major, opt, &log);
          std::vector<float> y(want.size(), 1e9f);
          kern->run({x.data(), m, k, y.data(), n, Epilogue{b.data(), Activation::gelu, false}, 2});
          for (size_t i = 0; i < y.size(); ++i)
            ASSERT_NEAR(y[i], want[i], 1e-4f * (1.f + std::fabs(want[i])))
                << kern->name() << " n=" << n << " k=" << k << " k_major=" << k_major << " round=" << round;
        }
    }
}

}  // namespace
}  // namespace sparta
