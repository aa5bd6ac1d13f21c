// Uses sparta through its installed API only: compile an ONNX model, save
// it, load the .sparta file, run both on the same input (ones, with every
// symbolic dim 1) and check that they agree; then a sparse 3-D convolution
// of three voxels in a row (all-ones weights: each voxel's neighbour sum).
//   consumer MODEL.onnx OUT.sparta
#include <sparta/sparse3d.h>
#include <sparta/sparta.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: consumer MODEL.onnx OUT.sparta\n");
    return 2;
  }
  try {
    sparta::Model model = sparta::Model::compile(argv[1], {.threads = 1});
    std::map<std::string, sparta::NDArray> feeds;
    for (const sparta::ValueInfo& in : model.inputs()) {
      std::vector<int64_t> shape = in.shape;
      for (int64_t& d : shape) d = d < 0 ? 1 : d;
      sparta::NDArray a(in.dtype, shape);
      if (in.dtype == sparta::DataType::f32)
        for (int64_t i = 0; i < a.size(); ++i) a.data<float>()[i] = 1.f;
      feeds.emplace(in.name, a);
    }
    model.save(argv[2]);
    sparta::Session compiled(std::move(model));
    sparta::Session loaded(sparta::Model::load(argv[2]));
    const auto a = compiled.run(feeds), b = loaded.run(feeds);
    for (const auto& [name, out] : a) {
      const sparta::NDArray& other = b.at(name);
      if (out.dtype() != sparta::DataType::f32 || other.shape() != out.shape()) return 1;
      for (int64_t i = 0; i < out.size(); ++i)
        if (out.data<float>()[i] != other.data<float>()[i]) {
          std::fprintf(stderr, "output %s differs at %lld\n", name.c_str(), static_cast<long long>(i));
          return 1;
        }
      std::printf("%s: %lld values, first %g\n", name.c_str(), static_cast<long long>(out.size()),
                  static_cast<double>(out.data<float>()[0]));
    }
    const sparta::SparseTensor x(sparta::NDArray::of<int32_t>({3, 4}, {0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}),
                                 sparta::NDArray::of<float>({3, 1}, {1, 2, 4}));
    const sparta::SparseTensor y =
        sparta::sparse_conv3d(x, sparta::NDArray::of<float>({3, 3, 3, 1, 1}, std::vector<float>(27, 1.f)), {.subm = true});
    if (y.feats().data<float>()[1] != 7.f) {
      std::fprintf(stderr, "sparse convolution: %g, not 7\n", static_cast<double>(y.feats().data<float>()[1]));
      return 1;
    }
    std::printf("sparse convolution: %lld sites\n", static_cast<long long>(y.size()));
    // Errors are sparta::Error with one line.
    try {
      sparta::Model::load("/nonexistent.sparta");
    } catch (const sparta::Error& e) {
      std::printf("error as expected: %s\n", e.what());
    }
    std::printf("sparta %s: consumer ok\n", sparta::version().c_str());
  } catch (const sparta::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
