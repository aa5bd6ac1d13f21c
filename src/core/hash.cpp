#include "core/hash.h"

#include <cstdio>
#include <cstring>

namespace sparta {
namespace {

constexpr uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull,
                   P4 = 0x85EBCA77C2B2AE63ull;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint64_t round(uint64_t acc, uint64_t w) { return rotl(acc + w * P2, 31) * P1; }
inline uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

}  // namespace

Hasher::Hasher(uint64_t seed) : lane_{seed + P1 + P2, seed + P2, seed, seed - P1} {}

void Hasher::feed(const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 32 <= bytes; i += 32) {
    lane_[0] = round(lane_[0], load64(p + i));
    lane_[1] = round(lane_[1], load64(p + i + 8));
    lane_[2] = round(lane_[2], load64(p + i + 16));
    lane_[3] = round(lane_[3], load64(p + i + 24));
  }
  total_ += bytes;
  if (i < bytes) {  // the last, partial step: 8-byte words, then single bytes
    uint64_t t = P4 ^ (bytes - i);
    for (; i + 8 <= bytes; i += 8) t = round(t, load64(p + i));
    for (; i < bytes; ++i) t = rotl(t ^ (p[i] * P4), 11) * P1;
    tail_ = has_tail_ ? round(tail_, t) : t;
    has_tail_ = true;
  }
}

uint64_t Hasher::value() const {
  uint64_t h = rotl(lane_[0], 1) + rotl(lane_[1], 7) + rotl(lane_[2], 12) + rotl(lane_[3], 18);
  for (uint64_t l : lane_) h = (h ^ round(0, l)) * P1 + P4;
  h += total_;
  if (has_tail_) h = round(h, tail_);
  return mix(h);
}

uint64_t hash64(const void* data, size_t bytes, uint64_t seed) {
  Hasher h(seed);
  h.feed(data, bytes);
  return h.value();
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace sparta
