#include "passes/layout.h"

#include <map>

#include "core/cpu.h"
#include "core/error.h"

#include "ops/op_def.h"

namespace sparta {
namespace {

// The node's layout role where its own condition holds, else plain.
LayoutRole role_of(const Node& n) {
  const OpDef* def = find_op_def(n);
  if (!def || def->layout == LayoutRole::plain) return LayoutRole::plain;
  if (def->can_block && !def->can_block(n)) return LayoutRole::plain;
  return def->layout;
}

}  // namespace

bool accepts_layout(const Node& n, size_t i, Layout l) {
  if (l == Layout::plain) return true;
  switch (role_of(n)) {
    case LayoutRole::producer: return i == 0 || i == 3;
    case LayoutRole::passthrough:
    case LayoutRole::reader:
    case LayoutRole::reorder: return i == 0;
    case LayoutRole::binary: return i < 2;
    case LayoutRole::nary: return true;
    case LayoutRole::plain: break;
  }
  return false;
}

LayoutReport assign_layouts(Graph& g, int block) {
  LayoutReport rep;
  if (block == 0) block = host_isa() == Isa::avx512 ? -1 : 8;
  SPARTA_CHECK(block == 8 || block == 16 || block == -1, "layout block must be 8, 16 or -1 (nhwc), got ", block);
  const Layout blocked_layout = block == 16 ? Layout::nchw16c : block == 8 ? Layout::nchw8c : Layout::nhwc;
  rep.layout = blocked_layout;
  const bool nhwc = blocked_layout == Layout::nhwc;
  std::vector<Node*> order;
  for (const auto& n : g.nodes()) order.push_back(n.get());
  std::map<const Value*, Value*> plain_copy;  // blocked value -> its reordered copy
  std::map<const Value*, Value*> nhwc_copy;   // plain value -> its channels-last copy
  auto reorder = [&](Value* v, Node* before, bool to_nhwc) -> Value* {
    auto& copies = to_nhwc ? nhwc_copy : plain_copy;
    auto it = copies.find(v);
    if (it != copies.end()) return it->second;
    std::string name = v->name + (to_nhwc ? "/nhwc" : "/plain");
    while (g.find(name)) name += "_";
    Value* out = g.add_value(name);
    out->dtype = v->dtype;
    out->dims = v->dims;
    out->dim_names = v->dim_names;
    if (to_nhwc) out->layout = Layout::nhwc;
    Node* r = g.insert_node(before, "Reorder", name);
    r->domain = "sparta";
    r->inputs = {v};
    r->outputs = {out};
    Attribute to;
    to.kind = Attribute::Kind::s;
    to.s = to_nhwc ? "nhwc" : "plain";
    r->attrs["to"] = to;
    ++rep.reorders;
    return copies[v] = out;
  };
  auto to_plain = [&](Value* v, Node* before) { return reorder(v, before, false); };
  auto blocked = [](const Value* v) { return v && v->layout != Layout::plain; };
  for (Node* n : order) {
    Value* out = n->outputs.size() == 1 ? n->outputs[0] : nullptr;
    const bool out_free = out && !g.is_output(out) && out->static_rank(4) && (nhwc || (*out->dims)[1] % block == 0);
    const LayoutRole role = role_of(*n);
    bool block_out = false;  // the output layout chosen for n
    if (out_free && role == LayoutRole::producer) {
      const Value* res = n->inputs.size() >= 4 ? n->inputs[3] : nullptr;
      // The residual is summed in place, so it must share the output's layout.
      block_out = !res || blocked(res);
      // oneDNN's blocked convolutions read plain NCHW only with fewer input
      // channels than the block (an image); otherwise they fall back to the
      // reference code (a 24-channel MobileNetV2 layer under nChw16c: 200 ms).
      const Value* in = n->inputs[0];
      if (!nhwc && !blocked(in) && (!in->static_rank(4) || (*in->dims)[1] >= block)) block_out = false;
    } else if (out_free && role == LayoutRole::passthrough) {
      block_out = blocked(n->inputs[0]);
    } else if (out_free && role == LayoutRole::nary) {
      block_out = !n->inputs.empty();
      for (const Value* v : n->inputs) block_out = block_out && blocked(v) && v->layout == n->inputs[0]->layout;
    } else if (out_free && role == LayoutRole::binary) {
      const Value *a = n->inputs[0], *b = n->inputs[1];
      block_out = (blocked(a) && blocked(b) && a->dims == b->dims) || (blocked(a) && per_channel_of(b, a) && a->dims == out->dims) ||
                  (blocked(b) && per_channel_of(a, b) && b->dims == out->dims);
    }
    // Inputs: a blocked value goes to this node as is only where the node
    // reads it blocked with the output layout just chosen.
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      Value* v = n->inputs[i];
      if (!blocked(v)) continue;
      bool keep = accepts_layout(*n, i, v->layout);
      if (role == LayoutRole::producer && i == 3) keep = block_out;  // residual: same as output
      // A blocked convolution writes blocked: blocked in, plain out would
      // also leave oneDNN on its reference code.
      if (role == LayoutRole::producer && i == 0) keep = keep && block_out;
      if (role == LayoutRole::passthrough || role == LayoutRole::binary || role == LayoutRole::nary)
        keep = keep && block_out;
      if (!keep) n->inputs[i] = to_plain(v, n);
    }
    // A channels-last convolution reads its input channels-last too (a
    // plain one is reordered first): oneDNN has no fast NCHW-in, NHWC-out
    // convolution.
    if (block_out && nhwc && role == LayoutRole::producer && !blocked(n->inputs[0]) && n->inputs[0]->static_rank(4))
      n->inputs[0] = reorder(n->inputs[0], n, true);
    else if (block_out && nhwc && role == LayoutRole::producer && !blocked(n->inputs[0]))
      block_out = false;
    if (block_out) {
      out->layout = blocked_layout;
      ++rep.blocked;
    }
  }
  g.link();
  return rep;
}

}  // namespace sparta
