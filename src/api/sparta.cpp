// The public API (include/sparta/sparta.h) over the internals: a Model is
// a CompiledModel, a Session the runtime's Executor, an NDArray shares its data with
// the runtime's Tensor both ways (no copies).
#include "sparta/sparta.h"

#include "analysis/shape_inference.h"
#include "api/access.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/version.h"
#include "frontend/onnx_import.h"
#include "frontend/tesa_spec.h"
#include "runtime/artifact.h"
#include "runtime/executor.h"

namespace sparta {

// The public enum mirrors the internal one value for value.
static_assert(static_cast<uint8_t>(DType::f32) == static_cast<uint8_t>(DataType::f32));
static_assert(static_cast<uint8_t>(DType::i8) == static_cast<uint8_t>(DataType::i8));
static_assert(static_cast<uint8_t>(DType::i32) == static_cast<uint8_t>(DataType::i32));
static_assert(static_cast<uint8_t>(DType::bf16) == static_cast<uint8_t>(DataType::bf16));
static_assert(static_cast<uint8_t>(DType::i64) == static_cast<uint8_t>(DataType::i64));
static_assert(static_cast<uint8_t>(DType::u8) == static_cast<uint8_t>(DataType::u8));
static_assert(static_cast<uint8_t>(DType::boolean) == static_cast<uint8_t>(DataType::boolean));

std::string version() { return SPARTA_VERSION_STRING; }

size_t data_type_size(DataType t) { return dtype_size(Access::internal(t)); }
const char* data_type_name(DataType t) { return dtype_name(Access::internal(t)).data(); }

NDArray::NDArray(DataType type, std::vector<int64_t> shape) : type_(type), shape_(std::move(shape)) {
  for (int64_t d : shape_) SPARTA_CHECK(d >= 0, "NDArray: negative extent ", d);
  data_ = Tensor(Access::internal(type_), Shape(shape_)).storage();
}

int64_t NDArray::size() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

void NDArray::check(DataType want) const {
  SPARTA_CHECK(want == type_, "NDArray holds ", data_type_name(type_), ", not ", data_type_name(want));
}

struct Model::Impl {
  CompiledModel m;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

namespace {

CompiledModel compile_graph(Graph g, const CompileOptions& opt, const std::string& source) {
  if (!opt.tesa_spec.empty()) {
    const TesaSpec spec = read_tesa_spec(opt.tesa_spec);
    infer_shapes(g);
    apply_tesa_spec(g, spec);
  }
  return compile_model(std::move(g), CompileConfig{.threads = opt.threads, .sparse = opt.sparse, .shapes = opt.shapes}, source);
}

std::vector<ValueInfo> infos(const std::vector<Value*>& vs) {
  std::vector<ValueInfo> out;
  for (const Value* v : vs)
    out.push_back({v->name, Access::external(v->dtype.value_or(DType::f32)), v->dims.value_or(std::vector<int64_t>{})});
  return out;
}

}  // namespace

Model Model::compile(const std::string& onnx_path, const CompileOptions& opt) {
  auto impl = std::make_unique<Impl>();
  impl->m = compile_graph(import_onnx_file(onnx_path), opt, onnx_path);
  return Model(std::move(impl));
}

Model Model::compile_bytes(const void* onnx, size_t size, const CompileOptions& opt) {
  auto impl = std::make_unique<Impl>();
  impl->m = compile_graph(import_onnx_bytes(onnx, size), opt, "<memory>");
  return Model(std::move(impl));
}

Model Model::load(const std::string& path, int threads) {
  SPARTA_CHECK(threads >= 0, "threads must be >= 0");
  auto impl = std::make_unique<Impl>();
  impl->m = load_compiled(path, threads);
  return Model(std::move(impl));
}

void Model::save(const std::string& path) const {
  SPARTA_CHECK(impl_, "a moved-from Model");
  save_compiled(impl_->m, path);
}

std::string Model::report_json() const {
  SPARTA_CHECK(impl_, "a moved-from Model");
  return impl_->m.report;
}

std::vector<ValueInfo> Model::inputs() const {
  SPARTA_CHECK(impl_, "a moved-from Model");
  return infos(impl_->m.graph.inputs);
}

std::vector<ValueInfo> Model::outputs() const {
  SPARTA_CHECK(impl_, "a moved-from Model");
  return infos(impl_->m.graph.outputs);
}

struct Session::Impl {
  Executor s;
};

Session::Session(Model model, int threads) {
  SPARTA_CHECK(model.impl_, "a moved-from Model");
  SPARTA_CHECK(threads >= 0 && threads <= 1024, "threads must be in [0, 1024]");
  const int t = threads ? threads : model.impl_->m.options.threads;
  impl_ = std::make_unique<Impl>(Impl{Executor(std::move(model.impl_->m), ExecutorOptions{.threads = t})});
}

Session::Session(Session&&) noexcept = default;
Session::~Session() = default;

std::map<std::string, NDArray> Session::run(const std::map<std::string, NDArray>& inputs) {
  SPARTA_CHECK(impl_, "a moved-from Session");
  std::map<std::string, Tensor> feeds;
  for (const auto& [name, a] : inputs) {
    SPARTA_CHECK(a.raw() || a.size() == 0, "input '", name, "' is an empty NDArray");
    feeds[name] = Access::tensor(a);
  }
  const std::vector<Tensor> outs = impl_->s.run(feeds);
  std::map<std::string, NDArray> result;
  const auto& names = impl_->s.graph().outputs;
  for (size_t i = 0; i < outs.size(); ++i) result[names[i]->name] = Access::array(outs[i]);
  return result;
}

}  // namespace sparta
