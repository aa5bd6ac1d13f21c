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
  const DuplicateCoords d = duplicates == Duplicates::sum    ? DuplicateCoords::sum
                            : duplicates == Duplicates::mean ? DuplicateCoords::mean
                                                             : DuplicateCoords::error;
  impl_ = std::make_shared<const Impl>(
      Impl{make_voxel_tensor(Access::tensor(coords), Access::tensor(feats), grid_extent(spatial_shape), d, threads)});
}

NDArray SparseTensor::coords() const { return Access::array(impl_->t.sites->coords); }
NDArray SparseTensor::feats() const { return Access::array(impl_->t.feats); }
int64_t SparseTensor::size() const { return impl_->t.sites->size(); }

SparseTensor SparseTensor::replace_feats(const NDArray& feats) const {
  return wrap(with_feats(impl_->t, Access::tensor(feats)));
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
  auto impl = std::make_shared<Impl>();
  impl->net = make_sparse_net({"minkunet", in_channels, num_classes, {}}, state_of(state));
  return SparseNetwork(std::move(impl));
}

SparseNetwork SparseNetwork::second_encoder(const std::map<std::string, NDArray>& state, int64_t in_channels) {
  auto impl = std::make_shared<Impl>();
  impl->net = make_sparse_net({"second", in_channels, 1, {}}, state_of(state));
  return SparseNetwork(std::move(impl));
}

SparseTensor SparseNetwork::operator()(const SparseTensor& x, int threads) const {
  return wrap(impl_->net->forward(x.impl().t, threads));
}

int SparseNetwork::layers() const { return impl_->net->layers(); }

}  // namespace sparta
