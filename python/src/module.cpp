// sparta._sparta: the C++ side of the Python package (python/sparta/). It
// takes and returns numpy arrays; the Python modules above it give the
// friendly signatures. Every sparta::Error becomes sparta.Error with the
// same one-line message; the GIL is released while C++ works.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>

#include "analysis/channel_ties.h"
#include "analysis/shape_inference.h"
#include "core/pattern.h"
#include "core/tesa.h"
#include "core/error.h"
#include "core/version.h"
#include "frontend/onnx_import.h"
#include "frontend/tesa_spec.h"
#include "prune/onnx_prune.h"
#include "prune/target_speedup.h"
#include "runtime/artifact.h"
#include "runtime/executor.h"
#include "arrays.h"

namespace py = pybind11;

namespace sparta::python {
namespace {

std::string bytes_of(const py::object& source, std::string& what) {
  if (py::isinstance<py::bytes>(source) || py::isinstance<py::bytearray>(source) || py::isinstance<py::memoryview>(source)) {
    what = "<bytes>";
    return py::bytes(source).cast<std::string>();
  }
  throw Error("expected a path or the model's bytes");
}

// A compiled model and its executor (the model's default thread count).
class PyModel {
 public:
  explicit PyModel(CompiledModel m, int threads) {
    const int t = threads > 0 ? threads : m.options.threads;
    exec_ = std::make_unique<Executor>(std::move(m), ExecutorOptions{.threads = t});
  }

  py::dict run(const py::dict& feeds) {
    std::map<std::string, Tensor> in;
    for (const auto& [k, v] : feeds) {
      const std::string name = py::str(k).cast<std::string>();
      const std::string what = "input '" + name + "'";
      SPARTA_CHECK(py::isinstance<py::array>(v) || py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v), what,
                   " must be a numpy array");
      in[name] = tensor_of(py::array::ensure(v), what);
    }
    std::vector<Tensor> out;
    {
      py::gil_scoped_release nogil;
      out = exec_->run(in);
    }
    py::dict r;
    const auto& names = exec_->graph().outputs;
    for (size_t i = 0; i < out.size(); ++i) r[py::str(names[i]->name)] = array_of(out[i]);
    return r;
  }

  void save(const std::string& path) const {
    py::gil_scoped_release nogil;
    save_compiled(exec_->model(), path);
  }
  std::string report() const { return exec_->model().report; }
  py::list values(bool inputs) const {
    py::list l;
    for (const Value* v : inputs ? exec_->graph().inputs : exec_->graph().outputs)
      l.append(py::make_tuple(v->name, std::string(dtype_name(v->dtype.value_or(DType::f32))),
                              v->dims.value_or(std::vector<int64_t>{})));
    return l;
  }
  py::list kernels() const {
    py::list l;
    const CompiledModel& m = exec_->model();
    for (size_t i = 0; i < m.plans.size(); ++i)
      if (m.plans[i]) l.append(py::make_tuple(m.graph.nodes()[i]->name, m.plans[i]->kernel()));
    return l;
  }

 private:
  std::unique_ptr<Executor> exec_;
};

std::unique_ptr<PyModel> compile(const py::object& source, const std::string& tesa, int threads, bool dense, bool jit,
                                 const std::map<std::string, std::vector<int64_t>>& shapes, bool is_path) {
  SPARTA_CHECK(threads >= 1 && threads <= 1024, "threads must be in [1, 1024], not ", threads);
  std::string what, bytes;
  if (is_path) what = source.cast<std::string>();
  else bytes = bytes_of(source, what);
  CompiledModel m;
  {
    py::gil_scoped_release nogil;
    Graph g = is_path ? import_onnx_file(what) : import_onnx_bytes(bytes.data(), bytes.size(), what);
    if (!tesa.empty()) {
      const TesaSpec spec = read_tesa_spec(tesa);
      infer_shapes(g);
      apply_tesa_spec(g, spec);
    }
    m = compile_model(std::move(g), CompileConfig{.threads = threads, .sparse = !dense, .jit = jit, .shapes = shapes}, what);
  }
  return std::make_unique<PyModel>(std::move(m), threads);
}

template <typename T>
T get(const py::dict& d, const char* key, T dflt) {
  return d.contains(key) && !d[key].is_none() ? d[key].cast<T>() : dflt;
}

prune::Options options_of(const py::dict& d) {
  static const std::set<std::string> known = {"pattern", "sparsity", "block", "nm", "tile", "tile_row_share", "remainder",
                                              "scope", "norm", "min_density", "skip"};
  for (const auto& [k, v] : d)
    SPARTA_CHECK(known.count(py::str(k).cast<std::string>()), "unknown pruning option '", py::str(k).cast<std::string>(), "'");
  prune::Options o;
  o.pattern = prune::parse_pattern(get<std::string>(d, "pattern", "unstructured"));
  if (d.contains("sparsity") && !d["sparsity"].is_none()) o.sparsity = d["sparsity"].cast<double>();
  if (d.contains("block") && !d["block"].is_none()) o.block = parse_block_shape(d["block"].cast<std::string>());
  if (d.contains("nm") && !d["nm"].is_none()) o.nm = parse_nm_shape(d["nm"].cast<std::string>());
  o.tile = get<int>(d, "tile", o.tile);
  o.tile_row_share = get<double>(d, "tile_row_share", 0);
  o.remainder = get<double>(d, "remainder", 0);
  o.scope = prune::parse_scope(get<std::string>(d, "scope", "layer"));
  o.norm = prune::parse_norm(get<std::string>(d, "norm", "l2"));
  o.min_density = get<double>(d, "min_density", 0);
  o.skip = get<std::vector<std::string>>(d, "skip", {});
  o.validate();
  return o;
}

std::vector<float> floats_of(const py::handle& h, const std::string& what) {
  const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(h);
  SPARTA_CHECK(a, what, " must be a float array");
  return std::vector<float>(a.data(), a.data() + a.size());
}

py::dict result_dict(const prune::Result& r) {
  py::list layers;
  for (const auto& l : r.layers) {
    py::dict e;
    e["weight"] = l.weight, e["node"] = l.node, e["op"] = l.op, e["rows"] = l.rows, e["cols"] = l.cols;
    e["density_before"] = l.density_before, e["density_after"] = l.density_after;
    e["pattern"] = l.pattern, e["skipped"] = l.skipped, e["note"] = l.note;
    layers.append(e);
  }
  py::dict out;
  out["layers"] = layers;
  out["params"] = r.params;
  out["zero_params"] = r.zero_params;
  out["model"] = py::bytes(r.onnx);
  return out;
}

py::dict prune_model(const py::object& source, const std::string& what_in, const py::dict& opts, const py::dict& grads,
                     const std::string& output, const std::string& tesa_out) {
  std::string what;
  const std::string bytes = bytes_of(source, what);
  if (!what_in.empty()) what = what_in;
  const prune::Options o = options_of(opts);
  prune::Gradients g;
  for (const auto& [k, v] : grads) {
    const std::string name = py::str(k).cast<std::string>();
    g[name] = floats_of(v, "the gradient of '" + name + "'");
  }
  prune::Result r;
  {
    py::gil_scoped_release nogil;
    r = prune::prune_onnx(bytes, what, o, g);
    if (!output.empty()) prune::write_result(r, output, tesa_out);
  }
  py::dict out = result_dict(r);
  out["text"] = prune::format_report(r, o);
  return out;
}

py::dict prune_speedup(const py::object& source, const std::string& what_in, double speedup, int threads,
                       const std::vector<std::string>& skip, const std::string& output, const std::string& tesa_out,
                       bool verbose) {
  std::string what;
  const std::string bytes = bytes_of(source, what);
  if (!what_in.empty()) what = what_in;
  prune::TargetOptions t;
  t.speedup = speedup, t.threads = threads, t.skip = skip;
  prune::TargetResult r;
  {
    py::gil_scoped_release nogil;
    r = prune::prune_to_speedup(bytes, what, t, [&](const std::string& line) {
      if (verbose) std::fprintf(stderr, "prune: %s\n", line.c_str());
    });
    if (!output.empty()) prune::write_result(r.pruned, output, tesa_out);
  }
  py::dict out = result_dict(r.pruned);
  out["text"] = r.text;
  out["unpruned_ms"] = r.unpruned_ms, out["estimated_ms"] = r.estimated_ms, out["measured_ms"] = r.measured_ms;
  out["speedup"] = r.unpruned_ms / r.measured_ms;
  out["loss"] = r.loss;
  return out;
}

// Masks for weights given as W[N,K] arrays: [{"name", "w", "grad"?,
// "channel_unit"?}] -> one uint8 array of W's shape each.
py::list compute_masks(const py::list& layers, const py::dict& opts) {
  const prune::Options o = options_of(opts);
  std::vector<prune::Layer> ls;
  for (const auto& h : layers) {
    const py::dict d = h.cast<py::dict>();
    prune::Layer l;
    l.name = get<std::string>(d, "name", "layer " + std::to_string(ls.size()));
    const auto w = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(d["w"]);
    SPARTA_CHECK(w && w.ndim() == 2, "'", l.name, "': w must be a 2-D array W[N,K]");
    l.rows = w.shape(0), l.cols = w.shape(1);
    l.w.assign(w.data(), w.data() + w.size());
    if (d.contains("grad") && !d["grad"].is_none()) {
      l.grad = floats_of(d["grad"], "the gradient of '" + l.name + "'");
      SPARTA_CHECK(l.grad.size() == l.w.size(), "the gradient of '", l.name, "' has ", l.grad.size(), " elements, w ", l.w.size());
    }
    if (d.contains("channel_unit") && !d["channel_unit"].is_none()) {
      l.channel_unit = d["channel_unit"].cast<std::vector<int64_t>>();
      SPARTA_CHECK(int64_t(l.channel_unit.size()) == l.rows, "'", l.name, "': one channel unit per row");
    } else if (o.pattern == prune::Pattern::channel) {
      for (int64_t r = 0; r < l.rows; ++r) l.channel_unit.push_back(int64_t(ls.size()) << 32 | r);
    }
    ls.push_back(std::move(l));
  }
  std::vector<std::vector<uint8_t>> masks;
  {
    py::gil_scoped_release nogil;
    masks = prune::compute_masks(ls, o);
  }
  py::list out;
  for (size_t i = 0; i < ls.size(); ++i) {
    py::array_t<uint8_t> m({ls[i].rows, ls[i].cols});
    std::memcpy(m.mutable_data(), masks[i].data(), masks[i].size());
    out.append(m);
  }
  return out;
}

// Per prunable weight of an ONNX model: its node, shape as W[N,K], layout
// and channel tie units.
py::dict channel_ties(const py::bytes& source) {
  const std::string bytes = source.cast<std::string>();
  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), "<bytes>");
  infer_shapes(g);
  const auto ws = prunable_weights(g);
  const ChannelTies t = analyze_channel_ties(g, ws);
  py::dict out;
  for (const auto& w : ws) {
    py::dict e;
    e["node"] = w.node->name, e["op"] = w.node->op_type, e["rows"] = w.rows, e["cols"] = w.cols;
    e["transposed"] = w.kind == PrunableWeight::Kind::matmul_kn || w.kind == PrunableWeight::Kind::gemm_kn;
    e["units"] = t.units.at(w.weight->name);
    out[py::str(w.weight->name)] = e;
  }
  return out;
}

}  // namespace
}  // namespace sparta::python

PYBIND11_MODULE(_sparta, m) {
  using namespace sparta::python;
  namespace prune = sparta::prune;
  m.doc() = "sparta's C++ core; use the `sparta` package";
  static py::exception<sparta::Error> error(m, "Error", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const sparta::Error& e) {
      error(e.what());
    }
  });
  m.def("version", [] { return std::string(SPARTA_VERSION_STRING); });
  bind_sparse3d(m);
  py::class_<PyModel>(m, "Model")
      .def("run", &PyModel::run, py::arg("feeds"))
      .def("save", &PyModel::save, py::arg("path"))
      .def("report_json", &PyModel::report)
      .def("inputs", [](const PyModel& p) { return p.values(true); })
      .def("outputs", [](const PyModel& p) { return p.values(false); })
      .def("kernels", &PyModel::kernels);
  m.def("compile", &compile, py::arg("source"), py::arg("tesa"), py::arg("threads"), py::arg("dense"), py::arg("jit"),
        py::arg("shapes"), py::arg("is_path"));
  m.def(
      "load",
      [](const std::string& path, int threads) {
        SPARTA_CHECK(threads >= 0 && threads <= 1024, "threads must be in [0, 1024], not ", threads);
        sparta::CompiledModel cm;
        {
          py::gil_scoped_release nogil;
          cm = sparta::load_compiled(path, threads);
        }
        return std::make_unique<PyModel>(std::move(cm), threads);
      },
      py::arg("path"), py::arg("threads"));
  m.def("prune", &prune_model, py::arg("source"), py::arg("what"), py::arg("options"), py::arg("gradients"),
        py::arg("output"), py::arg("tesa_out"));
  m.def("prune_to_speedup", &prune_speedup, py::arg("source"), py::arg("what"), py::arg("speedup"), py::arg("threads"),
        py::arg("skip"), py::arg("output"), py::arg("tesa_out"), py::arg("verbose"));
  m.def("compute_masks", &compute_masks, py::arg("layers"), py::arg("options"));
  m.def(
      "fits",
      [](int64_t rows, int64_t cols, const py::dict& opts) {
        prune::Layer l;
        l.rows = rows, l.cols = cols;
        const prune::Options o = options_of(opts);
        if (o.pattern == prune::Pattern::channel) l.channel_unit.assign(size_t(std::max<int64_t>(rows, 0)), 0);
        std::string why;
        return prune::fits(o, l, why) ? std::string() : why;
      },
      py::arg("rows"), py::arg("cols"), py::arg("options"));
  m.def("channel_ties", &channel_ties, py::arg("source"));
  m.def(
      "pattern_of",
      [](const py::array& w) {
        const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(w);
        SPARTA_CHECK(a && a.ndim() == 2, "pattern_of takes a 2-D array W[N,K]");
        std::vector<uint8_t> nz(size_t(a.size()));
        for (size_t i = 0; i < nz.size(); ++i) nz[i] = a.data()[i] != 0.0f;
        const sparta::PatternReport r =
            sparta::analyze_pattern(sparta::Tesa::from_mask(sparta::Shape({a.shape(0), a.shape(1)}), nz));
        py::dict d;
        d["summary"] = r.summary(), d["density"] = r.density, d["kept_rows"] = r.kept_rows, d["kept_cols"] = r.kept_cols;
        d["best"] = sparta::pattern_kind_name(r.best);
        py::list blocks, nm;
        for (const auto& b : r.blocks) blocks.append(b.str());
        for (const auto& x : r.nm) nm.append(x.str());
        d["blocks"] = blocks, d["nm"] = nm, d["tiles"] = r.tiles;
        return d;
      },
      py::arg("w"));
}
