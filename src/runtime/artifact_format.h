// Internal to runtime/artifact*.cpp: the JSON side of a `.sparta` file
// (graph, values, plans) and the data section's tensor references.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/compiled_model.h"

namespace sparta::artifact {

// Collects byte ranges for the data section, each at a 64-byte aligned
// offset; the ranges must outlive the write.
class DataWriter {
 public:
  uint64_t add(const void* p, size_t bytes);
  uint64_t add(std::string bytes);  // owned here
  uint64_t size() const { return size_; }
  struct Part {
    uint64_t offset;
    const void* p;
    size_t bytes;
  };
  const std::vector<Part>& parts() const { return parts_; }

 private:
  std::vector<Part> parts_;
  std::vector<std::unique_ptr<std::string>> owned_;
  uint64_t size_ = 0;
};

// The data section as loaded: `base` kept alive by `owner`.
struct DataView {
  std::shared_ptr<const void> owner;
  const uint8_t* base = nullptr;
  uint64_t size = 0;
  // The bytes at [offset, offset + bytes), checked to lie inside.
  const uint8_t* at(uint64_t offset, uint64_t bytes, const std::string& what) const;
};

// Integers of the metadata, checked: JSON integers only (a float such as
// 1e30 would be an out-of-range cast), within [lo, hi].
int64_t as_int(const nlohmann::json& j, int64_t lo, int64_t hi, const std::string& what);
std::vector<int64_t> as_ints(const nlohmann::json& j, int64_t lo, int64_t hi, const std::string& what);
uint64_t as_offset(const nlohmann::json& j, const std::string& what);

nlohmann::json graph_to_json(const CompiledModel& m, DataWriter& data);
// Fills m.graph, m.defs and m.plans (loading plans on `threads` threads).
// Throws sparta::Error for anything inconsistent.
void graph_from_json(const nlohmann::json& j, const DataView& data, CompiledModel& m, int threads);

}  // namespace sparta::artifact
