#include "passes/layout.h"

#include <map>

namespace sparta {
namespace {

bool static_rank4(const Value* v) {
  if (!v || !v->dims || v->dims->size() != 4) return false;
  for (int64_t d : *v->dims)
    if (d <= 0) return false;
  return true;
}

bool is_default(const Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

// A 2-D convolution the oneDNN path runs (constant weight and bias), with
// groups oneDNN handles on blocked data: none, or depthwise.
bool blockable_conv(const Node& n) {
  if (!is_default(n, "Conv") || n.inputs.size() < 2 || !n.inputs[0] || !n.inputs[1]) return false;
  const Value* w = n.inputs[1];
  if (!w->is_constant() || w->constant->rank() != 4) return false;
  if (n.inputs.size() >= 3 && n.inputs[2] && !n.inputs[2]->is_constant()) return false;
  if (!static_rank4(n.inputs[0]) || !static_rank4(n.outputs[0])) return false;
  const int64_t groups = n.attr_int("group", 1), ci = (*n.inputs[0]->dims)[1], co = (*n.outputs[0]->dims)[1];
  return groups == 1 || (groups == ci && groups == co);
}

}  // namespace

bool accepts_layout(const Node& n, size_t i, Layout l) {
  if (l == Layout::plain) return true;
  if (n.domain == "sparta" && n.op_type == "Reorder") return i == 0;
  if (!n.domain.empty()) return false;
  if (n.op_type == "Conv") return (i == 0 || i == 3) && blockable_conv(n);
  if (n.op_type == "Relu" || n.op_type == "Clip") return i == 0;
  if (n.op_type == "Add") return i < 2;
  if (n.op_type == "MaxPool" || n.op_type == "AveragePool" || n.op_type == "GlobalAveragePool")
    return i == 0 && static_rank4(n.inputs[0]);
  return false;
}

LayoutReport assign_layouts(Graph& g) {
  LayoutReport rep;
  std::vector<Node*> order;
  for (const auto& n : g.nodes()) order.push_back(n.get());
  std::map<const Value*, Value*> plain_copy;  // blocked value -> its reordered copy
  auto to_plain = [&](Value* v, Node* before) -> Value* {
    auto it = plain_copy.find(v);
    if (it != plain_copy.end()) return it->second;
    std::string name = v->name + "/plain";
    while (g.find(name)) name += "_";
    Value* out = g.add_value(name);
    out->dtype = v->dtype;
    out->dims = v->dims;
    out->dim_names = v->dim_names;
    Node* r = g.insert_node(before, "Reorder", name);
    r->domain = "sparta";
    r->inputs = {v};
    r->outputs = {out};
    Attribute to;
    to.kind = Attribute::Kind::s;
    to.s = "plain";
    r->attrs["to"] = to;
    ++rep.reorders;
    return plain_copy[v] = out;
  };
  auto blocked = [](const Value* v) { return v && v->layout == Layout::nchw8c; };
  for (Node* n : order) {
    Value* out = n->outputs.size() == 1 ? n->outputs[0] : nullptr;
    const bool out_free = out && !g.is_output(out) && static_rank4(out) && (*out->dims)[1] % 8 == 0;
    Layout want = Layout::plain;  // the output layout chosen for n
    if (is_default(*n, "Conv") && blockable_conv(*n) && out_free) {
      const Value* res = n->inputs.size() >= 4 ? n->inputs[3] : nullptr;
      // The residual is summed in place, so it must share the output's layout.
      if (!res || blocked(res)) want = Layout::nchw8c;
    } else if ((is_default(*n, "Relu") || is_default(*n, "Clip") || is_default(*n, "MaxPool") ||
                is_default(*n, "AveragePool")) &&
               blocked(n->inputs[0]) && out_free) {
      want = Layout::nchw8c;
    } else if (is_default(*n, "Add") && out_free && blocked(n->inputs[0]) && blocked(n->inputs[1]) &&
               n->inputs[0]->dims == n->inputs[1]->dims) {
      want = Layout::nchw8c;
    }
    // Inputs: a blocked value goes to this node as is only where the node
    // reads it blocked with the output layout just chosen.
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      Value* v = n->inputs[i];
      if (!blocked(v)) continue;
      bool keep = accepts_layout(*n, i, Layout::nchw8c);
      if (is_default(*n, "Conv") && i == 3) keep = want == Layout::nchw8c;  // residual: same as output
      if ((is_default(*n, "Relu") || is_default(*n, "Clip") || is_default(*n, "Add") || is_default(*n, "MaxPool") ||
           is_default(*n, "AveragePool")) &&
          want != Layout::nchw8c)
        keep = false;
      if (is_default(*n, "GlobalAveragePool")) keep = static_rank4(v);  // output is plain either way
      if (!keep) n->inputs[i] = to_plain(v, n);
    }
    if (want == Layout::nchw8c) {
      out->layout = Layout::nchw8c;
      ++rep.blocked;
    }
  }
  g.link();
  return rep;
}

}  // namespace sparta
