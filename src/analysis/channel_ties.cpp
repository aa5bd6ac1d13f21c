#include "analysis/channel_ties.h"

#include <algorithm>
#include <set>

#include "ops/op_def.h"

namespace sparta {
namespace {

bool is(const Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op; }

bool f32_constant(const Value* v, size_t min_rank, size_t max_rank) {
  return v && v->is_constant() && v->constant->dtype() == DType::f32 && size_t(v->constant->rank()) >= min_rank &&
         size_t(v->constant->rank()) <= max_rank;
}

// A constant of n elements that broadcasts along the last axis (or axis 1
// of a convolution's output when `conv`): [n], [1, n], or [n, 1, 1].
bool bias_of(const Value* v, int64_t n, bool conv) {
  if (!f32_constant(v, 1, 4) || v->constant->numel() != n) return false;
  const auto& d = v->constant->shape().dims();
  if (conv) return d.size() == 1 || (d.size() == 3 && d[0] == n);
  return d.back() == n;
}

}  // namespace

std::vector<PrunableWeight> prunable_weights(const Graph& g) {
  std::vector<PrunableWeight> out;
  std::set<const Value*> seen;
  for (const auto& up : g.nodes()) {
    Node* n = up.get();
    if (n->inputs.size() < 2 || !n->inputs[0] || n->outputs.empty() || !n->outputs[0]) continue;
    Value* w = n->inputs[1];
    PrunableWeight p;
    p.node = n;
    p.weight = w;
    if (is(n, "MatMul") && f32_constant(w, 2, 2) && !n->inputs[0]->is_constant()) {
      p.kind = PrunableWeight::Kind::matmul_kn;
      p.rows = w->constant->dim(1), p.cols = w->constant->dim(0);
      Value* y = n->outputs[0];
      if (y->consumers.size() == 1 && is(y->consumers[0], "Add") && y->consumers[0]->inputs.size() == 2) {
        Node* add = y->consumers[0];
        Value* c = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
        if (bias_of(c, p.rows, false) && c->constant->rank() <= 2) p.bias = c, p.bias_node = add;
      }
    } else if (is(n, "Gemm") && f32_constant(w, 2, 2)) {
      const bool tb = n->attr_int("transB", 0) != 0;
      p.kind = tb ? PrunableWeight::Kind::gemm_nk : PrunableWeight::Kind::gemm_kn;
      p.rows = w->constant->dim(tb ? 0 : 1), p.cols = w->constant->dim(tb ? 1 : 0);
      if (n->inputs.size() > 2 && bias_of(n->inputs[2], p.rows, false) && n->attr_float("beta", 1.0f) == 1.0f)
        p.bias = n->inputs[2], p.bias_node = n;
    } else if (is(n, "Conv") && f32_constant(w, 3, 5)) {
      p.kind = PrunableWeight::Kind::conv;
      p.rows = w->constant->dim(0);
      p.cols = w->constant->numel() / std::max<int64_t>(1, p.rows);
      const int64_t group = n->attr_int("group", 1);
      p.depthwise = group > 1 && group == p.rows && w->constant->dim(1) == 1;
      if (n->inputs.size() > 2 && bias_of(n->inputs[2], p.rows, true)) p.bias = n->inputs[2], p.bias_node = n;
    } else {
      continue;
    }
    if (p.rows > 0 && p.cols > 0 && seen.insert(w).second) out.push_back(p);
  }
  return out;
}

namespace {

// Output channels followed through the graph: the axis they run along and
// one tie id per channel.
struct Track {
  int64_t axis = -1;
  std::vector<int64_t> ids;
};

class Ties {
 public:
  int64_t fresh(bool pinned = false) {
    parent_.push_back(static_cast<int64_t>(parent_.size()));
    pinned_.push_back(pinned);
    return parent_.back();
  }
  std::vector<int64_t> fresh_n(int64_t n, bool pinned = false) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = fresh(pinned);
    return v;
  }
  int64_t find(int64_t x) {
    while (parent_[size_t(x)] != x) x = parent_[size_t(x)] = parent_[size_t(parent_[size_t(x)])];
    return x;
  }
  void join(int64_t a, int64_t b) {
    a = find(a), b = find(b);
    if (a == b) return;
    parent_[size_t(a)] = b;
    pinned_[size_t(b)] = pinned_[size_t(b)] || pinned_[size_t(a)];
  }
  void pin(const Track& t) {
    for (int64_t id : t.ids) pinned_[size_t(find(id))] = true;
  }
  bool pinned(int64_t x) { return pinned_[size_t(find(x))]; }

 private:
  std::vector<int64_t> parent_;
  std::vector<bool> pinned_;
};

int64_t rank_of(const Value* v) { return v && v->dims ? static_cast<int64_t>(v->dims->size()) : -1; }

bool static_dims(const Value* v) {
  if (!v || !v->dims) return false;
  return std::all_of(v->dims->begin(), v->dims->end(), [](int64_t d) { return d > 0; });
}

class Analysis {
 public:
  Analysis(const Graph& g, const std::vector<PrunableWeight>& ws) : g_(g) {
    for (const auto& w : ws)
      if (!by_node_.count(w.node)) by_node_[w.node] = &w;
  }

  ChannelTies run() {
    for (const auto& up : g_.nodes()) node(up.get());
    for (const Value* v : g_.outputs)
      if (const Track* t = track(v)) ties_.pin(*t);
    ChannelTies out;
    for (const auto& [name, ids] : raw_) {
      std::vector<int64_t>& u = out.units[name];
      for (int64_t id : ids) u.push_back(ties_.pinned(id) ? -1 : ties_.find(id));
    }
    return out;
  }

 private:
  const Track* track(const Value* v) const {
    auto it = tracks_.find(v);
    return it == tracks_.end() ? nullptr : &it->second;
  }

  void node(const Node* n) {
    std::vector<const Track*> in(n->inputs.size(), nullptr);
    bool any = false;
    for (size_t i = 0; i < n->inputs.size(); ++i) any |= (in[i] = track(n->inputs[i])) != nullptr;
    auto it = by_node_.find(n);
    if (it != by_node_.end()) return weight_node(*it->second, in);
    if (!any) return;
    if (!follow(n, in))
      for (const Track* t : in)
        if (t) ties_.pin(*t);
  }

  // A weight's node: reads its input's channels (a contraction, or one per
  // output channel when depthwise) and starts its own.
  void weight_node(const PrunableWeight& w, const std::vector<const Track*>& in) {
    const Node* n = w.node;
    const Value* y = n->outputs[0];
    const int64_t yr = rank_of(y);
    const Track* x = in[0];
    Track out;
    out.axis = w.kind == PrunableWeight::Kind::matmul_kn ? yr - 1 : 1;
    if (w.depthwise && x && x->axis == 1 && static_cast<int64_t>(x->ids.size()) == w.rows) {
      out.ids = x->ids;  // channel c in, channel c out
    } else {
      int64_t reads = 1;  // the axis of X the product contracts
      if (w.kind == PrunableWeight::Kind::matmul_kn) reads = rank_of(n->inputs[0]) - 1;
      else if (w.kind != PrunableWeight::Kind::conv && n->attr_int("transA", 0)) reads = 0;
      const bool grouped = w.kind == PrunableWeight::Kind::conv && n->attr_int("group", 1) != 1;
      if (x && (x->axis != reads || grouped)) ties_.pin(*x);
      out.ids = ties_.fresh_n(w.rows);
    }
    for (size_t i = 1; i < in.size(); ++i)
      if (in[i]) ties_.pin(*in[i]);
    raw_[w.weight->name] = out.ids;
    if (yr > 0 && out.axis >= 0 && out.axis < yr) tracks_[y] = std::move(out);
  }

  // The operators channels pass through; false for any other.
  bool follow(const Node* n, const std::vector<const Track*>& in) {
    if (n->outputs.empty() || !n->outputs[0]) return false;
    const Value* y = n->outputs[0];
    const int64_t yr = rank_of(y);
    if (yr <= 0) return false;
    auto others_constant = [&] {
      for (size_t i = 1; i < n->inputs.size(); ++i)
        if (n->inputs[i] && !n->inputs[i]->is_constant()) return false;
      return true;
    };
    auto same = [&](int64_t axis) {
      if (!in[0] || in[0]->axis != axis || axis >= yr) return false;
      tracks_[y] = *in[0];
      return true;
    };
    const OpDef* def = find_op_def(*n);
    if (n->outputs.size() == 1 && (is(n, "Identity") || is(n, "Dropout") || is(n, "Cast")))
      return rank_of(n->inputs[0]) == yr && same(in[0] ? in[0]->axis : -1);
    if (is(n, "BatchNormalization") && n->outputs.size() == 1 && others_constant()) return same(1);
    if (def && (def->layout == LayoutRole::passthrough || def->layout == LayoutRole::reader) && !def->elementwise &&
        n->outputs.size() == 1 && others_constant())
      return rank_of(n->inputs[0]) == yr && same(1);
    if (def && def->elementwise && n->outputs.size() == 1) return elementwise(n, in, yr);
    if (is(n, "Concat")) return concat(n, in, yr);
    if (is(n, "Split")) return split(n, in);
    if (is(n, "Transpose") && in[0]) {
      std::vector<int64_t> perm = n->attr_ints("perm");
      if (perm.empty())
        for (int64_t i = yr - 1; i >= 0; --i) perm.push_back(i);
      for (size_t i = 0; i < perm.size(); ++i)
        if (perm[i] == in[0]->axis) {
          Track t = *in[0];
          t.axis = static_cast<int64_t>(i);
          tracks_[y] = std::move(t);
          return true;
        }
      return false;
    }
    if (is(n, "Reshape") || is(n, "Flatten") || is(n, "Squeeze") || is(n, "Unsqueeze")) return reshape(n, in);
    if (is(n, "ReduceMean") || is(n, "ReduceSum") || is(n, "ReduceMax") || is(n, "ReduceMin")) return reduce(n, in);
    return false;
  }

  // A reduction over other axes (a global average pool written as a mean)
  // keeps each channel apart.
  bool reduce(const Node* n, const std::vector<const Track*>& in) {
    const Track* t = in[0];
    const int64_t r = rank_of(n->inputs[0]);
    if (!t || r <= 0 || n->outputs.size() != 1) return false;
    std::vector<int64_t> axes = n->attr_ints("axes");
    if (n->inputs.size() > 1 && n->inputs[1]) {
      const Value* a = n->inputs[1];
      if (!a->is_constant() || a->constant->dtype() != DType::i64) return false;
      axes.assign(a->constant->data<int64_t>(), a->constant->data<int64_t>() + a->constant->numel());
    }
    if (axes.empty()) return false;  // every axis
    int64_t before = 0;
    for (int64_t& a : axes) {
      if (a < 0) a += r;
      if (a == t->axis) return false;
      before += a < t->axis;
    }
    Track out = *t;
    if (!n->attr_int("keepdims", 1)) out.axis -= before;
    tracks_[n->outputs[0]] = std::move(out);
    return true;
  }

  // Channels meet channel by channel: every run-time operand that spans the
  // channel axis must carry tracked channels, and those are joined.
  bool elementwise(const Node* n, const std::vector<const Track*>& in, int64_t yr) {
    int64_t from_end = 0;
    const Track* first = nullptr;
    for (size_t i = 0; i < in.size(); ++i)
      if (in[i]) {
        const int64_t e = in[i]->axis - rank_of(n->inputs[i]);
        if (first && e != from_end) return false;
        if (!first) first = in[i], from_end = e;
        else if (in[i]->ids.size() != first->ids.size()) return false;
      }
    for (size_t i = 0; i < in.size(); ++i) {
      const Value* v = n->inputs[i];
      if (!v || in[i]) continue;
      if (!v->dims) return false;
      const int64_t at = static_cast<int64_t>(v->dims->size()) + from_end;
      const int64_t extent = at >= 0 ? (*v->dims)[size_t(at)] : 1;
      if (extent != 1 && !v->is_constant()) return false;
    }
    for (const Track* t : in)
      if (t && t != first)
        for (size_t c = 0; c < t->ids.size(); ++c) ties_.join(t->ids[c], first->ids[c]);
    Track out = *first;
    out.axis = yr + from_end;
    if (out.axis < 0) return false;
    tracks_[n->outputs[0]] = std::move(out);
    return true;
  }

  bool concat(const Node* n, const std::vector<const Track*>& in, int64_t yr) {
    int64_t a = n->attr_int("axis", 0);
    if (a < 0) a += yr;
    Track out;
    out.axis = a;
    for (size_t i = 0; i < in.size(); ++i) {
      const Value* v = n->inputs[i];
      if (in[i] && in[i]->axis == a) {
        out.ids.insert(out.ids.end(), in[i]->ids.begin(), in[i]->ids.end());
      } else if (!in[i] && v && v->dims && v->dims->size() == size_t(yr) && (*v->dims)[size_t(a)] > 0) {
        const auto pinned = ties_.fresh_n((*v->dims)[size_t(a)], true);  // channels of no weight
        out.ids.insert(out.ids.end(), pinned.begin(), pinned.end());
      } else {
        return false;
      }
    }
    tracks_[n->outputs[0]] = std::move(out);
    return true;
  }

  bool split(const Node* n, const std::vector<const Track*>& in) {
    const Track* t = in[0];
    if (!t) return false;
    for (size_t i = 1; i < in.size(); ++i)
      if (in[i]) return false;
    const int64_t r = rank_of(n->inputs[0]);
    int64_t a = n->attr_int("axis", 0);
    if (a < 0) a += r;
    size_t at = 0;
    for (const Value* o : n->outputs) {
      if (!o) return false;
      if (a != t->axis) {
        tracks_[o] = *t;
        continue;
      }
      if (!o->dims || o->dims->size() != size_t(r) || (*o->dims)[size_t(a)] <= 0) return false;
      const size_t e = size_t((*o->dims)[size_t(a)]);
      if (at + e > t->ids.size()) return false;
      tracks_[o] = Track{a, std::vector<int64_t>(t->ids.begin() + long(at), t->ids.begin() + long(at + e))};
      at += e;
    }
    return true;
  }

  // The channel dimension survives a reshape when the elements before it
  // and the dimension itself stay as they were.
  bool reshape(const Node* n, const std::vector<const Track*>& in) {
    const Track* t = in[0];
    const Value* x = n->inputs[0];
    const Value* y = n->outputs[0];
    if (!t || !static_dims(x) || !static_dims(y)) return false;
    for (size_t i = 1; i < in.size(); ++i)
      if (in[i]) return false;
    int64_t before = 1;
    for (int64_t i = 0; i < t->axis; ++i) before *= (*x->dims)[size_t(i)];
    const int64_t c = (*x->dims)[size_t(t->axis)];
    int64_t inner = 1;
    for (size_t i = size_t(t->axis) + 1; i < x->dims->size(); ++i) inner *= (*x->dims)[i];
    int64_t p = 1;
    for (size_t b = 0; b < y->dims->size(); ++b) {
      if (p == before && (*y->dims)[b] == c) {
        tracks_[y] = Track{static_cast<int64_t>(b), t->ids};
        return true;
      }
      // Flattened with what follows it ([N, C, H, W] -> [N, C*H*W]): each
      // channel is a run of H*W elements of the new last axis.
      if (p == before && inner > 1 && b + 1 == y->dims->size() && (*y->dims)[b] == c * inner) {
        Track f{static_cast<int64_t>(b), {}};
        for (int64_t id : t->ids) f.ids.insert(f.ids.end(), size_t(inner), id);
        tracks_[y] = std::move(f);
        return true;
      }
      p *= (*y->dims)[b];
      if (p > before) return false;
    }
    return false;
  }

  const Graph& g_;
  std::map<const Node*, const PrunableWeight*> by_node_;
  std::map<const Value*, Track> tracks_;
  std::map<std::string, std::vector<int64_t>> raw_;
  Ties ties_;
};

}  // namespace

ChannelTies analyze_channel_ties(const Graph& g, const std::vector<PrunableWeight>& weights) {
  return Analysis(g, weights).run();
}

}  // namespace sparta
