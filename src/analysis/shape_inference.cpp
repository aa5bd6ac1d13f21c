#include "analysis/shape_inference.h"

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <set>

#include "core/error.h"
#include "analysis/onnx_rules.h"

namespace sparta {
namespace {

using Dims = std::vector<int64_t>;

struct Ctx {
  Node& n;
  std::string where() const { return "node '" + n.name + "' (" + n.op_type + ")"; }
  int inputs() const { return static_cast<int>(n.inputs.size()); }
  Value* in(int i) const { return i < inputs() ? n.inputs[static_cast<size_t>(i)] : nullptr; }
  const Dims* dims(int i) const {
    Value* v = in(i);
    return v && v->dims ? &*v->dims : nullptr;
  }
  std::optional<DType> dtype(int i) const {
    Value* v = in(i);
    return v ? v->dtype : std::nullopt;
  }
  // A constant integer input as a list (i64 or i32), if known.
  std::optional<Dims> ints(int i) const {
    Value* v = in(i);
    if (!v || !v->constant) return std::nullopt;
    const Tensor& t = *v->constant;
    Dims out(static_cast<size_t>(t.numel()));
    if (t.dtype() == DType::i64) std::copy(t.data<int64_t>(), t.data<int64_t>() + t.numel(), out.begin());
    else if (t.dtype() == DType::i32) std::copy(t.data<int32_t>(), t.data<int32_t>() + t.numel(), out.begin());
    else return std::nullopt;
    return out;
  }
  void set(int o, std::optional<Dims> d, std::optional<DType> t) const {
    if (o >= static_cast<int>(n.outputs.size())) return;
    Value* v = n.outputs[static_cast<size_t>(o)];
    if (!v) return;
    if (d && !v->dims) v->dims = std::move(d);
    if (t && !v->dtype) v->dtype = t;
  }
  void require(bool ok, const std::string& msg) const { SPARTA_CHECK(ok, where(), ": ", msg); }
};

int64_t norm_axis(int64_t axis, int64_t rank, const Ctx& c) {
  c.require(axis >= -rank && axis < rank, "axis " + std::to_string(axis) + " is outside rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

int64_t mul_dims(const Dims& d, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) {
    if (d[i] < 0) return -1;
    p *= d[i];
  }
  return p;
}

void same_as_input(const Ctx& c) { c.set(0, c.dims(0) ? std::optional<Dims>(*c.dims(0)) : std::nullopt, c.dtype(0)); }

void broadcast_all(const Ctx& c, std::optional<DType> out_type, int first = 0) {
  std::optional<Dims> d;
  for (int i = first; i < c.inputs(); ++i) {
    if (!c.dims(i)) return c.set(0, std::nullopt, out_type);
    d = d ? broadcast_shapes(*d, *c.dims(i), c.where()) : *c.dims(i);
  }
  c.set(0, d, out_type);
}

void matmul(const Ctx& c) {
  const Dims *a = c.dims(0), *b = c.dims(1);
  if (!a || !b) return c.set(0, std::nullopt, c.dtype(0));
  c.require(!a->empty() && !b->empty(), "MatMul inputs must have rank >= 1");
  Dims A = *a, B = *b;
  const bool va = A.size() == 1, vb = B.size() == 1;
  if (va) A.insert(A.begin(), 1);
  if (vb) B.push_back(1);
  const int64_t ka = A.back(), kb = B[B.size() - 2];
  c.require(ka < 0 || kb < 0 || ka == kb,
            "inner dimensions differ: " + std::to_string(ka) + " vs " + std::to_string(kb));
  Dims batch = broadcast_shapes(Dims(A.begin(), A.end() - 2), Dims(B.begin(), B.end() - 2), c.where());
  if (!va) batch.push_back(A[A.size() - 2]);
  if (!vb) batch.push_back(B.back());
  c.set(0, batch, c.dtype(0));
}

void gemm(const Ctx& c) {
  const Dims *a = c.dims(0), *b = c.dims(1);
  if (!a || !b) return c.set(0, std::nullopt, c.dtype(0));
  c.require(a->size() == 2 && b->size() == 2, "Gemm inputs must be 2-D");
  const bool ta = c.n.attr_int("transA", 0), tb = c.n.attr_int("transB", 0);
  const int64_t m = ta ? (*a)[1] : (*a)[0], ka = ta ? (*a)[0] : (*a)[1];
  const int64_t kb = tb ? (*b)[1] : (*b)[0], n = tb ? (*b)[0] : (*b)[1];
  c.require(ka < 0 || kb < 0 || ka == kb, "inner dimensions differ: " + std::to_string(ka) + " vs " + std::to_string(kb));
  c.set(0, Dims{m, n}, c.dtype(0));
}

// Output extent of a sliding window (Conv, pooling).
int64_t window_out(int64_t in, int64_t k, int64_t stride, int64_t pad_total, int64_t dilation, bool ceil_mode) {
  if (in < 0) return -1;
  const int64_t eff = dilation * (k - 1) + 1, span = in + pad_total - eff;
  if (span < 0) return 0;
  return (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
}

void window(const Ctx& c, bool conv) {
  const Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  c.require(x->size() >= 3, "input must be N x C x spatial");
  const size_t sp = x->size() - 2;
  Dims k = c.n.attr_ints("kernel_shape");
  int64_t out_c = (*x)[1];
  if (conv) {
    const Dims* w = c.dims(1);
    if (!w) return c.set(0, std::nullopt, c.dtype(0));
    c.require(w->size() == x->size(), "weight rank differs from input rank");
    if (k.empty()) k.assign(w->begin() + 2, w->end());
    out_c = (*w)[0];
    const int64_t group = c.n.attr_int("group", 1);
    c.require(group >= 1, "group must be >= 1");
    c.require((*x)[1] < 0 || (*w)[1] < 0 || (*x)[1] == (*w)[1] * group,
              "input channels " + std::to_string((*x)[1]) + " != weight channels " + std::to_string((*w)[1]) +
                  " x group " + std::to_string(group));
  }
  c.require(k.size() == sp, "kernel_shape has " + std::to_string(k.size()) + " entries for " + std::to_string(sp) +
                                " spatial dimensions");
  const Dims strides = c.n.attr_ints("strides", Dims(sp, 1)), dil = c.n.attr_ints("dilations", Dims(sp, 1));
  Dims pads = c.n.attr_ints("pads", Dims(2 * sp, 0));
  c.require(strides.size() == sp && dil.size() == sp && pads.size() == 2 * sp, "strides/dilations/pads sizes");
  const Attribute* ap = c.n.attr("auto_pad");
  const std::string auto_pad = ap ? ap->s : "NOTSET";
  const bool ceil_mode = c.n.attr_int("ceil_mode", 0) != 0;
  Dims out = {(*x)[0], out_c};
  for (size_t i = 0; i < sp; ++i) {
    c.require(strides[i] >= 1 && dil[i] >= 1 && k[i] >= 1, "kernel, strides and dilations must be positive");
    const int64_t in = (*x)[2 + i];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") out.push_back(in < 0 ? -1 : (in + strides[i] - 1) / strides[i]);
    else if (auto_pad == "VALID") out.push_back(window_out(in, k[i], strides[i], 0, dil[i], ceil_mode));
    else out.push_back(window_out(in, k[i], strides[i], pads[i] + pads[i + sp], dil[i], ceil_mode));
  }
  c.set(0, out, c.dtype(0));
}

void reshape(const Ctx& c) {
  const auto target = c.ints(1);
  const Dims* x = c.dims(0);
  if (!target) return c.set(0, std::nullopt, c.dtype(0));
  Dims out = *target;
  const bool allowzero = c.n.attr_int("allowzero", 0) != 0;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && !allowzero) out[i] = x && i < x->size() ? (*x)[i] : -1;
    else if (out[i] == -1) {
      c.require(infer < 0, "more than one -1 in the target shape");
      infer = static_cast<int>(i);
    } else {
      c.require(out[i] >= 0, "negative extent in the target shape");
    }
  }
  if (infer >= 0) {
    // The -1 extent is the element count divided by the other extents,
    // when all of them are known.
    const size_t at = static_cast<size_t>(infer);
    const int64_t total = x ? mul_dims(*x, 0, x->size()) : -1;
    int64_t known = 1;
    bool all_known = true;
    for (size_t i = 0; i < out.size(); ++i)
      if (i != at) {
        if (out[i] < 0) all_known = false;
        else known *= out[i];
      }
    out[at] = -1;
    if (total >= 0 && all_known && known > 0) {
      c.require(total % known == 0, "cannot reshape " + std::to_string(total) + " elements to the target shape");
      out[at] = total / known;
    }
  }
  c.set(0, out, c.dtype(0));
}

void transpose(const Ctx& c) {
  const Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  Dims perm = c.n.attr_ints("perm");
  if (perm.empty()) {
    perm.resize(x->size());
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  c.require(perm.size() == x->size(), "perm has the wrong length");
  Dims out;
  for (int64_t p : perm) out.push_back((*x)[static_cast<size_t>(norm_axis(p, static_cast<int64_t>(x->size()), c))]);
  c.set(0, out, c.dtype(0));
}

// Axes from the attribute (older opsets) or the second input (opset 13+).
std::optional<Dims> axes_of(const Ctx& c, int input) {
  if (const Attribute* a = c.n.attr("axes")) return a->is;
  if (c.in(input)) return c.ints(input);
  return Dims{};
}

void unsqueeze(const Ctx& c) {
  const Dims* x = c.dims(0);
  const auto axes = axes_of(c, 1);
  if (!x || !axes) return c.set(0, std::nullopt, c.dtype(0));
  const int64_t rank = static_cast<int64_t>(x->size() + axes->size());
  Dims out(static_cast<size_t>(rank), -2);
  for (int64_t a : *axes) out[static_cast<size_t>(norm_axis(a, rank, c))] = 1;
  size_t j = 0;
  for (auto& d : out)
    if (d == -2) d = (*x)[j++];
  c.set(0, out, c.dtype(0));
}

void squeeze(const Ctx& c) {
  const Dims* x = c.dims(0);
  const auto axes = axes_of(c, 1);
  if (!x || !axes) return c.set(0, std::nullopt, c.dtype(0));
  std::vector<bool> drop(x->size(), false);
  if (axes->empty()) {
    for (size_t i = 0; i < x->size(); ++i) {
      if ((*x)[i] < 0) return c.set(0, std::nullopt, c.dtype(0));
      drop[i] = (*x)[i] == 1;
    }
  }
  for (int64_t a : *axes) drop[static_cast<size_t>(norm_axis(a, static_cast<int64_t>(x->size()), c))] = true;
  Dims out;
  for (size_t i = 0; i < x->size(); ++i)
    if (!drop[i]) out.push_back((*x)[i]);
  c.set(0, out, c.dtype(0));
}

void concat(const Ctx& c) {
  std::optional<Dims> out;
  for (int i = 0; i < c.inputs(); ++i) {
    const Dims* d = c.dims(i);
    if (!d) return c.set(0, std::nullopt, c.dtype(0));
    if (!out) {
      out = *d;
      continue;
    }
    c.require(d->size() == out->size(), "inputs have different ranks");
    const int64_t axis = norm_axis(c.n.attr_int("axis", 0), static_cast<int64_t>(d->size()), c);
    for (size_t j = 0; j < d->size(); ++j) {
      int64_t& o = (*out)[j];
      if (static_cast<int64_t>(j) == axis) o = o < 0 || (*d)[j] < 0 ? -1 : o + (*d)[j];
      else if (o < 0) o = (*d)[j];
    }
  }
  c.set(0, out, c.dtype(0));
}

void gather(const Ctx& c) {
  const Dims *x = c.dims(0), *idx = c.dims(1);
  if (!x || !idx) return c.set(0, std::nullopt, c.dtype(0));
  const int64_t axis = norm_axis(c.n.attr_int("axis", 0), static_cast<int64_t>(x->size()), c);
  Dims out(x->begin(), x->begin() + axis);
  out.insert(out.end(), idx->begin(), idx->end());
  out.insert(out.end(), x->begin() + axis + 1, x->end());
  c.set(0, out, c.dtype(0));
}

void reduce(const Ctx& c) {
  const Dims* x = c.dims(0);
  const auto axes = axes_of(c, 1);
  if (!x || !axes) return c.set(0, std::nullopt, c.dtype(0));
  const bool keep = c.n.attr_int("keepdims", 1) != 0;
  std::vector<bool> red(x->size(), axes->empty());
  for (int64_t a : *axes) red[static_cast<size_t>(norm_axis(a, static_cast<int64_t>(x->size()), c))] = true;
  Dims out;
  for (size_t i = 0; i < x->size(); ++i)
    if (!red[i]) out.push_back((*x)[i]);
    else if (keep) out.push_back(1);
  c.set(0, out, c.dtype(0));
}

void flatten(const Ctx& c) {
  const Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  const int64_t r = static_cast<int64_t>(x->size());
  int64_t axis = c.n.attr_int("axis", 1);
  c.require(axis >= -r && axis <= r, "axis outside the rank");
  if (axis < 0) axis += r;
  c.set(0, Dims{mul_dims(*x, 0, static_cast<size_t>(axis)), mul_dims(*x, static_cast<size_t>(axis), x->size())},
        c.dtype(0));
}

void constant_node(const Ctx& c) {
  const Attribute* v = c.n.attr("value");
  c.require(v && v->kind == Attribute::Kind::t, "needs a tensor 'value' attribute (value_float etc. not supported)");
  Value* out = c.n.outputs.empty() ? nullptr : c.n.outputs[0];
  if (!out) return;
  out->constant = v->t;
  out->dtype = v->t.dtype();
  out->dims = v->t.shape().dims();
}

void shape_node(const Ctx& c) {
  const Dims* x = c.dims(0);
  c.set(0, x ? std::optional<Dims>(Dims{static_cast<int64_t>(x->size())}) : std::nullopt, DType::i64);
}

std::optional<DType> cast_type(const Ctx& c) {
  const auto t = dtype_from_onnx(c.n.attr_int("to", 0));
  c.require(t.has_value(), "casts to an unsupported type " + std::to_string(c.n.attr_int("to", 0)));
  return t;
}

const std::map<std::string, std::function<void(const Ctx&)>>& rules() {
  static const std::map<std::string, std::function<void(const Ctx&)>> r = [] {
    std::map<std::string, std::function<void(const Ctx&)>> m;
    for (const char* op : {"Relu", "Erf", "Sqrt", "Tanh", "Sigmoid", "Identity", "Softmax", "Clip", "Neg", "Exp",
                           "Log", "Abs", "Reciprocal", "LeakyRelu", "Gelu", "LayerNormalization",
                           "BatchNormalization", "InstanceNormalization", "LogSoftmax", "HardSigmoid", "HardSwish"})
      m[op] = same_as_input;
    m["Dropout"] = [](const Ctx& c) {
      same_as_input(c);
      c.set(1, c.dims(0) ? std::optional<Dims>(*c.dims(0)) : std::nullopt, DType::boolean);
    };
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"})
      m[op] = [](const Ctx& c) { broadcast_all(c, c.dtype(0)); };
    for (const char* op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Not"})
      m[op] = [](const Ctx& c) { broadcast_all(c, DType::boolean); };
    m["Where"] = [](const Ctx& c) { broadcast_all(c, c.dtype(1)); };
    m["MatMul"] = matmul;
    m["Gemm"] = gemm;
    m["Conv"] = [](const Ctx& c) { window(c, true); };
    m["MaxPool"] = [](const Ctx& c) { window(c, false); };
    m["AveragePool"] = [](const Ctx& c) { window(c, false); };
    for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"})
      m[op] = [](const Ctx& c) {
        const Dims* x = c.dims(0);
        if (!x) return c.set(0, std::nullopt, c.dtype(0));
        Dims out(x->begin(), x->begin() + std::min<size_t>(2, x->size()));
        out.resize(x->size(), 1);
        c.set(0, out, c.dtype(0));
      };
    m["Reshape"] = reshape;
    m["Transpose"] = transpose;
    m["Unsqueeze"] = unsqueeze;
    m["Squeeze"] = squeeze;
    m["Concat"] = concat;
    m["Gather"] = gather;
    for (const char* op : {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"}) m[op] = reduce;
    m["Flatten"] = flatten;
    m["Constant"] = constant_node;
    m["Shape"] = shape_node;
    m["Cast"] = [](const Ctx& c) { c.set(0, c.dims(0) ? std::optional<Dims>(*c.dims(0)) : std::nullopt, cast_type(c)); };
    m["ConstantOfShape"] = [](const Ctx& c) {
      const Attribute* v = c.n.attr("value");
      c.set(0, c.ints(0), v && v->kind == Attribute::Kind::t ? std::optional<DType>(v->t.dtype()) : DType::f32);
    };
    m["Expand"] = [](const Ctx& c) {
      const auto target = c.ints(1);
      if (!target || !c.dims(0)) return c.set(0, std::nullopt, c.dtype(0));
      c.set(0, broadcast_shapes(*c.dims(0), *target, c.where()), c.dtype(0));
    };
    // Slice and Split: extents from constant starts/ends/axes/steps or
    // split sizes (the runtime's own rules); otherwise only the rank.
    m["Slice"] = [](const Ctx& c) {
      if (!c.dims(0)) return c.set(0, std::nullopt, c.dtype(0));
      const auto starts = c.ints(1), ends = c.ints(2), axes = c.ints(3), steps = c.ints(4);
      if (!starts || !ends || (c.in(3) && !axes) || (c.in(4) && !steps))
        return c.set(0, Dims(c.dims(0)->size(), -1), c.dtype(0));
      const SliceBox box = slice_box(*c.dims(0), *starts, *ends, axes ? *axes : Dims{}, steps ? *steps : Dims{},
                                     [&c](const std::string& m) { c.require(false, m); });
      c.set(0, box.extent, c.dtype(0));
    };
    m["Split"] = [](const Ctx& c) {
      if (!c.dims(0)) return;
      const Dims& d = *c.dims(0);
      const int64_t axis = norm_axis(c.n.attr_int("axis", 0), static_cast<int64_t>(d.size()), c);
      const auto given = c.ints(1);
      if (d[static_cast<size_t>(axis)] < 0 || (c.in(1) && !given)) {
        for (size_t o = 0; o < c.n.outputs.size(); ++o) c.set(static_cast<int>(o), Dims(d.size(), -1), c.dtype(0));
        return;
      }
      const Dims sizes = split_sizes(c.n, d[static_cast<size_t>(axis)], given ? &*given : nullptr,
                                     [&c](const std::string& m) { c.require(false, m); });
      for (size_t o = 0; o < c.n.outputs.size(); ++o) {
        Dims out = d;
        out[static_cast<size_t>(axis)] = sizes[o];
        c.set(static_cast<int>(o), out, c.dtype(0));
      }
    };
    return m;
  }();
  return r;
}

}  // namespace

std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                      const std::string& where) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t x = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t y = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (x == 1) out[i] = y;
    else if (y == 1) out[i] = x;
    else if (x < 0 || y < 0) out[i] = x < 0 ? y : x;  // unknown: the known non-1 extent, or unknown
    else {
      SPARTA_CHECK(x == y, where, ": shapes cannot broadcast (", x, " vs ", y, " at dimension ", i, ")");
      out[i] = x;
    }
  }
  return out;
}

namespace {

// How many leading dims of an op's output keep the positions (and so the
// symbolic names) of a same-rank input's dims: all of them for elementwise
// and row-wise ops, all but the last for a product, the batch for
// convolution and pooling; 0 for anything else.
size_t kept_leading_dims(const std::string& op, size_t rank) {
  static const std::set<std::string> all = {
      "Add", "Sub", "Mul", "Div", "Pow", "Where", "Equal", "Less", "Greater", "And", "Or", "Not", "Relu", "Clip",
      "Erf", "Sqrt", "Tanh", "Sigmoid", "Exp", "Log", "Abs", "Neg", "Reciprocal", "Cast", "Identity", "Dropout",
      "Softmax", "LayerNormalization", "BatchNormalization"};
  if (all.count(op)) return rank;
  if (op == "MatMul" || op == "Gemm") return rank ? rank - 1 : 0;
  if (op == "Conv" || op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool") return rank ? 1 : 0;
  return 0;
}

// A symbolic dim name ("batch") follows its dim: an output dim that is
// unknown takes the name of the unknown, named dim at the same position of
// a same-rank input, where the op keeps that position.
void propagate_dim_names(Node& n) {
  for (Value* out : n.outputs) {
    if (!out || !out->dims) continue;
    const size_t r = out->dims->size(), keep = kept_leading_dims(n.op_type, r);
    for (const Value* in : n.inputs) {
      if (!in || !in->dims || in->dims->size() != r || in->dim_names.size() != r) continue;
      for (size_t d = 0; d < keep; ++d) {
        if ((*out->dims)[d] >= 0 || (*in->dims)[d] >= 0 || in->dim_names[d].empty()) continue;
        if (out->dim_names.size() != r) out->dim_names.resize(r);
        if (out->dim_names[d].empty()) out->dim_names[d] = in->dim_names[d];
      }
    }
  }
}

}  // namespace

ShapeInferenceReport infer_shapes(Graph& g) {
  ShapeInferenceReport rep;
  std::map<std::string, bool> unknown;
  for (const auto& n : g.nodes()) {
    std::vector<bool> had(n->outputs.size());
    for (size_t i = 0; i < n->outputs.size(); ++i) had[i] = n->outputs[i] && n->outputs[i]->dims.has_value();
    auto it = rules().find(n->op_type);
    if (!n->domain.empty() || it == rules().end()) {
      unknown[n->op_type] = true;
      continue;
    }
    it->second(Ctx{*n});
    propagate_dim_names(*n);
    for (size_t i = 0; i < n->outputs.size(); ++i)
      if (n->outputs[i] && !had[i] && n->outputs[i]->dims) ++rep.inferred;
  }
  for (const auto& [op, _] : unknown) rep.unknown_ops.push_back(op);
  return rep;
}

}  // namespace sparta
