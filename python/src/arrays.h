// numpy arrays to and from sparta's tensors, for the extension's bindings.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace sparta::python {

namespace py = pybind11;

inline DType dtype_of(const py::dtype& d, const std::string& what) {
  if (d.is(py::dtype::of<float>())) return DType::f32;
  if (d.is(py::dtype::of<int64_t>())) return DType::i64;
  if (d.is(py::dtype::of<int32_t>())) return DType::i32;
  if (d.is(py::dtype::of<int8_t>())) return DType::i8;
  if (d.is(py::dtype::of<uint8_t>())) return DType::u8;
  if (d.is(py::dtype::of<bool>())) return DType::boolean;
  throw Error(what + " has numpy dtype " + std::string(py::str(static_cast<const py::handle&>(d))) +
              "; sparta takes float32, int64, int32, int8, uint8 or bool");
}

inline py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::f32: return py::dtype::of<float>();
    case DType::i64: return py::dtype::of<int64_t>();
    case DType::i32: return py::dtype::of<int32_t>();
    case DType::i8: return py::dtype::of<int8_t>();
    case DType::u8: return py::dtype::of<uint8_t>();
    case DType::boolean: return py::dtype::of<bool>();
    default: throw Error(std::string("an output of dtype ") + std::string(dtype_name(t)) + " has no numpy equivalent");
  }
}

inline Tensor tensor_of(const py::array& a, const std::string& what) {
  const DType t = dtype_of(a.dtype(), what);
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  Tensor out(t, Shape(dims), Uninitialized{});
  const py::array c = py::array::ensure(a, py::array::c_style);
  SPARTA_CHECK(c, what, ": cannot make a C-contiguous copy");
  if (out.nbytes()) std::memcpy(out.raw(), c.data(), out.nbytes());
  return out;
}

// A numpy array over the tensor's storage (no copy; the array keeps it alive).
inline py::array array_of(const Tensor& t) {
  auto* keep = new std::shared_ptr<void>(t.storage());
  py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  std::vector<py::ssize_t> shape(t.shape().dims().begin(), t.shape().dims().end());
  return py::array(numpy_dtype(t.dtype()), shape, t.raw(), owner);
}

// The sparse 3-D tensor and convolution bindings (sparse3d.cpp).
void bind_sparse3d(py::module_& m);

}  // namespace sparta::python
