// The plan of a product with a constant weight matrix (ops/weight_plan.h).
#include "ops/weight_plan.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "core/pattern.h"
#include "core/tesa.h"
#include "formats/formats.h"
#include "kernels/spmm.h"

namespace sparta {
namespace {

// A weight at least half zeros (a pruned one) has its sparse kernels
// measured against the dense one; any other is dense.
bool pruned_enough(const Tensor& w) {
  const float* p = w.data<float>();
  return std::count(p, p + w.numel(), 0.f) * 2 >= w.numel();
}

// The least kept fraction among a decomposed weight's main blocks (its
// threshold, as packed), for labels.
double po_threshold(const DecomposedMatrix& d) {
  const auto& b = std::get<BsrMatrix>(d.main);
  const int64_t area = int64_t{b.block.r} * b.block.c;
  double least = 1.0;
  for (int64_t i = 0; i < b.nblocks(); ++i) {
    int64_t kept = 0;
    for (int64_t e = 0; e < area; ++e) kept += b.values[static_cast<size_t>(i * area + e)] != 0.f;
    least = std::min(least, double(kept) / double(area));
  }
  return least;
}

// Decompositions of an unstructured weight w [N, K] worth measuring: a BSR
// cover of 32x1 (or 16x1) blocks when at least a third of the kept elements
// lie in blocks at least half full, and a 2:4 part when the weight is dense
// enough for it. The BSR cover's threshold comes from measured costs: the
// whole cover's time per stored element against CSR's time per kept element
// (csr_ms): a block goes to the main part when its kept fraction is above
// their ratio (a weighted block cover, as SparTA does).
template <typename Add, typename Cands>
void add_decompositions(const Tensor& w, const Tesa& t, const KernelOptions& opt, double csr_ms, Add add, Cands& cands) {
  const int64_t n = w.dim(0), k = w.dim(1), kept = t.count_kept();
  if (kept == 0 || csr_ms <= 0) return;
  for (BlockShape b : {BlockShape{32, 1}, BlockShape{16, 1}}) {
    if (n % b.r || k % b.c) continue;
    int64_t in_dense_blocks = 0, blocks = 0;
    for (int64_t r0 = 0; r0 < n; r0 += b.r)
      for (int64_t c0 = 0; c0 < k; c0 += b.c) {
        int64_t c = 0;
        for (int i = 0; i < b.r; ++i)
          for (int j = 0; j < b.c; ++j) c += t.kept((r0 + i) * k + c0 + j);
        if (c * 2 >= b.r * b.c) in_dense_blocks += c;
        blocks += c > 0;
      }
    if (in_dense_blocks * 3 < kept) continue;
    PackOptions po;
    po.main = "bsr";
    po.block = b;
    po.min_block_density = 0;  // the whole cover: a candidate itself, and the cost per stored element
    const size_t whole = add(pack_decomposed(w, t, po));
    const double per_block_elem = cands[whole].c.ms / double(std::max<int64_t>(1, blocks * b.r * b.c));
    const double per_kept = csr_ms / double(kept);
    po.min_block_density = std::clamp(per_block_elem / per_kept, 0.05, 1.0);
    add(pack_decomposed(w, t, po));
    break;  // one block shape is enough
  }
  if (k % 4 == 0 && kept * 10 >= n * k * 4) {  // at least 40% kept: 2:4 holds much of it
    PackOptions po;
    po.main = "nm";
    po.nm = {2, 4};
    add(pack_decomposed(w, t, po));
  }
}

std::shared_ptr<WeightPlan> weight_plan(const Tensor& B, bool b_is_nk, int64_t m, int threads, bool allow_sparse,
                                        bool decompose = true, bool jit = true) {
  auto p = std::make_shared<WeightPlan>();
  const int64_t n = b_is_nk ? B.dim(0) : B.dim(1), k = b_is_nk ? B.dim(1) : B.dim(0);
  KernelOptions opt;
  opt.jit = jit;
  opt.tune_m = std::max<int64_t>(1, m);
  opt.tune_threads = threads;
  const float* pb = B.data<float>();
  auto dense = [&] {
    Choice c;
    p->k = make_dense(pb, n, k, !b_is_nk, opt, nullptr, &c);
    p->k->prepare_rows(opt.tune_m);
    p->rec = PlanRecord{.kernel = c.kernel, .ms = c.ms, .dense_ms = c.ms, .candidates = c.candidates};
    return p;
  };
  if (!allow_sparse || B.numel() == 0 || !pruned_enough(B)) return dense();
  Tensor w(DType::f32, Shape{n, k}, Uninitialized{});  // [N, K], the formats' orientation
  weight_to_nk(pb, n, k, !b_is_nk, w.data<float>());
  const Tesa t = Tesa::from_zeros(w);
  const PatternReport pat = analyze_pattern(t);
  const char* format = pat.best == PatternKind::block       ? "bsr"
                       : pat.best == PatternKind::nm        ? "nm"
                       : pat.best == PatternKind::tilewise  ? "tilewise"
                       : pat.best == PatternKind::structured ? "structured"
                                                             : "csr";
  PackOptions po;
  po.block = pat.best_block;
  po.nm = pat.best_nm;
  if (pat.best_tile > 0) po.tile = pat.best_tile;
  // The sparse candidates: the format of the weight's pattern and, for an
  // unstructured one, its decompositions (a regular part plus a remainder).
  struct Sparse {
    WeightFormat f;
    std::shared_ptr<SpmmKernel> k;
    Choice c;
  };
  std::vector<Sparse> cands;
  auto add = [&](WeightFormat f) {
    Sparse s{std::move(f), nullptr, {}};
    s.k = make_spmm(s.f, opt, nullptr, &s.c);
    // Candidates as the report shows them: on which packing each was timed.
    std::string label = format_label(s.f);
    if (const auto* d = std::get_if<DecomposedMatrix>(&s.f); d && d->main.index() == 0 && d->remainder.nnz() > 0)
      label += " (blocks at least " + std::to_string(int(100 * po_threshold(*d) + 0.5)) + "% kept)";
    for (Candidate& c : s.c.candidates) c.kernel = label + ": " + c.kernel;
    cands.push_back(std::move(s));
    return cands.size() - 1;
  };
  add(pack(format, w, t, po));
  if (decompose && pat.best == PatternKind::unstructured) add_decompositions(w, t, opt, cands.front().c.ms, add, cands);
  // The dense time for this shape is measured once (when its kernel is
  // first chosen); the dense weight is packed only if it wins.
  std::optional<Choice> dc = measured_dense_choice(n, k, opt);
  if (!dc) {
    dense();
    dc = measured_dense_choice(n, k, opt);
    if (!dc) dc = Choice{p->k->name(), time_spmm(*p->k, opt.tune_m, threads), {}};  // the cache is off
  }
  std::vector<Candidate> all;
  size_t best = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    all.insert(all.end(), cands[i].c.candidates.begin(), cands[i].c.candidates.end());
    if (cands[i].c.ms < cands[best].c.ms) best = i;
  }
  all.insert(all.end(), dc->candidates.begin(), dc->candidates.end());
  if (cands[best].c.ms < dc->ms) {
    Sparse& s = cands[best];
    std::ostringstream packed;
    save(s.f, packed);
    p->k = std::move(s.k);
    p->rec = PlanRecord{.kernel = s.c.kernel,
                        .packed_kind = PlanRecord::Packed::format,
                        .packed = Bytes::of(packed.str()),
                        .held_inputs = {1},
                        .pattern = format_label(s.f),
                        .ms = s.c.ms,
                        .dense_ms = dc->ms,
                        .candidates = std::move(all)};
    return p;
  }
  if (!p->k) dense();
  p->rec.dense_ms = dc->ms;
  p->rec.candidates = std::move(all);
  return p;
}

// The constant 2-D f32 weight of a MatMul or sparta.Linear, read as [K, N]
// (or [N, K] with trans_w), if it has one.
struct ConstantWeight {
  const Tensor* w = nullptr;
  bool nk = false;
};
ConstantWeight constant_weight(const Node& n) {
  if (n.inputs.size() < 2 || !n.inputs[1] || !n.inputs[1]->is_constant()) return {};
  const Tensor& w = *n.inputs[1]->constant;
  if (w.dtype() != DType::f32 || w.rank() != 2) return {};
  return {&w, n.domain == "sparta" && n.attr_int("trans_w", 0) != 0};
}

// Ahead-of-time packing for MatMul and sparta.Linear with a constant 2-D f32
// weight and an X of static shape (M = all of X's dims but the last).
struct DensePlan {
  const Tensor* w = nullptr;
  bool nk = false;
  int64_t m = 0;
};
DensePlan dense_plan(const Node& n) {
  const ConstantWeight cw = constant_weight(n);
  const Value* x = n.inputs.empty() ? nullptr : n.inputs[0];
  if (!cw.w || !x || !x->dims || x->dims->size() < 2) return {};
  const int64_t k = cw.nk ? cw.w->dim(1) : cw.w->dim(0), n_out = cw.nk ? cw.w->dim(0) : cw.w->dim(1);
  if (x->dims->back() != k || k == 0 || n_out == 0) return {};
  int64_t m = 1;
  for (size_t i = 0; i + 1 < x->dims->size(); ++i) {
    if ((*x->dims)[i] <= 0) return {};
    m *= (*x->dims)[i];
  }
  return {cw.w, cw.nk, m};
}

}  // namespace

WeightPlan& weight_plan_of(OpCall& c, const Tensor& B, bool b_is_nk, int64_t m) {
  WeightPlan& p = c.plan_as<WeightPlan>([&] { return weight_plan(B, b_is_nk, m, c.threads, c.sparse); });
  c.impl = p.k->name();
  return p;
}

const SpmmKernel& dense_kernel(OpCall& c, const Tensor& B, bool b_is_nk, int64_t m) {
  return *weight_plan_of(c, B, b_is_nk, m).k;
}

// The choice a weight's plan measures: per shape for a dense weight (one
// timing serves every weight of that shape); per weight for a pruned one,
// whose sparse kernel is timed for its own pattern, so that it is planned
// alone and timed on the threads it will run with (not inside the parallel
// packing of the others, on one thread, against a dense time taken on all).
std::string weight_plan_key(const Node& n, const PlanOptions& o) {
  const DensePlan p = dense_plan(n);
  if (!p.w) return "";
  const std::string shape = p.w->shape().str() + (p.nk ? "T" : "") + " m=" + std::to_string(p.m) + " t=" +
                            std::to_string(o.threads);
  if (o.sparse && pruned_enough(*p.w)) return "sparse " + n.name + " " + shape + (o.jit ? "" : " nojit");
  return "dense " + shape;
}

ProductTiming time_product(const Tensor& w_nk, int64_t m, int threads) {
  const std::shared_ptr<WeightPlan> p = weight_plan(w_nk, true, m, threads, true);
  return {p->k->name(), p->rec.ms, p->rec.dense_ms};
}

std::shared_ptr<NodePlan> plan_weight(const Node& n, const PlanOptions& o) {
  const DensePlan p = dense_plan(n);
  if (!p.w) return nullptr;
  return weight_plan(*p.w, p.nk, p.m, o.threads, o.sparse, o.decompose, o.jit);
}

// A compiled model's plan: the saved sparse weight in its kernel, or the
// node's dense weight packed for the dense kernel chosen; nothing timed.
std::shared_ptr<NodePlan> load_weight_plan(const Node& n, const PlanRecord& r, const PlanOptions& o) {
  // The weight alone (X may have symbolic dims: the kernel runs any M).
  const ConstantWeight p = constant_weight(n);
  SPARTA_CHECK(p.w && p.w->numel() > 0, "node '", n.name, "': a saved kernel choice for a node without a constant 2-D weight");
  for (int i : r.held_inputs) SPARTA_CHECK(i == 1, "node '", n.name, "': its plan can hold only the weight (input 1), not input ", i);
  const int64_t rows = p.nk ? p.w->dim(0) : p.w->dim(1), cols = p.nk ? p.w->dim(1) : p.w->dim(0);
  KernelOptions opt;
  opt.require = r.kernel;
  auto plan = std::make_shared<WeightPlan>();
  plan->rec = r;
  switch (r.packed_kind) {
    case PlanRecord::Packed::none:
      SPARTA_CHECK(p.w->defined(), "node '", n.name, "': its weight was saved without data and without a packed form");
      plan->k = make_dense(p.w->data<float>(), rows, cols, !p.nk, opt);
      break;
    case PlanRecord::Packed::format: {
      std::istringstream is(r.packed.str());
      const WeightFormat f = load(is);
      SPARTA_CHECK(format_rows(f) == rows && format_cols(f) == cols, "node '", n.name, "': the saved weight is [",
                   format_rows(f), ", ", format_cols(f), "], the node's [", rows, ", ", cols, "]");
      plan->k = make_spmm(f, opt);
      break;
    }
    case PlanRecord::Packed::kernel:
      plan->k = load_packed_kernel(r.kernel, rows, cols, PackedWeight{r.params, r.packed});
      break;
  }
  return plan;
}

}  // namespace sparta
