#include "core/tensor.h"

#include <cstdlib>

namespace sparta {

void AlignedFree::operator()(void* p) const { std::free(p); }

std::shared_ptr<void> aligned_alloc_shared(size_t bytes, bool zero) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  SPARTA_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes");
  if (zero) std::memset(p, 0, rounded);
  return std::shared_ptr<void>(p, AlignedFree{});
}

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), data_(aligned_alloc_shared(nbytes())) {}

Tensor::Tensor(DType dtype, Shape shape, Uninitialized)
    : dtype_(dtype), shape_(std::move(shape)), data_(aligned_alloc_shared(nbytes(), false)) {}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_, Uninitialized{});
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  SPARTA_CHECK(shape.numel() == numel(), "cannot reshape ", shape_.str(), " to ", shape.str());
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

}  // namespace sparta
