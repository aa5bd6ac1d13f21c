// The public sparse 3-D API (include/sparta/sparse3d.h) over
// runtime/sparse_conv3d and runtime/sparse_nets; arrays are shared, not
// copied.
#include "sparta/sparse3d.h"

#include "api/access.h"
#include "core/error.h"
#include "runtime/sparse_conv3d.h"
#include "runtime/sparse_nets.h"

namespace sparta {

struct SparseTensor::Impl {
  VoxelTensor t;
};

struct SparseNetwork::Impl {
  std::unique_ptr<SparseNet> net;
};

namespace {

SparseTensor wrap(VoxelTensor t) { return SparseTensor(std::make_shared<const SparseTensor::Impl>(SparseTensor::Impl{std::move(t)})); }

Tensor optional_tensor(const NDArray& a) { return a.raw() ? Access::tensor(a) : Tensor(); }

SparseConv3dOptions internal(const SparseConvOptions& o) {
  SparseConv3dOptions r;
  r.geometry.stride = o.stride;
  r.geometry.pad = o.padding;
  r.geometry.dil = o.dilation;
  r.geometry.subm = o.subm;
  r.relu = o.relu;
  SPARTA_CHECK(o.threads >= 1 && o.threads <= 1024, "threads must be in [1, 1024], not ", o.threads);
  r.threads = o.threads;
  return r;
}

StateDict state_of(const std::map<std::string, NDArray>& state) {
  StateDict s;
  for (const auto& [name, a] : state) s[name] = Access::tensor(a);
  return s;
}

}  // namespace

SparseTensor::SparseTensor(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

SparseTensor::SparseTensor(const NDArray& coords, const NDArray& feats, std::vector<int64_t> spatial_shape,
                           Duplicates duplicates, int threads) {
  std::optional<std::array<int64_t, 3>> extent;
  if (!spatial_shape.empty()) {
    SPARTA_CHECK(spatial_shape.size() == 3, "spatial_shape must have 3 values (x, y, z), got ", spatial_shape.size());
    extent = std::array<int64_t, 3>{spatial_shape[0], spatial_shape[1], spatial_shape[2]};
  }
  const DuplicateCoords d = duplicates == Duplicates::sum    ? DuplicateCoords::sum
                            : duplicates == Duplicates::mean ? DuplicateCoords::mean
                                                             : DuplicateCoords::error;
  SPARTA_CHECK(threads >= 1 && threads <= 1024, "threads must be in [1, 1024], not ", threads);
  impl_ = std::make_shared<const Impl>(
      Impl{make_voxel_tensor(Access::tensor(coords), Access::tensor(feats), extent, d, threads)});
}

NDArray SparseTensor::coords() const { return Access::array(impl_->t.sites->coords); }
NDArray SparseTensor::feats() const { return Access::array(impl_->t.feats); }
int64_t SparseTensor::size() const { return impl_->t.sites->size(); }

SparseTensor SparseTensor::replace_feats(const NDArray& feats) const {
  const Tensor f = Access::tensor(feats);
  SPARTA_CHECK(f.dtype() == DType::f32 && f.rank() == 2 && f.dim(0) == size(), "features for these sites must be float32 [",
               size(), ", C], got ", dtype_name(f.dtype()), " ", f.shape().str());
  return wrap(VoxelTensor{impl_->t.sites, f});
}

SparseTensor sparse_conv3d(const SparseTensor& x, const NDArray& weight, const SparseConvOptions& o, const NDArray& bias) {
  return wrap(sparse_conv3d(x.impl().t, Access::tensor(weight), optional_tensor(bias), internal(o)));
}

SparseTensor sparse_inverse_conv3d(const SparseTensor& y, const NDArray& weight, const SparseConvOptions& o,
                                   const NDArray& bias) {
  return wrap(sparse_inverse_conv3d(y.impl().t, Access::tensor(weight), optional_tensor(bias), internal(o)));
}

SparseNetwork::SparseNetwork(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

SparseNetwork SparseNetwork::minkunet(const std::map<std::string, NDArray>& state, int64_t in_channels,
                                      int64_t num_classes) {
  MinkUNetConfig c;
  c.in_channels = in_channels, c.num_classes = num_classes;
  auto impl = std::make_shared<Impl>();
  impl->net = make_minkunet(state_of(state), c);
  return SparseNetwork(std::move(impl));
}

SparseNetwork SparseNetwork::second_encoder(const std::map<std::string, NDArray>& state, int64_t in_channels) {
  SecondConfig c;
  c.in_channels = in_channels;
  auto impl = std::make_shared<Impl>();
  impl->net = make_second_encoder(state_of(state), c);
  return SparseNetwork(std::move(impl));
}

SparseTensor SparseNetwork::operator()(const SparseTensor& x, int threads) const {
  SPARTA_CHECK(threads >= 1 && threads <= 1024, "threads must be in [1, 1024], not ", threads);
  return wrap(impl_->net->forward(x.impl().t, threads));
}

int SparseNetwork::layers() const { return impl_->net->layers(); }

}  // namespace sparta
