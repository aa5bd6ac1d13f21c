#include "passes/fuse.h"

#include <cmath>

namespace sparta {
namespace {

// The clip bounds of a Clip node with constant (or absent) bounds.
bool clip_bounds(const Node& n, float& lo, float& hi) {
  lo = -INFINITY;
  hi = INFINITY;
  for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
    const Value* v = n.inputs[i];
    if (!v) continue;
    if (!v->is_constant() || v->constant->dtype() != DType::f32 || v->constant->numel() != 1) return false;
    (i == 1 ? lo : hi) = v->constant->data<float>()[0];
  }
  if (const Attribute* a = n.attr("min")) lo = a->f;
  if (const Attribute* a = n.attr("max")) hi = a->f;
  return true;
}

}  // namespace

int fuse_conv_activations(Graph& g) {
  std::vector<const Node*> dead;
  for (const auto& n : g.nodes()) {
    if (n->op_type != "Conv" || !n->domain.empty() || n->attr("sparta.act") || n->outputs.size() != 1) continue;
    Value* out = n->outputs[0];
    if (!out || out->consumers.size() != 1) continue;
    bool is_graph_output = false;
    for (const Value* o : g.outputs) is_graph_output |= o == out;
    if (is_graph_output) continue;
    Node* act = out->consumers[0];
    if (!act->domain.empty() || act->outputs.size() != 1 || !act->outputs[0]) continue;
    Attribute kind;
    kind.kind = Attribute::Kind::s;
    if (act->op_type == "Relu") {
      kind.s = "relu";
    } else if (act->op_type == "Clip") {
      float lo, hi;
      if (!clip_bounds(*act, lo, hi)) continue;
      kind.s = "clip";
      Attribute b;
      b.kind = Attribute::Kind::fs;
      b.fs = {lo, hi};
      n->attrs["sparta.clip"] = b;
    } else {
      continue;
    }
    n->attrs["sparta.act"] = kind;
    n->outputs[0] = act->outputs[0];
    dead.push_back(act);
  }
  if (!dead.empty()) g.erase_nodes(dead);
  return static_cast<int>(dead.size());
}

}  // namespace sparta
