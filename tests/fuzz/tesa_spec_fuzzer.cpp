// libFuzzer target: TeSA specs. The first byte chooses what the rest is: the
// spec's JSON text (parsed and checked field by field; mask files are not
// opened), or a mask's .npy bytes. Either works or raises sparta::Error; a
// crash, a sanitizer report, a hang or any other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "frontend/tesa_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      (void)sparta::parse_tesa_spec(rest, "/nonexistent", "fuzz.json", /*read_masks=*/false);
    } else {
      sparta::Shape shape;
      (void)sparta::mask_from_npy(rest, "fuzz.npy", &shape);
    }
  } catch (const sparta::Error&) {
  }
  return 0;
}
