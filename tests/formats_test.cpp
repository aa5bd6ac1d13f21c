// Formats layer: pack/unpack round trips for every format over edge sizes and
// patterns, bad input, and serialization (round trip plus truncation,
// corruption and length fuzzing). Seeded std::mt19937 throughout.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "core/error.h"
#include "test_util.h"
#include "formats/formats.h"

namespace sparta {
namespace {

using Mask = std::vector<uint8_t>;

using testing::expect_error;

struct Config {
  std::string format;
  PackOptions opt;
  std::string str() const {
    if (format == "bsr") return "bsr " + opt.block.str();
    if (format == "nm") return "nm " + opt.nm.str();
    if (format == "tilewise") return "tilewise G=" + std::to_string(opt.tile);
    return format;
  }
  // Whether the format can be built for an R x C weight at all.
  bool fits(int64_t r, int64_t c) const {
    if (format == "bsr") return r % opt.block.r == 0 && c % opt.block.c == 0;
    if (format == "nm") return c % opt.nm.m == 0;
    return true;
  }
};

std::vector<Config> all_configs() {
  std::vector<Config> v = {{"dense", {}}, {"csr", {}}, {"structured", {}}};
  for (BlockShape b : {BlockShape{1, 4}, BlockShape{4, 1}, BlockShape{1, 16}, BlockShape{16, 1}, BlockShape{1, 32},
                       BlockShape{32, 1}, BlockShape{8, 8}, BlockShape{16, 16}, BlockShape{32, 32}, BlockShape{2, 2}}) {
    Config c{"bsr", {}};
    c.opt.block = b;
    v.push_back(c);
  }
  for (NmShape nm : {NmShape{2, 4}, NmShape{1, 4}, NmShape{2, 8}, NmShape{4, 8}}) {
    Config c{"nm", {}};
    c.opt.nm = nm;
    v.push_back(c);
  }
  for (int g : {128, 32, 100}) {
    Config c{"tilewise", {}};
    c.opt.tile = g;
    v.push_back(c);
  }
  return v;
}

enum class Pat { zero, full, random, exact };  // exact: whole blocks / full N:M groups / whole tiles

// A keep-mask of kind `pat` that the format accepts (N:M patterns are N:M);
// `random` also empties about a quarter of the rows entirely.
Mask make_mask(const Config& cfg, Pat pat, int64_t R, int64_t C, std::mt19937& rng) {
  Mask m(static_cast<size_t>(R * C), 0);
  std::bernoulli_distribution keep(0.35), empty_row(0.25);
  auto at = [&](int64_t r, int64_t c) -> uint8_t& { return m[static_cast<size_t>(r * C + c)]; };
  if (cfg.format == "nm") {
    if (pat == Pat::zero) return m;
    const int n = cfg.opt.nm.n, mm = cfg.opt.nm.m;
    std::vector<int> pos(static_cast<size_t>(mm));
    for (int64_t r = 0; r < R; ++r) {
      const bool skip = pat == Pat::random && empty_row(rng);
      for (int64_t c0 = 0; c0 < C && !skip; c0 += mm) {
        for (int j = 0; j < mm; ++j) pos[static_cast<size_t>(j)] = j;
        std::shuffle(pos.begin(), pos.end(), rng);
        const int used = pat == Pat::random ? std::uniform_int_distribution<int>(0, n)(rng) : n;
        for (int j = 0; j < used; ++j) at(r, c0 + pos[static_cast<size_t>(j)]) = 1;
      }
    }
    return m;
  }
  if (pat == Pat::zero) return m;
  if (pat == Pat::full) return Mask(m.size(), 1);
  if (pat == Pat::exact && cfg.format == "bsr") {
    const BlockShape b = cfg.opt.block;
    for (int64_t r0 = 0; r0 < R; r0 += b.r)
      for (int64_t c0 = 0; c0 < C; c0 += b.c)
        if (keep(rng))
          for (int64_t r = r0; r < r0 + b.r; ++r)
            for (int64_t c = c0; c < c0 + b.c; ++c) at(r, c) = 1;
    return m;
  }
  if (pat == Pat::exact && cfg.format == "tilewise") {
    for (int64_t r0 = 0; r0 < R; r0 += cfg.opt.tile) {
      Mask cols(static_cast<size_t>(C));
      for (auto& v : cols) v = keep(rng);
      for (int64_t r = r0; r < std::min<int64_t>(R, r0 + cfg.opt.tile); ++r)
        for (int64_t c = 0; c < C; ++c) at(r, c) = cols[static_cast<size_t>(c)];
    }
    return m;
  }
  for (int64_t r = 0; r < R; ++r) {
    if (empty_row(rng)) continue;
    for (int64_t c = 0; c < C; ++c) at(r, c) = keep(rng);
  }
  return m;
}

// Uniform in [-1, 1], never zero, at kept positions; +0 elsewhere.
Tensor weight_from_mask(int64_t R, int64_t C, const Mask& m, std::mt19937& rng) {
  Tensor w(DType::f32, Shape{R, C});
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  for (size_t i = 0; i < m.size(); ++i) {
    const float v = val(rng);
    w.data<float>()[i] = m[i] ? (v == 0.f ? 0.5f : v) : 0.f;
  }
  return w;
}

::testing::AssertionResult bit_equal(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << got.shape().str() << " != " << want.shape().str();
  const auto* g = static_cast<const uint32_t*>(got.raw());
  const auto* w = static_cast<const uint32_t*>(want.raw());
  for (int64_t i = 0; i < got.numel(); ++i)
    if (g[i] != w[i])
      return ::testing::AssertionFailure() << "element (" << i / got.dim(1) << ", " << i % got.dim(1) << "): got "
                                           << got.data<float>()[i] << " (bits " << g[i] << "), want "
                                           << want.data<float>()[i] << " (bits " << w[i] << ")";
  return ::testing::AssertionSuccess();
}

int64_t count_nonzero(const Tensor& t) {
  return std::count_if(t.data<float>(), t.data<float>() + t.numel(), [](float v) { return v != 0.f; });
}

const std::vector<std::pair<int64_t, int64_t>> kSizes = {{1, 64}, {64, 1},  {7, 13},  {33, 40},  {24, 40},
                                                         {64, 64}, {96, 96}, {130, 24}, {256, 32}, {32, 160}};

TEST(FormatPack, RoundTripIsBitExactForEveryFormatSizeAndPattern) {
  std::mt19937 rng(11);
  int cases = 0;
  for (const Config& cfg : all_configs())
    for (auto [R, C] : kSizes) {
      if (!cfg.fits(R, C)) continue;
      for (Pat pat : {Pat::zero, Pat::full, Pat::random, Pat::exact}) {
        SCOPED_TRACE(cfg.str() + " " + std::to_string(R) + "x" + std::to_string(C) + " pattern " +
                     std::to_string(static_cast<int>(pat)));
        const Tensor w = weight_from_mask(R, C, make_mask(cfg, pat, R, C, rng), rng);
        const WeightFormat f = pack(cfg.format, w, Tesa::from_zeros(w), cfg.opt);
        ++cases;
        EXPECT_EQ(format_name(f), cfg.format);
        EXPECT_EQ(format_rows(f), R);
        EXPECT_EQ(format_cols(f), C);
        EXPECT_NO_THROW(validate(f));
        EXPECT_TRUE(bit_equal(unpack(f), w));
        EXPECT_GE(format_stored(f), count_nonzero(w));
        if (cfg.format == "tilewise" && pat == Pat::exact) {  // whole tiles: nothing left for the remainder
          EXPECT_EQ(std::get<TilewiseMatrix>(f).remainder.nnz(), 0);
        }
        if (cfg.format == "csr" || (cfg.format == "bsr" && pat == Pat::exact)) {
          EXPECT_EQ(format_stored(f), count_nonzero(w));
        }
      }
    }
  EXPECT_GT(cases, 400);
}

// A Tesa that prunes non-zero values: unpack gives w with those zeroed, and
// kept values (even +0 and -0) come back bit-exactly.
TEST(FormatPack, PrunedValuesAreZeroedKeptZerosSurvive) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  std::uniform_int_distribution<int> zero_kind(0, 5);
  for (const Config& cfg : all_configs())
    for (auto [R, C] : kSizes) {
      if (!cfg.fits(R, C)) continue;
      SCOPED_TRACE(cfg.str() + " " + std::to_string(R) + "x" + std::to_string(C));
      Tensor w(DType::f32, Shape{R, C});
      for (int64_t i = 0; i < w.numel(); ++i) {
        const int z = zero_kind(rng);  // 1 in 6 is +0, 1 in 6 is -0
        const float v = val(rng);
        w.data<float>()[i] = z == 0 ? 0.f : z == 1 ? -0.f : (v == 0.f ? 0.25f : v);
      }
      const Mask m = make_mask(cfg, Pat::random, R, C, rng);
      const Tesa t = Tesa::from_mask(Shape{R, C}, m);
      Tensor want = w.clone();
      t.apply(want);  // pruned -> +0, kept untouched
      const WeightFormat f = pack(cfg.format, w, t, cfg.opt);
      EXPECT_NO_THROW(validate(f));
      EXPECT_TRUE(bit_equal(unpack(f), want));
      EXPECT_GE(format_stored(f), t.count_kept());  // kept zeros are stored too
    }
}

// ---------------------------------------------------------------- bad input

Tensor ones(int64_t r, int64_t c) {
  Tensor w(DType::f32, Shape{r, c});
  std::fill(w.data<float>(), w.data<float>() + w.numel(), 1.f);
  return w;
}

TEST(FormatErrors, BsrBlockMustDivide) {
  const Tensor w = ones(20, 64);
  const Tesa t = Tesa::from_zeros(w);
  expect_error([&] { pack_bsr(w, t, {3, 4}); }, {"block", "3", "N=20"});
  expect_error([&] { pack_bsr(w, t, {4, 5}); }, {"block", "5", "K=64"});
  expect_error([&] { pack_bsr(w, t, {0, 4}); }, {"block", "0x4"});
  PackOptions o;
  o.block = {32, 1};
  expect_error([&] { pack("bsr", w, t, o); }, {"block", "32", "N=20"});
}

TEST(FormatErrors, NmParameters) {
  const Tensor w = ones(4, 64);
  const Tesa none(Shape{4, 64}, ElemCode::pruned);
  expect_error([&] { pack_nm(w, none, {5, 4}); }, {"N=5", "M=4"});
  expect_error([&] { pack_nm(w, none, {2, 7}); }, {"M=7", "K=64"});
  expect_error([&] { pack_nm(w, none, {0, 4}); }, {"N=0"});
  expect_error([&] { pack_nm(w, none, {2, 0}); }, {"M=0"});
  Mask m(4 * 64, 0);
  m[2 * 64 + 8] = m[2 * 64 + 9] = m[2 * 64 + 11] = 1;  // row 2, group 2 keeps 3 of 4
  expect_error([&] { pack_nm(w, Tesa::from_mask(Shape{4, 64}, m), {2, 4}); }, {"row 2", "group 2", "2:4"});
  m[2 * 64 + 11] = 0;
  EXPECT_NO_THROW(pack_nm(w, Tesa::from_mask(Shape{4, 64}, m), {2, 4}));
}

TEST(FormatErrors, UnknownFormatAndTileSize) {
  const Tensor w = ones(8, 8);
  const Tesa t = Tesa::from_zeros(w);
  expect_error([&] { pack("coo", w, t); }, {"'coo'", "csr"});
  expect_error([&] { pack("", w, t); }, {"unknown format"});
  for (int g : {0, -3}) {
    PackOptions o;
    o.tile = g;
    expect_error([&] { pack("tilewise", w, t, o); }, {"G=" + std::to_string(g)});
  }
  for (double f : {0.0, -0.5, 1.5}) expect_error([&] { pack_tilewise(w, t, 4, f); }, {"keep fraction"});
}

TEST(FormatErrors, WeightMustBe2DF32AndMatchTesa) {
  const Tensor w3(DType::f32, Shape{2, 3, 4});
  const Tensor w = ones(6, 8);
  const Tensor wi8(DType::i8, Shape{6, 8});
  for (const Config& cfg : all_configs()) {
    SCOPED_TRACE(cfg.str());
    expect_error([&] { pack(cfg.format, w3, Tesa(w3.shape(), ElemCode::bits32), cfg.opt); }, {"2-D", "[2, 3, 4]"});
    expect_error([&] { pack(cfg.format, w, Tesa(Shape{8, 6}, ElemCode::bits32), cfg.opt); }, {"[8, 6]", "[6, 8]"});
    expect_error([&] { pack(cfg.format, wi8, Tesa(wi8.shape(), ElemCode::bits8), cfg.opt); }, {"f32", "i8"});
  }
}

// ---------------------------------------------------------------- serialization

std::string save_bytes(const WeightFormat& f) {
  std::ostringstream os(std::ios::binary);
  save(f, os);
  return os.str();
}

WeightFormat load_bytes(const std::string& s) {
  std::istringstream is(s, std::ios::binary);
  return load(is);
}

// The FNV-1a checksum save() appends, recomputed after an edit so that the
// edit reaches the structural checks instead of stopping at the checksum.
void fix_checksum(std::string& s) {
  if (s.size() < 12) return;
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 4; i + 8 < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
  std::memcpy(&s[s.size() - 8], &h, 8);
}

// Offsets of the i64 array-length fields, walking the documented layout:
// magic, u32 version, u32 kind, fields ('i' = i64 scalar, digit = array of
// elements of that size), u64 checksum.
std::vector<size_t> length_offsets(const std::string& s) {
  static const char* schema[] = {"ii4", "ii844", "iiii844", "iiii41", "iii8484ii844", "ii444"};
  uint32_t kind;
  std::memcpy(&kind, &s[8], 4);
  std::vector<size_t> out;
  size_t at = 12;
  for (const char* p = schema[kind]; *p; ++p) {
    if (*p == 'i') {
      at += 8;
      continue;
    }
    int64_t n;
    std::memcpy(&n, &s[at], 8);
    out.push_back(at);
    at += 8 + static_cast<size_t>(n) * static_cast<size_t>(*p - '0');
  }
  EXPECT_EQ(at + 8, s.size()) << "layout walk disagrees with the file";
  return out;
}

// Caps the address space while alive (Linux), so a load that tries to
// allocate gigabytes fails with std::bad_alloc instead of slowly succeeding.
class AddressSpaceCap {
 public:
  explicit AddressSpaceCap(size_t extra_bytes) {
#if !defined(__SANITIZE_ADDRESS__)
    std::ifstream statm("/proc/self/statm");
    size_t pages = 0;
    if (!(statm >> pages) || getrlimit(RLIMIT_AS, &old_) != 0) return;
    rlimit lim = old_;
    lim.rlim_cur = pages * static_cast<size_t>(sysconf(_SC_PAGESIZE)) + extra_bytes;
    if (old_.rlim_max != RLIM_INFINITY && lim.rlim_cur > old_.rlim_max) return;
    active_ = setrlimit(RLIMIT_AS, &lim) == 0;
#endif
  }
  ~AddressSpaceCap() {
    if (active_) setrlimit(RLIMIT_AS, &old_);
  }

 private:
  rlimit old_{};
  bool active_ = false;
};

// load() either throws sparta::Error or returns a valid format; anything else
// (another exception, e.g. std::bad_alloc) fails. Returns whether it loaded.
bool load_is_safe(const std::string& bytes, const std::string& what) {
  try {
    const WeightFormat f = load_bytes(bytes);
    EXPECT_NO_THROW(validate(f)) << what;
    if (format_rows(f) * format_cols(f) <= (1 << 20)) {
      const Tensor y = unpack(f);
      EXPECT_EQ(y.numel(), format_rows(f) * format_cols(f)) << what;
    }
    EXPECT_EQ(save_bytes(load_bytes(save_bytes(f))), save_bytes(f)) << what;
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": load threw " << typeid(e).name() << " (" << e.what() << "), not sparta::Error";
    return false;
  }
}

// Small (16x24) packed weights, one per format; bsr uses the blocks that
// divide 16x24, tilewise G=5 gives several tiles and a short last tile.
std::vector<std::pair<std::string, WeightFormat>> small_formats() {
  std::mt19937 rng(13);
  std::vector<std::pair<std::string, WeightFormat>> out;
  std::vector<Config> cfgs = all_configs();
  Config t5{"tilewise", {}};
  t5.opt.tile = 5;
  cfgs.push_back(t5);
  for (const Config& cfg : cfgs) {
    if (!cfg.fits(16, 24)) continue;
    const Tensor w = weight_from_mask(16, 24, make_mask(cfg, Pat::random, 16, 24, rng), rng);
    out.emplace_back(cfg.str(), pack(cfg.format, w, Tesa::from_zeros(w), cfg.opt));
  }
  return out;
}

TEST(SerialRoundTrip, EveryFormatLoadsIdentically) {
  std::mt19937 rng(14);
  for (const Config& cfg : all_configs())
    for (auto [R, C] : {std::pair<int64_t, int64_t>{64, 64}, {96, 96}, {7, 13}, {1, 64}, {130, 24}})
      for (Pat pat : {Pat::zero, Pat::random, Pat::exact}) {
        if (!cfg.fits(R, C)) continue;
        SCOPED_TRACE(cfg.str() + " " + std::to_string(R) + "x" + std::to_string(C));
        const Tensor w = weight_from_mask(R, C, make_mask(cfg, pat, R, C, rng), rng);
        const WeightFormat f = pack(cfg.format, w, Tesa::from_zeros(w), cfg.opt);
        const std::string bytes = save_bytes(f);
        const WeightFormat g = load_bytes(bytes);
        EXPECT_EQ(g.index(), f.index());
        EXPECT_EQ(format_stored(g), format_stored(f));
        EXPECT_TRUE(bit_equal(unpack(g), w));
        EXPECT_EQ(save_bytes(g), bytes);
      }
}

TEST(SerialFuzz, TruncationAlwaysThrows) {
  std::mt19937 rng(15);
  for (const auto& [name, f] : small_formats()) {
    const std::string bytes = save_bytes(f);
    std::vector<size_t> lens(bytes.size());
    for (size_t i = 0; i < lens.size(); ++i) lens[i] = i;
    if (lens.size() > 200) {
      std::shuffle(lens.begin(), lens.end(), rng);
      lens.resize(200);
    }
    for (size_t n : lens) EXPECT_THROW(load_bytes(bytes.substr(0, n)), Error) << name << " truncated to " << n;
  }
}

TEST(SerialFuzz, ByteFlipsThrowOrLoadValid) {
  std::mt19937 rng(16);
  const AddressSpaceCap cap(size_t{1} << 30);
  for (const auto& [name, f] : small_formats()) {
    const std::string bytes = save_bytes(f);
    std::uniform_int_distribution<size_t> pos(0, bytes.size() - 1);
    std::uniform_int_distribution<int> flip(1, 255), count(1, 4);
    int loaded_with_fixed_sum = 0;
    for (int trial = 0; trial < 1000; ++trial) {
      std::string b = bytes;
      const int n = count(rng);
      for (int i = 0; i < n; ++i) b[pos(rng)] ^= static_cast<char>(flip(rng));
      const std::string what = name + " trial " + std::to_string(trial);
      // FNV-1a detects any single changed byte, so one flip must never load.
      const bool loaded = load_is_safe(b, what);
      if (n == 1) {
        EXPECT_FALSE(loaded) << what << ": a one-byte change passed the checksum";
      }
      // With the checksum recomputed, validate() alone must stop bad indices.
      fix_checksum(b);
      if (b.compare(0, 4, "SPWF") == 0) loaded_with_fixed_sum += load_is_safe(b, what + " (checksum fixed)");
    }
    EXPECT_GT(loaded_with_fixed_sum, 0) << name << ": no edit survived, so validate() was not exercised";
  }
}

TEST(SerialFuzz, CorruptArrayLengthsThrow) {
  const AddressSpaceCap cap(size_t{1} << 30);
  const int64_t huge[] = {-1, -8, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                          int64_t{1} << 62, int64_t{1} << 40, int64_t{1} << 33, int64_t{1} << 31,
                          (int64_t{1} << 31) + 7, int64_t{1} << 28, int64_t{1} << 24};
  for (const auto& [name, f] : small_formats()) {
    const std::string bytes = save_bytes(f);
    const std::vector<size_t> offs = length_offsets(bytes);
    ASSERT_FALSE(offs.empty()) << name;
    for (size_t off : offs) {
      int64_t orig;
      std::memcpy(&orig, &bytes[off], 8);
      std::vector<int64_t> vals(std::begin(huge), std::end(huge));
      vals.push_back(orig + 1);
      if (orig > 0) vals.push_back(orig - 1);
      for (int64_t v : vals)
        for (bool fix : {false, true}) {
          std::string b = bytes;
          std::memcpy(&b[off], &v, 8);
          if (fix) fix_checksum(b);
          const std::string what = name + " length at " + std::to_string(off) + " = " + std::to_string(v);
          EXPECT_FALSE(load_is_safe(b, what)) << what << " loaded";
        }
    }
  }
}

TEST(SerialFuzz, HeaderErrorsNameTheProblem) {
  const std::string bytes = save_bytes(small_formats().front().second);
  std::string b = bytes;
  b[0] = 'X';
  expect_error([&] { load_bytes(b); }, {"magic"});
  b = bytes;
  b[4] = 7;
  fix_checksum(b);
  expect_error([&] { load_bytes(b); }, {"version 7"});
  b = bytes;
  b[8] = 9;
  fix_checksum(b);
  expect_error([&] { load_bytes(b); }, {"format tag 9"});
  b = bytes;
  b[20] ^= 1;  // inside the dims
  expect_error([&] { load_bytes(b); }, {});
  expect_error([&] { load_bytes(""); }, {"magic"});
}

}  // namespace
}  // namespace sparta
