// A model's inputs on the command line: --input NAME=FILE.npy (or ONNX .pb)
// options, and zeros for the inputs a benchmark is not given.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "runtime/compiled_model.h"

namespace sparta::tools {

std::map<std::string, Tensor> read_feeds(const std::vector<std::string>& specs);

// Every input of m not in feeds gets zeros of its static shape, or of the
// shape a dynamic model was compiled for; sparta::Error naming the input
// when it has neither.
void add_default_feeds(const CompiledModel& m, std::map<std::string, Tensor>& feeds);

}  // namespace sparta::tools
