// sparta._sparta's sparse 3-D tensors and convolutions (runtime/sparse_conv3d.h);
// python/sparta/sparse.py gives them their Python signatures.
#include <pybind11/stl.h>

#include "arrays.h"
#include "data/scenes.h"
#include "runtime/sparse_conv3d.h"
#include "runtime/sparse_nets.h"

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

// A layer call: weight and bias from numpy, then layer(x, w, b, o) without
// the GIL.
template <class Layer>
VoxelTensor call_layer(Layer layer, const VoxelTensor& x, const py::array& weight, const std::optional<py::array>& bias,
                       const SparseConv3dOptions& o) {
  const Tensor w = tensor_of(weight, "weight");
  const Tensor b = bias ? tensor_of(*bias, "bias") : Tensor();
  py::gil_scoped_release nogil;
  return layer(x, w, b, o);
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
        // Given, it must be a whole extent (an empty list is no grid).
        SPARTA_CHECK(!shape || !shape->empty(), "spatial_shape must have 3 values (x, y, z), got 0");
        const auto extent = grid_extent(shape.value_or(std::vector<int64_t>{}));
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
        o.threads = threads;
        return call_layer(sparse_conv3d, x, weight, bias, o);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
      py::arg("subm"), py::arg("relu"), py::arg("threads"));
  py::class_<SparseNet>(m, "SparseNet")
      .def(
          "forward",
          [](const SparseNet& n, const VoxelTensor& x, int threads) {
                py::gil_scoped_release nogil;
            return n.forward(x, threads);
          },
          py::arg("x"), py::arg("threads"))
      .def_property_readonly("name", &SparseNet::name)
      .def_property_readonly("layers", &SparseNet::layers);
  m.def(
      "sparse_net",
      [](const std::string& kind, const py::dict& state, int64_t in_channels, int64_t num_classes,
         const std::vector<int64_t>& channels) -> std::unique_ptr<SparseNet> {
        StateDict sd;
        for (const auto& [k, v] : state) {
          const std::string name = py::str(k);
          const py::array arr = py::array::ensure(v);
          SPARTA_CHECK(arr, "state_dict entry '", name, "' is not an array");
          sd[name] = tensor_of(arr, name);
        }
        return make_sparse_net({kind, in_channels, num_classes, channels}, sd);
      },
      py::arg("kind"), py::arg("state"), py::arg("in_channels"), py::arg("num_classes"), py::arg("channels"));
  m.def(
      "random_net_state",
      [](const std::string& kind, int64_t in_channels, int64_t num_classes, const std::vector<int64_t>& channels,
         uint64_t seed) {
        const StateDict sd = random_sparse_net_state({kind, in_channels, num_classes, channels}, seed);
        py::dict d;
        for (const auto& [k, v] : sd) d[py::str(k)] = array_of(v);
        return d;
      },
      py::arg("kind"), py::arg("in_channels"), py::arg("num_classes"), py::arg("channels"), py::arg("seed"));
  m.def(
      "with_feats",
      [](const VoxelTensor& t, const py::array& feats) { return with_feats(t, tensor_of(feats, "feats")); },
      py::arg("t"), py::arg("feats"));
  m.def(
      "make_scene",
      [](const std::string& name, int64_t voxels, uint64_t seed) {
        VoxelGrid g;
        {
          py::gil_scoped_release nogil;
          g = make_scene(name, voxels, seed);
        }
        return py::make_tuple(array_of(g.coords), py::make_tuple(g.extent[0], g.extent[1], g.extent[2]));
      },
      py::arg("name"), py::arg("voxels"), py::arg("seed"));
  m.def(
      "sparse_inverse_conv3d",
      [](const VoxelTensor& y, const py::array& weight, const std::optional<py::array>& bias, bool relu, int threads) {
        SparseConv3dOptions o;
        o.relu = relu;
        o.threads = threads;
        return call_layer(sparse_inverse_conv3d, y, weight, bias, o);
      },
      py::arg("y"), py::arg("weight"), py::arg("bias"), py::arg("relu"), py::arg("threads"));
}

}  // namespace sparta::python
