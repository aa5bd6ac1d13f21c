#include "analysis/shape_inference.h"

#include <algorithm>
#include <map>

#include "analysis/onnx_rules.h"
#include "core/error.h"

#include "ops/op_def.h"

namespace sparta {
namespace {

size_t kept_leading_dims(DimsKept k, size_t rank) {
  switch (k) {
    case DimsKept::all: return rank;
    case DimsKept::all_but_last: return rank ? rank - 1 : 0;
    case DimsKept::batch: return rank ? 1 : 0;
    case DimsKept::none: break;
  }
  return 0;
}

// A symbolic dim name ("batch") follows its dim: an output dim that is
// unknown takes the name of the unknown, named dim at the same position of
// a same-rank input, where the op keeps that position.
void propagate_dim_names(Node& n, DimsKept kept) {
  for (Value* out : n.outputs) {
    if (!out || !out->dims) continue;
    const size_t r = out->dims->size(), keep = kept_leading_dims(kept, r);
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

// Shape arithmetic under bound shapes: a Shape of a value whose dims are
// known, and then any small integer (or boolean) computation whose inputs are all
// constants or such values, is evaluated here (by the op's own run) into
// Value::shape_value, so that the Reshapes and Expands it feeds get known
// extents while the nodes stay in the graph for run time.
constexpr int64_t kMaxShapeValue = 64;

void evaluate_shape_value(Node& n, const OpDef& def, int64_t opset) {
  if (n.outputs.size() != 1 || !n.outputs[0] || n.outputs[0]->constant || n.outputs[0]->shape_value) return;
  Value* out = n.outputs[0];
  if (n.domain.empty() && n.op_type == "Shape") {
    const Value* x = n.inputs.empty() ? nullptr : n.inputs[0];
    if (!x || !x->dims || std::any_of(x->dims->begin(), x->dims->end(), [](int64_t d) { return d < 0; })) return;
    const std::vector<int64_t> d = shape_op_dims(n, *x->dims);
    Tensor t(DType::i64, Shape{static_cast<int64_t>(d.size())});
    std::copy(d.begin(), d.end(), t.data<int64_t>());
    out->shape_value = t;
    return;
  }
  if (!def.run || !n.domain.empty()) return;
  bool any_shape = false;
  for (const Value* in : n.inputs) {
    if (!in) continue;
    if (!in->constant && !in->shape_value) return;
    const Tensor& t = in->constant ? *in->constant : *in->shape_value;
    if (t.numel() > kMaxShapeValue) return;
    any_shape |= in->shape_value.has_value();
  }
  if (!any_shape) return;
  OpCall call{n, {}, {}, 1, opset, nullptr};
  for (const Value* in : n.inputs) call.in.push_back(in ? (in->constant ? &*in->constant : &*in->shape_value) : nullptr);
  try {
    def.run(call);
  } catch (const Error&) {
    return;  // reported at run time, in context
  }
  if (call.out.size() != 1 || call.out[0].numel() > kMaxShapeValue ||
      (call.out[0].dtype() != DType::i64 && call.out[0].dtype() != DType::i32 && call.out[0].dtype() != DType::boolean))
    return;
  out->shape_value = call.out[0].clone();
  if (!out->dims) out->dims = out->shape_value->shape().dims();
  if (!out->dtype) out->dtype = out->shape_value->dtype();
}

}  // namespace

ShapeInferenceReport infer_shapes(Graph& g) {
  ShapeInferenceReport rep;
  std::map<std::string, bool> unknown;
  for (const auto& n : g.nodes()) {
    std::vector<bool> had(n->outputs.size());
    for (size_t i = 0; i < n->outputs.size(); ++i) had[i] = n->outputs[i] && n->outputs[i]->dims.has_value();
    const OpDef* def = find_op_def(*n);
    if (!def || !def->shape) {
      unknown[n->op_type] = true;
      continue;
    }
    if (g.shapes_bound) evaluate_shape_value(*n, *def, g.default_opset());
    def->shape(ShapeCtx{*n});
    propagate_dim_names(*n, def->dims_kept);
    for (size_t i = 0; i < n->outputs.size(); ++i)
      if (n->outputs[i] && !had[i] && n->outputs[i]->dims) ++rep.inferred;
  }
  for (const auto& [op, _] : unknown) rep.unknown_ops.push_back(op);
  return rep;
}

}  // namespace sparta
