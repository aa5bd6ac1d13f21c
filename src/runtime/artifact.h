// The `.sparta` file: a compiled model saved whole (the transformed graph,
// its weights, every node's chosen kernel with its packed weight, the
// run-time TeSAs and the compile log), so that loading it runs no analysis
// and measures nothing.
//
//   header (64 bytes): magic "SPARTAMD", format version, file size, the
//                      offsets and sizes of the two sections, and a 64-bit
//                      checksum of the whole file (core/hash.h)
//   meta   (JSON):     host, options, graph (values, nodes, attributes,
//                      plans), log; tensors are references into data
//   data   (binary):   weights and packed weights, each 64-byte aligned
//
// Loading maps the file (weights are used in place, not copied), checks
// the header, the size and the checksum before it reads anything else, and
// then every reference, index and shape. A corrupt, truncated, foreign or
// version-mismatched file is one sparta::Error, never a crash. A model
// compiled for a wider ISA than the host's is refused (compile it again
// on this host); one compiled on another CPU model loads with a warning,
// its kernel choices having been measured there.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/compiled_model.h"

namespace sparta {

constexpr uint32_t kArtifactVersion = 1;

// Writes to a temporary name beside `path`, then renames: a failed save
// leaves nothing half-written.
void save_compiled(const CompiledModel& m, const std::string& path);

// threads: the thread count for loading (packing dense weights) and the
// model's default; 0 keeps the one it was compiled for.
CompiledModel load_compiled(const std::string& path, int threads = 0);

// The same from bytes in memory that `owner` keeps alive (the fuzz target's
// entry; load_compiled maps the file and calls this).
CompiledModel load_compiled_bytes(std::shared_ptr<const void> owner, const uint8_t* data, size_t size,
                                  int threads = 0, const std::string& what = "compiled model");

// The file starts with the artifact's magic (a `.sparta` file, as opposed
// to an ONNX model), whatever its name.
bool is_compiled_model_file(const std::string& path);

// Recomputes the checksum field of an artifact image in place (tests and
// the fuzz target make corrupt files that still pass the checksum, to
// reach the checks after it). No-op on an image shorter than the header.
void reseal_artifact(uint8_t* data, size_t size);

}  // namespace sparta
