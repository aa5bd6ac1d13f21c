#include "core/shape.h"

#include "core/error.h"

namespace sparta {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {
  for (int64_t d : dims_) {
    SPARTA_CHECK(d >= 0, "shape ", str(), " has a negative extent");
    SPARTA_CHECK(d == 0 || numel_ <= (int64_t{1} << 48) / d, "shape ", str(), " is too large");
    numel_ *= d;
  }
}

std::string Shape::str() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

}  // namespace sparta
