#include "core/pattern.h"

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <regex>

#include "core/error.h"

namespace sparta {
namespace {

void require_2d(const Tesa& t) {
  SPARTA_CHECK(t.shape().rank() == 2, "pattern analysis needs a 2-D tesa, got shape ", t.shape().str());
}

}  // namespace

std::string pattern_kind_name(PatternKind k) {
  switch (k) {
    case PatternKind::empty: return "empty";
    case PatternKind::dense: return "dense";
    case PatternKind::structured: return "structured";
    case PatternKind::block: return "block";
    case PatternKind::tilewise: return "tilewise";
    case PatternKind::nm: return "nm";
    case PatternKind::unstructured: return "unstructured";
  }
  return "?";
}

const std::vector<BlockShape>& candidate_blocks() {
  static const std::vector<BlockShape> v = {{32, 32}, {16, 16}, {8, 8},  {32, 1}, {1, 32}, {16, 1},
                                            {1, 16},  {4, 4},   {8, 1},  {1, 8},  {4, 1},  {1, 4},
                                            {2, 2},   {2, 1},   {1, 2}};
  return v;
}

const std::vector<NmShape>& candidate_nm() {
  static const std::vector<NmShape> v = {{1, 8}, {1, 4}, {2, 8}, {1, 2}, {2, 4}, {4, 8}};
  return v;
}

const std::vector<int>& candidate_tiles() {
  static const std::vector<int> v = {256, 128, 64, 32};
  return v;
}

bool satisfies_block(const Tesa& t, BlockShape b) {
  require_2d(t);
  const int64_t R = t.shape()[0], C = t.shape()[1];
  if (b.r <= 0 || b.c <= 0 || R % b.r || C % b.c) return false;
  const uint8_t* k = t.codes();
  // Row by row (contiguous reads): every element must agree with its
  // block's first element, which lies in the block's first row.
  for (int64_t r0 = 0; r0 < R; r0 += b.r) {
    const uint8_t* lead = k + r0 * C;
    for (int64_t r = r0; r < r0 + b.r; ++r) {
      const uint8_t* row = k + r * C;
      for (int64_t c0 = 0; c0 < C; c0 += b.c) {
        const bool first = lead[c0] != 0;
        for (int64_t c = c0; c < c0 + b.c; ++c)
          if ((row[c] != 0) != first) return false;
      }
    }
  }
  return true;
}

bool satisfies_nm(const Tesa& t, NmShape nm) {
  require_2d(t);
  const int64_t R = t.shape()[0], C = t.shape()[1];
  if (nm.m <= 0 || nm.n < 0 || nm.n > nm.m || C % nm.m) return false;
  const uint8_t* k = t.codes();
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c0 = 0; c0 < C; c0 += nm.m) {
      int kept = 0;
      for (int j = 0; j < nm.m; ++j) kept += k[r * C + c0 + j] != 0;
      if (kept > nm.n) return false;
    }
  return true;
}

bool satisfies_tilewise(const Tesa& t, int g) {
  require_2d(t);
  const int64_t R = t.shape()[0], C = t.shape()[1];
  if (g <= 0) return false;
  const uint8_t* k = t.codes();
  for (int64_t r0 = 0; r0 < R; r0 += g) {
    const int64_t r1 = std::min<int64_t>(R, r0 + g);
    for (int64_t r = r0 + 1; r < r1; ++r)
      for (int64_t c = 0; c < C; ++c)
        if ((k[r * C + c] != 0) != (k[r0 * C + c] != 0)) return false;
  }
  return true;
}

PatternReport analyze_pattern(const Tesa& t) {
  require_2d(t);
  PatternReport p;
  p.rows = t.shape()[0];
  p.cols = t.shape()[1];
  p.density = t.density();
  const uint8_t* k = t.codes();
  std::vector<uint8_t> row_any(static_cast<size_t>(p.rows), 0), col_any(static_cast<size_t>(p.cols), 0);
  for (int64_t r = 0; r < p.rows; ++r)
    for (int64_t c = 0; c < p.cols; ++c)
      if (k[r * p.cols + c]) row_any[static_cast<size_t>(r)] = col_any[static_cast<size_t>(c)] = 1;
  for (auto v : row_any) p.kept_rows += v;
  for (auto v : col_any) p.kept_cols += v;

  const int64_t kept = t.count_kept();
  if (t.numel() > 0 && kept == 0) {
    p.best = PatternKind::empty;
    return p;
  }
  if (kept == t.numel()) {
    p.best = PatternKind::dense;
    return p;
  }
  p.structured = kept == p.kept_rows * p.kept_cols;
  for (const auto& b : candidate_blocks())
    if (satisfies_block(t, b)) p.blocks.push_back(b);
  for (const auto& nm : candidate_nm())
    if (satisfies_nm(t, nm)) p.nm.push_back(nm);
  for (int g : candidate_tiles())
    if (p.rows > 1 && satisfies_tilewise(t, g)) p.tiles.push_back(g);

  if (p.structured) {
    p.best = PatternKind::structured;
  } else if (!p.blocks.empty()) {
    p.best = PatternKind::block;
    p.best_block = p.blocks.front();
    for (const auto& b : p.blocks)
      if (b.r * b.c > p.best_block.r * p.best_block.c) p.best_block = b;
  } else if (!p.tiles.empty()) {
    p.best = PatternKind::tilewise;
    p.best_tile = p.tiles.front();  // candidates are ordered largest first
  } else if (!p.nm.empty()) {
    p.best = PatternKind::nm;
    p.best_nm = p.nm.front();  // candidates are ordered sparsest first
  }
  return p;
}

std::string PatternReport::summary() const {
  std::string s = pattern_kind_name(best);
  if (best == PatternKind::block) s += " " + best_block.str();
  if (best == PatternKind::nm) s += " " + best_nm.str();
  if (best == PatternKind::tilewise) s += " G=" + std::to_string(best_tile);
  if (best == PatternKind::structured)
    s += " " + std::to_string(kept_rows) + "/" + std::to_string(rows) + " rows x " + std::to_string(kept_cols) +
         "/" + std::to_string(cols) + " cols";
  char buf[48];
  std::snprintf(buf, sizeof buf, ", density %.3f", density);
  return s + buf;
}

BlockShape parse_block_shape(const std::string& s) {
  std::smatch m;
  SPARTA_CHECK(std::regex_match(s, m, std::regex(R"((\d{1,4})x(\d{1,4}))")), "--block '", s,
               "' must look like RxC, e.g. 32x1");
  BlockShape b{std::stoi(m[1]), std::stoi(m[2])};
  SPARTA_CHECK(b.r > 0 && b.c > 0, "--block '", s, "' must have positive sides");
  return b;
}

NmShape parse_nm_shape(const std::string& s) {
  std::smatch m;
  SPARTA_CHECK(std::regex_match(s, m, std::regex(R"((\d{1,3}):(\d{1,3}))")), "--nm '", s,
               "' must look like N:M, e.g. 2:4");
  NmShape nm{std::stoi(m[1]), std::stoi(m[2])};
  SPARTA_CHECK(nm.n >= 1 && nm.m >= 1 && nm.m <= 255, "--nm '", s, "': need N >= 1 and 1 <= M <= 255");
  SPARTA_CHECK(nm.n <= nm.m, "--nm '", s, "': N must not exceed M");
  return nm;
}

}  // namespace sparta
