#include "formats/key_sort.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/parallel.h"

namespace sparta {

namespace {

int bit_width(uint64_t v) {
  int w = 0;
  while (v) ++w, v >>= 1;
  return w;
}

// The four 16-bit fields of the keys (batch, x, y, z, high to low), each
// less the high bits all keys share in it, packed at only the width of the
// bits that vary: the keys' order kept in (typically) 20-30 bits.
struct FieldPack {
  uint64_t lo[4] = {0, 0, 0, 0};
  int at[4] = {0, 0, 0, 0};
  int width = 0;

  FieldPack(const uint64_t* keys, int64_t n) {
    uint64_t varying = 0;
    for (int64_t i = 1; i < n; ++i) varying |= keys[i] ^ keys[0];
    for (int f = 0; f < 4; ++f) {  // z lowest
      const int w = bit_width((varying >> (16 * f)) & 0xFFFF);
      lo[f] = ((keys[0] >> (16 * f)) & 0xFFFF) >> w << w;
      at[f] = width;
      width += w;
    }
  }

  uint64_t compress(uint64_t k) const {
    uint64_t c = 0;
    for (int f = 0; f < 4; ++f) c |= (((k >> (16 * f)) & 0xFFFF) - lo[f]) << at[f];
    return c;
  }
};

// One stable counting pass over rows of `src` by the digit (v >> shift) &
// (buckets - 1), into dst; threads each histogram, then scatter, their
// own range of rows (ranges in order, so the pass stays stable).
template <typename Digit>
void counting_pass(const uint64_t* src, uint64_t* dst, int64_t n, int buckets, int nt, std::vector<int64_t>& hist,
                   const Digit& digit) {
  hist.assign(size_t(nt) * size_t(buckets), 0);
  parallel_parts(nt, n, [&](int t, int64_t i0, int64_t i1) {
    int64_t* h = hist.data() + size_t(t) * size_t(buckets);
    for (int64_t i = i0; i < i1; ++i) ++h[digit(src[i])];
  });
  int64_t sum = 0;
  for (int d = 0; d < buckets; ++d)
    for (int t = 0; t < nt; ++t) {
      int64_t& c = hist[size_t(t) * size_t(buckets) + size_t(d)];
      const int64_t here = c;
      c = sum;
      sum += here;
    }
  parallel_parts(nt, n, [&](int t, int64_t i0, int64_t i1) {
    int64_t* h = hist.data() + size_t(t) * size_t(buckets);
    for (int64_t i = i0; i < i1; ++i) dst[h[digit(src[i])]++] = src[i];
  });
}

constexpr int kDigitBits = 11;  // 2048 buckets: the counts stay in L1

}  // namespace

std::vector<int32_t> coordinate_order(const uint64_t* keys, int64_t n, int threads) {
  std::vector<int32_t> order(static_cast<size_t>(n));
  coordinate_order(keys, n, threads, order.data());
  return order;
}

void coordinate_order(const uint64_t* keys, int64_t n, int threads, int32_t* order) {
  SPARTA_ASSERT(n >= 0 && n < (int64_t{1} << 31), "coordinate_order: bad row count");
  if (n < 2) {
    std::iota(order, order + n, 0);
    return;
  }
  const int nt = int(std::clamp<int64_t>(n / 32768, 1, std::max(1, threads)));
  const FieldPack pack(keys, n);
  const int wi = bit_width(uint64_t(n - 1)), wk = pack.width;
  // Scratch from the block cache: fresh pages would cost a fault per 4 KB.
  std::vector<uint64_t, CachedAllocator<uint64_t>> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  std::vector<int64_t> hist;
  const int passes = (wk + kDigitBits - 1) / kDigitBits;
  const int digit_bits = passes ? (wk + passes - 1) / passes : 0;
  if (wk + wi <= 64) {
    // One word per row: the compressed key above the row index. Sorting
    // the key's bits alone keeps equal keys in row order (LSD is stable).
    parallel_for(nt, n, 32768, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) a[size_t(i)] = pack.compress(keys[i]) << wi | uint64_t(i);
    });
    for (int p = 0; p < passes; ++p) {
      const int shift = wi + p * digit_bits, bits = std::min(digit_bits, wi + wk - shift);
      const uint64_t mask = (uint64_t{1} << bits) - 1;
      counting_pass(a.data(), b.data(), n, 1 << bits, nt, hist, [=](uint64_t v) { return size_t((v >> shift) & mask); });
      a.swap(b);
    }
    const uint64_t index = (uint64_t{1} << wi) - 1;
    parallel_for(nt, n, 32768, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) order[i] = int32_t(a[size_t(i)] & index);
    });
    return;
  }
  // Keys too spread for that (rows far apart in batch and every axis):
  // compressed keys sorted with their rows alongside, as row-indexed words.
  std::vector<uint64_t, CachedAllocator<uint64_t>> ck(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ck[size_t(i)] = pack.compress(keys[i]), a[size_t(i)] = uint64_t(i);
  for (int p = 0; p < passes; ++p) {
    const int shift = p * digit_bits, bits = std::min(digit_bits, wk - shift);
    const uint64_t mask = (uint64_t{1} << bits) - 1;
    counting_pass(a.data(), b.data(), n, 1 << bits, nt, hist,
                  [&](uint64_t row) { return size_t((ck[size_t(row)] >> shift) & mask); });
    a.swap(b);
  }
  for (int64_t i = 0; i < n; ++i) order[i] = int32_t(a[size_t(i)]);
}

}  // namespace sparta
