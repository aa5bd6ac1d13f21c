#include "formats/coord_hash.h"

#include <algorithm>
#include <atomic>
#include <bit>

#include "core/error.h"
#include "kernels/parallel.h"

namespace sparta {

std::string Coord::str() const {
  return "(" + std::to_string(b) + ", " + std::to_string(x) + ", " + std::to_string(y) + ", " + std::to_string(z) +
         ")";
}

CoordHash::CoordHash(int64_t capacity) {
  SPARTA_CHECK(capacity >= 0 && capacity < (int64_t{1} << 31), "a coordinate table holds up to 2^31 - 1 voxels, asked for ",
               capacity);
  const uint64_t buckets = std::bit_ceil(uint64_t(std::max<int64_t>(1, (2 * capacity + kBucket - 1) / kBucket)));
  keys_.assign(buckets * kBucket, kEmpty);
  vals_.assign(buckets * kBucket, -1);
  mask_ = size_t(buckets - 1);
  shift_ = 64 - std::countr_zero(buckets);
  if (buckets == 1) shift_ = 63;  // h >> 63 is 0 or 1: masked below by the probe
}

int32_t CoordHash::insert(uint64_t key, int32_t v) {
  SPARTA_ASSERT(key != kEmpty, "the empty key is not a coordinate");
  size_t b = bucket_of(key);
  for (size_t probes = 0; probes <= mask_; ++probes) {
    for (int s = 0; s < kBucket; ++s) {
      const size_t i = b * kBucket + size_t(s);
      std::atomic_ref<uint64_t> slot(keys_[i]);
      uint64_t cur = slot.load(std::memory_order_acquire);
      if (cur == kEmpty) {
        if (slot.compare_exchange_strong(cur, key, std::memory_order_acq_rel)) {
          std::atomic_ref<int32_t>(vals_[i]).store(v, std::memory_order_release);
          return v;
        }
        // another thread took the slot: cur now holds its key
      }
      if (cur == key) {
        // Present: its value may still be being written by the thread that
        // claimed the slot.
        std::atomic_ref<int32_t> val(vals_[i]);
        int32_t got;
        while ((got = val.load(std::memory_order_acquire)) < 0) {
        }
        return got;
      }
    }
    b = (b + 1) & mask_;
  }
  SPARTA_ASSERT(false, "coordinate table full (", keys_.size(), " slots)");
  return -1;
}

int64_t CoordHash::insert_rows(const uint64_t* keys, int64_t n, int threads) {
  SPARTA_CHECK(n <= (slots() + 1) / 2, "coordinate table for ", slots() / 2, " voxels given ", n);
  std::atomic<int64_t> first_dup{-1};
  const int nt = int(std::clamp<int64_t>(n / 16384, 1, std::max(1, threads)));
  parallel_parts(nt, n, [&](int tid, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      if (insert(keys[i], int32_t(i)) != int32_t(i)) {
        int64_t cur = first_dup.load();
        while ((cur < 0 || i < cur) && !first_dup.compare_exchange_weak(cur, i)) {
        }
      }
  });
  const int64_t d = first_dup.load();
  if (d < 0) return -1;
  // Which of two equal rows claimed the slot depends on the threads: the
  // row reported is the first that repeats an earlier one, found again in
  // order.
  CoordHash seq(n);
  for (int64_t i = 0; i < n; ++i)
    if (seq.insert(keys[i], int32_t(i)) != int32_t(i)) return i;
  return d;
}

int64_t CoordHash::size() const {
  return std::count_if(keys_.begin(), keys_.end(), [](uint64_t k) { return k != kEmpty; });
}

}  // namespace sparta
