// The generator of products vectorized along M (the mvec family of
// kernels/spmm_isa.inc): X packed in tiles xp[k][MT] of MT = mv vector
// widths of rows, results accumulated transposed (yt[n][MT]) for the
// shared epilogue. A weight is a program of groups (r output rows each),
// each a list of items (c consecutive k with their r x c weights): CSR is
// r = c = 1, N:M the same with a fixed count per row, BSR blocks r x c.
//
// Fixed in the code: the vector ISA, mv, r, c, the accumulator sets (how
// many independent FMA chains hide the FMA latency) and, when baked, every
// group's item count and every item's X offset and value position as
// displacements. Tables carry the rest otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "jit/jit_code.h"

namespace sparta::jit {

struct MvecShape {
  bool avx512 = false;  // zmm, 16 floats per vector (else ymm, 8)
  int mv = 4;           // vectors of M per tile
  int r = 1;            // output rows per group
  int c = 1;            // consecutive k per item
  int sets = 1;         // independent accumulator sets
  // r = c = 1 in tables only: each item one 8-byte entry (value bits, then
  // the X offset), read with one load instead of two. Loads, not FMAs,
  // bound this loop: with mv = 2 an item is 2 FMAs and 4 loads otherwise.
  bool paired = false;
  int width() const { return avx512 ? 16 : 8; }
  int mt() const { return mv * width(); }
  int registers() const;  // vector registers the code needs
};

// The pattern: per group its item count; per item the byte offset of its
// first k in a packed X tile (k * MT * 4); values are read in program
// order, r * c per item ([j][i]: for each k of the item, the r rows).
struct MvecProgram {
  std::vector<int32_t> counts;  // per group
  std::vector<int32_t> offs;    // per item
};

// fn(xt, yt, counts, offs, vals, groups): the groups in order from the
// given table positions, each group's r rows of MT results to yt (added to
// what yt holds in the accumulating form: K is cut into panels).
// With paired entries, offs points at them and vals is unused.
using MvecTableFn = void (*)(const float* xt, float* yt, const int32_t* counts, const void* offs,
                             const float* vals, int64_t groups);
// fn(xt, yt, vals): one chunk of groups with everything baked; vals points
// at the chunk's first value.
using MvecBakedFn = void (*)(const float* xt, float* yt, const float* vals);

class MvecCode {
 public:
  // One loop over tables for any program of this shape, in two forms:
  // results written (the first K panel) or added to yt.
  static std::unique_ptr<MvecCode> table(const MvecShape& s);
  // One baked function per slice of groups [slices[i], slices[i+1]) of the
  // program (a slice is one chunk of output rows in one K panel), adding to
  // yt where accumulate[i].
  static std::unique_ptr<MvecCode> baked(const MvecShape& s, const MvecProgram& p, const std::vector<int64_t>& slices,
                                         const std::vector<bool>& accumulate);
  // Bytes of straight-line code baked() would emit for a program of this
  // many items and groups (an estimate from above).
  static size_t baked_bytes(const MvecShape& s, size_t items, size_t groups);

  MvecTableFn table_fn(bool accumulate) const {
    return reinterpret_cast<MvecTableFn>(const_cast<uint8_t*>(code_->entry(entries_[accumulate ? 1 : 0])));
  }
  MvecBakedFn chunk_fn(size_t i) const {
    return reinterpret_cast<MvecBakedFn>(const_cast<uint8_t*>(code_->entry(entries_[i])));
  }
  size_t code_bytes() const { return code_->getSize(); }

 private:
  std::unique_ptr<Code> code_;
  std::vector<size_t> entries_;
};

}  // namespace sparta::jit
