#include "analysis/tesa_propagation.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "ops/op_def.h"

namespace sparta {
namespace {

std::optional<std::vector<int64_t>> static_dims(const Value* v, int64_t max_elements) {
  if (!v || !v->dims) return std::nullopt;
  int64_t n = 1;
  for (int64_t d : *v->dims) {
    if (d < 0) return std::nullopt;
    if (d > 0 && n > max_elements / d) return std::nullopt;  // too large (and no overflow)
    n *= d;
  }
  if (n > max_elements) return std::nullopt;
  return *v->dims;
}

class Engine {
 public:
  Engine(Graph& g, const PropagationOptions& opt) : g_(g), opt_(opt) {
    for (const auto& v : g.values())
      if (!v->is_constant() && v->tesa) promises_[v.get()] = *v->tesa;
  }

  PropagationReport run() {
    PropagationReport rep;
    std::set<std::string> no_rule;
    for (rep.rounds = 1; rep.rounds <= opt_.max_rounds; ++rep.rounds) {
      forward(no_rule);
      backward();
      const int64_t zeroed = opt_.zero_dead_weights ? zero_dead_weights() : 0;
      rep.dead_weight_elements += zeroed;
      if (zeroed == 0) break;
    }
    rep.rounds = std::min(rep.rounds, opt_.max_rounds);
    rep.no_rule.assign(no_rule.begin(), no_rule.end());
    for (const auto& v : g_.values()) {
      if (v->is_constant()) continue;  // a weight's TeSA is its zeros (Tesa::from_zeros), derived where needed
      auto f = facts_.find(v.get());
      if (f == facts_.end()) continue;
      v->tesa = f->second;
      rep.pruned_elements += f->second.numel() - f->second.count_kept();
      rep.constant_elements += f->second.count_constant();
      auto l = live_.find(v.get());
      if (l != live_.end() && !l->second.all()) {
        std::vector<uint8_t> bytes = l->second.bytes();
        rep.dead_elements += std::count(bytes.begin(), bytes.end(), uint8_t{0});
        rep.live[v.get()] = std::move(bytes);
      }
    }
    return rep;
  }

 private:
  // The facts of an input, prepared (fast views and summary); cached until
  // the value's facts or a constant change.
  const Facts& facts_of(const Value* v) const {
    auto c = cache_.find(v);
    if (c != cache_.end()) return c->second;
    Facts f;
    if (v) {
      f.present = true;
      auto it = facts_.find(v);
      if (v->is_constant()) {
        f.constant = &*v->constant;
        f.dims = v->constant->shape().dims();
      } else if (it != facts_.end()) {
        f.tesa = &it->second;
        f.dims = it->second.shape().dims();
      } else if (auto d = static_dims(v, opt_.max_elements)) {
        f.dims = *d;
      } else {
        f.present = false;  // no facts and no shape: the rule cannot run
      }
      f.prepare();
    }
    return cache_[v] = std::move(f);
  }

  // The node's rule, or null (and its type noted) where it has none or its
  // inputs or outputs lack static shapes.
  const TesaRule* rule_of(const Node& n) const {
    const OpDef* def = find_op_def(n);
    if (!def || !def->tesa) return nullptr;
    // Every rule reads its first input and writes its first output.
    if (n.inputs.empty() || !n.inputs[0] || n.outputs.empty() || !n.outputs[0]) return nullptr;
    for (const Value* o : n.outputs)
      if (o && !static_dims(o, opt_.max_elements)) return nullptr;
    for (const Value* i : n.inputs)
      if (i && !i->is_constant() && !static_dims(i, opt_.max_elements)) return nullptr;
    auto agreed = shapes_agree_.find(&n);
    if (agreed == shapes_agree_.end()) agreed = shapes_agree_.emplace(&n, shapes_agree(n, *def)).first;
    return agreed->second ? &def->tesa : nullptr;
  }

  // Rules index outputs by the shapes the graph declares; a model may
  // declare shapes its operators do not produce (stale value_info). The
  // operator's own shape rule, run on a scratch copy of the node, must
  // agree, else the node keeps everything.
  static bool shapes_agree(const Node& n, const OpDef& def) {
    if (!def.shape) return true;  // sparta's fused operators: shapes set by the passes that made them
    std::vector<Value> outs(n.outputs.size());
    Node tmp;
    tmp.name = n.name;
    tmp.op_type = n.op_type;
    tmp.domain = n.domain;
    tmp.attrs = n.attrs;
    tmp.inputs = n.inputs;
    for (size_t i = 0; i < n.outputs.size(); ++i) tmp.outputs.push_back(n.outputs[i] ? &outs[i] : nullptr);
    try {
      def.shape(ShapeCtx{tmp});
    } catch (const Error&) {
      return false;
    }
    for (size_t i = 0; i < n.outputs.size(); ++i)
      if (n.outputs[i] && (!outs[i].dims || *outs[i].dims != *n.outputs[i]->dims)) return false;
    return true;
  }

  void forward(std::set<std::string>& no_rule) {
    facts_.clear();
    cache_.clear();
    for (const Value* in : g_.inputs)
      if (auto d = static_dims(in, opt_.max_elements)) facts_[in] = with_promise(in, Tesa(Shape(*d), ElemCode::bits32));
    const int64_t opset = g_.default_opset();
    for (const auto& n : g_.nodes()) {
      std::vector<Tesa> out;
      for (const Value* o : n->outputs) {
        auto d = static_dims(o, opt_.max_elements);
        out.emplace_back(d ? Shape(*d) : Shape{}, ElemCode::bits32);
      }
      const TesaRule* rule = rule_of(*n);
      if (rule) {
        TesaForward t{*n, opset, {}, out};
        for (const Value* i : n->inputs) t.in.push_back(facts_of(i));
        try {
          rule->forward(t);
        } catch (const Error&) {  // a run-time argument the rule needs: keep everything
          for (Tesa& o : out) o = Tesa(o.shape(), ElemCode::bits32);
          rule = nullptr;
        }
      }
      if (!rule) no_rule.insert(n->domain.empty() ? n->op_type : n->domain + "." + n->op_type);
      for (size_t i = 0; i < n->outputs.size(); ++i) {
        const Value* o = n->outputs[i];
        if (o && !o->is_constant() && static_dims(o, opt_.max_elements)) {
          facts_[o] = with_promise(o, std::move(out[i]));
          cache_.erase(o);
        }
      }
    }
  }

  Tesa with_promise(const Value* v, Tesa t) const {
    auto p = promises_.find(v);
    if (p == promises_.end() || p->second.shape() != t.shape()) return t;
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!p->second.kept(i)) t.set(i, ElemCode::pruned);
      else if (t.kept(i) && !t.is_constant(i)) t.set(i, p->second.at(i));  // the promised width
    return t;
  }

  void backward() {
    live_.clear();
    auto live_of = [&](const Value* v) -> LiveMask* {
      if (!v) return nullptr;
      auto it = live_.find(v);
      if (it != live_.end()) return &it->second;
      int64_t n = 0;
      if (v->is_constant()) n = v->constant->numel();
      else if (auto d = static_dims(v, opt_.max_elements)) n = Shape(*d).numel();
      else return nullptr;
      return &(live_[v] = LiveMask(n));
    };
    for (const Value* o : g_.outputs)
      if (LiveMask* l = live_of(o)) l->fill();
    const int64_t opset = g_.default_opset();
    for (auto it = g_.nodes().rbegin(); it != g_.nodes().rend(); ++it) {
      const Node& n = **it;
      std::vector<LiveMask> in_live;
      for (const Value* i : n.inputs) {
        const Facts& f = facts_of(i);
        in_live.emplace_back(f.present ? f.numel() : 0);
      }
      const TesaRule* rule = rule_of(n);
      bool done = false;
      if (rule) {
        TesaBackward b{n, opset, {}, {}, in_live};
        for (const Value* i : n.inputs) b.in.push_back(facts_of(i));
        for (const Value* o : n.outputs) b.out_live.push_back(o && !o->is_constant() ? live_of(o) : nullptr);
        try {
          rule->backward(b);
          done = true;
        } catch (const Error&) {
        }
      }
      if (!done) {  // everything needed, if anything of the outputs is
        bool any = false;
        for (const Value* o : n.outputs) {
          const LiveMask* l = o ? live_of(o) : nullptr;
          any = any || !l || l->any();
        }
        for (auto& l : in_live)
          if (any) l.fill();
      }
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        LiveMask* l = live_of(n.inputs[i]);
        if (l && l->size() == in_live[i].size()) l->merge(in_live[i]);
      }
    }
  }

  // Values from which some path of run-time values reaches an operator
  // that is not zero-safe (a divisor, Log, Reciprocal, Pow): a changed
  // unneeded element there could become inf, and inf times an absorbing
  // zero downstream is NaN. Constants that feed such values keep their
  // unneeded elements.
  std::set<const Value*> reaches_unsafe() const {
    std::set<const Value*> unsafe;
    for (auto it = g_.nodes().rbegin(); it != g_.nodes().rend(); ++it) {
      const Node& n = **it;
      const OpDef* def = find_op_def(n);
      bool bad = !def || !def->tesa || !def->tesa.zero_safe;
      for (const Value* o : n.outputs) bad = bad || (o && unsafe.count(o));
      if (bad)
        for (const Value* i : n.inputs)
          if (i) unsafe.insert(i);
    }
    return unsafe;
  }

  // Elements of constant vectors that no output needs become zero (in the
  // constant's own copy); returns how many were not zero before.
  int64_t zero_dead_weights() {
    int64_t zeroed = 0;
    const std::set<const Value*> unsafe = reaches_unsafe();
    for (const auto& v : g_.values()) {
      if (!v->is_constant() || v->constant->dtype() != DType::f32 || v->consumers.empty() || g_.is_output(v.get()))
        continue;
      bool safe = !unsafe.count(v.get());
      for (const Node* c : v->consumers) {
        const OpDef* def = find_op_def(*c);
        safe = safe && def && def->tesa && def->tesa.zero_safe && def->tesa.zero_dead_constants;
      }
      if (!safe) continue;
      auto it = live_.find(v.get());
      if (it == live_.end()) continue;
      const LiveMask& l = it->second;
      if (l.all()) continue;
      const float* p = v->constant->data<float>();
      int64_t n = 0;
      for (int64_t i = 0; i < l.size(); ++i) n += !l[i] && p[i] != 0.f;
      if (n == 0) continue;
      Tensor w = v->constant->clone();
      float* q = w.data<float>();
      for (int64_t i = 0; i < l.size(); ++i)
        if (!l[i]) q[i] = 0.f;
      v->constant = std::move(w);
      cache_.erase(v.get());
      zeroed += n;
    }
    return zeroed;
  }

  Graph& g_;
  const PropagationOptions& opt_;
  std::map<const Value*, Tesa> promises_;
  std::unordered_map<const Value*, Tesa> facts_;
  std::unordered_map<const Value*, LiveMask> live_;
  mutable std::unordered_map<const Value*, Facts> cache_;
  mutable std::unordered_map<const Node*, bool> shapes_agree_;
};

}  // namespace

std::string PropagationReport::str() const {
  std::ostringstream os;
  os << "tesa propagation: " << rounds << " round(s), " << pruned_elements << " activation elements pruned, "
     << constant_elements << " constant, " << dead_elements << " unneeded, " << dead_weight_elements
     << " weight elements no output needs made zero";
  if (!no_rule.empty()) {
    os << "; no rule (kept whole):";
    for (const std::string& op : no_rule) os << " " << op;
  }
  return os.str();
}

PropagationReport propagate_tesa(Graph& g, const PropagationOptions& opt) { return Engine(g, opt).run(); }

}  // namespace sparta
