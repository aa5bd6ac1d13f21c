#include "frontend/tesa_spec.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/npy.h"

namespace sparta {
namespace {

using json = nlohmann::json;

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SPARTA_CHECK(f, path, ": cannot open the TeSA spec");
  std::ostringstream os;
  os << f.rdbuf();
  SPARTA_CHECK(!f.bad(), path, ": cannot read the TeSA spec");
  return os.str();
}

std::string read_bytes(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  SPARTA_CHECK(f, what, ": cannot open the mask file '", path, "'");
  std::ostringstream os;
  os << f.rdbuf();
  SPARTA_CHECK(!f.bad(), what, ": cannot read the mask file '", path, "'");
  return os.str();
}

template <typename T>
void nonzero(const Tensor& t, std::vector<uint8_t>& out) {
  const T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) out[static_cast<size_t>(i)] = p[i] != 0;
}

TesaSpecEntry parse_entry(const std::string& name, const json& e, const std::string& base_dir, const std::string& what,
                          bool read_masks) {
  const std::string where = what + ": tensor '" + name + "'";
  SPARTA_CHECK(e.is_object(), where, ": expected an object like {\"mask\": \"m.npy\", \"bits\": 8}");
  TesaSpecEntry out;
  out.tensor = name;
  for (const auto& [key, v] : e.items()) {
    if (key == "mask") {
      SPARTA_CHECK(v.is_string() && !v.get<std::string>().empty(), where, ": \"mask\" must be a .npy file path");
      out.mask_path = v.get<std::string>();
    } else if (key == "bits") {
      SPARTA_CHECK(v.is_number_integer(), where, ": \"bits\" must be 4, 8, 16 or 32");
      const int64_t b = v.get<int64_t>();
      SPARTA_CHECK(b == 4 || b == 8 || b == 16 || b == 32, where, ": \"bits\" must be 4, 8, 16 or 32, got ", b);
      out.bits = static_cast<int>(b);
    } else {
      throw Error(where + ": unknown field \"" + key + "\" (known: mask, bits)");
    }
  }
  SPARTA_CHECK(!out.mask_path.empty() || out.bits, where, ": gives neither \"mask\" nor \"bits\"");
  if (!out.mask_path.empty() && read_masks) {
    const std::filesystem::path p = std::filesystem::path(base_dir) / out.mask_path;
    Shape shape;
    out.mask = mask_from_npy(read_bytes(p.string(), where), where + " mask '" + out.mask_path + "'", &shape);
    out.mask_shape = shape;
  }
  return out;
}

}  // namespace

std::vector<uint8_t> mask_from_npy(const std::string& bytes, const std::string& what, Shape* shape) {
  const Tensor t = parse_npy(bytes, what);
  std::vector<uint8_t> m(static_cast<size_t>(t.numel()));
  switch (t.dtype()) {
    case DType::boolean: {
      const uint8_t* p = static_cast<const uint8_t*>(t.raw());
      for (int64_t i = 0; i < t.numel(); ++i) m[static_cast<size_t>(i)] = p[i] != 0;
      break;
    }
    case DType::u8: nonzero<uint8_t>(t, m); break;
    case DType::i8: nonzero<int8_t>(t, m); break;
    case DType::i32: nonzero<int32_t>(t, m); break;
    case DType::i64: nonzero<int64_t>(t, m); break;
    case DType::f32: {  // PyTorch's prune masks are float tensors of 0s and 1s
      const float* p = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) {
        SPARTA_CHECK(p[i] == 0.f || p[i] == 1.f, what, ": a float mask must hold only 0 and 1, found ", p[i],
                     " at element ", i);
        m[static_cast<size_t>(i)] = p[i] != 0.f;
      }
      break;
    }
    case DType::bf16: throw Error(what + ": a mask must be bool, an integer type or float32");
  }
  *shape = t.shape();
  return m;
}

TesaSpec parse_tesa_spec(const std::string& text, const std::string& base_dir, const std::string& what,
                         bool read_masks) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    std::string msg = e.what();
    if (const size_t nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    throw Error(what + ": not valid JSON (" + msg + ")");
  }
  SPARTA_CHECK(j.is_object(), what, ": a TeSA spec is a JSON object {\"version\": 1, \"tensors\": {...}}");
  TesaSpec spec;
  spec.path = what;
  bool have_version = false, have_tensors = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "version") {
      SPARTA_CHECK(v.is_number_integer() && v.get<int64_t>() == 1, what,
                   ": \"version\" must be 1 (the only TeSA spec version this sparta reads)");
      have_version = true;
    } else if (key == "tensors") {
      SPARTA_CHECK(v.is_object(), what, ": \"tensors\" must map tensor names to {\"mask\": ..., \"bits\": ...}");
      for (const auto& [name, e] : v.items()) spec.entries.push_back(parse_entry(name, e, base_dir, what, read_masks));
      have_tensors = true;
    } else {
      throw Error(what + ": unknown field \"" + key + "\" (known: version, tensors)");
    }
  }
  SPARTA_CHECK(have_version, what, ": missing \"version\": 1");
  SPARTA_CHECK(have_tensors, what, ": missing \"tensors\"");
  return spec;
}

TesaSpec read_tesa_spec(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return parse_tesa_spec(read_text(path), dir.empty() ? "." : dir, path);
}

TesaSpecReport apply_tesa_spec(Graph& g, const TesaSpec& spec) {
  // Everything is checked before anything changes.
  std::vector<Value*> targets;
  for (const TesaSpecEntry& e : spec.entries) {
    const std::string where = spec.path + ": tensor '" + e.tensor + "'";
    Value* v = g.find(e.tensor);
    SPARTA_CHECK(v && (v->is_constant() || v->producer || std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end()),
                 where, ": the model has no tensor of that name (use the names `sparta inspect` prints)");
    auto is_static = [](const Value* x) {
      return x->dims && std::all_of(x->dims->begin(), x->dims->end(), [](int64_t d) { return d >= 0; });
    };
    SPARTA_CHECK(v->is_constant() || is_static(v), where, ": an annotation on a value of dynamic shape ",
                 v->shape_str(), " is not supported yet");
    if (e.mask_shape) {
      if (v->is_constant()) {
        SPARTA_CHECK(v->constant->shape() == *e.mask_shape, where, ": the mask has shape ", e.mask_shape->str(),
                     " but the tensor has shape ", v->constant->shape().str(), " (as stored in the ONNX file)");
        SPARTA_CHECK(v->constant->dtype() == DType::f32, where, ": masks on ", dtype_name(v->constant->dtype()),
                     " constants are not supported (f32 weights only)");
      } else {
        SPARTA_CHECK(Shape(*v->dims) == *e.mask_shape, where, ": the mask has shape ", e.mask_shape->str(),
                     " but the tensor has shape ", v->shape_str());
      }
    }
    targets.push_back(v);
  }
  TesaSpecReport rep;
  for (size_t i = 0; i < spec.entries.size(); ++i) {
    const TesaSpecEntry& e = spec.entries[i];
    Value* v = targets[i];
    const ElemCode kept = static_cast<ElemCode>(e.bits.value_or(32));
    Tesa t;
    if (e.mask_shape) {
      t = Tesa::from_mask(*e.mask_shape, e.mask, kept);
    } else {  // bits only: every element kept (a weight's zeros stay pruned)
      t = v->is_constant() ? Tesa::from_zeros(*v->constant) : Tesa(Shape(*v->dims), kept);
      for (int64_t k = 0; k < t.numel(); ++k)
        if (t.kept(k)) t.set(k, kept);
    }
    if (v->is_constant() && e.mask_shape) {
      Tensor w = v->constant->clone();  // its own storage: the parsed buffer may be shared
      t.apply(w);
      v->constant = std::move(w);
    }
    if (v->is_constant()) {
      ++rep.weights;
      rep.weight_elements_pruned += t.numel() - t.count_kept();
    } else {
      ++rep.promises;
    }
    v->tesa = std::move(t);
  }
  return rep;
}

}  // namespace sparta
