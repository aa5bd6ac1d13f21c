// sparta's C++ API: compile a model (ONNX, with an optional TeSA spec) into
// a compiled model, save and load it as a `.sparta` file, and run it on
// named arrays. Everything else in the source tree is internal.
//
//   sparta::Model m = sparta::Model::compile("bert.onnx", {.threads = 1});
//   m.save("bert.sparta");
//   sparta::Session s(sparta::Model::load("bert.sparta"));
//   auto out = s.run({{"input_ids", ids}, {"attention_mask", mask}});
//
// Errors are sparta::Error (sparta/error.h) with a one-line message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparta/error.h"

namespace sparta {

// The library's version, "0.1.0".
std::string version();

enum class DataType : uint8_t { f32, i8, i32, bf16, i64, u8, boolean };
size_t data_type_size(DataType t);
const char* data_type_name(DataType t);  // "f32", "i64", ...

// A dense, row-major, 64-byte aligned array: what goes into a model and
// comes out. Copies share their data (like a numpy view of the whole).
class NDArray {
 public:
  NDArray() = default;
  NDArray(DataType type, std::vector<int64_t> shape);  // zeros
  template <typename T>
  static NDArray of(std::vector<int64_t> shape, const std::vector<T>& values);

  DataType dtype() const { return type_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t size() const;  // elements
  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }
  // Typed access; throws sparta::Error for another element type.
  template <typename T>
  T* data();
  template <typename T>
  const T* data() const {
    return const_cast<NDArray*>(this)->data<T>();
  }

 private:
  friend struct Access;
  void check(DataType want) const;
  DataType type_ = DataType::f32;
  std::vector<int64_t> shape_;
  std::shared_ptr<void> data_;
};

struct CompileOptions {
  int threads = 1;           // kernels are chosen (measured) for this many threads
  bool sparse = true;        // false: every weight dense, no TeSA propagation
  std::string tesa_spec;     // a TeSA spec (JSON) to apply: masks and bit-widths per tensor
  // Extents for inputs with symbolic dims: kernels are chosen at these
  // shapes; the model still runs at any other.
  std::map<std::string, std::vector<int64_t>> shapes;
};

struct ValueInfo {
  std::string name;
  DataType dtype = DataType::f32;
  std::vector<int64_t> shape;  // -1 for a symbolic extent
};

// A compiled model. Movable; a Session takes it over.
class Model {
 public:
  static Model compile(const std::string& onnx_path, const CompileOptions& opt = {});
  static Model compile_bytes(const void* onnx, size_t size, const CompileOptions& opt = {});
  // threads: for loading and the model's default; 0 keeps the compiled one.
  static Model load(const std::string& sparta_path, int threads = 0);

  // Writes a `.sparta` file (through a temporary name: nothing half-written).
  void save(const std::string& path) const;
  // The compile report as JSON: per layer density, shape, pattern, kernel,
  // measured times; totals.
  std::string report_json() const;
  std::vector<ValueInfo> inputs() const;
  std::vector<ValueInfo> outputs() const;

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

 private:
  friend class Session;
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Session {
 public:
  // threads: the run's thread count; 0 takes the model's.
  explicit Session(Model model, int threads = 0);
  Session(Session&&) noexcept;
  ~Session();
  // Inputs by name; returns every output by name. Throws sparta::Error for
  // a missing or unknown input, or a dtype or shape the model does not take.
  std::map<std::string, NDArray> run(const std::map<std::string, NDArray>& inputs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------- inline

template <typename T>
struct DataTypeOf;
template <> struct DataTypeOf<float> { static constexpr DataType value = DataType::f32; };
template <> struct DataTypeOf<int8_t> { static constexpr DataType value = DataType::i8; };
template <> struct DataTypeOf<int32_t> { static constexpr DataType value = DataType::i32; };
template <> struct DataTypeOf<int64_t> { static constexpr DataType value = DataType::i64; };
template <> struct DataTypeOf<uint8_t> { static constexpr DataType value = DataType::u8; };
template <> struct DataTypeOf<bool> { static constexpr DataType value = DataType::boolean; };

template <typename T>
T* NDArray::data() {
  check(DataTypeOf<T>::value);
  return static_cast<T*>(data_.get());
}

template <typename T>
NDArray NDArray::of(std::vector<int64_t> shape, const std::vector<T>& values) {
  NDArray a(DataTypeOf<T>::value, std::move(shape));
  if (static_cast<int64_t>(values.size()) != a.size())
    throw Error("NDArray::of: " + std::to_string(values.size()) + " values for " + std::to_string(a.size()) + " elements");
  T* p = a.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return a;
}

}  // namespace sparta
