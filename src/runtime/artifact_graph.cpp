// The graph of a `.sparta` file as JSON, tensors as references into the
// data section; reading checks every index, name, shape and reference.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <cstring>
#include <set>

#include "core/error.h"
#include "passes/pipeline.h"
#include "runtime/artifact_format.h"

namespace sparta::artifact {

using nlohmann::json;

uint64_t DataWriter::add(const void* p, size_t bytes) {
  const uint64_t off = (size_ + 63) / 64 * 64;
  parts_.push_back({off, p, bytes});
  size_ = off + bytes;
  return off;
}

uint64_t DataWriter::add(std::string bytes) {
  owned_.push_back(std::make_unique<std::string>(std::move(bytes)));
  return add(owned_.back()->data(), owned_.back()->size());
}

const uint8_t* DataView::at(uint64_t offset, uint64_t bytes, const std::string& what) const {
  SPARTA_CHECK(offset <= size && bytes <= size - offset, what, ": data reference [", offset, ", +", bytes,
               ") lies outside the data section (", size, " bytes)");
  return base + offset;
}

int64_t as_int(const json& j, int64_t lo, int64_t hi, const std::string& what) {
  SPARTA_CHECK(j.is_number_integer(), what, ": expected an integer");
  const int64_t v = j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : j.get<int64_t>();
  SPARTA_CHECK(v >= lo && v <= hi, what, ": ", v, " outside [", lo, ", ", hi, "]");
  return v;
}

std::vector<int64_t> as_ints(const json& j, int64_t lo, int64_t hi, const std::string& what) {
  SPARTA_CHECK(j.is_array(), what, ": expected a list");
  std::vector<int64_t> v;
  for (const json& e : j) v.push_back(as_int(e, lo, hi, what));
  return v;
}

uint64_t as_offset(const json& j, const std::string& what) {
  return static_cast<uint64_t>(as_int(j, 0, INT64_MAX, what));
}

namespace {

// At most 2^34 elements in any tensor a file describes (64 GB of floats):
// a crafted shape cannot ask for more.
constexpr int64_t kMaxElements = int64_t{1} << 34;

const char* kind_name(Attribute::Kind k) {
  switch (k) {
    case Attribute::Kind::f: return "f";
    case Attribute::Kind::i: return "i";
    case Attribute::Kind::s: return "s";
    case Attribute::Kind::t: return "t";
    case Attribute::Kind::fs: return "fs";
    case Attribute::Kind::is: return "is";
    case Attribute::Kind::ss: return "ss";
    case Attribute::Kind::g: return "g";
  }
  return "?";
}

DType parse_dtype(const std::string& s, const std::string& what) {
  for (DType t : {DType::f32, DType::i8, DType::i32, DType::bf16, DType::i64, DType::u8, DType::boolean})
    if (dtype_name(t) == s) return t;
  throw Error(what + ": unknown dtype '" + s + "'");
}

Layout parse_layout(const std::string& s, const std::string& what) {
  for (Layout l : {Layout::plain, Layout::nchw8c, Layout::nchw16c, Layout::nhwc})
    if (layout_name(l) == s) return l;
  throw Error(what + ": unknown layout '" + s + "'");
}

std::vector<int64_t> parse_dims(const json& j, bool allow_unknown, const std::string& what) {
  std::vector<int64_t> d = as_ints(j, -1, kMaxElements, what + " dims");
  SPARTA_CHECK(d.size() <= 16, what, ": rank ", d.size(), " is too large");
  int64_t n = 1;
  for (int64_t v : d) {
    SPARTA_CHECK(v >= 0 || (allow_unknown && v == -1), what, ": bad extent ", v);
    if (v < 0) continue;
    SPARTA_CHECK(v <= kMaxElements && (v == 0 || n <= kMaxElements / v), what, ": too many elements");
    n *= v;
  }
  return d;
}

json tensor_ref(const Tensor& t, DataWriter& data, bool elide) {
  json j{{"dtype", std::string(dtype_name(t.dtype()))}, {"dims", t.shape().dims()}};
  if (elide) j["elided"] = true;
  else j["offset"] = data.add(t.raw(), t.nbytes());
  return j;
}

Tensor read_tensor(const json& j, const DataView& data, const std::string& what, bool may_be_elided = true) {
  const DType dt = parse_dtype(j.at("dtype").get<std::string>(), what);
  Shape shape(parse_dims(j.at("dims"), false, what));
  if (j.value("elided", false)) {
    SPARTA_CHECK(may_be_elided, what, ": stored without data");
    return Tensor(dt, shape, Elided{});
  }
  const uint64_t off = as_offset(j.at("offset"), what);
  const uint64_t bytes = static_cast<uint64_t>(shape.numel()) * dtype_size(dt);
  const uint8_t* p = data.at(off, bytes, what);
  SPARTA_CHECK(off % 64 == 0, what, ": data reference not 64-byte aligned");
  if (bytes == 0) return Tensor(dt, shape);
  // The tensor uses the mapped file in place; the mapping lives as long as it.
  return Tensor(dt, shape, std::shared_ptr<void>(data.owner, const_cast<uint8_t*>(p)));
}

std::string read_bytes(const json& j, const DataView& data, const std::string& what) {
  const uint64_t off = as_offset(j.at("offset"), what), n = as_offset(j.at("bytes"), what);
  const uint8_t* p = data.at(off, n, what);
  return std::string(reinterpret_cast<const char*>(p), n);
}

json attr_json(const Attribute& a, DataWriter& data) {
  json j{{"k", kind_name(a.kind)}};
  switch (a.kind) {
    case Attribute::Kind::f: {  // as its bits: JSON has no Inf or NaN
      uint32_t bits;
      std::memcpy(&bits, &a.f, 4);
      j["v"] = bits;
      break;
    }
    case Attribute::Kind::i: j["v"] = a.i; break;
    case Attribute::Kind::s:
    case Attribute::Kind::g: j["v"] = {{"offset", data.add(a.s)}, {"bytes", a.s.size()}}; break;  // any bytes
    case Attribute::Kind::t: j["v"] = tensor_ref(a.t, data, false); break;
    case Attribute::Kind::fs: {
      std::string bytes(a.fs.size() * sizeof(float), '\0');
      if (!a.fs.empty()) std::memcpy(bytes.data(), a.fs.data(), bytes.size());
      j["v"] = {{"offset", data.add(bytes)}, {"bytes", bytes.size()}};
      break;
    }
    case Attribute::Kind::is: j["v"] = a.is; break;
    case Attribute::Kind::ss:
      j["v"] = json::array();
      for (const std::string& e : a.ss) j["v"].push_back({{"offset", data.add(e)}, {"bytes", e.size()}});
      break;
  }
  return j;
}

Attribute read_attr(const json& j, const DataView& data, const std::string& what) {
  Attribute a;
  const std::string k = j.at("k").get<std::string>();
  const json& v = j.at("v");
  if (k == "f") {
    a.kind = Attribute::Kind::f;
    const uint32_t bits = static_cast<uint32_t>(as_int(v, 0, UINT32_MAX, what));
    std::memcpy(&a.f, &bits, 4);
  } else if (k == "i") a.kind = Attribute::Kind::i, a.i = as_int(v, INT64_MIN, INT64_MAX, what);
  else if (k == "s") a.kind = Attribute::Kind::s, a.s = read_bytes(v, data, what);
  else if (k == "g") a.kind = Attribute::Kind::g, a.s = read_bytes(v, data, what);
  else if (k == "t") a.kind = Attribute::Kind::t, a.t = read_tensor(v, data, what, /*may_be_elided=*/false);
  else if (k == "fs") {
    a.kind = Attribute::Kind::fs;
    const std::string bytes = read_bytes(v, data, what);
    SPARTA_CHECK(bytes.size() % sizeof(float) == 0, what, ": float list of ", bytes.size(), " bytes");
    a.fs.resize(bytes.size() / sizeof(float));
    if (!a.fs.empty()) std::memcpy(a.fs.data(), bytes.data(), bytes.size());
  } else if (k == "is") a.kind = Attribute::Kind::is, a.is = as_ints(v, INT64_MIN, INT64_MAX, what);
  else if (k == "ss") {
    a.kind = Attribute::Kind::ss;
    for (const json& e : v) a.ss.push_back(read_bytes(e, data, what));
  }
  else throw Error(what + ": unknown attribute kind '" + k + "'");
  return a;
}

// A TeSA that says more than "every element kept, 32 bits": stored as its
// codes (and constants' values).
bool worth_storing(const Tesa& t) {
  const uint8_t* c = t.codes();
  return std::any_of(c, c + t.numel(), [](uint8_t x) { return x != static_cast<uint8_t>(ElemCode::bits32); });
}

// A TeSA as its codes (one byte an element) and, in element order, the
// values of the elements coded constant.
json tesa_json(const Tesa& t, DataWriter& data) {
  json j{{"dims", t.shape().dims()}, {"codes", data.add(t.codes(), static_cast<size_t>(t.numel()))}};
  std::vector<float> values;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t.is_constant(i)) values.push_back(t.constant_value(i));
  if (!values.empty()) {
    std::string bytes(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    j["constants"] = {{"offset", data.add(std::move(bytes))}, {"count", values.size()}};
  }
  return j;
}

Tesa read_tesa(const json& j, const DataView& data, const std::string& what) {
  Shape shape(parse_dims(j.at("dims"), false, what));
  const uint8_t* codes = data.at(as_offset(j.at("codes"), what), static_cast<uint64_t>(shape.numel()), what);
  const uint8_t constant = static_cast<uint8_t>(ElemCode::constant);
  const int64_t nconst = std::count(codes, codes + shape.numel(), constant);
  const float* values = nullptr;
  if (nconst > 0) {
    const json& c = j.at("constants");
    const int64_t count = as_int(c.at("count"), 0, kMaxElements, what);
    SPARTA_CHECK(count == nconst, what, ": TeSA has ", nconst, " constant elements, but ", count, " values");
    values = reinterpret_cast<const float*>(
        data.at(as_offset(c.at("offset"), what), static_cast<uint64_t>(nconst) * sizeof(float), what));
  }
  Tesa t(shape, ElemCode::bits32);
  int64_t next = 0;
  for (int64_t i = 0; i < shape.numel(); ++i) {
    SPARTA_CHECK(is_valid_code(codes[i]), what, ": bad TeSA code ", int(codes[i]));
    if (codes[i] != constant) {
      t.set(i, static_cast<ElemCode>(codes[i]));
      continue;
    }
    float v;
    std::memcpy(&v, values + next++, sizeof v);
    t.set_constant(i, v);
  }
  return t;
}

json plan_json(const PlanRecord& r, DataWriter& data) {
  json j{{"kernel", r.kernel}, {"held", r.held_inputs}, {"ms", r.ms}, {"dense_ms", r.dense_ms}};
  if (r.packed_kind != PlanRecord::Packed::none) {
    j["packed"] = {{"kind", r.packed_kind == PlanRecord::Packed::format ? "format" : "kernel"},
                   {"offset", data.add(r.packed.data, r.packed.size)},
                   {"bytes", r.packed.size}};
    j["params"] = {{"offset", data.add(r.params)}, {"bytes", r.params.size()}};
  }
  json c = json::array();
  for (const Candidate& cd : r.candidates) c.push_back({cd.kernel, cd.ms});
  j["candidates"] = c;
  return j;
}

PlanRecord read_plan(const json& j, const DataView& data, const std::string& what) {
  PlanRecord r;
  r.kernel = j.at("kernel").get<std::string>();
  for (int64_t i : as_ints(j.at("held"), 0, 1 << 16, what + " held inputs")) r.held_inputs.push_back(static_cast<int>(i));
  r.ms = j.at("ms").get<double>();
  r.dense_ms = j.at("dense_ms").get<double>();
  if (j.contains("packed")) {
    const json& p = j.at("packed");
    const std::string kind = p.at("kind").get<std::string>();
    SPARTA_CHECK(kind == "format" || kind == "kernel", what, ": unknown packed weight kind '", kind, "'");
    r.packed_kind = kind == "format" ? PlanRecord::Packed::format : PlanRecord::Packed::kernel;
    const uint64_t off = as_offset(p.at("offset"), what), n = as_offset(p.at("bytes"), what);
    r.packed = Bytes::view(data.owner, data.at(off, n, what), n);
    r.params = read_bytes(j.at("params"), data, what);
  }
  for (const json& c : j.at("candidates")) r.candidates.push_back({c.at(0).get<std::string>(), c.at(1).get<double>()});
  return r;
}

}  // namespace

json graph_to_json(const CompiledModel& m, DataWriter& data) {
  const Graph& g = m.graph;
  std::map<const Value*, size_t> index;
  for (size_t i = 0; i < g.values().size(); ++i) index[g.values()[i].get()] = i;
  std::vector<std::optional<PlanRecord>> records(g.nodes().size());
  std::map<const Node*, size_t> node_index;
  for (size_t ni = 0; ni < g.nodes().size(); ++ni) {
    node_index[g.nodes()[ni].get()] = ni;
    if (m.plans[ni]) records[ni] = m.plans[ni]->record();
  }
  // A constant only plans read (their packed form replaces it) is stored
  // as its shape alone.
  auto held_only = [&](const Value* v) {
    if (v->consumers.empty() || g.is_output(v)) return false;
    for (const Node* n : v->consumers) {
      const auto& r = records[node_index.at(n)];
      if (!r) return false;
      for (size_t i = 0; i < n->inputs.size(); ++i)
        if (n->inputs[i] == v && std::find(r->held_inputs.begin(), r->held_inputs.end(), static_cast<int>(i)) == r->held_inputs.end())
          return false;
    }
    return true;
  };
  auto ref = [&](const Value* v) -> int64_t { return v ? static_cast<int64_t>(index.at(v)) : -1; };
  json values = json::array();
  for (const auto& vp : g.values()) {
    const Value& v = *vp;
    json j{{"name", v.name}, {"layout", layout_name(v.layout)}};
    if (v.dtype) j["dtype"] = std::string(dtype_name(*v.dtype));
    if (v.dims) j["dims"] = *v.dims;
    if (!v.dim_names.empty()) j["dim_names"] = v.dim_names;
    if (v.constant) j["constant"] = tensor_ref(*v.constant, data, held_only(&v));
    else if (v.tesa && worth_storing(*v.tesa)) j["tesa"] = tesa_json(*v.tesa, data);
    if (auto p = m.promises.find(&v); p != m.promises.end()) j["promise"] = tesa_json(p->second, data);
    values.push_back(std::move(j));
  }
  json nodes = json::array();
  for (size_t ni = 0; ni < g.nodes().size(); ++ni) {
    const Node& n = *g.nodes()[ni];
    json ins = json::array(), outs = json::array(), attrs = json::object();
    for (const Value* v : n.inputs) ins.push_back(ref(v));
    for (const Value* v : n.outputs) outs.push_back(ref(v));
    for (const auto& [k, a] : n.attrs) attrs[k] = attr_json(a, data);
    json j{{"name", n.name}, {"op", n.op_type}, {"domain", n.domain}, {"inputs", ins}, {"outputs", outs}, {"attrs", attrs}};
    if (records[ni]) j["plan"] = plan_json(*records[ni], data);
    // made ahead again at load (plans without a measured choice); a plan the
    // op made on its first run without a record (If's subgraphs, a product
    // planned at run-time shapes) is made again on the first run after load
    else if (m.plans[ni] && m.defs[ni]->plan && m.defs[ni]->plan_key && !m.defs[ni]->load_plan) j["replan"] = true;
    nodes.push_back(std::move(j));
  }
  json inputs = json::array(), outputs = json::array();
  for (const Value* v : g.inputs) inputs.push_back(ref(v));
  for (const Value* v : g.outputs) outputs.push_back(ref(v));
  return {{"name", g.name}, {"producer", g.producer}, {"opsets", g.opsets}, {"values", values},
          {"nodes", nodes}, {"inputs", inputs}, {"outputs", outputs}};
}

void graph_from_json(const json& j, const DataView& data, CompiledModel& m, int threads) {
  Graph& g = m.graph;
  g.name = j.at("name").get<std::string>();
  g.producer = j.at("producer").get<std::string>();
  SPARTA_CHECK(j.at("opsets").is_object(), "opsets: expected an object");
  for (const auto& [domain, version] : j.at("opsets").items()) g.opsets[domain] = as_int(version, 1, 1000, "opset of '" + domain + "'");
  std::vector<Value*> values;
  for (const json& vj : j.at("values")) {
    Value* v = g.add_value(vj.at("name").get<std::string>());
    const std::string what = "value '" + v->name + "'";
    v->layout = parse_layout(vj.at("layout").get<std::string>(), what);
    if (vj.contains("dtype")) v->dtype = parse_dtype(vj.at("dtype").get<std::string>(), what);
    if (vj.contains("dims")) v->dims = parse_dims(vj.at("dims"), true, what);
    if (vj.contains("dim_names")) {
      v->dim_names = vj.at("dim_names").get<std::vector<std::string>>();
      SPARTA_CHECK(v->dims && v->dim_names.size() == v->dims->size(), what, ": dim names do not match its rank");
    }
    if (vj.contains("constant")) {
      v->constant = read_tensor(vj.at("constant"), data, what);
      SPARTA_CHECK(!v->dims || *v->dims == v->constant->shape().dims(), what, ": constant shape differs from its dims");
      SPARTA_CHECK(!v->dtype || *v->dtype == v->constant->dtype(), what, ": constant dtype differs from its dtype");
    }
    if (vj.contains("tesa")) v->tesa = read_tesa(vj.at("tesa"), data, what);
    if (v->layout != Layout::plain)
      SPARTA_CHECK(v->static_rank(4) && (*v->dims)[1] % layout_block(v->layout, (*v->dims)[1]) == 0, what, ": layout ",
                   layout_name(v->layout), " needs static 4-D dims with channels a multiple of its block");
    values.push_back(v);
  }
  auto value_at = [&](const json& r, const std::string& what) -> Value* {
    const int64_t i = as_int(r, -1, INT64_MAX, what + ": value index");
    if (i == -1) return nullptr;
    SPARTA_CHECK(i >= 0 && i < static_cast<int64_t>(values.size()), what, ": value index ", i, " out of range");
    return values[static_cast<size_t>(i)];
  };
  size_t vi = 0;
  for (const json& vj : j.at("values")) {
    if (vj.contains("promise")) m.promises[values[vi]] = read_tesa(vj.at("promise"), data, "promise of '" + values[vi]->name + "'");
    ++vi;
  }
  for (const json& r : j.at("inputs")) {
    Value* v = value_at(r, "graph input");
    SPARTA_CHECK(v && !v->is_constant(), "graph input: not a run-time value");
    g.inputs.push_back(v);
  }
  for (const json& r : j.at("outputs")) {
    Value* v = value_at(r, "graph output");
    SPARTA_CHECK(v, "graph output: missing");
    g.outputs.push_back(v);
  }
  std::vector<const json*> plan_json_of;
  for (const json& nj : j.at("nodes")) {
    Node* n = g.add_node(nj.at("op").get<std::string>(), nj.at("name").get<std::string>());
    const std::string what = "node '" + n->name + "'";
    n->domain = nj.at("domain").get<std::string>();
    for (const json& r : nj.at("inputs")) n->inputs.push_back(value_at(r, what));
    for (const json& r : nj.at("outputs")) n->outputs.push_back(value_at(r, what));
    for (const auto& [k, a] : nj.at("attrs").items()) n->attrs[k] = read_attr(a, data, what + " attribute '" + k + "'");
    plan_json_of.push_back(&nj);
  }
  g.link();
  const std::string broken = verify_graph(g);
  SPARTA_CHECK(broken.empty(), "the graph is inconsistent: ", broken);
  bind_op_defs(m);

  // Plans: each node's saved record loaded (nothing measured), or planned
  // again where the plan holds no measured choice.
  const PlanOptions po{threads, m.options.sparse, m.options.decompose, m.options.jit};
  std::vector<PlanRecord> records(g.nodes().size());
  std::vector<size_t> todo, replan;
  for (size_t ni = 0; ni < g.nodes().size(); ++ni) {
    const json& nj = *plan_json_of[ni];
    const Node& n = *g.nodes()[ni];
    const std::string what = "node '" + n.name + "'";
    if (nj.contains("plan")) {
      records[ni] = read_plan(nj.at("plan"), data, what);
      SPARTA_CHECK(m.defs[ni]->load_plan, what, ": a saved plan for ", n.op_type, ", which has none");
      for (int i : records[ni].held_inputs)
        SPARTA_CHECK(i >= 0 && static_cast<size_t>(i) < n.inputs.size() && n.inputs[i] && n.inputs[i]->is_constant(),
                     what, ": its plan holds input ", i, ", which is not a constant input");
      todo.push_back(ni);
    } else if (nj.value("replan", false)) {
      // Only plans without a measured choice are made again (a saved choice
      // is never measured at load).
      SPARTA_CHECK(m.defs[ni]->plan && m.defs[ni]->plan_key && !m.defs[ni]->load_plan, what,
                   ": marked for planning, but ", n.op_type, " plans are loaded, not made");
      replan.push_back(ni);
    }
  }
  // An elided constant is read only by plans that hold it.
  std::map<const Node*, size_t> node_at;
  for (size_t ni = 0; ni < g.nodes().size(); ++ni) node_at[g.nodes()[ni].get()] = ni;
  for (const auto& v : g.values()) {
    if (!v->constant || v->constant->defined() || v->constant->numel() == 0) continue;
    SPARTA_CHECK(!g.is_output(v.get()) && !v->consumers.empty(), "value '", v->name, "': stored without data but not held by a plan");
    for (const Node* n : v->consumers) {
      const size_t ni = node_at.at(n);
      const bool saved = plan_json_of[ni]->contains("plan");
      for (size_t i = 0; i < n->inputs.size(); ++i)
        if (n->inputs[i] == v.get())
          SPARTA_CHECK(saved && std::count(records[ni].held_inputs.begin(), records[ni].held_inputs.end(), static_cast<int>(i)),
                       "value '", v->name, "': stored without data, but node '", n->name, "' reads it");
    }
  }
  // Planned ahead only where its inputs' shapes allow (not one that reads a
  // graph input with symbolic dims: that plans on its first run).
  for (size_t ni : replan)
    if (!m.defs[ni]->plan_key(*g.nodes()[ni], po).empty()) todo.push_back(ni);
  parallel_each(threads, todo.size(), [&](size_t t) {
    const size_t ni = todo[t];
    const Node& n = *g.nodes()[ni];
    try {
      m.plans[ni] = plan_json_of[ni]->contains("plan") ? m.defs[ni]->load_plan(n, records[ni], po) : m.defs[ni]->plan(n, po);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {  // a library's own (oneDNN's) on a node the file describes wrongly
      throw Error("node '" + n.name + "': cannot prepare its kernel (" + e.what() + ")");
    }
  });
  link_packed_handoffs(m);  // decided from the plans, as when compiling
}

}  // namespace sparta::artifact
