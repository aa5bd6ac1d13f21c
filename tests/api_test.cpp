// The public API (include/sparta/sparta.h, sparse3d.h): arrays share data
// with the runtime, a compiled model runs, saves and loads, sparse 3-D
// convolutions run, errors are sparta::Error.
#include <gtest/gtest.h>

#include <filesystem>

#include "onnx_models.h"
#include "sparta/sparse3d.h"
#include "sparta/sparta.h"
#include "test_util.h"

namespace sparta {
namespace {

TEST(Api, NDArrayChecksItsType) {
  NDArray a = NDArray::of<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(a.size(), 6);
  EXPECT_EQ(a.data<float>()[4], 5.f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw()) % 64, 0u);
  testing::expect_error([&] { a.data<int64_t>(); }, {"holds f32, not i64"});
  testing::expect_error([] { NDArray::of<float>({2, 2}, {1, 2, 3}); }, {"3 values for 4 elements"});
  testing::expect_error([] { NDArray(DataType::f32, {2, -1}); }, {"negative extent"});
  EXPECT_EQ(NDArray(DataType::i64, {4}).data<int64_t>()[3], 0);
  EXPECT_STREQ(data_type_name(DataType::boolean), "bool");
}

TEST(Api, CompileRunSaveLoad) {
  const std::string bytes = testing::serialize(testing::mlp_model());
  Model m = Model::compile_bytes(bytes.data(), bytes.size(), {.threads = 1, .shapes = {{"x", {2, 8}}}});
  ASSERT_EQ(m.inputs().size(), 1u);
  EXPECT_EQ(m.inputs()[0].name, "x");
  EXPECT_EQ(m.inputs()[0].shape, (std::vector<int64_t>{-1, 8}));
  EXPECT_EQ(m.outputs()[0].name, "y");
  EXPECT_NE(m.report_json().find("\"layers\""), std::string::npos);
  const std::string path = (std::filesystem::temp_directory_path() / ("sparta_api_" + std::to_string(::getpid()) + ".sparta")).string();
  m.save(path);
  NDArray x(DataType::f32, {3, 8});
  for (int64_t i = 0; i < x.size(); ++i) x.data<float>()[i] = 0.1f * static_cast<float>(i % 5);
  Session a(std::move(m)), b(Model::load(path));
  const auto ya = a.run({{"x", x}}), yb = b.run({{"x", x}});
  ASSERT_EQ(ya.at("y").shape(), (std::vector<int64_t>{3, 4}));
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(ya.at("y").data<float>()[i], yb.at("y").data<float>()[i]);
  testing::expect_error([&] { a.run({}); }, {"missing input 'x'"});
  testing::expect_error([&] { a.run({{"x", NDArray(DataType::i64, {3, 8})}}); }, {"must be f32"});
  testing::expect_error([&] { m.save(path); }, {"moved-from"});
  std::filesystem::remove(path);
  testing::expect_error([] { Model::load("/nonexistent.sparta"); }, {"cannot open"});
  testing::expect_error([] { Model::compile("/nonexistent.onnx"); }, {"nonexistent.onnx"});
}

// Three voxels in a row along x, one channel: a submanifold 3x3x3 layer of
// all-ones weights sums each voxel's neighbours (itself included); a
// stride-2 2x2x2 layer groups (0, 1) and (2); the inverse layer brings the
// sums back to the three voxels.
TEST(Api, SparseConvolution) {
  const NDArray coords = NDArray::of<int32_t>({3, 4}, {0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0});
  const NDArray feats = NDArray::of<float>({3, 1}, {1, 2, 4});
  const SparseTensor x(coords, feats);
  EXPECT_EQ(x.size(), 3);
  const NDArray ones = NDArray::of<float>({3, 3, 3, 1, 1}, std::vector<float>(27, 1.f));
  const SparseTensor y = sparse_conv3d(x, ones, {.subm = true});
  EXPECT_EQ(y.coords().data<int32_t>(), x.coords().data<int32_t>());  // the same sites, shared
  EXPECT_EQ(y.feats().data<float>()[0], 3.f);
  EXPECT_EQ(y.feats().data<float>()[1], 7.f);
  EXPECT_EQ(y.feats().data<float>()[2], 6.f);
  const NDArray ones2 = NDArray::of<float>({2, 2, 2, 1, 1}, std::vector<float>(8, 1.f));
  const SparseTensor d = sparse_conv3d(x, ones2, {.stride = {2, 2, 2}});
  ASSERT_EQ(d.size(), 2);
  EXPECT_EQ(d.feats().data<float>()[0], 3.f);
  EXPECT_EQ(d.feats().data<float>()[1], 4.f);
  const SparseTensor u = sparse_inverse_conv3d(d, ones2, {}, NDArray::of<float>({1}, {0.5f}));
  ASSERT_EQ(u.size(), 3);
  EXPECT_EQ(u.feats().data<float>()[1], 3.5f);
  EXPECT_EQ(u.feats().data<float>()[2], 4.5f);
  testing::expect_error([&] { SparseTensor(coords, NDArray::of<float>({2, 1}, {1, 2})); }, {"3 rows, features 2"});
  testing::expect_error([&] { sparse_conv3d(x, ones, {.subm = true}, NDArray::of<float>({2}, {1, 2})); }, {"bias"});
  testing::expect_error([&] { SparseNetwork::second_encoder({}, 4); }, {"state_dict has no"});
}

}  // namespace
}  // namespace sparta
