#include "frontend/onnx_import.h"


#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>
// After the ONNX headers: <sys/mman.h> defines MAP_TYPE, an enumerator name there.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>

#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace sparta {
namespace {

std::string onnx_dtype_name(int t) {
  return onnx::TensorProto_DataType_IsValid(t) ? onnx::TensorProto_DataType_Name(t) : "invalid(" + std::to_string(t) + ")";
}

// A TensorProto as a Tensor; `what` names it in errors. With `adopt` (the
// same message, mutable), large raw data is taken over instead of copied.
Tensor tensor_from_proto(const onnx::TensorProto& t, const std::string& what, onnx::TensorProto* adopt = nullptr) {
  auto check = [&](bool ok, const auto&... msg) {
    if (!ok) throw Error(detail::cat(msg...));
  };
  check(t.data_location() != onnx::TensorProto::EXTERNAL, what,
        " keeps its data in an external file; save the model with the data inside");
  check(!t.has_segment(), what, " is segmented, which sparta does not read");
  const auto dt = dtype_from_onnx(t.data_type());
  check(dt.has_value(), what, " has data type ", onnx_dtype_name(t.data_type()),
        ", which sparta does not support");
  std::vector<int64_t> dims;
  int64_t numel = 1;
  for (int64_t d : t.dims()) {
    check(d >= 0, what, " has a negative dimension ", d);
    check(d == 0 || numel <= (int64_t{1} << 40) / d, what, " is too large");
    numel *= d;
    dims.push_back(d);
  }
  const bool raw = t.has_raw_data();
  const size_t bytes = static_cast<size_t>(numel) * dtype_size(*dt);
  if (raw) {
    check(t.raw_data().size() == bytes, what, " has ", t.raw_data().size(), " bytes of raw data, expected ", bytes,
          " for ", dtype_name(*dt), Shape(dims).str());
    if (adopt && bytes >= (size_t{1} << 20)) {  // a weight: keep protobuf's buffer (BERT-base: 440 MB not copied)
      std::string* s = adopt->release_raw_data();
      return Tensor(*dt, Shape(dims), std::shared_ptr<void>(s->data(), [s](void*) { delete s; }));
    }
    Tensor out(*dt, Shape(dims), Uninitialized{});  // every byte is overwritten
    if (bytes) std::memcpy(out.raw(), t.raw_data().data(), bytes);
    return out;
  }
  // The value count is checked before the tensor is allocated: dims that
  // promise 2e9 values with none given must not allocate 8 GB first.
  const int values = *dt == DType::f32 ? t.float_data_size() : *dt == DType::i64 ? t.int64_data_size() : t.int32_data_size();
  check(static_cast<int64_t>(values) == numel, what, " has ", values, " values, expected ", numel);
  Tensor out(*dt, Shape(dims));
  auto fill = [&](const auto& field, auto convert) {
    for (int64_t i = 0; i < numel; ++i) convert(i, field.Get(static_cast<int>(i)));
  };
  switch (*dt) {
    case DType::f32: fill(t.float_data(), [&](int64_t i, float v) { out.data<float>()[i] = v; }); break;
    case DType::i64: fill(t.int64_data(), [&](int64_t i, int64_t v) { out.data<int64_t>()[i] = v; }); break;
    case DType::i32: fill(t.int32_data(), [&](int64_t i, int32_t v) { out.data<int32_t>()[i] = v; }); break;
    case DType::i8:
      fill(t.int32_data(), [&](int64_t i, int32_t v) { out.data<int8_t>()[i] = static_cast<int8_t>(v); });
      break;
    case DType::u8:
    case DType::boolean:
      fill(t.int32_data(), [&](int64_t i, int32_t v) { static_cast<uint8_t*>(out.raw())[i] = static_cast<uint8_t>(v); });
      break;
    case DType::bf16:
      fill(t.int32_data(), [&](int64_t i, int32_t v) { out.data<bf16>()[i].bits = static_cast<uint16_t>(v); });
      break;
  }
  return out;
}

class Importer {
 public:
  explicit Importer(std::string what) : what_(std::move(what)) {}

  // Takes over large initializer buffers from m (see tensor_from_proto).
  Graph run(onnx::ModelProto& m) {
    upgrade_if_old(m);
    return build(m, true);
  }

 private:
  // The graph of m; with `adopt`, large initializer buffers are taken over.
  Graph build(onnx::ModelProto& m, bool adopt, bool any_opset = false) {
    Graph g;
    g.producer = m.producer_name() + (m.producer_version().empty() ? "" : " " + m.producer_version());
    for (const auto& op : m.opset_import()) g.opsets[op.domain()] = op.version();
    const int64_t opset = g.default_opset();
    check(opset != 0, "declares no opset for the default ONNX domain");
    check(any_opset || (opset >= kMinOnnxOpset && opset <= kMaxOnnxOpset), "uses opset ", opset,
          " of the default domain; sparta reads opsets ", kMinOnnxOpset, "-", kMaxOnnxOpset,
          " (older ones through ONNX's version converter; re-export with opset_version in that range)");
    check(m.has_graph(), "has no graph");
    const onnx::GraphProto& gp = m.graph();
    g.name = gp.name();
    ir_version_ = m.ir_version();
    opset_import_.assign(m.opset_import().begin(), m.opset_import().end());

    for (auto& t : *m.mutable_graph()->mutable_initializer()) {
      check(!t.name().empty(), "has an initializer without a name");
      Value* v = add(g, t.name());
      v->constant = tensor(t, "initializer '" + t.name() + "'", adopt ? &t : nullptr);
      v->dtype = v->constant->dtype();
      v->dims = v->constant->shape().dims();
    }
    check(gp.sparse_initializer_size() == 0, "uses sparse_initializer, which sparta does not read");
    for (const auto& vi : gp.input()) {
      Value* v = g.find(vi.name());
      if (v && v->is_constant()) {  // an initializer listed as an input (older exporters)
        continue;
      }
      check(!vi.name().empty(), "has a graph input without a name");
      v = add(g, vi.name());
      type_info(vi, *v);
      g.inputs.push_back(v);
    }
    // Node outputs first, so that a read of a value produced later is
    // reported as an ordering problem, not as an unknown name.
    for (const auto& np : gp.node())
      for (const auto& out : np.output())
        if (!out.empty()) add(g, out);
    for (int i = 0; i < gp.node_size(); ++i) node(g, gp.node(i), i);
    for (const auto& vi : gp.value_info())
      if (Value* v = g.find(vi.name())) type_info(vi, *v);
    for (const auto& vi : gp.output()) {
      Value* v = g.find(vi.name());
      check(v != nullptr, "lists graph output '", vi.name(), "', which no node or initializer defines");
      type_info(vi, *v);
      g.outputs.push_back(v);
    }
    try {
      g.link();
    } catch (const Error& e) {
      throw Error(what_ + ": " + e.what());
    }
    return g;
  }

  template <typename... A>
  void check(bool ok, const A&... msg) const {
    if (!ok) throw Error(what_ + ": model " + detail::cat(msg...));
  }

  Value* add(Graph& g, const std::string& name) {
    check(g.find(name) == nullptr, "defines the value '", name, "' twice");
    return g.add_value(name);
  }

  Tensor tensor(const onnx::TensorProto& t, const std::string& what, onnx::TensorProto* adopt = nullptr) const {
    try {
      return tensor_from_proto(t, what, adopt);
    } catch (const Error& e) {
      throw Error(what_ + ": model " + e.what());
    }
  }

  void type_info(const onnx::ValueInfoProto& vi, Value& v) const {
    if (!vi.has_type() || !vi.type().has_tensor_type()) return;
    const auto& tt = vi.type().tensor_type();
    if (tt.elem_type() != 0) {
      const auto dt = dtype_from_onnx(tt.elem_type());
      check(dt.has_value(), "value '", vi.name(), "' has data type ", onnx_dtype_name(tt.elem_type()),
            ", which sparta does not support");
      if (!v.dtype) v.dtype = dt;
    }
    if (!tt.has_shape() || v.dims) return;
    std::vector<int64_t> dims;
    std::vector<std::string> names;
    for (const auto& d : tt.shape().dim()) {
      // Exporters (Paddle2ONNX among them) write -1 for a dynamic extent,
      // as ONNX Runtime accepts: the same as a dimension without a value.
      if (d.has_dim_value() && d.dim_value() != -1) {
        check(d.dim_value() >= 0, "value '", vi.name(), "' has a negative dimension ", d.dim_value());
        dims.push_back(d.dim_value());
      } else {
        dims.push_back(-1);
      }
      names.push_back(d.has_dim_param() ? d.dim_param() : "");
    }
    v.dims = dims;
    v.dim_names = names;
  }

  void node(Graph& g, const onnx::NodeProto& np, int index) {
    check(!np.op_type().empty(), "has a node (#", index, ") without an op_type");
    Node* n = g.add_node(np.op_type(), np.name());
    n->domain = np.domain() == "ai.onnx" ? "" : np.domain();
    for (const auto& in : np.input()) {
      if (in.empty()) {
        n->inputs.push_back(nullptr);
        continue;
      }
      Value* v = g.find(in);
      check(v != nullptr, "node '", n->name, "' (", n->op_type, ") reads '", in, "', which is not defined in the graph");
      n->inputs.push_back(v);
    }
    for (const auto& out : np.output()) n->outputs.push_back(out.empty() ? nullptr : g.find(out));
    std::vector<std::string> captures;
    for (const auto& a : np.attribute()) {
      check(!a.name().empty(), "node '", n->name, "' has an attribute without a name");
      Attribute at;
      switch (a.type()) {
        case onnx::AttributeProto::FLOAT: at.kind = Attribute::Kind::f; at.f = a.f(); break;
        case onnx::AttributeProto::INT: at.kind = Attribute::Kind::i; at.i = a.i(); break;
        case onnx::AttributeProto::STRING: at.kind = Attribute::Kind::s; at.s = a.s(); break;
        case onnx::AttributeProto::TENSOR:
          at.kind = Attribute::Kind::t;
          at.t = tensor(a.t(), "attribute '" + a.name() + "' of node '" + n->name + "'");
          break;
        case onnx::AttributeProto::FLOATS:
          at.kind = Attribute::Kind::fs;
          at.fs.assign(a.floats().begin(), a.floats().end());
          break;
        case onnx::AttributeProto::INTS:
          at.kind = Attribute::Kind::is;
          at.is.assign(a.ints().begin(), a.ints().end());
          break;
        case onnx::AttributeProto::STRINGS:
          at.kind = Attribute::Kind::ss;
          at.ss.assign(a.strings().begin(), a.strings().end());
          break;
        case onnx::AttributeProto::GRAPH:
          at.kind = Attribute::Kind::g;
          at.s = subgraph_model(g, *n, a.g(), captures);
          break;
        default:
          check(false, "node '", n->name, "' (", n->op_type, ") has attribute '", a.name(), "' of type ",
                onnx::AttributeProto_AttributeType_Name(a.type()),
                " (lists of subgraphs, sparse tensors and type protos are not supported)");
      }
      n->attrs[a.name()] = std::move(at);
    }
    // A Constant node's tensor, for subgraphs that read it (below).
    if (np.op_type() == "Constant" && n->domain.empty() && n->outputs.size() == 1 && n->outputs[0]) {
      auto it = n->attrs.find("value");
      if (it != n->attrs.end() && it->second.kind == Attribute::Kind::t && it->second.t.defined())
        constant_nodes_[n->outputs[0]->name] = it->second.t;
    }
    if (!captures.empty()) {
      Attribute c;
      c.kind = Attribute::Kind::ss;
      c.ss = captures;
      for (const std::string& name : captures) n->inputs.push_back(g.find(name));
      n->attrs["sparta.captures"] = std::move(c);
    }
  }

  // Names a subgraph reads from outer scopes, in order of first read
  // (nested subgraphs included).
  static void free_names(const onnx::GraphProto& gp, std::vector<std::string>& out) {
    std::set<std::string> defined;
    for (const auto& t : gp.initializer()) defined.insert(t.name());
    for (const auto& vi : gp.input()) defined.insert(vi.name());
    auto read = [&](const std::string& name) {
      if (!name.empty() && !defined.count(name) && std::find(out.begin(), out.end(), name) == out.end())
        out.push_back(name);
    };
    for (const auto& np : gp.node()) {
      for (const auto& in : np.input()) read(in);
      for (const auto& a : np.attribute()) {
        std::vector<std::string> inner;
        if (a.has_g()) free_names(a.g(), inner);
        for (const auto& sg : a.graphs()) free_names(sg, inner);
        for (const auto& name : inner) read(name);
      }
      for (const auto& o : np.output()) defined.insert(o);
    }
    for (const auto& vi : gp.output()) read(vi.name());
  }

  // The subgraph as a self-contained model (see Attribute): outer constants
  // become its initializers, other outer values its inputs and the node's
  // captures (appended to `captures`, once each).
  std::string subgraph_model(Graph& g, const Node& n, const onnx::GraphProto& sub, std::vector<std::string>& captures) {
    onnx::ModelProto m;
    m.set_ir_version(ir_version_);
    for (const auto& op : opset_import_) *m.add_opset_import() = op;
    *m.mutable_graph() = sub;
    std::vector<std::string> outer;
    free_names(sub, outer);
    for (const std::string& name : outer) {
      const Value* v = g.find(name);
      check(v != nullptr, "node '", n.name, "' (", n.op_type, ") has a subgraph reading '", name,
            "', which no outer scope defines");
      const auto cn = constant_nodes_.find(name);
      if (v->is_constant() || cn != constant_nodes_.end()) {
        const Tensor& t = v->is_constant() ? *v->constant : cn->second;
        onnx::TensorProto* tp = m.mutable_graph()->add_initializer();
        tp->set_name(name);
        tp->set_data_type(dtype_to_onnx(t.dtype()));
        for (int64_t d : t.shape().dims()) tp->add_dims(d);
        tp->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
        continue;
      }
      onnx::ValueInfoProto* vi = m.mutable_graph()->add_input();
      vi->set_name(name);
      if (v->dtype) vi->mutable_type()->mutable_tensor_type()->set_elem_type(dtype_to_onnx(*v->dtype));
      if (std::find(captures.begin(), captures.end(), name) == captures.end()) captures.push_back(name);
    }
    std::string bytes;
    check(m.SerializeToString(&bytes), "node '", n.name, "' has a subgraph that does not serialize");
    return bytes;
  }

  int64_t ir_version_ = 8;
  // Outputs of the graph's Constant nodes (exporters inline weights of
  // subgraph code as Constant nodes): a subgraph gets them as initializers,
  // foldable, rather than as captured run-time inputs.
  std::map<std::string, Tensor> constant_nodes_;
  std::vector<onnx::OperatorSetIdProto> opset_import_;

  // A model below opset 11 (older exporters, ONNX's own older test models)
  // is upgraded to kUpgradeOpset by ONNX's version converter, once sparta's
  // and ONNX's checks have accepted it: the converter assumes a well-formed
  // graph.
  void upgrade_if_old(onnx::ModelProto& m) {
    int64_t opset = 0;
    for (const auto& op : m.opset_import())
      if (op.domain().empty() || op.domain() == "ai.onnx") opset = op.version();
    if (opset < 1 || opset >= kMinOnnxOpset) return;
    build(m, false, true);  // sparta's own structural checks (names, order, data sizes) first
    std::string upgraded, why;
    if (!upgrade_in_child(m, upgraded, why))
      check(false, "uses opset ", opset, "; upgrading it to opset ", kUpgradeOpset,
            " with ONNX's version converter failed: ", why);
    onnx::ModelProto u;
    check(upgraded.size() <= static_cast<size_t>(std::numeric_limits<int>::max()) &&
              u.ParseFromArray(upgraded.data(), static_cast<int>(upgraded.size())),
          "could not be read back after its upgrade to opset ", kUpgradeOpset);
    m = std::move(u);
  }

  // ONNX's checker, shape inference and version converter run in a child
  // process: they are not hardened against every graph (fuzzing crashed
  // them on models that pass ONNX's checker), so a crash or a hang there
  // becomes an import error instead of taking the caller down. The child
  // writes the upgraded model (or a one-line reason) to a pipe.
  static bool upgrade_in_child(const onnx::ModelProto& m, std::string& out, std::string& why) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      why = "cannot create a pipe";
      return false;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      why = "cannot fork";
      return false;
    }
    if (pid == 0) {  // child: never returns
      ::close(fds[0]);
      // A crash here ends the child by its signal; the parent's crash
      // handlers (a sanitizer's, a fuzzer's) are not the child's business.
      for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
      std::string msg;
      char status = 'E';
      try {
        onnx::ModelProto c = m;
        onnx::checker::check_model(c);
        onnx::shape_inference::InferShapes(c);  // some adapters need the shapes of intermediate values
        c = onnx::version_conversion::ConvertVersion(c, static_cast<int>(kUpgradeOpset));
        if (c.SerializeToString(&msg)) status = 'O';
        else msg = "the upgraded model does not serialize";
      } catch (const std::exception& e) {
        msg = e.what();
        msg = msg.substr(0, msg.find('\n'));
      }
      bool ok = ::write(fds[1], &status, 1) == 1;
      for (size_t off = 0; ok && off < msg.size();) {
        const ssize_t w = ::write(fds[1], msg.data() + off, msg.size() - off);
        ok = w > 0;
        off += ok ? static_cast<size_t>(w) : 0;
      }
      ::_exit(ok ? 0 : 1);
    }
    ::close(fds[1]);
    std::string data;
    bool timed_out = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    char buf[1 << 16];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fds[0], POLLIN, 0};
      const int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        timed_out = true;
        ::kill(pid, SIGKILL);
        break;
      }
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
      why = "it did not finish within 60 s";
      return false;
    }
    if (WIFSIGNALED(status) || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || data.empty()) {
      why = WIFSIGNALED(status) ? "it crashed (signal " + std::to_string(WTERMSIG(status)) + ")" : "it crashed";
      return false;
    }
    if (data[0] != 'O') {
      why = data.substr(1);
      return false;
    }
    out = data.substr(1);
    return true;
  }

  std::string what_;
};

}  // namespace

namespace {

onnx::ModelProto parse_model(const void* data, size_t size, const std::string& what) {
  SPARTA_CHECK(size <= static_cast<size_t>(std::numeric_limits<int>::max()), what,
               ": model is larger than 2 GiB, the protobuf limit");
  onnx::ModelProto m;
  SPARTA_CHECK(m.ParseFromArray(data, static_cast<int>(size)), what,
               ": not a valid ONNX model (protobuf parsing failed: truncated, corrupt, or not ONNX)");
  return m;
}

}  // namespace

Graph import_onnx_bytes(const void* data, size_t size, const std::string& what) {
  onnx::ModelProto m = parse_model(data, size, what);
  return Importer(what).run(m);
}

Tensor read_onnx_tensor_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SPARTA_CHECK(f.good(), path, ": cannot open the tensor file");
  onnx::TensorProto t;
  SPARTA_CHECK(t.ParseFromIstream(&f), path, ": not a valid ONNX TensorProto");
  return tensor_from_proto(t, path);
}

Graph import_onnx_file(const std::string& path) {
  // The file is mapped, not read: protobuf parses straight from the page
  // cache (a read first zero-filled and then copied 440 MB for BERT-base).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SPARTA_CHECK(fd >= 0, path, ": cannot open the model file");
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (!stat_ok || st.st_size <= 0) ::close(fd);
  SPARTA_CHECK(stat_ok, path, ": cannot read the model file's size");
  SPARTA_CHECK(st.st_size > 0, path, ": the model file is empty");
  const size_t size = static_cast<size_t>(st.st_size);
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  ::close(fd);
  SPARTA_CHECK(data != MAP_FAILED, path, ": cannot map the model file");
  struct Unmap {
    void* p;
    size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{data, size};
  ::madvise(data, size, MADV_SEQUENTIAL);
  onnx::ModelProto m = parse_model(data, size, path);
  return Importer(path).run(m);
}

}  // namespace sparta
