// Pattern analysis: summarize a 2-D Tesa (rows = output features N, columns =
// reduction dimension K, the layout of a weight W[N,K]) into the regular
// structures it satisfies, for kernel and format choice.
//
// Structures, from most to least regular:
//   structured  kept = (kept rows) x (kept columns): a smaller dense matrix
//   block r x c every aligned r x c block is entirely kept or entirely pruned
//   tile-wise G within each tile of G consecutive rows, all rows keep the
//               same set of columns (Guo et al., SC'20)
//   N:M         at most N kept in every group of M consecutive columns
//   unstructured
#pragma once

#include <string>
#include <vector>

#include "core/tesa.h"

namespace sparta {

struct BlockShape {
  int r = 1;  // along rows (N)
  int c = 1;  // along columns (K)
  bool operator==(const BlockShape& o) const { return r == o.r && c == o.c; }
  std::string str() const { return std::to_string(r) + "x" + std::to_string(c); }
};

struct NmShape {
  int n = 2;
  int m = 4;
  bool operator==(const NmShape& o) const { return n == o.n && m == o.m; }
  std::string str() const { return std::to_string(n) + ":" + std::to_string(m); }
};

enum class PatternKind { empty, dense, structured, block, tilewise, nm, unstructured };
std::string pattern_kind_name(PatternKind k);

// Candidate shapes the analysis tries; a shape is reported only if it divides
// the matrix (blocks, N:M) so that a format can be built from it.
const std::vector<BlockShape>& candidate_blocks();
const std::vector<NmShape>& candidate_nm();
const std::vector<int>& candidate_tiles();

struct PatternReport {
  int64_t rows = 0, cols = 0;
  double density = 1.0;
  int64_t kept_rows = 0;  // rows with at least one kept element
  int64_t kept_cols = 0;
  bool structured = false;            // kept == kept_rows x kept_cols (and something is pruned)
  std::vector<BlockShape> blocks;     // satisfied candidate blocks (area > 1)
  std::vector<NmShape> nm;            // satisfied candidate N:M (N < M)
  std::vector<int> tiles;             // satisfied tile-wise G (tile-wise with >1 row per tile)
  PatternKind best = PatternKind::unstructured;
  BlockShape best_block;              // when best == block: the largest satisfied area
  NmShape best_nm;                    // when best == nm: the sparsest satisfied
  int best_tile = 0;                  // when best == tilewise: the largest G
  std::string summary() const;        // one line, e.g. "block 32x1, density 0.100"
};

PatternReport analyze_pattern(const Tesa& t);

// Individual predicates, usable on their own (the Tesa must be 2-D).
bool satisfies_block(const Tesa& t, BlockShape b);
bool satisfies_nm(const Tesa& t, NmShape nm);
bool satisfies_tilewise(const Tesa& t, int g);

// "32x1" and "2:4" as the command line and the Python package spell them;
// sparta::Error naming the option (--block, --nm) otherwise.
BlockShape parse_block_shape(const std::string& s);
NmShape parse_nm_shape(const std::string& s);

}  // namespace sparta
