#include "passes/simplify.h"

#include <algorithm>
#include <set>

#include "analysis/onnx_rules.h"
#include "analysis/shape_inference.h"
#include "core/error.h"
#include "ops/op_def.h"

namespace sparta {
namespace {

bool foldable(const Node& n) {
  const OpDef* def = find_op_def(n);
  if (!n.domain.empty() || !def || !def->run) return false;
  for (const Value* in : n.inputs)
    if (in && !in->is_constant()) return false;
  for (const Value* out : n.outputs)
    if (!out) return false;
  return !n.outputs.empty();
}

}  // namespace

SimplifyReport simplify(Graph& g, int64_t max_fold_elements) {
  SimplifyReport rep;
  std::vector<const Node*> dead;
  const int64_t opset = g.default_opset();
  for (const auto& n : g.nodes()) {
    // Shape of a value whose dims are all known is a constant: the shape
    // arithmetic exporters emit (Shape, Slice, Concat, Reshape) then folds.
    // Not when the shapes are bound for a compile: the model must still run
    // at other shapes (the value is then a shape_value, see infer_shapes).
    if (!g.shapes_bound && n->domain.empty() && (n->op_type == "Shape" || n->op_type == "Size") && n->inputs.size() == 1 && n->inputs[0] &&
        n->inputs[0]->dims &&
        n->outputs.size() == 1 && n->outputs[0] &&
        std::all_of(n->inputs[0]->dims->begin(), n->inputs[0]->dims->end(), [](int64_t d) { return d >= 0; })) {
      const std::vector<int64_t> d = shape_op_dims(*n, *n->inputs[0]->dims);
      Tensor t(DType::i64, Shape{static_cast<int64_t>(d.size())});
      std::copy(d.begin(), d.end(), t.data<int64_t>());
      if (n->op_type == "Size") {
        int64_t count = 1;
        bool fits = true;
        for (int64_t e : *n->inputs[0]->dims) fits = fits && !__builtin_mul_overflow(count, e, &count);
        if (!fits) continue;  // no tensor has that many elements: left to run time, which reports it
        t = Tensor(DType::i64, Shape(std::vector<int64_t>{}));
        t.data<int64_t>()[0] = count;
      }
      Value* v = n->outputs[0];
      v->constant = t;
      v->dtype = DType::i64;
      v->dims = t.shape().dims();
      dead.push_back(n.get());
      ++rep.folded;
      continue;
    }
    if (!foldable(*n)) continue;
    OpCall call{*n, {}, {}, 1, opset, nullptr};
    for (const Value* in : n->inputs) call.in.push_back(in ? &*in->constant : nullptr);
    try {
      find_op_def(*n)->run(call);
    } catch (const Error&) {
      continue;  // left for run time, which reports the error in context
    }
    if (call.out.size() < n->outputs.size()) continue;
    int64_t elements = 0;
    for (const Tensor& t : call.out) elements += t.numel();
    if (elements > max_fold_elements) continue;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      Value* v = n->outputs[i];
      v->constant = call.out[i].clone();  // own storage: results may alias inputs
      v->dtype = v->constant->dtype();
      v->dims = v->constant->shape().dims();
    }
    dead.push_back(n.get());
    ++rep.folded;
  }
  // Dead nodes: no output is read by a live node or is a graph output.
  // Walk backwards so that a chain dies in one pass.
  std::set<const Node*> gone(dead.begin(), dead.end());
  std::set<const Value*> needed(g.outputs.begin(), g.outputs.end());
  for (auto it = g.nodes().rbegin(); it != g.nodes().rend(); ++it) {
    const Node* n = it->get();
    if (gone.count(n)) continue;
    bool used = false;
    for (const Value* out : n->outputs) used |= out && needed.count(out);
    if (!used) {
      gone.insert(n);
      dead.push_back(n);
      ++rep.removed;
      continue;
    }
    for (const Value* in : n->inputs)
      if (in) needed.insert(in);
  }
  if (!dead.empty()) g.erase_nodes(dead);
  return rep;
}

}  // namespace sparta
