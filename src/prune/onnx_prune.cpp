#include "prune/onnx_prune.h"

#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "analysis/channel_ties.h"
#include "analysis/shape_inference.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/npy.h"
#include "core/pattern.h"
#include "core/tesa.h"
#include "frontend/onnx_import.h"

namespace sparta::prune {
namespace {

// The stored tensor of a constant: an initializer, or a Constant node's value.
onnx::TensorProto* stored(onnx::ModelProto& m, const std::string& name) {
  for (auto& t : *m.mutable_graph()->mutable_initializer())
    if (t.name() == name) return &t;
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == "Constant" && n.output_size() == 1 && n.output(0) == name)
      for (auto& a : *n.mutable_attribute())
        if (a.name() == "value" && a.has_t()) return a.mutable_t();
  return nullptr;
}

void store(onnx::TensorProto& t, const float* v, int64_t n) {
  t.clear_float_data();
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v), static_cast<size_t>(n) * sizeof(float)));
}

// W[N,K] from the weight as stored, and back: the flat ONNX index of (r, c).
int64_t onnx_index(const PrunableWeight& w, int64_t r, int64_t c) {
  switch (w.kind) {
    case PrunableWeight::Kind::matmul_kn:
    case PrunableWeight::Kind::gemm_kn: return c * w.rows + r;
    default: return r * w.cols + c;
  }
}

double nonzero_fraction(const float* v, int64_t n) {
  if (n == 0) return 0;
  int64_t nz = 0;
  for (int64_t i = 0; i < n; ++i) nz += v[i] != 0.0f;
  return double(nz) / double(n);
}

}  // namespace

struct OnnxWeights::Impl {
  std::string what;
  Graph g;
  onnx::ModelProto m;
  std::vector<PrunableWeight> ws;
};

OnnxWeights::OnnxWeights(const std::string& bytes, const std::string& what) : impl_(std::make_unique<Impl>()) {
  impl_->what = what;
  impl_->g = import_onnx_bytes(bytes.data(), bytes.size(), what);
  infer_shapes(impl_->g);
  SPARTA_CHECK(bytes.size() <= size_t(std::numeric_limits<int>::max()), what, ": model is larger than 2 GiB");
  SPARTA_CHECK(impl_->m.ParseFromArray(bytes.data(), int(bytes.size())), what, ": not a valid ONNX model");
  impl_->ws = prunable_weights(impl_->g);
}

OnnxWeights::~OnnxWeights() = default;

const std::string& OnnxWeights::what() const { return impl_->what; }
const Graph& OnnxWeights::graph() const { return impl_->g; }
const std::vector<PrunableWeight>& OnnxWeights::weights() const { return impl_->ws; }

Layer OnnxWeights::layer(size_t i, const Gradients& grads) const {
  const PrunableWeight& w = impl_->ws.at(i);
  Layer l;
  l.name = w.weight->name;
  l.rows = w.rows, l.cols = w.cols;
  l.w.resize(size_t(w.rows * w.cols));
  const float* src = w.weight->constant->data<float>();
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t c = 0; c < w.cols; ++c) l.w[size_t(r * w.cols + c)] = src[onnx_index(w, r, c)];
  if (auto it = grads.find(l.name); it != grads.end()) {
    l.grad.resize(l.w.size());
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t c = 0; c < w.cols; ++c) l.grad[size_t(r * w.cols + c)] = it->second[size_t(onnx_index(w, r, c))];
  }
  return l;
}

bool OnnxWeights::skipped(size_t i, const std::vector<std::string>& names) const {
  const PrunableWeight& w = impl_->ws.at(i);
  return std::find(names.begin(), names.end(), w.weight->name) != names.end() ||
         std::find(names.begin(), names.end(), w.node->name) != names.end();
}

void OnnxWeights::check_skip(const std::vector<std::string>& names) const {
  for (const std::string& s : names) {
    bool found = false;
    for (size_t i = 0; i < impl_->ws.size() && !found; ++i) found = skipped(i, {s});
    SPARTA_CHECK(found, "--skip '", s, "': ", impl_->what,
                 " has no MatMul, Gemm or Conv weight or node of that name (`sparta inspect` lists them)");
  }
}

int64_t OnnxWeights::activation_rows(size_t i) const {
  const PrunableWeight& w = impl_->ws.at(i);
  const Value* x = w.node->inputs[0];
  if (!x->dims || x->dims->empty()) return 1;
  const auto& d = *x->dims;
  int64_t m = 1;
  if (w.kind == PrunableWeight::Kind::conv) {  // output positions
    const Value* y = w.node->outputs[0];
    if (!y->dims) return 1;
    for (size_t a = 0; a < y->dims->size(); ++a)
      if (a != 1) m *= std::max<int64_t>(1, (*y->dims)[a]);
    return m;
  }
  const size_t rows_axes = w.kind == PrunableWeight::Kind::matmul_kn ? d.size() - 1 : 1;
  for (size_t a = 0; a < rows_axes && a < d.size(); ++a) m *= std::max<int64_t>(1, d[a]);
  return m;
}

Result OnnxWeights::apply(const std::vector<Decision>& decisions, bool zero_bias_of_pruned_rows) {
  Result r;
  onnx::ModelProto& m = impl_->m;
  const std::string& what = impl_->what;
  SPARTA_ASSERT(decisions.size() == impl_->ws.size(), "one decision per weight");
  for (size_t i = 0; i < impl_->ws.size(); ++i) {
    const PrunableWeight& w = impl_->ws[i];
    const Decision& d = decisions[i];
    LayerReport rep;
    rep.weight = w.weight->name, rep.node = w.node->name, rep.op = w.node->op_type;
    rep.rows = w.rows, rep.cols = w.cols;
    const Tensor& t = *w.weight->constant;
    rep.density_before = rep.density_after = nonzero_fraction(t.data<float>(), t.numel());
    rep.skipped = d.skipped;
    rep.note = d.note;
    if (d.keep.empty()) {
      if (rep.skipped.empty()) rep.skipped = "kept as it is";
      r.layers.push_back(rep);
      continue;
    }
    const std::vector<uint8_t>& keep = d.keep;
    SPARTA_ASSERT(keep.size() == size_t(w.rows * w.cols), "a mask of the wrong size");
    onnx::TensorProto* tp = stored(m, w.weight->name);
    SPARTA_CHECK(tp, what, ": the weight '", w.weight->name, "' is neither an initializer nor a Constant");
    std::vector<float> v(t.data<float>(), t.data<float>() + t.numel());
    Mask mk;
    mk.tensor = w.weight->name;
    mk.shape = t.shape().dims();
    mk.keep.assign(v.size(), 1);
    int64_t before = 0, after = 0;
    std::vector<uint8_t> nonzero(keep.size());  // W[N,K] after pruning, as compiling will see it
    for (int64_t row = 0; row < w.rows; ++row)
      for (int64_t c = 0; c < w.cols; ++c) {
        const int64_t at = onnx_index(w, row, c);
        before += v[size_t(at)] != 0.0f;
        if (!keep[size_t(row * w.cols + c)]) v[size_t(at)] = 0.0f, mk.keep[size_t(at)] = 0;
        after += v[size_t(at)] != 0.0f;
        nonzero[size_t(row * w.cols + c)] = v[size_t(at)] != 0.0f;
      }
    store(*tp, v.data(), t.numel());
    // A channel pruned whole loses its bias too: its output is then zero.
    if (zero_bias_of_pruned_rows && w.bias) {
      onnx::TensorProto* bp = stored(m, w.bias->name);
      SPARTA_CHECK(bp, what, ": the bias '", w.bias->name, "' is neither an initializer nor a Constant");
      std::vector<float> b(w.bias->constant->data<float>(), w.bias->constant->data<float>() + w.rows);
      for (int64_t row = 0; row < w.rows; ++row)
        if (std::none_of(keep.begin() + row * w.cols, keep.begin() + (row + 1) * w.cols, [](uint8_t k) { return k != 0; }))
          b[size_t(row)] = 0.0f;
      store(*bp, b.data(), w.rows);
    }
    r.params += t.numel();
    r.pruned_params += before - after;
    r.zero_params += t.numel() - after;
    rep.density_after = double(after) / double(t.numel());
    rep.pattern = analyze_pattern(Tesa::from_mask(Shape({w.rows, w.cols}), nonzero)).summary();
    r.masks.push_back(std::move(mk));
    r.layers.push_back(rep);
  }
  SPARTA_CHECK(m.SerializeToString(&r.onnx), what, ": the pruned model could not be serialized");
  return r;
}

Result prune_onnx(const std::string& bytes, const std::string& what, const Options& o, const Gradients& grads) {
  o.validate();
  OnnxWeights model(bytes, what);
  const std::vector<PrunableWeight>& ws = model.weights();
  model.check_skip(o.skip);
  for (const auto& [name, grad] : grads) {
    auto it = std::find_if(ws.begin(), ws.end(), [&](const PrunableWeight& w) { return w.weight->name == name; });
    SPARTA_CHECK(it != ws.end(), "a gradient for '", name, "', which is not a prunable weight of ", what);
    SPARTA_CHECK(int64_t(grad.size()) == it->rows * it->cols, "the gradient for '", name, "' has ", grad.size(),
                 " elements, the weight ", it->rows * it->cols);
  }
  ChannelTies ties;
  if (o.pattern == Pattern::channel) ties = analyze_channel_ties(model.graph(), ws);

  std::vector<Decision> decisions(ws.size());
  std::vector<Layer> layers;
  std::vector<size_t> index;        // the weight of each layer
  std::set<int64_t> skipped_units;  // channel units of skipped layers stay everywhere
  for (size_t i = 0; i < ws.size(); ++i) {
    const PrunableWeight& w = ws[i];
    Layer shape;
    shape.rows = w.rows, shape.cols = w.cols;
    if (o.pattern == Pattern::channel) shape.channel_unit = ties.units[w.weight->name];
    std::string& skipped = decisions[i].skipped;
    if (model.skipped(i, o.skip)) {
      skipped = "skipped (--skip)";
    } else if (std::string why; !fits(o, shape, why)) {
      skipped = "skipped: " + why;
    }
    if (!skipped.empty()) {
      for (int64_t u : shape.channel_unit)
        if (u >= 0) skipped_units.insert(u);
      continue;
    }
    Layer l = model.layer(i, grads);
    l.channel_unit = std::move(shape.channel_unit);
    layers.push_back(std::move(l));
    index.push_back(i);
  }
  if (!skipped_units.empty())
    for (Layer& l : layers)
      for (int64_t& u : l.channel_unit)
        if (skipped_units.count(u)) u = -1;
  if (layers.empty()) {
    std::ostringstream why;
    int shown = 0;
    for (size_t i = 0; i < ws.size() && shown < 3; ++i, ++shown) {
      const std::string& s = decisions[i].skipped;
      why << (shown ? "; " : " (") << ws[i].weight->name << ": " << s.substr(s.find(' ') + 1);
    }
    if (shown) why << (ws.size() > 3 ? "; ...)" : ")");
    throw Error(what + ": no layer to prune as " + pattern_name(o.pattern) +
                (ws.empty() ? std::string(" (it has no MatMul, Gemm or Conv with a constant f32 weight)") : why.str()));
  }
  auto masks = compute_masks(layers, o);
  for (size_t j = 0; j < layers.size(); ++j) decisions[index[j]].keep = std::move(masks[j]);
  return model.apply(decisions, o.pattern == Pattern::channel);
}

void write_result(const Result& r, const std::string& out_onnx, const std::string& spec_path) {
  namespace fs = std::filesystem;
  AtomicFile model(out_onnx);
  model.stream().write(r.onnx.data(), std::streamsize(r.onnx.size()));
  if (spec_path.empty()) return model.commit();

  const fs::path spec(spec_path);
  const std::string stem = spec.stem().string() + "_masks";
  const fs::path dir = spec.parent_path() / stem;
  const fs::path tmp = spec.parent_path() / (stem + ".tmp." + std::to_string(::getpid()));
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      if (!p.empty()) fs::remove_all(p, ec);
    }
  } cleanup{tmp};
  std::error_code ec;
  fs::remove_all(tmp, ec);
  SPARTA_CHECK(fs::create_directories(tmp, ec), spec_path, ": cannot create the mask folder ", tmp.string(), " (",
               ec.message(), ")");
  nlohmann::ordered_json j = {{"version", 1}, {"tensors", nlohmann::ordered_json::object()}};
  for (size_t i = 0; i < r.masks.size(); ++i) {
    const Mask& mk = r.masks[i];
    std::string file = std::to_string(i) + "_";
    for (char c : mk.tensor) file += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    file = file.substr(0, 120) + ".npy";
    Tensor t(DType::u8, Shape(mk.shape));
    std::memcpy(t.data<uint8_t>(), mk.keep.data(), mk.keep.size());
    write_npy((tmp / file).string(), t);
    j["tensors"][mk.tensor] = {{"mask", stem + "/" + file}};
  }
  AtomicFile json(spec_path);
  json.stream() << j.dump(1) << "\n";
  // Everything is written; now the renames.
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  SPARTA_CHECK(!ec, spec_path, ": cannot move the masks into ", dir.string(), " (", ec.message(), ")");
  cleanup.p.clear();
  model.commit();
  json.commit();
}

std::string format_report(const Result& r, const Options& o) {
  std::ostringstream s;
  char line[512];
  std::snprintf(line, sizeof line, "%-40s %-6s %-14s %8s %8s  %s\n", "weight", "op", "W[N,K]", "before", "after",
                "pattern sparta sees");
  s << line;
  for (const auto& l : r.layers) {
    const std::string shape = "[" + std::to_string(l.rows) + "," + std::to_string(l.cols) + "]";
    std::string name = l.weight.size() > 40 ? "..." + l.weight.substr(l.weight.size() - 37) : l.weight;
    std::snprintf(line, sizeof line, "%-40s %-6s %-14s %8.3f %8.3f  %s\n", name.c_str(), l.op.c_str(), shape.c_str(),
                  l.density_before, l.density_after, (l.skipped.empty() ? l.pattern : l.skipped).c_str());
    s << line;
  }
  int n = 0;
  for (const auto& l : r.layers) n += l.skipped.empty();
  std::snprintf(line, sizeof line, "%d of %zu layers pruned (%s, %s scope): %.1f%% of their %lld weights now zero\n", n,
                r.layers.size(), pattern_name(o.pattern), scope_name(o.scope),
                r.params ? 100.0 * double(r.zero_params) / double(r.params) : 0.0, static_cast<long long>(r.params));
  s << line;
  return s.str();
}

}  // namespace sparta::prune
