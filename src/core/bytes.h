// Read-only bytes kept alive by their owner: a string made here, or a
// region of a mapped file (a compiled model's packed weights, used in place).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace sparta {

struct Bytes {
  std::shared_ptr<const void> owner;
  const uint8_t* data = nullptr;
  size_t size = 0;

  bool empty() const { return size == 0; }
  std::string str() const { return std::string(reinterpret_cast<const char*>(data), size); }
  static Bytes of(std::string s) {
    auto p = std::make_shared<std::string>(std::move(s));
    return {p, reinterpret_cast<const uint8_t*>(p->data()), p->size()};
  }
  // Bytes owned elsewhere (the caller keeps `owner` alive through them).
  static Bytes view(std::shared_ptr<const void> owner, const void* data, size_t size) {
    return {std::move(owner), static_cast<const uint8_t*>(data), size};
  }
};

}  // namespace sparta
