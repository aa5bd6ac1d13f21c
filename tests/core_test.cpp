// Core layer: Shape, Tensor, Tesa, and pattern analysis on constructed
// patterns (seeded random, so every failure reproduces).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "test_util.h"
#include "core/pattern.h"
#include "core/tensor.h"
#include "core/tesa.h"

namespace sparta {
namespace {

using testing::expect_error;

using Mask = std::vector<uint8_t>;

Tesa tesa_of(int64_t rows, int64_t cols, const Mask& m) { return Tesa::from_mask(Shape{rows, cols}, m); }

// ---------------------------------------------------------------- Shape

TEST(CoreShape, NumelAndStr) {
  EXPECT_EQ(Shape({128, 768}).numel(), 128 * 768);
  EXPECT_EQ(Shape({128, 768}).str(), "[128, 768]");
  EXPECT_EQ(Shape({2, 3, 5}).numel(), 30);
  EXPECT_EQ(Shape({7}).str(), "[7]");
  EXPECT_EQ(Shape({4, 0, 9}).numel(), 0);
  EXPECT_EQ(Shape().rank(), 0);
  EXPECT_EQ(Shape().numel(), 1);  // a scalar
  EXPECT_EQ(Shape().str(), "[]");
  EXPECT_EQ(Shape({3, 4}), Shape(std::vector<int64_t>{3, 4}));
  EXPECT_NE(Shape({3, 4}), Shape({4, 3}));
}

TEST(CoreShape, NegativeExtentThrows) {
  expect_error([] { (void)Shape({3, -1}); }, {"negative", "-1"});
  expect_error([] { (void)Shape(std::vector<int64_t>{-5}); }, {"negative", "-5"});
}

// ---------------------------------------------------------------- Tensor

TEST(CoreTensor, ZeroInitialisedAndAligned) {
  for (DType dt : {DType::f32, DType::i8, DType::i32, DType::bf16})
    for (const Shape& s : {Shape{1}, Shape{3, 5}, Shape{17, 33}, Shape{0, 8}, Shape{2, 3, 7}}) {
      Tensor t(dt, s);
      ASSERT_TRUE(t.defined());
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u) << dtype_name(dt) << " " << s.str();
      EXPECT_EQ(t.nbytes(), static_cast<size_t>(s.numel()) * dtype_size(dt));
      const auto* b = static_cast<const unsigned char*>(t.raw());
      EXPECT_TRUE(std::all_of(b, b + t.nbytes(), [](unsigned char c) { return c == 0; }));
    }
}

// Reused blocks (small ones per thread, large ones shared) come back
// aligned, zeroed when asked, of the right size and never handed out
// twice, including blocks freed on another thread than made them.
TEST(CoreTensor, ReusedBlocksAreAlignedZeroedAndDistinct) {
  std::mt19937 rng(5);
  std::vector<Tensor> live;
  for (int round = 0; round < 400; ++round) {
    const int64_t n = std::uniform_int_distribution<int64_t>(0, 20000)(rng) * (round % 7 == 0 ? 7 : 1);
    Tensor t(DType::f32, Shape{n});
    ASSERT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(t.data<float>()[i], 0.f) << "round " << round << " element " << i;
    std::fill(t.data<float>(), t.data<float>() + n, float(round));  // dirty it for whoever gets the block next
    live.push_back(t);
    if (live.size() > 8) live.erase(live.begin() + std::uniform_int_distribution<long>(0, 8)(rng));
    for (size_t a = 0; a < live.size(); ++a)  // no block is in two live tensors
      for (size_t b = a + 1; b < live.size(); ++b)
        if (live[a].nbytes() && live[b].nbytes())
          ASSERT_NE(live[a].raw(), live[b].raw());
  }
  std::vector<Tensor> made_here;
  for (int i = 0; i < 64; ++i) made_here.emplace_back(DType::f32, Shape{int64_t(16 * (i % 5 + 1))});
  std::thread other([&made_here] {
    made_here.clear();  // freed on this thread: into its cache, released when it ends
    Tensor t(DType::f32, Shape{32});
    EXPECT_EQ(t.data<float>()[31], 0.f);
  });
  other.join();
  for (int i = 0; i < 64; ++i) {
    Tensor t(DType::f32, Shape{int64_t(16 * (i % 5 + 1))}, Uninitialized{});
    t.data<float>()[0] = 1.f;
  }
}

TEST(CoreTensor, CopySharesCloneIsIndependent) {
  Tensor a(DType::f32, Shape{4, 6});
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> val(-1, 1);
  for (int i = 0; i < 24; ++i) a.data<float>()[i] = val(rng);
  Tensor shared = a;
  Tensor c = a.clone();
  ASSERT_NE(c.raw(), a.raw());
  EXPECT_EQ(c.shape(), a.shape());
  EXPECT_EQ(std::memcmp(c.raw(), a.raw(), a.nbytes()), 0);
  c.data<float>()[5] = 42.f;
  EXPECT_NE(a.data<float>()[5], 42.f);
  shared.data<float>()[7] = -3.f;
  EXPECT_EQ(a.data<float>()[7], -3.f);
  EXPECT_NE(c.data<float>()[7], -3.f);
}

TEST(CoreTensor, ReshapeSharesStorageAndChecksCount) {
  Tensor a(DType::i32, Shape{6, 4});
  Tensor r = a.reshape(Shape{2, 12});
  EXPECT_EQ(r.shape(), Shape({2, 12}));
  EXPECT_EQ(r.raw(), a.raw());
  r.data<int32_t>()[13] = 9;
  EXPECT_EQ(a.data<int32_t>()[13], 9);
  EXPECT_EQ(a.reshape(Shape{24}).rank(), 1);
  expect_error([&] { a.reshape(Shape{5, 5}); }, {"[6, 4]", "[5, 5]"});
  expect_error([&] { a.reshape(Shape{25}); }, {"reshape"});
}

TEST(CoreTensor, DataDtypeMismatchThrows) {
  Tensor f(DType::f32, Shape{2, 2});
  expect_error([&] { f.data<int8_t>(); }, {"f32", "i8"});
  const Tensor& cf = f;
  expect_error([&] { cf.data<bf16>(); }, {"f32", "bf16"});
  Tensor b(DType::bf16, Shape{3});
  expect_error([&] { b.data<float>(); }, {"bf16", "f32"});
  EXPECT_NO_THROW(b.data<bf16>());
}

// ---------------------------------------------------------------- Tesa

TEST(CoreTesa, FromZerosF32CountsNegativeZeroAsZero) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> val(0.1f, 1.f);
  std::uniform_int_distribution<int> kind(0, 4);
  Tensor t(DType::f32, Shape{9, 13});
  float* p = t.data<float>();
  std::vector<bool> nonzero(117);
  for (int i = 0; i < 117; ++i) {
    const int k = kind(rng);  // 0: +0, 1: -0, else +-value
    p[i] = k == 0 ? 0.f : k == 1 ? -0.f : (k == 2 ? -val(rng) : val(rng));
    nonzero[static_cast<size_t>(i)] = k >= 2;
  }
  p[0] = -0.f;
  p[1] = 1e-40f;  // a denormal is not zero
  nonzero[0] = false;
  nonzero[1] = true;
  const Tesa a = Tesa::from_zeros(t);
  ASSERT_EQ(a.shape(), t.shape());
  int64_t kept = 0;
  for (int i = 0; i < 117; ++i) {
    EXPECT_EQ(a.at(i), nonzero[static_cast<size_t>(i)] ? ElemCode::bits32 : ElemCode::pruned) << "element " << i;
    kept += nonzero[static_cast<size_t>(i)];
  }
  EXPECT_EQ(a.count_kept(), kept);
  EXPECT_DOUBLE_EQ(a.density(), static_cast<double>(kept) / 117.0);
}

TEST(CoreTesa, FromZerosI8AndI32) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> v(-128, 127);
  Tensor t8(DType::i8, Shape{5, 31});
  Tensor t32(DType::i32, Shape{5, 31});
  for (int i = 0; i < 155; ++i) {
    t8.data<int8_t>()[i] = static_cast<int8_t>(i % 3 ? v(rng) : 0);
    t32.data<int32_t>()[i] = i % 4 ? v(rng) : 0;
  }
  const Tesa a8 = Tesa::from_zeros(t8), a32 = Tesa::from_zeros(t32);
  for (int i = 0; i < 155; ++i) {
    EXPECT_EQ(a8.at(i), t8.data<int8_t>()[i] ? ElemCode::bits8 : ElemCode::pruned);
    EXPECT_EQ(a32.at(i), t32.data<int32_t>()[i] ? ElemCode::bits32 : ElemCode::pruned);
  }
}

TEST(CoreTesa, FromZerosBf16) {
  const uint16_t bits[] = {0x0000, 0x8000, 0x3F80, 0xBF80, 0x0001, 0x8001, 0x7FC0, 0x7F80};
  const bool nonzero[] = {false, false, true, true, true, true, true, true};
  Tensor t(DType::bf16, Shape{2, 4});
  for (int i = 0; i < 8; ++i) t.data<bf16>()[i].bits = bits[i];
  const Tesa a = Tesa::from_zeros(t);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(a.at(i), nonzero[i] ? ElemCode::bits16 : ElemCode::pruned) << std::hex << bits[i];
  EXPECT_EQ(a.count_kept(), 6);
}

TEST(CoreTesa, FromMaskAndDensity) {
  const Mask m = {1, 0, 0, 3, 0, 1};
  const Tesa a = Tesa::from_mask(Shape{2, 3}, m, ElemCode::bits8);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.at(i), m[static_cast<size_t>(i)] ? ElemCode::bits8 : ElemCode::pruned);
  EXPECT_EQ(a.count_kept(), 3);
  EXPECT_DOUBLE_EQ(a.density(), 0.5);
  expect_error([&] { Tesa::from_mask(Shape{2, 4}, m); }, {"6", "[2, 4]", "8"});
  EXPECT_DOUBLE_EQ(Tesa(Shape{0, 5}, ElemCode::pruned).density(), 1.0);
  EXPECT_DOUBLE_EQ(Tesa(Shape{4, 5}, ElemCode::bits4).density(), 1.0);
  EXPECT_DOUBLE_EQ(Tesa(Shape{4, 5}, ElemCode::pruned).density(), 0.0);
  for (int c = 0; c < 256; ++c)
    EXPECT_EQ(is_valid_code(static_cast<uint8_t>(c)), c == 0 || c == 4 || c == 8 || c == 16 || c == 32 || c == 255);
}

TEST(CoreTesa, ApplyZerosExactlyThePrunedElements) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> val(-1, 1);
  std::bernoulli_distribution keep(0.4);
  Tensor w(DType::f32, Shape{11, 7});
  Mask m(77);
  for (int i = 0; i < 77; ++i) {
    w.data<float>()[i] = val(rng);
    m[static_cast<size_t>(i)] = keep(rng);
  }
  const Tensor orig = w.clone();
  tesa_of(11, 7, m).apply(w);
  for (int i = 0; i < 77; ++i)
    EXPECT_EQ(w.data<float>()[i], m[static_cast<size_t>(i)] ? orig.data<float>()[i] : 0.f) << i;
  Tensor wrong(DType::f32, Shape{7, 11});
  expect_error([&] { tesa_of(11, 7, m).apply(wrong); }, {"[11, 7]", "[7, 11]"});
  Tensor i8(DType::i8, Shape{11, 7});
  expect_error([&] { tesa_of(11, 7, m).apply(i8); }, {"i8"});
}

// ---------------------------------------------------------------- Pattern

bool has_block(const PatternReport& p, BlockShape b) {
  return std::find(p.blocks.begin(), p.blocks.end(), b) != p.blocks.end();
}

TEST(PatternAnalysis, DenseAndEmpty) {
  const PatternReport d = analyze_pattern(Tesa(Shape{16, 24}, ElemCode::bits32));
  EXPECT_EQ(d.best, PatternKind::dense);
  EXPECT_EQ(d.kept_rows, 16);
  EXPECT_EQ(d.kept_cols, 24);
  EXPECT_DOUBLE_EQ(d.density, 1.0);
  const PatternReport e = analyze_pattern(Tesa(Shape{16, 24}, ElemCode::pruned));
  EXPECT_EQ(e.best, PatternKind::empty);
  EXPECT_EQ(e.kept_rows, 0);
  EXPECT_DOUBLE_EQ(e.density, 0.0);
  EXPECT_NE(d.summary().find("dense"), std::string::npos);
  EXPECT_NE(e.summary().find("empty"), std::string::npos);
}

TEST(PatternAnalysis, StructuredKeptRowsTimesKeptCols) {
  std::mt19937 rng(5);
  std::bernoulli_distribution half(0.5);
  const int64_t R = 37, C = 53;
  std::vector<uint8_t> rk(R), ck(C);
  for (auto& v : rk) v = half(rng);
  for (auto& v : ck) v = half(rng);
  rk[0] = 1, rk[1] = 0, ck[0] = 0, ck[1] = 1;  // something kept, something pruned
  Mask m(static_cast<size_t>(R * C));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) m[static_cast<size_t>(r * C + c)] = rk[r] && ck[c];
  const PatternReport p = analyze_pattern(tesa_of(R, C, m));
  EXPECT_TRUE(p.structured);
  EXPECT_EQ(p.best, PatternKind::structured);
  EXPECT_EQ(p.kept_rows, std::count(rk.begin(), rk.end(), 1));
  EXPECT_EQ(p.kept_cols, std::count(ck.begin(), ck.end(), 1));
  EXPECT_NE(p.summary().find("structured"), std::string::npos) << p.summary();
  // One extra element outside the kept rows breaks the product form.
  m[static_cast<size_t>(1 * C + 1)] = 1;
  EXPECT_FALSE(analyze_pattern(tesa_of(R, C, m)).structured);
}

// Every candidate block shape, built from whole random blocks (about 30%
// kept), is detected; so is every candidate that tiles it, but best is the
// construction's own (largest-area) shape, and one flipped element breaks it.
TEST(PatternBlock, EveryCandidateBlockIsDetected) {
  std::mt19937 rng(6);
  std::bernoulli_distribution keep(0.3);
  for (const BlockShape b : candidate_blocks()) {
    SCOPED_TRACE("block " + b.str());
    const int64_t R = std::max(64, 8 * b.r), C = std::max(64, 8 * b.c);
    Mask m;
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 20);
      m.assign(static_cast<size_t>(R * C), 0);
      for (int64_t r0 = 0; r0 < R; r0 += b.r)
        for (int64_t c0 = 0; c0 < C; c0 += b.c)
          if (keep(rng))
            for (int64_t r = r0; r < r0 + b.r; ++r)
              for (int64_t c = c0; c < c0 + b.c; ++c) m[static_cast<size_t>(r * C + c)] = 1;
      const PatternReport q = analyze_pattern(tesa_of(R, C, m));
      if (q.best != PatternKind::empty && q.best != PatternKind::dense && !q.structured) break;
    }
    const Tesa t = tesa_of(R, C, m);
    const PatternReport p = analyze_pattern(t);
    EXPECT_TRUE(satisfies_block(t, b));
    for (const BlockShape o : candidate_blocks()) {
      const bool tiles = b.r % o.r == 0 && b.c % o.c == 0;
      EXPECT_EQ(satisfies_block(t, o), tiles) << o.str();
      EXPECT_EQ(has_block(p, o), tiles) << o.str();
    }
    EXPECT_EQ(p.best, PatternKind::block) << p.summary();
    EXPECT_EQ(p.best_block, b) << p.summary();
    EXPECT_NE(p.summary().find("block " + b.str()), std::string::npos) << p.summary();
    // Flip the last element of the first kept block: no longer r x c blocks.
    const auto first = std::find(m.begin(), m.end(), 1) - m.begin();
    const int64_t r0 = first / C / b.r * b.r, c0 = first % C / b.c * b.c;
    m[static_cast<size_t>((r0 + b.r - 1) * C + c0 + b.c - 1)] = 0;
    EXPECT_FALSE(satisfies_block(tesa_of(R, C, m), b));
  }
  EXPECT_FALSE(satisfies_block(Tesa(Shape{30, 32}, ElemCode::bits32), {4, 1}));  // 4 does not divide 30
}

TEST(PatternNm, ConstructedPatternsSatisfyAndOneExtraViolates) {
  std::mt19937 rng(7);
  for (const NmShape nm : {NmShape{2, 4}, NmShape{1, 4}, NmShape{2, 8}, NmShape{4, 8}}) {
    SCOPED_TRACE("N:M " + nm.str());
    const int64_t R = 16, C = 64;
    Mask m(static_cast<size_t>(R * C), 0);
    std::vector<int> pos(static_cast<size_t>(nm.m));
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c0 = 0; c0 < C; c0 += nm.m) {
        for (int j = 0; j < nm.m; ++j) pos[static_cast<size_t>(j)] = j;
        std::shuffle(pos.begin(), pos.end(), rng);
        for (int j = 0; j < nm.n; ++j) m[static_cast<size_t>(r * C + c0 + pos[static_cast<size_t>(j)])] = 1;
      }
    const Tesa t = tesa_of(R, C, m);
    EXPECT_TRUE(satisfies_nm(t, nm));
    const PatternReport p = analyze_pattern(t);
    EXPECT_EQ(p.best, PatternKind::nm) << p.summary();
    EXPECT_EQ(p.best_nm, nm) << p.summary();
    EXPECT_NE(std::find(p.nm.begin(), p.nm.end(), nm), p.nm.end());
    // Fewer than N in a group is still N:M.
    Mask fewer = m;
    for (int j = 0; j < nm.m; ++j) fewer[static_cast<size_t>(5 * C + 8 + j)] = 0;
    EXPECT_TRUE(satisfies_nm(tesa_of(R, C, fewer), nm));
    // One more kept element in a random (full) group violates it.
    const int64_t r = std::uniform_int_distribution<int64_t>(0, R - 1)(rng);
    const int64_t c0 = std::uniform_int_distribution<int64_t>(0, C / nm.m - 1)(rng) * nm.m;
    for (int j = 0; j < nm.m; ++j)
      if (!m[static_cast<size_t>(r * C + c0 + j)]) {
        m[static_cast<size_t>(r * C + c0 + j)] = 1;
        break;
      }
    EXPECT_FALSE(satisfies_nm(tesa_of(R, C, m), nm));
  }
  EXPECT_FALSE(satisfies_nm(Tesa(Shape{4, 6}, ElemCode::pruned), {2, 4}));  // 4 does not divide 6
}

// Each tile of 128 rows keeps its own random column set. The row count is odd
// (no candidate block height divides it): with e.g. 256 rows, identical rows
// inside a tile would also make every 32x1 block uniform, and block wins.
TEST(PatternTilewise, G128WithPerTileColumns) {
  std::mt19937 rng(8);
  std::bernoulli_distribution keep(0.5);
  const int64_t R = 383, C = 96, G = 128;
  Mask m(static_cast<size_t>(R * C), 0);
  for (int64_t r0 = 0; r0 < R; r0 += G) {
    std::vector<uint8_t> cols(C);
    for (auto& v : cols) v = keep(rng);
    for (int64_t r = r0; r < std::min(R, r0 + G); ++r)
      for (int64_t c = 0; c < C; ++c) m[static_cast<size_t>(r * C + c)] = cols[static_cast<size_t>(c)];
  }
  const Tesa t = tesa_of(R, C, m);
  EXPECT_TRUE(satisfies_tilewise(t, 128));
  EXPECT_FALSE(satisfies_tilewise(t, 256));
  const PatternReport p = analyze_pattern(t);
  EXPECT_FALSE(p.structured);
  EXPECT_TRUE(p.blocks.empty()) << p.blocks.front().str();
  EXPECT_EQ(p.tiles, (std::vector<int>{128, 64, 32}));
  EXPECT_EQ(p.best, PatternKind::tilewise) << p.summary();
  EXPECT_EQ(p.best_tile, 128);
  EXPECT_NE(p.summary().find("G=128"), std::string::npos) << p.summary();
  // One row differing from its tile breaks tile-wise 128 (and 64 and 32).
  m[static_cast<size_t>(5 * C + 3)] ^= 1;
  EXPECT_FALSE(satisfies_tilewise(tesa_of(R, C, m), 128));
  EXPECT_FALSE(satisfies_tilewise(tesa_of(R, C, m), 32));
  EXPECT_FALSE(satisfies_tilewise(t, 0));
}

TEST(PatternAnalysis, RandomHalfIsUnstructured) {
  std::mt19937 rng(9);
  std::bernoulli_distribution keep(0.5);
  Mask m(64 * 64);
  for (auto& v : m) v = keep(rng);
  const PatternReport p = analyze_pattern(tesa_of(64, 64, m));
  EXPECT_EQ(p.best, PatternKind::unstructured) << p.summary();
  EXPECT_FALSE(p.structured);
  EXPECT_TRUE(p.blocks.empty());
  EXPECT_TRUE(p.nm.empty());
  EXPECT_TRUE(p.tiles.empty());
  EXPECT_NEAR(p.density, 0.5, 0.05);
  EXPECT_NE(p.summary().find("unstructured"), std::string::npos) << p.summary();
  EXPECT_NE(p.summary().find("density"), std::string::npos) << p.summary();
}

TEST(PatternAnalysis, Non2DTesaThrows) {
  for (const Shape& s : {Shape{4, 4, 4}, Shape{16}, Shape{}}) {
    const Tesa t(s, ElemCode::bits32);
    expect_error([&] { analyze_pattern(t); }, {"2-D", s.str()});
    expect_error([&] { satisfies_block(t, {2, 2}); }, {"2-D"});
    expect_error([&] { satisfies_nm(t, {2, 4}); }, {"2-D"});
    expect_error([&] { satisfies_tilewise(t, 32); }, {"2-D"});
  }
}

}  // namespace
}  // namespace sparta
