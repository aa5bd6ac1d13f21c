#include "passes/shrink_heads.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace sparta {
namespace {

bool is(const Node* n, const char* domain, const char* op) {
  return n && n->domain == domain && n->op_type == op && !n->outputs.empty() && n->outputs[0];
}

// A sparta.Linear with a constant 2-D f32 weight; its output channels.
std::optional<int64_t> linear_outputs(const Node* n) {
  if (!is(n, "sparta", "Linear") || n->inputs.size() < 2 || !n->inputs[1] || !n->inputs[1]->is_constant()) return {};
  const Tensor& w = *n->inputs[1]->constant;
  if (w.dtype() != DType::f32 || w.rank() != 2 || !w.defined()) return {};
  if (n->inputs.size() > 2 && n->inputs[2] && (!n->inputs[2]->is_constant() || n->inputs[2]->constant->dtype() != DType::f32))
    return {};
  return n->attr_int("trans_w", 0) ? w.dim(0) : w.dim(1);
}

std::optional<std::vector<int64_t>> int_constant(const Value* v) {
  if (!v || !v->is_constant() || v->constant->dtype() != DType::i64 || !v->constant->defined()) return {};
  const Tensor& t = *v->constant;
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

bool perm_is(const Node* n, const char* key, std::vector<int64_t> want) {
  return n->attr(key) ? n->attr_ints(key) == want : want.empty();
}

void set_input(Graph& g, Node* n, size_t i, Tensor t) { n->inputs[i] = g.add_constant(n->inputs[i]->name + "/heads", std::move(t)); }

Tensor ints(const std::vector<int64_t>& v) {
  Tensor t(DType::i64, Shape{static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

// One attention block, matched from its output projection.
struct Attention {
  Node *q, *k, *v, *rq, *rk, *rv, *scores, *softmax, *context, *merge, *o;
  int64_t heads, dim;
};

std::optional<Attention> match(const Graph& g, Node* o) {
  Attention a{};
  a.o = o;
  if (!linear_outputs(o) || !o->inputs[0]) return {};
  a.merge = o->inputs[0]->producer;
  if (!is(a.merge, "", "Reshape") || g.sole_consumer(a.merge->outputs[0]) != o || !a.merge->inputs[0]) return {};
  a.context = a.merge->inputs[0]->producer;
  if (!is(a.context, "sparta", "BatchMatMul") || g.sole_consumer(a.context->outputs[0]) != a.merge) return {};
  if (!perm_is(a.context, "perm_a", {}) || !perm_is(a.context, "perm_b", {0, 2, 1, 3}) ||
      !perm_is(a.context, "perm_y", {0, 2, 1, 3}) || a.context->attr_float("scale", 1.f) != 1.f ||
      a.context->inputs.size() != 2)
    return {};
  const Value* ctx = a.context->outputs[0];
  if (!ctx->static_rank(4)) return {};
  a.heads = (*ctx->dims)[2];
  a.dim = (*ctx->dims)[3];
  a.softmax = a.context->inputs[0] ? a.context->inputs[0]->producer : nullptr;
  a.rv = a.context->inputs[1] ? a.context->inputs[1]->producer : nullptr;
  const bool softmax = is(a.softmax, "sparta", "Softmax") || (is(a.softmax, "", "Softmax") && a.softmax->attr_int("axis", -1) == -1);
  if (!softmax || g.sole_consumer(a.softmax->outputs[0]) != a.context || !a.softmax->inputs[0]) return {};
  a.scores = a.softmax->inputs[0]->producer;
  if (!is(a.scores, "sparta", "BatchMatMul") || g.sole_consumer(a.scores->outputs[0]) != a.softmax ||
      a.scores->inputs.size() != 2 || !perm_is(a.scores, "perm_a", {0, 2, 1, 3}) ||
      !perm_is(a.scores, "perm_b", {0, 2, 3, 1}) || !perm_is(a.scores, "perm_y", {}))
    return {};
  a.rq = a.scores->inputs[0] ? a.scores->inputs[0]->producer : nullptr;
  a.rk = a.scores->inputs[1] ? a.scores->inputs[1]->producer : nullptr;
  // The splits: Reshape(Linear output, [.., H, D]), each the sole reader.
  Node* const splits[3] = {a.rq, a.rk, a.rv};
  Node* const readers[3] = {a.scores, a.scores, a.context};
  Node* lins[3] = {};
  for (int i = 0; i < 3; ++i) {
    Node* r = splits[i];
    if (!is(r, "", "Reshape") || r->inputs.size() != 2 || !r->inputs[0] || g.sole_consumer(r->outputs[0]) != readers[i])
      return {};
    const auto target = int_constant(r->inputs[1]);
    if (!target || target->size() != 4 || (*target)[2] != a.heads || (*target)[3] != a.dim) return {};
    lins[i] = r->inputs[0]->producer;
    const auto n = linear_outputs(lins[i]);
    if (!n || *n != a.heads * a.dim || g.sole_consumer(lins[i]->outputs[0]) != r) return {};
  }
  if (a.rq == a.rk) return {};
  a.q = lins[0];
  a.k = lins[1];
  a.v = lins[2];
  const auto merged = int_constant(a.merge->inputs.size() == 2 ? a.merge->inputs[1] : nullptr);
  if (!merged || merged->empty() || (merged->back() != a.heads * a.dim && merged->back() != -1)) return {};
  const int64_t k_o = o->attr_int("trans_w", 0) ? o->inputs[1]->constant->dim(1) : o->inputs[1]->constant->dim(0);
  if (k_o != a.heads * a.dim) return {};
  return a;
}

// Heads whose rows of O's weight (its input features) are not all zero.
std::vector<int64_t> live_heads(const Attention& a) {
  const Tensor& w = *a.o->inputs[1]->constant;
  const bool nk = a.o->attr_int("trans_w", 0) != 0;  // [N, K]: input features are columns
  const int64_t rows = w.dim(0), cols = w.dim(1);
  const float* p = w.data<float>();
  std::vector<int64_t> live;
  for (int64_t h = 0; h < a.heads; ++h) {
    bool any = false;
    for (int64_t f = h * a.dim; f < (h + 1) * a.dim && !any; ++f)
      for (int64_t j = 0; j < (nk ? rows : cols) && !any; ++j) any = (nk ? p[j * cols + f] : p[f * cols + j]) != 0.f;
    if (any) live.push_back(h);
  }
  return live;
}

}  // namespace

std::string HeadsReport::str() const {
  std::ostringstream os;
  os << "shrink heads: " << heads << " attention head(s) removed in " << attentions << " attention block(s)";
  return os.str();
}

HeadsReport shrink_heads(Graph& g) {
  HeadsReport rep;
  std::vector<Node*> outs;
  for (const auto& n : g.nodes())
    if (is(n.get(), "sparta", "Linear")) outs.push_back(n.get());
  for (Node* o : outs) {
    const std::optional<Attention> a = match(g, o);
    if (!a) continue;
    const std::vector<int64_t> live = live_heads(*a);
    const int64_t h2 = static_cast<int64_t>(live.size());
    if (h2 == 0 || h2 == a->heads) continue;
    std::vector<int64_t> keep;  // the kept features: every dim of every live head
    for (int64_t h : live)
      for (int64_t d = 0; d < a->dim; ++d) keep.push_back(h * a->dim + d);
    for (Node* lin : {a->q, a->k, a->v}) {
      const bool nk = lin->attr_int("trans_w", 0) != 0;
      set_input(g, lin, 1, select_along(*lin->inputs[1]->constant, nk ? 0 : 1, keep));
      if (lin->inputs.size() > 2 && lin->inputs[2]) set_input(g, lin, 2, select_along(*lin->inputs[2]->constant, 0, keep));
      Value* out = lin->outputs[0];
      if (out->dims) out->dims->back() = h2 * a->dim;
    }
    for (Node* r : {a->rq, a->rk, a->rv}) {
      std::vector<int64_t> t = *int_constant(r->inputs[1]);
      t[2] = h2;
      set_input(g, r, 1, ints(t));
      if (r->outputs[0]->dims) (*r->outputs[0]->dims)[2] = h2;
    }
    for (Node* n : {a->scores, a->softmax})
      if (n->outputs[0]->dims && n->outputs[0]->dims->size() == 4) (*n->outputs[0]->dims)[1] = h2;
    (*a->context->outputs[0]->dims)[2] = h2;
    std::vector<int64_t> m = *int_constant(a->merge->inputs[1]);
    if (m.back() != -1) m.back() = h2 * a->dim;
    set_input(g, a->merge, 1, ints(m));
    if (a->merge->outputs[0]->dims) a->merge->outputs[0]->dims->back() = h2 * a->dim;
    const bool nk = a->o->attr_int("trans_w", 0) != 0;
    set_input(g, a->o, 1, select_along(*a->o->inputs[1]->constant, nk ? 1 : 0, keep));
    // The TeSAs of the values whose shapes changed no longer fit.
    for (Node* n : {a->q, a->k, a->v, a->rq, a->rk, a->rv, a->scores, a->softmax, a->context, a->merge})
      n->outputs[0]->tesa.reset();
    ++rep.attentions;
    rep.heads += a->heads - h2;
  }
  if (rep.attentions) g.link();
  return rep;
}

}  // namespace sparta
