#include "passes/fuse.h"

#include <cmath>
#include <functional>
#include <set>

namespace sparta {
namespace {

bool is_op(const Node* n, const char* op, size_t inputs) {
  return n && n->domain.empty() && n->op_type == op && n->inputs.size() == inputs && n->outputs.size() == 1 &&
         n->outputs[0];
}

// A scalar f32 constant (any rank, one element).
bool scalar_constant(const Value* v, float& out) {
  if (!v || !v->is_constant() || v->constant->dtype() != DType::f32 || v->constant->numel() != 1) return false;
  out = v->constant->data<float>()[0];
  return true;
}

bool scalar_is(const Value* v, float want, float tol) {
  float f;
  return scalar_constant(v, f) && std::fabs(f - want) <= tol * std::fabs(want);
}

// Whether binary node b leaves the shape of its operand `main` as it is
// (the other operand broadcasts into it, never grows it or its rank): the
// condition for absorbing b into the node that produces `main`. Needs the
// shapes shape inference found.
bool keeps_shape(const Node* b, const Value* main) {
  const Value* out = b && !b->outputs.empty() ? b->outputs[0] : nullptr;
  return out && main && out->dims && main->dims && *out->dims == *main->dims;
}

// For a binary node with `known` as one input: the other one (or null).
Value* other_input(const Node* n, const Value* known) {
  if (n->inputs.size() != 2) return nullptr;
  if (n->inputs[0] == known) return n->inputs[1];
  if (n->inputs[1] == known) return n->inputs[0];
  return nullptr;
}

// A rank-1 f32 constant of n values.
bool vector_constant(const Value* v, int64_t n) {
  return v && v->is_constant() && v->constant->dtype() == DType::f32 && v->constant->rank() == 1 &&
         v->constant->numel() == n;
}

// ReduceMean over the last axis only, keeping dims (either opset's form).
bool is_last_axis_mean(const Node* n) {
  if (!n || !n->domain.empty() || n->op_type != "ReduceMean" || n->outputs.size() != 1 || !n->outputs[0]) return false;
  if (n->attr_int("keepdims", 1) != 1) return false;
  std::vector<int64_t> axes = n->attr_ints("axes");
  if (n->inputs.size() >= 2 && n->inputs[1]) {
    const Value* a = n->inputs[1];
    if (!a->is_constant() || a->constant->dtype() != DType::i64) return false;
    axes.assign(a->constant->data<int64_t>(), a->constant->data<int64_t>() + a->constant->numel());
  }
  if (axes.size() != 1) return false;
  if (axes[0] == -1) return true;
  const Value* x = n->inputs[0];
  return x && x->dims && axes[0] == static_cast<int64_t>(x->dims->size()) - 1;
}

// Rewrites `last` in place into the fused node and removes `dead`.
void replace(Graph& g, Node* last, const std::string& name, const std::string& domain, const std::string& op,
             std::vector<Value*> inputs, std::map<std::string, Attribute> attrs, std::vector<const Node*> dead) {
  last->name = name;
  last->domain = domain;
  last->op_type = op;
  last->inputs = std::move(inputs);
  last->attrs = std::move(attrs);
  g.erase_nodes(dead);  // relinks
}

Attribute attr_s(std::string s) {
  Attribute a;
  a.kind = Attribute::Kind::s;
  a.s = std::move(s);
  return a;
}
Attribute attr_i(int64_t i) {
  Attribute a;
  a.kind = Attribute::Kind::i;
  a.i = i;
  return a;
}
Attribute attr_f(float f) {
  Attribute a;
  a.kind = Attribute::Kind::f;
  a.f = f;
  return a;
}
Attribute attr_is(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::is;
  a.is = std::move(v);
  return a;
}

// Applies `try_at` to nodes until none matches (each match rewrites the
// graph, so the scan restarts).
int rewrite_all(Graph& g, const std::function<bool(Node*)>& try_at) {
  int count = 0;
  for (bool again = true; again;) {
    again = false;
    for (const auto& n : g.nodes())
      if (try_at(n.get())) {
        ++count;
        again = true;
        break;
      }
  }
  return count;
}

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

// An activation oneDNN applies as a convolution post-op (Relu, Clip with
// constant bounds, LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Tanh),
// folded into the convolution as attributes "sparta.act" and its
// parameters ("sparta.clip", "sparta.act_params"); false for any other node.
bool conv_activation_attrs(const Node* act, std::map<std::string, Attribute>& attrs) {
  if (!act || !act->domain.empty() || act->outputs.size() != 1 || !act->outputs[0]) return false;
  float lo, hi;
  const auto params = [&attrs](float a, float b) {
    Attribute p;
    p.kind = Attribute::Kind::fs;
    p.fs = {a, b};
    attrs["sparta.act_params"] = p;
  };
  static const std::map<std::string, std::string> plain = {
      {"Relu", "relu"}, {"HardSwish", "hard_swish"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"}};
  if (auto it = plain.find(act->op_type); it != plain.end() && act->inputs.size() == 1) {
    attrs["sparta.act"] = attr_s(it->second);
  } else if (act->op_type == "LeakyRelu") {
    attrs["sparta.act"] = attr_s("leaky_relu");
    params(act->attr_float("alpha", 0.01f), 0.f);
  } else if (act->op_type == "HardSigmoid") {
    attrs["sparta.act"] = attr_s("hard_sigmoid");
    params(act->attr_float("alpha", 0.2f), act->attr_float("beta", 0.5f));
  } else if (act->op_type == "Clip" && clip_bounds(*act, lo, hi)) {
    attrs["sparta.act"] = attr_s("clip");
    Attribute b;
    b.kind = Attribute::Kind::fs;
    b.fs = {lo, hi};
    attrs["sparta.clip"] = b;
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::string FuseReport::str() const {
  return "fused: " + std::to_string(conv_bn) + " conv+batchnorm, " + std::to_string(conv_affine) + " conv+affine, " +
         std::to_string(conv_post_linear) + " conv+post-linear, " + std::to_string(conv_act) + " conv+act, " + std::to_string(conv_residual) + " conv+residual, " + std::to_string(gelu) + " gelu, " + std::to_string(hard_swish) + " hard swish, " +
         std::to_string(layer_norm) + " layer norm, " + std::to_string(linear) + " linear, " +
         std::to_string(batch_matmul) + " batched matmul, " + std::to_string(masked_softmax) + " masked softmax";
}

int fuse_conv_activations(Graph& g) {
  std::vector<const Node*> dead;
  for (const auto& n : g.nodes()) {
    if (n->op_type != "Conv" || !n->domain.empty() || n->attr("sparta.act") || n->outputs.size() != 1) continue;
    Node* act = g.sole_consumer(n->outputs[0]);
    if (!conv_activation_attrs(act, n->attrs)) continue;
    n->outputs[0] = act->outputs[0];
    dead.push_back(act);
  }
  if (!dead.empty()) g.erase_nodes(dead);
  return static_cast<int>(dead.size());
}

// The value per output channel of a constant operand `c` of binary node b
// applied to y, a convolution output of co channels: a scalar, or a tensor
// of y's rank or less whose only non-unit axis lines up with y's channels.
bool channel_values(const Node* b, const Value* y, const Value* c, int64_t co, std::vector<float>& out) {
  if (!c || !c->is_constant() || c->constant->dtype() != DType::f32 || !keeps_shape(b, y)) return false;
  const Tensor& t = *c->constant;
  if (t.numel() == 1) {
    out.assign(static_cast<size_t>(co), t.data<float>()[0]);
    return true;
  }
  const int rank = static_cast<int>(y->dims->size()), axis = 1 - (rank - t.rank());  // y's axis 1 in t
  if (rank < 2 || axis < 0) return false;
  for (int i = 0; i < t.rank(); ++i)
    if (t.dim(i) != (i == axis ? co : 1)) return false;
  out.assign(t.data<float>(), t.data<float>() + co);
  return true;
}

// The affine map per channel, y' = a * y + shift, of the node reading a
// convolution's output y: an inference BatchNormalization, or Mul, Add,
// Sub or Div with a scalar or per-channel constant. False for anything else.
bool channel_affine(const Graph& g, const Node* n, const Value* y, int64_t co, std::vector<float>& a,
                    std::vector<float>& shift) {
  if (!n || !n->domain.empty() || n->outputs.empty() || !n->outputs[0]) return false;
  a.assign(static_cast<size_t>(co), 1.f);
  shift.assign(static_cast<size_t>(co), 0.f);
  if (n->op_type == "BatchNormalization") {
    if (n->inputs.size() != 5 || n->inputs[0] != y || n->attr_int("training_mode", 0) != 0) return false;
    for (size_t i = 1; i < n->outputs.size(); ++i)  // running statistics (training): nothing may read them
      if (n->outputs[i] && (!n->outputs[i]->consumers.empty() || g.is_output(n->outputs[i]))) return false;
    for (size_t i = 1; i < 5; ++i)
      if (!vector_constant(n->inputs[i], co)) return false;
    // (y - mean) * scale / sqrt(var + eps) + beta
    const float eps = n->attr_float("epsilon", 1e-5f);
    const float *scale = n->inputs[1]->constant->data<float>(), *beta = n->inputs[2]->constant->data<float>(),
                *mean = n->inputs[3]->constant->data<float>(), *var = n->inputs[4]->constant->data<float>();
    for (size_t o = 0; o < a.size(); ++o) {
      a[o] = scale[o] / std::sqrt(var[o] + eps);
      shift[o] = beta[o] - mean[o] * a[o];
    }
    return true;
  }
  if (n->inputs.size() != 2 || n->outputs.size() != 1) return false;
  const bool first = n->inputs[0] == y;
  std::vector<float> v;
  if (!channel_values(n, y, other_input(n, y), co, v) || n->inputs[0] == n->inputs[1]) return false;
  if (n->op_type == "Mul") {
    a = v;
  } else if (n->op_type == "Add") {
    shift = v;
  } else if (n->op_type == "Sub") {
    for (size_t o = 0; o < v.size(); ++o) {
      a[o] = first ? 1.f : -1.f;
      shift[o] = first ? -v[o] : v[o];
    }
  } else if (n->op_type == "Div" && first) {
    for (size_t o = 0; o < v.size(); ++o) {
      if (v[o] == 0.f || !std::isfinite(1.f / v[o])) return false;
      a[o] = 1.f / v[o];
    }
  } else {
    return false;
  }
  return true;
}

int fold_conv_affine(Graph& g, int& batchnorms) {
  return rewrite_all(g, [&g, &batchnorms](Node* cv) {
    if (!cv->domain.empty() || cv->op_type != "Conv" || cv->attr("sparta.act") || cv->outputs.size() != 1 ||
        !cv->outputs[0] || cv->inputs.size() < 2 || cv->inputs.size() > 3 || !cv->inputs[0] || !cv->inputs[1])
      return false;
    const Value* w = cv->inputs[1];
    const Value* b = cv->inputs.size() == 3 ? cv->inputs[2] : nullptr;
    if (!w->is_constant() || w->constant->dtype() != DType::f32 || w->constant->rank() < 3) return false;
    const int64_t co = w->constant->dim(0);
    if (b && !vector_constant(b, co)) return false;
    Node* next = g.sole_consumer(cv->outputs[0]);
    std::vector<float> a, shift;
    if (!channel_affine(g, next, cv->outputs[0], co, a, shift)) return false;
    // a * (conv(x, w) + b) + shift = conv(x, a w) + (a b + shift)
    Tensor wf = w->constant->clone();
    Tensor bf(DType::f32, Shape{co});
    const int64_t per = co ? wf.numel() / co : 0;
    for (int64_t o = 0; o < co; ++o) {
      float* wo = wf.data<float>() + o * per;
      for (int64_t i = 0; i < per; ++i) wo[i] *= a[size_t(o)];
      bf.data<float>()[o] = (b ? b->constant->data<float>()[o] : 0.f) * a[size_t(o)] + shift[size_t(o)];
    }
    const bool bn = next->op_type == "BatchNormalization";
    batchnorms += bn;
    Value* wv = g.add_constant(cv->name + (bn ? "/bn_folded_weight" : "/folded_weight"), std::move(wf));
    Value* bv = g.add_constant(cv->name + (bn ? "/bn_folded_bias" : "/folded_bias"), std::move(bf));
    const std::string name = cv->name;
    next->outputs.resize(1);
    replace(g, next, name, "", "Conv", {cv->inputs[0], wv, bv}, cv->attrs, {cv});
    return true;
  });
}

// A scalar affine map after a convolution's activation or residual sum,
// y' = alpha * y + beta, as the attribute "sparta.post_linear" (a oneDNN
// eltwise_linear post-op); maps in a row compose.
int fuse_conv_post_linear(Graph& g) {
  return rewrite_all(g, [&g](Node* cv) {
    if (!cv->domain.empty() || cv->op_type != "Conv" || cv->outputs.size() != 1 || !cv->outputs[0] ||
        (!cv->attr("sparta.act") && cv->inputs.size() < 4))
      return false;
    Node* next = g.sole_consumer(cv->outputs[0]);
    std::vector<float> a, shift;
    if (!next || next->op_type == "BatchNormalization" || !channel_affine(g, next, cv->outputs[0], 1, a, shift) ||
        other_input(next, cv->outputs[0])->constant->numel() != 1)
      return false;
    Attribute lin;
    lin.kind = Attribute::Kind::fs;
    lin.fs = {1.f, 0.f};
    if (const Attribute* old = cv->attr("sparta.post_linear"); old && old->fs.size() == 2) lin.fs = old->fs;
    lin.fs = {a[0] * lin.fs[0], a[0] * lin.fs[1] + shift[0]};
    cv->attrs["sparta.post_linear"] = lin;
    cv->outputs[0] = next->outputs[0];
    g.erase_nodes({next});
    return true;
  });
}

int fuse_conv_residual(Graph& g) {
  return rewrite_all(g, [&g](Node* cv) {
    if (!cv->domain.empty() || cv->op_type != "Conv" || cv->attr("sparta.act") || cv->outputs.size() != 1 ||
        !cv->outputs[0] || cv->inputs.size() < 2 || cv->inputs.size() > 3)
      return false;
    Value* y = cv->outputs[0];
    Node* add = g.sole_consumer(y);
    if (!is_op(add, "Add", 2)) return false;
    Value* r = other_input(add, y);
    // Summed in place by oneDNN: the residual must have the output's shape.
    if (!r || r == y || r->is_constant() || !keeps_shape(add, y) || !r->dims || *r->dims != *y->dims) return false;
    std::map<std::string, Attribute> attrs = cv->attrs;
    std::vector<const Node*> dead = {cv};
    Node* last = add;
    Node* act = g.sole_consumer(add->outputs[0]);
    if (!conv_activation_attrs(act, attrs)) act = nullptr;
    if (act) {
      dead.push_back(add);
      last = act;
    }
    std::vector<Value*> ins = cv->inputs;
    ins.resize(3, nullptr);
    ins.push_back(r);
    const std::string name = cv->name;
    replace(g, last, name, "", "Conv", ins, attrs, dead);
    return true;
  });
}

// x -> Div(x, sqrt 2) | Mul(x, 1/sqrt 2) -> Erf -> Add(1) -> then either
// Mul(x, .) -> Mul(0.5), or Mul(Mul(x, 0.5), .).
int fuse_gelu(Graph& g) {
  return rewrite_all(g, [&g](Node* e) {
    if (!is_op(e, "Erf", 1)) return false;
    Node* d = e->inputs[0] ? e->inputs[0]->producer : nullptr;
    if (!d || g.sole_consumer(d->outputs[0]) != e) return false;
    Value* x = nullptr;
    if (is_op(d, "Div", 2) && scalar_is(d->inputs[1], 1.41421356f, 1e-4f)) x = d->inputs[0];
    else if (is_op(d, "Mul", 2) && scalar_is(d->inputs[1], 0.70710678f, 1e-4f)) x = d->inputs[0];
    else if (is_op(d, "Mul", 2) && scalar_is(d->inputs[0], 0.70710678f, 1e-4f)) x = d->inputs[1];
    if (!x || x->is_constant() || !keeps_shape(d, x)) return false;
    Node* a = g.sole_consumer(e->outputs[0]);
    if (!is_op(a, "Add", 2) || !scalar_is(other_input(a, e->outputs[0]), 1.f, 1e-6f) || !keeps_shape(a, x)) return false;
    Node* m1 = g.sole_consumer(a->outputs[0]);
    if (!is_op(m1, "Mul", 2) || !keeps_shape(m1, x)) return false;
    Value* other = other_input(m1, a->outputs[0]);
    if (!other) return false;
    std::vector<const Node*> dead = {d, e, a};
    Node* last = nullptr;
    if (other == x) {  // x * (1 + erf) * 0.5
      Node* m2 = g.sole_consumer(m1->outputs[0]);
      if (!is_op(m2, "Mul", 2) || !scalar_is(other_input(m2, m1->outputs[0]), 0.5f, 1e-6f) || !keeps_shape(m2, x))
        return false;
      dead.push_back(m1);
      last = m2;
    } else {  // (x * 0.5) * (1 + erf)
      Node* h = other->producer;
      if (!is_op(h, "Mul", 2) || g.sole_consumer(h->outputs[0]) != m1 || other_input(h, x) == nullptr ||
          !scalar_is(other_input(h, x), 0.5f, 1e-6f) || !keeps_shape(h, x))
        return false;
      dead.push_back(h);
      last = m1;
    }
    replace(g, last, d->name, "sparta", "Gelu", {x}, {}, dead);
    return true;
  });
}

// x * Clip(x + 3, 0, 6) / 6 (or * 1/6), as older exporters (Paddle2ONNX)
// write HardSwish, becomes the HardSwish operator (which a convolution
// before it then takes as a post-op).
int fuse_hard_swish(Graph& g) {
  return rewrite_all(g, [&g](Node* a) {
    if (!is_op(a, "Add", 2)) return false;
    Value* x = nullptr;
    if (scalar_is(a->inputs[1], 3.f, 1e-6f)) x = a->inputs[0];
    else if (scalar_is(a->inputs[0], 3.f, 1e-6f)) x = a->inputs[1];
    if (!x || x->is_constant() || !keeps_shape(a, x)) return false;
    Node* clip = g.sole_consumer(a->outputs[0]);
    float lo, hi;
    if (!clip || !clip->domain.empty() || clip->op_type != "Clip" || !clip_bounds(*clip, lo, hi) || lo != 0.f ||
        hi != 6.f || clip->outputs.size() != 1)
      return false;
    Node* m = g.sole_consumer(clip->outputs[0]);
    if (!is_op(m, "Mul", 2) || other_input(m, clip->outputs[0]) != x || !keeps_shape(m, x)) return false;
    Node* d = g.sole_consumer(m->outputs[0]);
    const bool div6 = is_op(d, "Div", 2) && d->inputs[0] == m->outputs[0] && scalar_is(d->inputs[1], 6.f, 1e-6f);
    const bool mul6 = is_op(d, "Mul", 2) && scalar_is(other_input(d, m->outputs[0]), 1.f / 6.f, 1e-5f);
    if (!(div6 || mul6) || !keeps_shape(d, x)) return false;
    replace(g, d, a->name + "/hard_swish", "", "HardSwish", {x}, {}, {a, clip, m});
    return true;
  });
}

int fuse_layer_norm(Graph& g) {
  return rewrite_all(g, [&g](Node* r1) {
    if (!is_last_axis_mean(r1)) return false;
    Value* x = r1->inputs[0];
    if (!x || !x->dims || x->dims->empty()) return false;
    Node* s = g.sole_consumer(r1->outputs[0]);
    if (!is_op(s, "Sub", 2) || s->inputs[0] != x || s->inputs[1] != r1->outputs[0] || !keeps_shape(s, x)) return false;
    const Value* dev = s->outputs[0];
    if (dev->consumers.size() != 2 || g.is_output(dev)) return false;
    Node *p = dev->consumers[0], *dv = dev->consumers[1];
    if (p->op_type != "Pow") std::swap(p, dv);
    if (!is_op(p, "Pow", 2) || p->inputs[0] != dev || !scalar_is(p->inputs[1], 2.f, 0.f) || !keeps_shape(p, x))
      return false;
    Node* r2 = g.sole_consumer(p->outputs[0]);
    if (!is_last_axis_mean(r2)) return false;
    Node* ad = g.sole_consumer(r2->outputs[0]);
    float eps;
    if (!is_op(ad, "Add", 2) || !scalar_constant(other_input(ad, r2->outputs[0]), eps) ||
        !keeps_shape(ad, r2->outputs[0]))
      return false;
    Node* sq = g.sole_consumer(ad->outputs[0]);
    if (!is_op(sq, "Sqrt", 1) || g.sole_consumer(sq->outputs[0]) != dv) return false;
    if (!is_op(dv, "Div", 2) || dv->inputs[0] != dev || dv->inputs[1] != sq->outputs[0] || !keeps_shape(dv, x))
      return false;
    Node* ml = g.sole_consumer(dv->outputs[0]);
    if (!is_op(ml, "Mul", 2) || !keeps_shape(ml, x)) return false;
    Value* gamma = other_input(ml, dv->outputs[0]);
    const int64_t n = x->dims->back();  // gamma and beta hold one value per normalized element
    if (n <= 0 || !vector_constant(gamma, n)) return false;
    Node* ab = g.sole_consumer(ml->outputs[0]);
    Value* beta = ab && is_op(ab, "Add", 2) ? other_input(ab, ml->outputs[0]) : nullptr;
    if (!vector_constant(beta, n) || !keeps_shape(ab, x)) return false;
    replace(g, ab, r1->name, "", "LayerNormalization", {x, gamma, beta},
            {{"axis", attr_i(-1)}, {"epsilon", attr_f(eps)}}, {r1, s, p, r2, ad, sq, dv, ml});
    return true;
  });
}

int fuse_masked_softmax(Graph& g) {
  const int64_t opset = g.default_opset();
  return rewrite_all(g, [&g, opset](Node* sm) {
    if (!is_op(sm, "Softmax", 1) || !sm->inputs[0]) return false;
    Node* add = sm->inputs[0]->producer;
    if (!is_op(add, "Add", 2) || !add->inputs[0] || !add->inputs[1] || g.sole_consumer(add->outputs[0]) != sm)
      return false;
    // One operand has the sum's shape, the other (the mask) broadcasts into it.
    if (!keeps_shape(add, add->inputs[0]) && !keeps_shape(add, add->inputs[1])) return false;
    const Value* v = sm->inputs[0];
    const int64_t axis = sm->attr_int("axis", opset >= 13 ? -1 : 1);
    const int64_t rank = v->dims ? static_cast<int64_t>(v->dims->size()) : -1;
    // The last axis only (before opset 13 Softmax flattens from `axis` on,
    // which is the same thing when axis is the last one).
    if (!(axis == -1 || (rank > 0 && axis == rank - 1))) return false;
    replace(g, sm, sm->name, "sparta", "Softmax", {add->inputs[0], add->inputs[1]}, {}, {add});
    return true;
  });
}

int fuse_linear(Graph& g) {
  return rewrite_all(g, [&g](Node* m) {
    if (!m->domain.empty() || m->outputs.size() != 1 || !m->outputs[0]) return false;
    bool trans_w = false;
    Value* bias = nullptr;
    if (m->op_type == "MatMul" && m->inputs.size() == 2) {
    } else if (m->op_type == "Gemm" && m->inputs.size() >= 2) {
      if (m->attr_int("transA", 0) != 0 || m->attr_float("alpha", 1.f) != 1.f) return false;
      trans_w = m->attr_int("transB", 0) != 0;
      if (m->inputs.size() >= 3 && m->inputs[2] && m->attr_float("beta", 1.f) != 0.f) {
        if (m->attr_float("beta", 1.f) != 1.f) return false;
        bias = m->inputs[2];
      }
    } else {
      return false;
    }
    Value *x = m->inputs[0], *w = m->inputs[1];
    if (!x || !w || !w->is_constant() || w->constant->dtype() != DType::f32 || w->constant->rank() != 2) return false;
    const int64_t n = w->constant->dim(trans_w ? 0 : 1);
    if (bias && !(bias->is_constant() && bias->constant->dtype() == DType::f32 && bias->constant->numel() == n &&
                  (bias->constant->rank() == 1 || (bias->constant->rank() == 2 && bias->constant->dim(0) == 1))))
      return false;
    std::vector<const Node*> dead;
    Node* last = m;
    Value* y = m->outputs[0];
    Node* next = g.sole_consumer(y);
    if (!bias && is_op(next, "Add", 2) && vector_constant(other_input(next, y), n) && keeps_shape(next, y)) {
      bias = other_input(next, y);
      dead.push_back(last);
      last = next;
      y = next->outputs[0];
      next = g.sole_consumer(y);
    }
    Value* residual = nullptr;
    if (is_op(next, "Add", 2) && other_input(next, y) && other_input(next, y) != y &&
        !other_input(next, y)->is_constant() && keeps_shape(next, y)) {
      residual = other_input(next, y);
      dead.push_back(last);
      last = next;
      y = next->outputs[0];
      next = g.sole_consumer(y);
    }
    std::string act = "none";
    if (is_op(next, "Relu", 1)) act = "relu";
    else if (next && next->domain == "sparta" && next->op_type == "Gelu" && next->outputs.size() == 1) act = "gelu";
    if (act != "none") {
      dead.push_back(last);
      last = next;
    }
    const std::string name = m->name;
    replace(g, last, name, "sparta", "Linear", {x, w, bias, residual},
            {{"trans_w", attr_i(trans_w ? 1 : 0)}, {"act", attr_s(act)}}, dead);
    return true;
  });
}

int fuse_batch_matmul(Graph& g) {
  return rewrite_all(g, [&g](Node* m) {
    if (!is_op(m, "MatMul", 2) || !m->inputs[0] || !m->inputs[1]) return false;
    if (m->inputs[0]->is_constant() || m->inputs[1]->is_constant()) return false;
    std::vector<const Node*> dead;
    std::map<std::string, Attribute> attrs;
    std::vector<Value*> ins = m->inputs;
    const char* perm_names[2] = {"perm_a", "perm_b"};
    for (size_t i = 0; i < 2; ++i) {
      Node* t = ins[i]->producer;
      if (!is_op(t, "Transpose", 1) || g.sole_consumer(t->outputs[0]) != m || !t->attr("perm") || !t->inputs[0])
        continue;
      attrs[perm_names[i]] = attr_is(t->attr_ints("perm"));
      ins[i] = t->inputs[0];
      dead.push_back(t);
    }
    Node* last = m;
    Value* y = m->outputs[0];
    Node* next = g.sole_consumer(y);
    float c;
    if ((is_op(next, "Div", 2) || is_op(next, "Mul", 2)) && next->inputs[0] == y &&
        scalar_constant(next->inputs[1], c) && c != 0.f && std::isfinite(c) && keeps_shape(next, y)) {
      attrs["scale"] = attr_f(next->op_type == "Div" ? 1.f / c : c);
      dead.push_back(last);
      last = next;
      y = next->outputs[0];
      next = g.sole_consumer(y);
    }
    if (is_op(next, "Transpose", 1) && next->attr("perm")) {
      attrs["perm_y"] = attr_is(next->attr_ints("perm"));
      dead.push_back(last);
      last = next;
    }
    if (dead.empty()) return false;  // nothing to fold
    const std::string name = m->name;
    replace(g, last, name, "sparta", "BatchMatMul", ins, attrs, dead);
    return true;
  });
}

FuseReport fuse_all(Graph& g) {
  FuseReport r;
  r.hard_swish = fuse_hard_swish(g);
  r.conv_affine = fold_conv_affine(g, r.conv_bn);
  r.conv_affine -= r.conv_bn;
  r.conv_residual = fuse_conv_residual(g);
  r.conv_act = fuse_conv_activations(g);
  r.conv_post_linear = fuse_conv_post_linear(g);
  r.gelu = fuse_gelu(g);
  r.layer_norm = fuse_layer_norm(g);
  r.linear = fuse_linear(g);
  r.batch_matmul = fuse_batch_matmul(g);
  r.masked_softmax = fuse_masked_softmax(g);
  return r;
}

}  // namespace sparta
