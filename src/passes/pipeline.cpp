#include "passes/pipeline.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <sstream>

#include "analysis/shape_inference.h"
#include "core/error.h"
#include "passes/simplify.h"

namespace sparta {

std::string verify_graph(const Graph& g) {
  std::set<const Value*> available(g.inputs.begin(), g.inputs.end());
  // Constants are available from the start, except one a node still
  // produces (shape inference knows a Constant node's value before
  // folding removes the node).
  for (const auto& v : g.values())
    if (v->is_constant() && !v->producer) available.insert(v.get());
  for (const auto& n : g.nodes()) {
    for (const Value* in : n->inputs) {
      if (!in) continue;
      if (!available.count(in)) return "node '" + n->name + "' reads '" + in->name + "' before it is computed";
      if (std::find(in->consumers.begin(), in->consumers.end(), n.get()) == in->consumers.end())
        return "'" + in->name + "' does not list its reader '" + n->name + "'";
    }
    for (const Value* out : n->outputs) {
      if (!out) continue;
      if (available.count(out)) return "'" + out->name + "' is written twice (again by '" + n->name + "')";
      if (out->producer != n.get()) return "'" + out->name + "' does not name '" + n->name + "' as its producer";
      available.insert(out);
    }
  }
  for (const Value* o : g.outputs)
    if (!available.count(o)) return "graph output '" + o->name + "' is never computed";
  return "";
}

std::string PipelineResult::str() const {
  std::ostringstream os;
  for (const PassLogEntry& e : log) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%8.1f ms", e.ms);
    os << "  pass " << e.pass << std::string(e.pass.size() < 16 ? 16 - e.pass.size() : 1, ' ') << ms << "  "
       << e.summary << "\n";
  }
  return os.str();
}

PipelineResult run_pipeline(Graph& g, const PipelineOptions& opt) {
  PipelineResult r;
  auto shapes = [&g] {
    const ShapeInferenceReport s = infer_shapes(g);
    return std::to_string(s.inferred) + " shapes inferred";
  };
  struct Pass {
    const char* name;
    std::function<std::string()> run;
  };
  std::vector<Pass> passes = {
      {"reset-shapes",
       [&g] {
         // Shapes come from the inputs, not from the file's value_info:
         // folding a Shape over a stale declared extent (a model whose input
         // was made dynamic after export) would bake the wrong number in.
         int n = 0;
         for (const auto& v : g.values())
           if (v->producer) {
             v->dims.reset();
             v->dim_names.clear();
             v->shape_value.reset();
             ++n;
           }
         return std::to_string(n) + " computed values";
       }},
      {"infer-shapes", shapes},
      {"fold", [&g] {
         const SimplifyReport s = simplify(g);
         return std::to_string(s.folded) + " folded, " + std::to_string(s.removed) + " dead nodes removed";
       }},
      {"infer-shapes", shapes},
  };
  if (opt.propagate) {
    passes.push_back({"propagate", [&] {
                        r.propagation = propagate_tesa(g);
                        return r.propagation.str();
                      }});
    passes.push_back({"shrink", [&] {
                        r.shrink = shrink_channels(g, r.propagation);
                        return r.shrink.str();
                      }});
  }
  passes.push_back({"fuse", [&] {
                      r.fuse = fuse_all(g);
                      return r.fuse.str();
                    }});
  if (opt.propagate)
    passes.push_back({"shrink-heads", [&] {
                        r.heads = shrink_heads(g);
                        return r.heads.str();
                      }});
  passes.push_back({"layout", [&] {
                      r.layout = assign_layouts(g, opt.layout_block);
                      return std::to_string(r.layout.blocked) + " values in " + layout_name(r.layout.layout) + ", " +
                             std::to_string(r.layout.reorders) + " reorders";
                    }});
  for (const Pass& p : passes) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string summary = p.run();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const std::string broken = verify_graph(g);
    SPARTA_ASSERT(broken.empty(), "the IR is broken after pass '", p.name, "': ", broken);
    r.log.push_back({p.name, ms, std::move(summary)});
  }
  return r;
}

}  // namespace sparta
