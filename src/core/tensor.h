// Tensor: a dense, contiguous, row-major, 64-byte aligned buffer with a dtype
// and a shape. Copies share storage (like a handle); clone() copies data.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace sparta {

// 64-byte aligned allocation, so that a row start is a cache-line start and
// full-width vector loads never split lines at the tensor's beginning.
// (Tensors wrapping adopted storage may only be 16-byte aligned; kernels use
// unaligned loads throughout.)
// Blocks of 64 KB and more are recycled (see tensor.cpp).
struct AlignedFree {
  size_t bytes = 0;  // the allocated size class
  void operator()(void* p) const;
};
std::shared_ptr<void> aligned_alloc_shared(size_t bytes, bool zero = true);

// Raw blocks from the same cache as tensor storage (64-byte aligned, not
// zeroed): large blocks come back without a page fault per 4 KB, which a
// fresh allocation pays on first touch. `bytes` must be the same in both.
void* cached_alloc(size_t bytes);
void cached_free(void* p, size_t bytes);

// A std::vector allocator over cached_alloc, for the large index arrays
// made anew on every call (sparse convolution's kernel maps per scan).
template <class T>
struct CachedAllocator {
  using value_type = T;
  CachedAllocator() = default;
  template <class U>
  CachedAllocator(const CachedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(cached_alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { cached_free(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const CachedAllocator<U>&) const { return true; }
};

// Tag for a tensor whose contents the caller overwrites at once.
struct Uninitialized {};
// Tag for a tensor with a shape and no data: a weight of a compiled model
// that lives only in its operator's packed form (reading it is a bug).
struct Elided {};

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);  // zero-initialised
  Tensor(DType dtype, Shape shape, Uninitialized);
  // Wraps storage owned elsewhere (at least nbytes(), 16-byte aligned; a
  // model's weights adopted from the parsed file, not copied).
  Tensor(DType dtype, Shape shape, std::shared_ptr<void> storage);
  Tensor(DType dtype, Shape shape, Elided) : dtype_(dtype), shape_(std::move(shape)) {}

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return numel() == 0; }
  bool defined() const { return data_ != nullptr; }

  // The storage handle (shared with every copy), for wrapping elsewhere.
  const std::shared_ptr<void>& storage() const { return data_; }

  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }

  template <typename T>
  T* data() {
    SPARTA_CHECK(dtype_of<T>::value == dtype_, "tensor holds ", dtype_name(dtype_), ", not ",
                 dtype_name(dtype_of<T>::value));
    SPARTA_ASSERT(data_ || numel() == 0, "read of an elided tensor ", shape_.str());
    return static_cast<T*>(data_.get());
  }
  template <typename T>
  const T* data() const {
    return const_cast<Tensor*>(this)->data<T>();
  }

  // True when no other Tensor shares this storage (so the holder may let an
  // operator write its result into it).
  bool unique_storage() const { return data_.use_count() == 1; }

  Tensor clone() const;
  // Same storage, new shape of equal element count.
  Tensor reshape(Shape shape) const;

 private:
  DType dtype_ = DType::f32;
  Shape shape_;
  std::shared_ptr<void> data_;
};

// The slices of t at the given indices along `axis`, in that order (any
// dtype): what shrinking keeps of a weight.
Tensor select_along(const Tensor& t, int axis, const std::vector<int64_t>& index);

}  // namespace sparta
