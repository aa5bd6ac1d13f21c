// A fast 64-bit hash for checksums and digests (four independent lanes of
// multiply-rotate rounds, 32 bytes a step, so that it runs near memory
// speed). Not cryptographic: it detects corruption and names contents.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sparta {

uint64_t hash64(const void* data, size_t bytes, uint64_t seed = 0);
inline uint64_t hash64(std::string_view s, uint64_t seed = 0) { return hash64(s.data(), s.size(), seed); }

// Incremental form: feed() parts in order; value() equals hash64 of the
// concatenation only when every part but the last has a size that is a
// multiple of 32 bytes (callers hash sections, not arbitrary splits).
class Hasher {
 public:
  explicit Hasher(uint64_t seed = 0);
  void feed(const void* data, size_t bytes);
  uint64_t value() const;

 private:
  uint64_t lane_[4];
  uint64_t total_ = 0;
  uint64_t tail_ = 0;  // hash of a trailing partial step
  bool has_tail_ = false;
};

std::string hex64(uint64_t v);  // 16 lowercase hex digits

}  // namespace sparta
