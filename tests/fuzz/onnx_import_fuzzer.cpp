// libFuzzer target: any byte string given to the ONNX importer, then to shape
// inference, TeSA propagation (on values of up to 64K elements) and the
// printer, either works or raises sparta::Error. A crash, a sanitizer
// report, a hang or any other exception is a bug.
#include <cstddef>
#include <cstdint>

#include "analysis/shape_inference.h"
#include "analysis/tesa_propagation.h"
#include "core/error.h"
#include "frontend/onnx_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    sparta::Graph g = sparta::import_onnx_bytes(data, size, "fuzz.onnx");
    sparta::infer_shapes(g);
    sparta::PropagationOptions opt;
    opt.max_elements = 1 << 16;
    (void)sparta::propagate_tesa(g, opt);
    (void)g.dump();
  } catch (const sparta::Error&) {
  }
  return 0;
}
