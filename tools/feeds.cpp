#include "tools/feeds.h"

#include "core/error.h"
#include "core/npy.h"
#include "frontend/onnx_import.h"

namespace sparta::tools {

std::map<std::string, Tensor> read_feeds(const std::vector<std::string>& specs) {
  std::map<std::string, Tensor> feeds;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    SPARTA_CHECK(eq != std::string::npos && eq > 0, "--input '", spec, "' must look like NAME=FILE.npy");
    const std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
    const bool pb = file.size() > 3 && file.compare(file.size() - 3, 3, ".pb") == 0;
    feeds[name] = pb ? read_onnx_tensor_file(file) : read_npy(file);
  }
  return feeds;
}

void add_default_feeds(const CompiledModel& m, std::map<std::string, Tensor>& feeds) {
  for (const Value* in : m.graph.inputs) {
    if (feeds.count(in->name)) continue;
    // A compiled dynamic model: zeros of the shape it was compiled for.
    if (auto c = m.compiled_shapes.find(in->name); c != m.compiled_shapes.end() && in->dtype) {
      feeds[in->name] = Tensor(*in->dtype, Shape(c->second));
      continue;
    }
    SPARTA_CHECK(in->dtype && in->dims, "input '", in->name, "' has no static type; give it with --input");
    for (int64_t v : *in->dims)
      SPARTA_CHECK(v >= 0, "input '", in->name, "' has a dynamic shape ", in->shape_str(), "; give it with --input");
    feeds[in->name] = Tensor(*in->dtype, Shape(*in->dims));
  }
}

}  // namespace sparta::tools
