#include "runtime/report.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "runtime/compiled_model.h"

namespace sparta {
namespace {

using nlohmann::json;

// The weight input of a product or convolution: input 1 when constant.
const Value* weight_of(const Node& n) {
  static const char* ops[] = {"MatMul", "Gemm", "Conv", "Linear"};
  if (std::none_of(std::begin(ops), std::end(ops), [&](const char* o) { return n.op_type == o; })) return nullptr;
  if (n.inputs.size() < 2 || !n.inputs[1] || !n.inputs[1]->is_constant()) return nullptr;
  const Tensor& w = *n.inputs[1]->constant;
  return w.dtype() == DType::f32 && w.rank() >= 2 ? n.inputs[1] : nullptr;
}

int64_t nonzeros(const Tensor& t) {
  if (!t.defined()) return -1;
  const float* p = t.data<float>();
  return t.numel() - std::count(p, p + t.numel(), 0.f);
}

// Output channels of a weight: N of a [K, N] MatMul weight ([N, K] with
// transposed weights), Co of a convolution's.
int64_t out_channels(const Node& n, const Tensor& w) {
  if (n.op_type == "Conv") return w.dim(0);
  const bool nk = (n.op_type == "Linear" && n.attr_int("trans_w", 0)) || (n.op_type == "Gemm" && n.attr_int("transB", 0));
  return nk ? w.dim(0) : w.dim(1);
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

}  // namespace

std::vector<WeightBefore> weights_before(const Graph& g) {
  std::vector<WeightBefore> v;
  for (const auto& n : g.nodes())
    if (const Value* w = weight_of(*n))
      v.push_back({n->name, n->op_type, w->name, w->constant->shape().dims(), nonzeros(*w->constant)});
  return v;
}

std::string build_report(const CompiledModel& m, const std::vector<WeightBefore>& before) {
  std::map<std::string, size_t> node_at;
  for (size_t i = 0; i < m.graph.nodes().size(); ++i) node_at[m.graph.nodes()[i]->name] = i;
  json layers = json::array();
  double params_before = 0, params_after = 0, flops_before = 0, flops_after = 0, ms = 0, dense_ms = 0;
  for (const WeightBefore& b : before) {
    int64_t numel = 1;
    for (int64_t d : b.shape) numel *= d;
    json l{{"name", b.node}, {"op", b.op}, {"weight", b.weight}, {"shape_before", b.shape},
           {"density_before", numel ? double(b.nonzeros) / double(numel) : 1.0}};
    params_before += double(b.nonzeros);
    auto it = node_at.find(b.node);
    const Node* n = it == node_at.end() ? nullptr : m.graph.nodes()[it->second].get();
    const Value* w = n ? weight_of(*n) : nullptr;
    if (!w) {  // the node was removed (nothing needed its output) or lost its weight
      l["op_after"] = n ? n->op_type : "removed";
      l["shape_after"] = json::array();
      l["density_after"] = 0.0;
      l["kernel"] = n ? "" : "removed";
      layers.push_back(l);
      continue;
    }
    const Tensor& wt = *w->constant;
    const int64_t nz = nonzeros(wt);
    l["op_after"] = n->domain.empty() ? n->op_type : n->domain + "." + n->op_type;
    l["shape_after"] = wt.shape().dims();
    l["density_after"] = numel ? double(nz) / double(numel) : 1.0;
    // Rows the product runs over (tokens; output pixels of a convolution).
    double rows = 0;
    if (const Value* out = n->outputs.empty() ? nullptr : n->outputs[0]; out && out->dims) {
      double e = 1;
      bool known = true;
      for (int64_t d : *out->dims) known &= d >= 0, e *= double(std::max<int64_t>(d, 0));
      const int64_t oc = out_channels(*n, wt);
      if (known && oc > 0) rows = e / double(oc);
    }
    params_after += double(nz);
    const auto& plan = m.plans[it->second];
    const std::optional<PlanRecord> rec = plan ? plan->record() : std::nullopt;
    const bool sparse_kernel = rec && rec->packed_kind == PlanRecord::Packed::format;
    l["kernel"] = plan ? plan->kernel() : "chosen at run time";
    l["pattern"] = rec && !rec->pattern.empty() ? rec->pattern : (wt.numel() < numel ? "dense (shrunk)" : "dense");
    const double fb = 2.0 * rows * double(numel), fa = 2.0 * rows * double(sparse_kernel ? nz : wt.numel());
    l["flops_before"] = fb;
    l["flops_after"] = fa;
    flops_before += fb;
    flops_after += fa;
    if (rec && rec->ms > 0) {
      l["ms"] = rec->ms;
      l["dense_ms"] = rec->dense_ms;
      ms += rec->ms;
      dense_ms += rec->dense_ms;
    } else {
      l["ms"] = nullptr;  // one implementation: nothing was measured
      l["dense_ms"] = nullptr;
    }
    json cands = json::array();
    if (rec)
      for (const Candidate& c : rec->candidates) cands.push_back({{"kernel", c.kernel}, {"ms", c.ms}});
    l["candidates"] = cands;
    layers.push_back(l);
  }
  json totals{{"layers", layers.size()},
              {"parameters_before", params_before},
              {"parameters_after", params_after},
              {"parameters_removed", params_before - params_after},
              {"flops_before", flops_before},
              {"flops_after", flops_after},
              {"flops_removed", flops_before - flops_after},
              {"measured_ms", ms},
              {"measured_dense_ms", dense_ms},
              {"threads", m.options.threads}};
  json log = json::array();
  for (const PassLogEntry& e : m.pipeline.log) log.push_back(e.pass + ": " + e.summary);
  return json{{"model", m.source}, {"layers", layers}, {"totals", totals}, {"passes", log}}.dump(-1, ' ', false,
                                                                                                   json::error_handler_t::replace);
}

std::string report_html(const std::string& report_json) {
  json r;
  try {
    r = json::parse(report_json);
    (void)r.at("layers").size();
    (void)r.at("totals").at("parameters_before");
  } catch (const json::exception& e) {
    throw Error(std::string("not a sparta report (") + e.what() + ")");
  }
  const json& t = r["totals"];
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sparta report: "
    << html_escape(r.value("model", "")) << "</title>\n<style>body{font-family:sans-serif;margin:2em}"
    << "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    << "td.l,th.l{text-align:left}</style></head><body>\n<h1>sparta report</h1>\n<p>model: <code>"
    << html_escape(r.value("model", "")) << "</code>, kernels chosen for " << t.value("threads", 1) << " thread(s)</p>\n";
  const double pb = t.value("parameters_before", 0.0), pa = t.value("parameters_after", 0.0);
  const double fb = t.value("flops_before", 0.0), fa = t.value("flops_after", 0.0);
  h << "<p>parameters: " << fixed(pb / 1e6, 2) << " M &rarr; " << fixed(pa / 1e6, 2) << " M; FLOPs: " << fixed(fb / 1e9, 2)
    << " G &rarr; " << fixed(fa / 1e9, 2) << " G; measured kernel time " << fixed(t.value("measured_ms", 0.0), 2)
    << " ms against " << fixed(t.value("measured_dense_ms", 0.0), 2) << " ms dense</p>\n";
  // The chart: one pair of bars per measured layer.
  std::vector<const json*> timed;
  for (const json& l : r["layers"])
    if (l.contains("ms") && l["ms"].is_number()) timed.push_back(&l);
  if (!timed.empty()) {
    double top = 0;
    for (const json* l : timed) top = std::max({top, (*l)["ms"].get<double>(), (*l)["dense_ms"].get<double>()});
    const int bw = 6, gap = 4, height = 220, left = 50;
    const int width = left + static_cast<int>(timed.size()) * (2 * bw + gap) + 20;
    h << "<h2>time per layer (ms): dense <span style=\"color:#999\">&#9632;</span> chosen <span "
         "style=\"color:#2a7\">&#9632;</span></h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << width << "\" height=\"" << height + 30 << "\">\n";
    h << "<text x=\"0\" y=\"12\" font-size=\"11\">" << fixed(top, 3) << "</text><text x=\"0\" y=\"" << height
      << "\" font-size=\"11\">0</text>\n";
    auto bar = [&](int x, double v, const char* color, const std::string& tip) {
      const int hgt = top > 0 ? static_cast<int>(v / top * (height - 10)) : 0;
      h << "<rect x=\"" << x << "\" y=\"" << height - hgt << "\" width=\"" << bw << "\" height=\"" << hgt
        << "\" fill=\"" << color << "\"><title>" << html_escape(tip) << "</title></rect>\n";
    };
    for (size_t i = 0; i < timed.size(); ++i) {
      const json& l = *timed[i];
      const int x = left + static_cast<int>(i) * (2 * bw + gap);
      const std::string name = l.value("name", "");
      bar(x, l["dense_ms"].get<double>(), "#999", name + ": dense " + fixed(l["dense_ms"].get<double>(), 3) + " ms");
      bar(x + bw, l["ms"].get<double>(), "#2a7",
          name + ": " + l.value("kernel", "") + " " + fixed(l["ms"].get<double>(), 3) + " ms");
    }
    h << "</svg>\n";
  }
  h << "<h2>layers</h2>\n<table><tr><th class=\"l\">name</th><th class=\"l\">op</th><th>shape before</th><th>shape "
       "after</th><th>density before</th><th>density after</th><th class=\"l\">pattern</th><th class=\"l\">kernel</th>"
       "<th>ms</th><th>dense ms</th><th class=\"l\">candidates</th></tr>\n";
  auto dims = [](const json& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i].get<int64_t>());
    return s + "]";
  };
  for (const json& l : r["layers"]) {
    std::string cands;
    for (const json& c : l.value("candidates", json::array()))
      cands += c.value("kernel", "") + " " + fixed(c.value("ms", 0.0), 3) + "; ";
    auto ms = [&](const char* k) { return l.contains(k) && l[k].is_number() ? fixed(l[k].get<double>(), 3) : "-"; };
    h << "<tr><td class=\"l\">" << html_escape(l.value("name", "")) << "</td><td class=\"l\">" << html_escape(l.value("op", ""))
      << "</td><td>" << dims(l.value("shape_before", json::array())) << "</td><td>" << dims(l.value("shape_after", json::array()))
      << "</td><td>" << fixed(l.value("density_before", 0.0), 3) << "</td><td>" << fixed(l.value("density_after", 0.0), 3)
      << "</td><td class=\"l\">" << html_escape(l.value("pattern", "")) << "</td><td class=\"l\">"
      << html_escape(l.value("kernel", "")) << "</td><td>" << ms("ms") << "</td><td>" << ms("dense_ms")
      << "</td><td class=\"l\">" << html_escape(cands) << "</td></tr>\n";
  }
  h << "</table>\n<h2>passes</h2>\n<pre>";
  for (const json& p : r.value("passes", json::array())) h << html_escape(p.get<std::string>()) << "\n";
  h << "</pre>\n</body></html>\n";
  return h.str();
}

}  // namespace sparta
