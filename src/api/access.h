// How the public API's types (include/sparta) reach the internals they
// wrap: an NDArray shares its storage with a Tensor both ways, no copy.
#pragma once

#include "core/tensor.h"
#include "sparta/sparta.h"

namespace sparta {

struct Access {
  static DType internal(DataType t) { return static_cast<DType>(static_cast<uint8_t>(t)); }
  static DataType external(DType t) { return static_cast<DataType>(static_cast<uint8_t>(t)); }
  static Tensor tensor(const NDArray& a) { return Tensor(internal(a.type_), Shape(a.shape_), a.data_); }
  static NDArray array(const Tensor& t) {
    NDArray a;
    a.type_ = external(t.dtype());
    a.shape_ = t.shape().dims();
    a.data_ = t.storage();
    return a;
  }
};

}  // namespace sparta
