// The generator of products vectorized along N (the nvec family of
// kernels/spmm_isa.inc): a register tile of mr rows of X by nv vectors of
// N, over a list of k (a BSR block row's columns, a tile-wise tile's kept
// columns), X packed in blocks xp[k * mr + row], W as one vector row per k.
//
// Fixed in the code: the vector ISA, mr, nv, the width of the last vector
// (a masked load when a tile is not a whole number of vectors) and the
// packed X's row count in every k offset (the k-lists are kept as byte
// offsets k * mr * 4). A k-list here is long (every k of a block row) and
// each k feeds mr * nv FMAs, so the offsets stay in tables: baking them
// would not save a load per FMA, as it does for the mvec family.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "jit/jit_code.h"

namespace sparta::jit {

struct NvecShape {
  bool avx512 = false;
  int mr = 6;  // rows of X per tile
  int ld = 6;  // rows per packed X block (mr or more: the last block of M uses fewer)
  int nv = 2;  // vectors of N per tile
  int nw = 8;  // floats of the last vector (the width, or fewer: masked)
  int width() const { return avx512 ? 16 : 8; }
};

// fn(xb, koffs, nk, w, wstride_bytes, tile): tile[row][nv * width] =
// sum over kk < nk of xb[koffs[kk] / 4 + row] * w[kk * wstride + n], for
// row < mr (koffs are k * ld * 4, with 8 readable entries past nk).
using NvecFn = void (*)(const float* xb, const int32_t* koffs, int64_t nk, const float* w, int64_t wstride_bytes,
                        float* tile);

// Tiles of several shapes in one code buffer, fn(i) for shapes[i].
class NvecCode {
 public:
  explicit NvecCode(const std::vector<NvecShape>& shapes);
  NvecFn fn(size_t i) const { return reinterpret_cast<NvecFn>(const_cast<uint8_t*>(code_.entry(entries_[i]))); }
  size_t code_bytes() const { return code_.getSize(); }

 private:
  Code code_;
  std::vector<size_t> entries_;
};

}  // namespace sparta::jit
