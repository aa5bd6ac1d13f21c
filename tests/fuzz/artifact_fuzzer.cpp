// libFuzzer target: the compiled-model (.sparta) loader. The input's
// header gets its file size and checksum made valid first, so that the
// fuzzer reaches the checks after them (the section table, the metadata,
// every reference, shape and plan). Loading works or raises sparta::Error;
// a crash, a sanitizer report, a hang or any other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "runtime/artifact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto image = std::make_shared<std::vector<uint8_t>>(data, data + size);
  if (size >= 64) {
    const uint64_t n = size;
    std::memcpy(image->data() + 16, &n, 8);
    sparta::reseal_artifact(image->data(), image->size());
  }
  try {
    (void)sparta::load_compiled_bytes(image, image->data(), image->size(), 1, "fuzz.sparta");
  } catch (const sparta::Error&) {
  }
  return 0;
}
