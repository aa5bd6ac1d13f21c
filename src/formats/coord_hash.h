// Voxel coordinates of a sparse 3-D tensor and the hash table that finds a
// voxel's row from its coordinates: the index every sparse convolution's
// kernel map is built from (formats/kernel_map.h).
//
// A coordinate (batch, x, y, z) packs into one 64-bit key, 16 bits each:
// batch in [0, 65535), x, y, z in [-32768, 32767]. The packing keeps order:
// sorting keys sorts voxels by batch, then x, then y, then z.
//
// The table is open addressing over buckets of 8 keys (one 64-byte cache
// line): a lookup reads one line, compares its 8 keys, and moves to the
// next line only when this one is full without a match. Building is
// threaded: slots are claimed with a compare-and-swap, so no lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sparta {

struct Coord {
  int32_t b = 0, x = 0, y = 0, z = 0;
  bool operator==(const Coord& o) const { return b == o.b && x == o.x && y == o.y && z == o.z; }
  std::string str() const;  // "(b, x, y, z)"
};

inline constexpr int32_t kCoordMin = -32768, kCoordMax = 32767;  // x, y, z
inline constexpr int32_t kBatchMax = 65534;                       // batch in [0, kBatchMax]

// Whether c is inside the packable range.
inline bool coord_in_range(const Coord& c) {
  return c.b >= 0 && c.b <= kBatchMax && c.x >= kCoordMin && c.x <= kCoordMax && c.y >= kCoordMin &&
         c.y <= kCoordMax && c.z >= kCoordMin && c.z <= kCoordMax;
}
inline uint64_t pack_coord(const Coord& c) {
  return (uint64_t(uint32_t(c.b)) << 48) | (uint64_t(uint32_t(c.x - kCoordMin)) << 32) |
         (uint64_t(uint32_t(c.y - kCoordMin)) << 16) | uint64_t(uint32_t(c.z - kCoordMin));
}
inline Coord unpack_coord(uint64_t k) {
  return {int32_t(k >> 48), int32_t((k >> 32) & 0xFFFF) + kCoordMin, int32_t((k >> 16) & 0xFFFF) + kCoordMin,
          int32_t(k & 0xFFFF) + kCoordMin};
}

class CoordHash {
 public:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // batch 65535: never a packed coordinate
  static constexpr int kBucket = 8;

  CoordHash() : CoordHash(0) {}  // one empty bucket: safe to query
  // An empty table for up to `capacity` keys (at most half full).
  explicit CoordHash(int64_t capacity);

  // Inserts keys[i] -> i for i in [0, n) (threaded). Returns -1, or the
  // first row (smallest index) whose key an earlier row already has; the
  // table is then incomplete and must not be used.
  int64_t insert_rows(const uint64_t* keys, int64_t n, int threads);
  // Inserts one key with value v unless present; returns the value stored
  // for the key (v if it was new). Safe to call from several threads.
  int32_t insert(uint64_t key, int32_t v);
  // The value stored for key, or -1.
  // The bucket's 8 keys are compared at once (the compiler vectorizes the
  // fixed loop; no branch per slot to mispredict).
  int32_t find(uint64_t key) const {
    size_t b = bucket_of(key);
    for (;;) {
      const uint64_t* k = &keys_[b * kBucket];
      unsigned hit = 0, empty = 0;
      for (int s = 0; s < kBucket; ++s) {
        hit |= unsigned(k[s] == key) << s;
        empty |= unsigned(k[s] == kEmpty) << s;
      }
      if (hit) return vals_[b * kBucket + size_t(__builtin_ctz(hit))];
      if (empty) return -1;
      b = (b + 1) & mask_;
    }
  }
  int64_t size() const;            // keys stored (counts them: for tests and reports)
  template <class F>
  void for_each_key(F f) const {
    for (uint64_t k : keys_)
      if (k != kEmpty) f(k);
  }
  int64_t slots() const { return int64_t(keys_.size()); }

 private:
  size_t bucket_of(uint64_t key) const {
    // Fibonacci hashing of a mix of the key: neighbouring voxels land in
    // unrelated buckets.
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return size_t(h >> shift_) & mask_;
  }
  std::vector<uint64_t> keys_;
  std::vector<int32_t> vals_;
  size_t mask_ = 0;
  int shift_ = 64;
};

}  // namespace sparta
