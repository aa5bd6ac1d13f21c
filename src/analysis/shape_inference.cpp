#include "analysis/shape_inference.h"

#include <map>

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
    def->shape(ShapeCtx{*n});
    propagate_dim_names(*n, def->dims_kept);
    for (size_t i = 0; i < n->outputs.size(); ++i)
      if (n->outputs[i] && !had[i] && n->outputs[i]->dims) ++rep.inferred;
  }
  for (const auto& [op, _] : unknown) rep.unknown_ops.push_back(op);
  return rep;
}

}  // namespace sparta
