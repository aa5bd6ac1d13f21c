#include "passes/shrink.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "ops/op_def.h"

namespace sparta {
namespace {

bool is(const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op; }

// A 2-D f32 constant.
bool matrix(const Value* v) {
  return v && v->is_constant() && v->constant->dtype() == DType::f32 && v->constant->rank() == 2;
}

// A 4-D convolution with a constant weight and one group: a head or tail
// of a channel region along axis 1.
bool plain_conv(const Node* n) {
  return is(n, "Conv") && n->inputs.size() >= 2 && n->inputs[0] && n->inputs[1] && n->inputs[1]->is_constant() &&
         n->inputs[1]->constant->dtype() == DType::f32 && n->inputs[1]->constant->rank() == 4 &&
         n->attr_int("group", 1) == 1 && (n->inputs.size() < 3 || !n->inputs[2] || n->inputs[2]->is_constant()) &&
         n->inputs.size() <= 3 && !n->attr("sparta.act");
}

struct Region {
  Node* head = nullptr;  // the producing MatMul (weight [K, N]) or Conv (weight [N, C, kh, kw])
  bool conv = false;     // channels along axis 1 (NCHW) instead of the last axis
  std::vector<Value*> values;  // values whose channel axis has extent n, the head's output first
  // Per-channel constants: (node, input index, the constant's channel axis).
  std::vector<std::tuple<Node*, size_t, int>> vectors;
  std::vector<Node*> tails;  // consuming MatMuls (weight [N, K2]) or Convs (weight [K2, N, kh, kw])
  std::vector<std::pair<Node*, size_t>> tail_bias;  // per MatMul tail: its bias Add and the constant's input, or null
  int64_t n = 0, inner = 1;  // channels; elements after the channel axis
  int axis = 0;
  int64_t channel(int64_t e) const { return (e / inner) % n; }
};

// A constant that broadcasts along the channel axis only: all extents 1 but
// the channel's, which is 1 (a scalar) or n (per channel).
enum class Operand { scalar, per_channel, other };
Operand classify(const Value* c, int64_t n, size_t rank, int axis) {
  const std::vector<int64_t>& d = c->constant->shape().dims();
  if (d.size() > rank) return Operand::other;
  const int at = axis - static_cast<int>(rank - d.size());  // the channel axis in c, if c reaches it
  bool per_channel = false;
  for (int i = 0; i < static_cast<int>(d.size()); ++i) {
    if (d[static_cast<size_t>(i)] == 1) continue;
    if (i != at || d[static_cast<size_t>(i)] != n) return Operand::other;
    per_channel = true;
  }
  if (!per_channel) return Operand::scalar;
  return c->constant->dtype() == DType::f32 ? Operand::per_channel : Operand::other;  // sliced: f32 only
}

// The region that starts at `head`'s output, or nullopt where some value
// reaches an operator the channel cannot be cut through.
std::optional<Region> region_of(Graph& g, Node* head) {
  Region r;
  r.head = head;
  r.conv = is(head, "Conv");
  Value* v0 = head->outputs[0];
  if (!v0 || !v0->dims || v0->dims->empty() || (r.conv && v0->dims->size() != 4)) return std::nullopt;
  const std::vector<int64_t> dims = *v0->dims;
  for (int64_t d : dims)
    if (d <= 0) return std::nullopt;
  r.axis = r.conv ? 1 : static_cast<int>(dims.size()) - 1;
  r.n = dims[static_cast<size_t>(r.axis)];
  for (size_t i = static_cast<size_t>(r.axis) + 1; i < dims.size(); ++i) r.inner *= dims[i];
  std::set<const Value*> in_region = {v0};
  std::vector<Value*> work = {v0};
  std::set<const Node*> seen;
  while (!work.empty()) {
    Value* v = work.back();
    work.pop_back();
    r.values.push_back(v);
    if (g.is_output(v)) return std::nullopt;
    for (Node* c : v->consumers) {
      if (!seen.insert(c).second) continue;
      const bool matmul_tail = !r.conv && is(c, "MatMul") && c->inputs.size() == 2 && c->inputs[0] == v &&
                               matrix(c->inputs[1]) && c->inputs[1]->constant->dim(0) == r.n && c->inputs[1] != v;
      const bool conv_tail = r.conv && plain_conv(c) && c->inputs[0] == v && c->inputs[1]->constant->dim(1) == r.n;
      if (matmul_tail || conv_tail) {
        r.tails.push_back(c);
        continue;
      }
      if (c->outputs.size() < 1 || !c->outputs[0] || c->outputs[0]->dims != dims) return std::nullopt;
      if (r.conv && is(c, "BatchNormalization")) {  // its four per-channel parameters, [n] each
        if (c->inputs.size() != 5 || c->inputs[0] != v || c->attr_int("training_mode", 0)) return std::nullopt;
        for (size_t i = 1; i < 5; ++i) {
          const Value* p = c->inputs[i];
          if (!p || !p->is_constant() || p->constant->dtype() != DType::f32 || p->constant->rank() != 1 ||
              p->constant->dim(0) != r.n)
            return std::nullopt;
          r.vectors.emplace_back(c, i, 0);
        }
        for (size_t o = 1; o < c->outputs.size(); ++o)
          if (c->outputs[o]) return std::nullopt;  // training outputs
      } else {
        const OpDef* def = find_op_def(*c);
        if (!def || !def->elementwise || c->outputs.size() != 1) return std::nullopt;
        for (size_t i = 0; i < c->inputs.size(); ++i) {
          const Value* in = c->inputs[i];
          if (!in || in_region.count(in) || (in->dims == dims && std::find(work.begin(), work.end(), in) != work.end()))
            continue;
          if (in->is_constant()) {
            const Operand k = classify(in, r.n, dims.size(), r.axis);
            if (k == Operand::other) return std::nullopt;
            if (k == Operand::per_channel)
              r.vectors.emplace_back(c, i, r.axis - static_cast<int>(dims.size() - in->constant->shape().dims().size()));
            continue;
          }
          // A run-time operand must be a region value too (checked once the
          // region is complete).
          if (in->dims != dims) return std::nullopt;
        }
      }
      Value* out = c->outputs[0];
      if (in_region.insert(out).second) work.push_back(out);
    }
  }
  // Every run-time operand of a region node must be a region value.
  for (Value* v : r.values)
    for (Node* c : v->consumers) {
      if (std::find(r.tails.begin(), r.tails.end(), c) != r.tails.end()) continue;
      for (const Value* in : c->inputs)
        if (in && !in->is_constant() && !in_region.count(in)) return std::nullopt;
    }
  if (r.tails.empty()) return std::nullopt;
  // Each MatMul tail's bias: its only reader is an Add of a per-channel constant.
  for (Node* t : r.tails) {
    std::pair<Node*, size_t> bias{nullptr, 0};
    const Value* y = t->outputs[0];
    if (!r.conv && y && y->consumers.size() == 1 && !g.is_output(y) && is(y->consumers[0], "Add") &&
        y->consumers[0]->inputs.size() == 2 && y->dims) {
      Node* add = y->consumers[0];
      const size_t ci = add->inputs[0] == y ? 1 : 0;
      const Value* c = add->inputs[ci];
      const int last = static_cast<int>(y->dims->size()) - 1;
      if (c && c->is_constant() && classify(c, y->dims->back(), y->dims->size(), last) == Operand::per_channel &&
          add->outputs[0] && add->outputs[0]->dims == y->dims)
        bias = {add, ci};
    }
    r.tail_bias.push_back(bias);
  }
  return r;
}

// A channel whose value at every tail's input is one known number
// everywhere (0 when pruned): its contribution to each MatMul tail is a
// constant row, folded into the tail's bias. Returns, per tail, the
// channel's value; nullopt where the channel varies somewhere or a nonzero
// value has nowhere to go (no bias, or a convolution: its zero padding
// makes a constant input channel's contribution differ at the borders).
std::optional<std::vector<float>> constant_channel(const Region& r, int64_t c) {
  std::vector<float> vals;
  for (size_t t = 0; t < r.tails.size(); ++t) {
    const Value* v = r.tails[t]->inputs[0];
    if (!v->tesa || v->tesa->numel() == 0 || v->tesa->numel() % (r.n * r.inner)) return std::nullopt;
    const Tesa& f = *v->tesa;
    std::optional<float> val;
    for (int64_t b = c * r.inner; b < f.numel(); b += r.n * r.inner)
      for (int64_t e = b; e < b + r.inner; ++e) {
        if (f.kept(e) && !f.is_constant(e)) return std::nullopt;
        const float x = f.kept(e) ? f.constant_value(e) : 0.f;
        if (val && *val != x) return std::nullopt;
        val = x;
      }
    if (*val != 0.f && (r.conv || !r.tail_bias[t].first)) return std::nullopt;
    vals.push_back(*val);
  }
  return vals;
}

// Channels that no value of the region needs.
std::vector<uint8_t> dead_channels(const Region& r, const PropagationReport& prop) {
  std::vector<uint8_t> dead(static_cast<size_t>(r.n), 1);
  for (const Value* v : r.values) {
    auto it = prop.live.find(v);
    if (it == prop.live.end()) return std::vector<uint8_t>(static_cast<size_t>(r.n), 0);  // all needed
    const std::vector<uint8_t>& l = it->second;
    for (size_t e = 0; e < l.size(); ++e)
      if (l[e]) dead[static_cast<size_t>(r.channel(static_cast<int64_t>(e)))] = 0;
  }
  return dead;
}

// t sliced along `axis` to the kept indices.
// How many consecutive channels W1 [K, N] prunes together: the largest r
// (32 down to 2) such that every group of r channels shares one zero
// pattern over K (a block-pruned weight: blocks of r output features), or
// 1. Cutting part of a group would break the block pattern its kernel runs,
// so channels are cut only in whole groups.
int64_t channel_group(const Tensor& w1) {
  const int64_t k = w1.dim(0), n = w1.dim(1);
  const float* p = w1.data<float>();
  if (std::find(p, p + w1.numel(), 0.f) == p + w1.numel()) return 1;  // dense: no pattern to keep
  for (int64_t r : {32, 16, 8, 4, 2}) {
    if (n % r) continue;
    bool uniform = true;
    for (int64_t kk = 0; kk < k && uniform; ++kk) {
      const float* row = p + kk * n;
      for (int64_t c0 = 0; c0 < n && uniform; c0 += r)
        for (int64_t c = c0 + 1; c < c0 + r && uniform; ++c) uniform = (row[c] == 0.f) == (row[c0] == 0.f);
    }
    if (uniform) return r;
  }
  return 1;
}

// A new constant value for input `i` of node n, holding t.
void replace_constant(Graph& g, Node* n, size_t i, Tensor t) {
  n->inputs[i] = g.add_constant(n->inputs[i]->name + "/shrunk", std::move(t));
}

}  // namespace

std::string ShrinkReport::str() const {
  std::ostringstream os;
  os << "shrink: " << regions << " region(s), " << channels << " channels (" << constant_channels
     << " constant, folded into the next bias) and " << weight_elements << " weight elements removed";
  return os.str();
}

ShrinkReport shrink_channels(Graph& g, const PropagationReport& prop) {
  ShrinkReport rep;
  std::vector<Node*> heads;
  for (const auto& n : g.nodes())
    if ((is(n.get(), "MatMul") && n->inputs.size() == 2 && n->inputs[0] && matrix(n->inputs[1])) || plain_conv(n.get()))
      if (n->outputs.size() == 1) heads.push_back(n.get());
  bool changed = false;
  for (Node* head : heads) {
    std::optional<Region> r = region_of(g, head);
    if (!r) continue;
    const std::vector<uint8_t> dead = dead_channels(*r, prop);
    // Per channel: cut (dead, or a constant folded into the tails' biases) or kept.
    std::vector<std::optional<std::vector<float>>> constant(static_cast<size_t>(r->n));
    std::vector<uint8_t> cut_ok(static_cast<size_t>(r->n), 0);
    for (int64_t c = 0; c < r->n; ++c) {
      if (!dead[static_cast<size_t>(c)]) constant[static_cast<size_t>(c)] = constant_channel(*r, c);
      cut_ok[static_cast<size_t>(c)] = dead[static_cast<size_t>(c)] || constant[static_cast<size_t>(c)].has_value();
    }
    const int64_t group = r->conv ? 1 : channel_group(*head->inputs[1]->constant);
    std::vector<int64_t> keep;
    std::vector<std::pair<int64_t, std::vector<float>>> folded;  // channel, its value per tail
    for (int64_t c0 = 0; c0 < r->n; c0 += group) {
      const bool whole = std::all_of(cut_ok.begin() + c0, cut_ok.begin() + c0 + group, [](uint8_t x) { return x != 0; });
      for (int64_t c = c0; c < c0 + group; ++c) {
        if (!whole) keep.push_back(c);
        else if (constant[static_cast<size_t>(c)]) folded.emplace_back(c, *constant[static_cast<size_t>(c)]);
      }
    }
    if (keep.size() == static_cast<size_t>(r->n) || keep.empty()) continue;
    const int64_t cut = r->n - static_cast<int64_t>(keep.size());
    // Constant channels move into the tails' biases: bias += value * W2[c, :].
    for (size_t t = 0; t < r->tails.size(); ++t) {
      const Tensor& w2 = *r->tails[t]->inputs[1]->constant;
      const int64_t k2 = w2.dim(1);
      std::vector<double> delta(static_cast<size_t>(k2), 0.0);
      bool any = false;
      for (const auto& [c, vals] : folded) {
        if (vals[t] == 0.f) continue;
        any = true;
        for (int64_t j = 0; j < k2; ++j) delta[static_cast<size_t>(j)] += double(vals[t]) * w2.data<float>()[c * k2 + j];
      }
      if (!any) continue;
      auto [add, ci] = r->tail_bias[t];
      Tensor b = add->inputs[ci]->constant->clone();
      for (int64_t j = 0; j < k2; ++j) b.data<float>()[j] = static_cast<float>(b.data<float>()[j] + delta[static_cast<size_t>(j)]);
      replace_constant(g, add, ci, std::move(b));
    }
    rep.constant_channels += static_cast<int64_t>(folded.size());
    const Tensor& w1 = *head->inputs[1]->constant;
    rep.weight_elements += w1.numel() / r->n * cut;
    replace_constant(g, head, 1, select_along(w1, r->conv ? 0 : 1, keep));  // [N, C, kh, kw] or [K, N]
    if (r->conv && head->inputs.size() > 2 && head->inputs[2])
      replace_constant(g, head, 2, select_along(*head->inputs[2]->constant, 0, keep));
    for (auto [node, i, axis] : r->vectors) replace_constant(g, node, i, select_along(*node->inputs[i]->constant, axis, keep));
    for (Node* tail : r->tails) {
      const Tensor& w2 = *tail->inputs[1]->constant;
      rep.weight_elements += w2.numel() / r->n * cut;
      replace_constant(g, tail, 1, select_along(w2, r->conv ? 1 : 0, keep));  // [K2, N, kh, kw] or [N, K2]
    }
    for (Value* v : r->values) {
      (*v->dims)[static_cast<size_t>(r->axis)] = static_cast<int64_t>(keep.size());
      v->tesa.reset();
    }
    ++rep.regions;
    rep.channels += cut;
    changed = true;
  }
  if (changed) g.link();
  return rep;
}

}  // namespace sparta
