#include "ir/graph.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "core/error.h"

namespace sparta {

bool Value::static_rank(size_t r) const {
  if (!dims || dims->size() != r) return false;
  for (int64_t d : *dims)
    if (d <= 0) return false;
  return true;
}

std::string Value::shape_str() const {
  if (!dims) return "?";
  std::string s = "[";
  for (size_t i = 0; i < dims->size(); ++i) {
    if (i) s += ", ";
    const int64_t d = (*dims)[i];
    if (d >= 0) s += std::to_string(d);
    else s += i < dim_names.size() && !dim_names[i].empty() ? dim_names[i] : "?";
  }
  return s + "]";
}

std::string Attribute::str() const {
  auto list = [](const auto& v) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < v.size() && i < 8; ++i) os << (i ? "," : "") << v[i];
    if (v.size() > 8) os << ",...";
    os << "]";
    return os.str();
  };
  switch (kind) {
    case Kind::f: {
      std::ostringstream os;
      os << f;  // shortest form: 1e-05, 0.125
      return os.str();
    }
    case Kind::i: return std::to_string(i);
    case Kind::s: return "\"" + s + "\"";
    case Kind::t: return "tensor" + t.shape().str();
    case Kind::fs: return list(fs);
    case Kind::is: return list(is);
    case Kind::ss: return list(ss);
    case Kind::g: return "graph(" + std::to_string(s.size()) + " bytes)";
  }
  return "?";
}

const Attribute* Node::attr(const std::string& key) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? nullptr : &it->second;
}

int64_t Node::attr_int(const std::string& key, int64_t dflt) const {
  const Attribute* a = attr(key);
  if (!a) return dflt;
  SPARTA_CHECK(a->kind == Attribute::Kind::i, "node '", name, "' (", op_type, "): attribute '", key,
               "' must be an int");
  return a->i;
}

float Node::attr_float(const std::string& key, float dflt) const {
  const Attribute* a = attr(key);
  if (!a) return dflt;
  SPARTA_CHECK(a->kind == Attribute::Kind::f, "node '", name, "' (", op_type, "): attribute '", key,
               "' must be a float");
  return a->f;
}

std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> dflt) const {
  const Attribute* a = attr(key);
  if (!a) return dflt;
  SPARTA_CHECK(a->kind == Attribute::Kind::is, "node '", name, "' (", op_type, "): attribute '", key,
               "' must be a list of ints");
  return a->is;
}

Value* Graph::add_value(const std::string& name) {
  SPARTA_CHECK(!by_name_.count(name), "value '", name, "' is defined twice");
  values_.push_back(std::make_unique<Value>());
  Value* v = values_.back().get();
  v->name = name;
  if (!name.empty()) by_name_[name] = v;
  return v;
}

Node* Graph::sole_consumer(const Value* v) const {
  if (!v || v->consumers.size() != 1 || is_output(v)) return nullptr;
  return v->consumers[0];
}

Value* Graph::add_constant(const std::string& base, Tensor t) {
  std::string name = base;
  while (find(name)) name += "_";
  Value* v = add_value(name);
  v->dtype = t.dtype();
  v->dims = t.shape().dims();
  v->constant = std::move(t);
  return v;
}

Value* Graph::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Node* Graph::add_node(std::string op_type, std::string name) {
  nodes_.push_back(std::make_unique<Node>());
  Node* n = nodes_.back().get();
  n->op_type = std::move(op_type);
  n->name = name.empty() ? n->op_type + "_" + std::to_string(nodes_.size() - 1) : std::move(name);
  return n;
}

Node* Graph::insert_node(const Node* before, std::string op_type, std::string name) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n.get() == before; });
  SPARTA_ASSERT(it != nodes_.end(), "insert_node: the anchor node is not in the graph");
  it = nodes_.insert(it, std::make_unique<Node>());
  Node* n = it->get();
  n->op_type = std::move(op_type);
  n->name = std::move(name);
  return n;
}

bool Graph::is_output(const Value* v) const { return std::find(outputs.begin(), outputs.end(), v) != outputs.end(); }

const char* layout_name(Layout l) {
  return l == Layout::nchw8c ? "nChw8c" : l == Layout::nchw16c ? "nChw16c" : l == Layout::nhwc ? "nhwc" : "plain";
}

int64_t Graph::default_opset() const {
  auto it = opsets.find("");
  if (it == opsets.end()) it = opsets.find("ai.onnx");
  return it == opsets.end() ? 0 : it->second;
}

void Graph::link() {
  std::set<const Value*> available;
  for (const Value* v : inputs) available.insert(v);
  for (const auto& v : values_)
    if (v->is_constant()) available.insert(v.get());
  for (auto& v : values_) {
    v->producer = nullptr;
    v->consumers.clear();
  }
  for (const auto& n : nodes_) {
    for (Value* in : n->inputs) {
      if (!in) continue;
      SPARTA_CHECK(available.count(in), "node '", n->name, "' (", n->op_type, ") reads '", in->name,
                   "', which is neither a graph input, an initializer, nor the output of an earlier node");
      in->consumers.push_back(n.get());
    }
    for (Value* out : n->outputs) {
      if (!out) continue;
      SPARTA_CHECK(!out->producer && !out->is_constant() && !available.count(out), "value '", out->name,
                   "' is written twice (second time by node '", n->name, "')");
      out->producer = n.get();
      available.insert(out);
    }
  }
  for (const Value* v : outputs)
    SPARTA_CHECK(available.count(v), "graph output '", v->name, "' is never computed");
}

void Graph::erase_nodes(const std::vector<const Node*>& dead) {
  const std::set<const Node*> d(dead.begin(), dead.end());
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return d.count(n.get()) > 0; }),
               nodes_.end());
  link();
}

int Graph::drop_unused_constants() {
  int dropped = 0;
  std::vector<std::unique_ptr<Value>> kept;
  for (auto& v : values_) {
    if (v->is_constant() && v->consumers.empty() && !v->producer && !is_output(v.get())) {
      by_name_.erase(v->name);
      ++dropped;
      continue;
    }
    kept.push_back(std::move(v));
  }
  values_ = std::move(kept);
  return dropped;
}

int64_t Graph::parameter_count() const {
  int64_t n = 0;
  for (const auto& v : values_)
    if (v->is_constant()) n += v->constant->numel();
  return n;
}

std::string Graph::dump() const {
  std::ostringstream os;
  os << "graph '" << name << "'";
  if (!producer.empty()) os << " from " << producer;
  os << ", opset " << default_opset() << ", " << nodes_.size() << " nodes, " << parameter_count()
     << " parameters\n";
  for (const Value* v : inputs)
    os << "  input  " << v->name << " " << (v->dtype ? dtype_name(*v->dtype) : "?") << v->shape_str() << "\n";
  for (const Value* v : outputs)
    os << "  output " << v->name << " " << (v->dtype ? dtype_name(*v->dtype) : "?") << v->shape_str() << "\n";
  os << "nodes:\n";
  for (const auto& n : nodes_) {
    os << "  " << n->name << ": " << (n->domain.empty() ? "" : n->domain + ".") << n->op_type << "(";
    for (size_t i = 0; i < n->inputs.size(); ++i)
      os << (i ? ", " : "") << (n->inputs[i] ? n->inputs[i]->name + n->inputs[i]->shape_str() : "-");
    os << ") -> ";
    for (size_t i = 0; i < n->outputs.size(); ++i)
      os << (i ? ", " : "")
         << (n->outputs[i] ? n->outputs[i]->name + n->outputs[i]->shape_str() +
                                 (n->outputs[i]->layout == Layout::plain ? "" : std::string("@") + layout_name(n->outputs[i]->layout))
                           : "-");
    for (const auto& [k, a] : n->attrs) os << " " << k << "=" << a.str();
    os << "\n";
  }
  os << "weights (elements, density):\n";
  for (const auto& v : values_) {
    if (!v->is_constant() || v->constant->numel() < 2) continue;
    if (!v->constant->defined()) {  // a compiled model's weight held only in packed form
      os << "  " << v->name << " " << dtype_name(v->constant->dtype()) << v->constant->shape().str() << "  "
         << v->constant->numel() << ", packed by its operator\n";
      continue;
    }
    const double density = Tesa::from_zeros(*v->constant).density();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lld, %.3f", static_cast<long long>(v->constant->numel()), density);
    os << "  " << v->name << " " << dtype_name(v->constant->dtype()) << v->constant->shape().str() << "  " << buf
       << (density < 1.0 ? "  (sparse)" : "") << "\n";
  }
  bool header = false;  // run-time values with a TeSA (a spec's promises, propagation's results)
  for (const auto& v : values_) {
    if (v->is_constant() || !v->tesa) continue;
    if (!header) os << "annotated values (density):\n";
    header = true;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v->tesa->density());
    os << "  " << v->name << v->shape_str() << "  " << buf << "\n";
  }
  return os.str();
}

}  // namespace sparta
