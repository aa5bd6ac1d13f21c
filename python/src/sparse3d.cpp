// sparta._sparta's sparse 3-D tensors and convolutions (runtime/sparse_conv3d.h);
// python/sparta/sparse.py gives them their Python signatures.
#include <pybind11/stl.h>

#include "arrays.h"
#include "runtime/sparse_conv3d.h"

namespace sparta::python {
namespace {

std::array<int, 3> triple(const std::vector<int64_t>& v, const char* what) {
  SPARTA_CHECK(v.size() == 3, what, " must have 3 values (x, y, z), got ", v.size());
  for (int64_t e : v) SPARTA_CHECK(e >= -(int64_t{1} << 30) && e <= (int64_t{1} << 30), what, " value ", e, " is out of range");
  return {int(v[0]), int(v[1]), int(v[2])};
}

DuplicateCoords duplicates_of(const std::string& s) {
  if (s == "error") return DuplicateCoords::error;
  if (s == "sum") return DuplicateCoords::sum;
  if (s == "mean") return DuplicateCoords::mean;
  throw Error("duplicates must be 'error', 'sum' or 'mean', not '" + s + "'");
}

}  // namespace

void bind_sparse3d(py::module_& m) {
  py::class_<VoxelTensor>(m, "VoxelTensor")
      .def_property_readonly("coords", [](const VoxelTensor& t) { return array_of(t.sites->coords); })
      .def_property_readonly("feats", [](const VoxelTensor& t) { return array_of(t.feats); })
      .def_property_readonly("stride", [](const VoxelTensor& t) { return t.sites->stride; })
      .def_property_readonly("spatial_shape", [](const VoxelTensor& t) -> py::object {
        if (!t.sites->extent) return py::none();
        return py::cast(*t.sites->extent);
      });
  m.def(
      "voxel_tensor",
      [](const py::array& coords, const py::array& feats, const std::optional<std::vector<int64_t>>& shape,
         const std::string& duplicates, int threads) {
        const Tensor c = tensor_of(coords, "coords"), f = tensor_of(feats, "feats");
        std::optional<std::array<int64_t, 3>> extent;
        if (shape) {
          SPARTA_CHECK(shape->size() == 3, "spatial_shape must have 3 values (x, y, z), got ", shape->size());
          extent = std::array<int64_t, 3>{(*shape)[0], (*shape)[1], (*shape)[2]};
        }
        const DuplicateCoords d = duplicates_of(duplicates);
        py::gil_scoped_release nogil;
        return make_voxel_tensor(c, f, extent, d, threads);
      },
      py::arg("coords"), py::arg("feats"), py::arg("spatial_shape"), py::arg("duplicates"), py::arg("threads"));
  m.def(
      "sparse_conv3d",
      [](const VoxelTensor& x, const py::array& weight, const std::optional<py::array>& bias,
         const std::vector<int64_t>& stride, const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
         bool subm, bool relu, int threads) {
        SparseConv3dOptions o;
        o.geometry.stride = triple(stride, "stride");
        o.geometry.pad = triple(padding, "padding");
        o.geometry.dil = triple(dilation, "dilation");
        o.geometry.subm = subm;
        o.relu = relu;
        SPARTA_CHECK(threads >= 1 && threads <= 1024, "threads must be in [1, 1024], not ", threads);
        o.threads = threads;
        const Tensor w = tensor_of(weight, "weight");
        const Tensor b = bias ? tensor_of(*bias, "bias") : Tensor();
        py::gil_scoped_release nogil;
        return sparse_conv3d(x, w, b, o);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
      py::arg("subm"), py::arg("relu"), py::arg("threads"));
  m.def(
      "sparse_inverse_conv3d",
      [](const VoxelTensor& y, const py::array& weight, const std::optional<py::array>& bias, bool relu, int threads) {
        SparseConv3dOptions o;
        o.relu = relu;
        SPARTA_CHECK(threads >= 1 && threads <= 1024, "threads must be in [1, 1024], not ", threads);
        o.threads = threads;
        const Tensor w = tensor_of(weight, "weight");
        const Tensor b = bias ? tensor_of(*bias, "bias") : Tensor();
        py::gil_scoped_release nogil;
        return sparse_inverse_conv3d(y, w, b, o);
      },
      py::arg("y"), py::arg("weight"), py::arg("bias"), py::arg("relu"), py::arg("threads"));
}

}  // namespace sparta::python
