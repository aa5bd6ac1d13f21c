// Kernel choice: the ordered implementation list and the checked entry point.
#include "kernels/spmm.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <tuple>

#include "core/error.h"
#include "jit/jit_kernels.h"
#include "kernels/isa_kernels.h"
#include "kernels/onednn_kernels.h"
#include "core/hash.h"
#include "tuning/choice_cache.h"

namespace sparta {

std::string activation_name(Activation a) {
  switch (a) {
    case Activation::none: return "none";
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
  }
  return "?";
}

Activation parse_activation(const std::string& s) {
  if (s == "none") return Activation::none;
  if (s == "relu") return Activation::relu;
  if (s == "gelu") return Activation::gelu;
  throw Error("unknown activation '" + s + "' (expected none, relu or gelu)");
}

const IsaKernels& isa_kernels(Isa isa) {
  switch (isa) {
    case Isa::avx512: return isa_kernels_avx512();
    case Isa::avx2: return isa_kernels_avx2();
    case Isa::portable: return isa_kernels_portable();
  }
  return isa_kernels_portable();
}

const RowOps& row_ops() {
  static const RowOps& r = *isa_kernels(host_isa()).rows;
  return r;
}

const SparseConvOps& sparse_conv_ops() {
  static const SparseConvOps& s = *isa_kernels(host_isa()).sparse_conv;
  return s;
}

namespace {

// Whether an implementation for `isa` may run under opt (else why not).
bool isa_allowed(Isa isa, const KernelOptions& opt, std::string& why) {
  if (opt.reference) {
    why = "reference requested";
    return false;
  }
  if (isa > opt.max_isa || !host_supports(isa)) {
    why = "host or options do not allow " + std::string(isa_name(isa));
    return false;
  }
  return true;
}

template <class F, class Maker>
SpmmImpl isa_impl(Isa isa, const char* family, Maker IsaKernels::*maker) {
  return {std::string(family) + "__" + std::string(isa_name(isa)), isa,
          [isa, maker](const WeightFormat& w, const KernelOptions& opt, std::string& why) -> std::unique_ptr<SpmmKernel> {
            const F* f = std::get_if<F>(&w);
            if (!f || !isa_allowed(isa, opt, why)) return nullptr;
            return (isa_kernels(isa).*maker)(*f, why);
          }};
}

// A rowdot kernel: in a measured choice, only for a few rows of X.
template <class F, class Maker>
SpmmImpl rowdot_impl(Isa isa, const char* family, Maker IsaKernels::*maker) {
  SpmmImpl impl = isa_impl<F>(isa, family, maker);
  impl.make = [inner = impl.make](const WeightFormat& w, const KernelOptions& opt,
                                              std::string& why) -> std::unique_ptr<SpmmKernel> {
    if (opt.tune_m > kRowdotMaxM && opt.require.empty()) {
      why = "for at most " + std::to_string(kRowdotMaxM) + " rows of X (M=" + std::to_string(opt.tune_m) + ")";
      return nullptr;
    }
    return inner(w, opt, why);
  };
  return impl;
}

// An implementation for one format F, independent of the vector ISA.
template <class F>
SpmmImpl format_impl(const char* name, std::unique_ptr<SpmmKernel> (*make)(const F&)) {
  return {name, std::nullopt, [make](const WeightFormat& w, const KernelOptions& opt, std::string& why) -> std::unique_ptr<SpmmKernel> {
            const F* f = std::get_if<F>(&w);
            if (!f) return nullptr;
            if (opt.reference) {
              why = "reference requested";
              return nullptr;
            }
            return make(*f);
          }};
}

std::unique_ptr<SpmmKernel> make_dense_onednn(const DenseMatrix& d) {
  return std::make_unique<OnednnDenseKernel>(d.rows, d.cols, d.values, true);
}
std::unique_ptr<SpmmKernel> make_dense_onednn_plain(const DenseMatrix& d) {
  return std::make_unique<OnednnDenseKernel>(d.rows, d.cols, d.values, false);
}
std::unique_ptr<SpmmKernel> make_structured_onednn_prepacked(const StructuredMatrix& w) {
  return make_structured_onednn(w, true);
}
std::unique_ptr<SpmmKernel> make_structured_onednn_plain(const StructuredMatrix& w) {
  return make_structured_onednn(w, false);
}

// A decomposed weight: the main part's kernel, then the remainder's in
// accumulate mode, which adds the bias and applies the activation last.
class DecomposedKernel final : public SpmmKernel {
 public:
  DecomposedKernel(std::string name, int64_t n, int64_t k, std::unique_ptr<SpmmKernel> main,
                   std::unique_ptr<SpmmKernel> rest)
      : SpmmKernel(n, k), name_(std::move(name)), main_(std::move(main)), rest_(std::move(rest)) {}
  std::string name() const override { return name_; }
  void run(const SpmmArgs& a) const override {
    if (!rest_) return main_->run(a);
    SpmmArgs first = a;
    first.ep = Epilogue{};
    first.ep.accumulate = a.ep.accumulate;
    main_->run(first);
    SpmmArgs second = a;
    second.ep.accumulate = true;
    rest_->run(second);
  }

 private:
  std::string name_;
  std::unique_ptr<SpmmKernel> main_, rest_;
};

// "decomposed_<main kernel>+csr_spmm_mvec__<isa>": the parts' kernels are
// part of the name, so that a measured choice names all of it.
SpmmImpl decomposed_impl(Isa isa, const std::string& main) {
  const std::string suffix = "__" + std::string(isa_name(isa));
  const std::string name = "decomposed_" + main + "+csr_spmm_mvec" + suffix;
  return {name, isa, [=](const WeightFormat& w, const KernelOptions& opt, std::string& why) -> std::unique_ptr<SpmmKernel> {
            const auto* d = std::get_if<DecomposedMatrix>(&w);
            if (!d || !isa_allowed(isa, opt, why)) return nullptr;
            const bool bsr_main = d->main.index() == 0;
            if (bsr_main != (main.rfind("bsr_", 0) == 0)) {
              why = "the main part is " + format_name(main_part(*d));
              return nullptr;
            }
            KernelOptions sub = opt;
            sub.tune_m = 0;
            try {
              sub.require = main + suffix;
              auto mk = make_spmm(main_part(*d), sub);
              std::unique_ptr<SpmmKernel> rk;
              if (d->remainder.nnz() > 0) {
                sub.require = "csr_spmm_mvec" + suffix;
                rk = make_spmm(d->remainder, sub);
              }
              return std::make_unique<DecomposedKernel>(name, d->rows, d->cols, std::move(mk), std::move(rk));
            } catch (const Error& e) {
              why = e.what();
              return nullptr;
            }
          }};
}

// A kernel generated for the weight's pattern (jit/), when allowed.
template <class F>
SpmmImpl jit_impl(Isa isa, const char* family, std::unique_ptr<SpmmKernel> (*make)(const F&, Isa, std::string&)) {
  return {jit::kernel_name(family, isa), isa,
          [isa, make](const WeightFormat& w, const KernelOptions& opt, std::string& why) -> std::unique_ptr<SpmmKernel> {
            const F* f = std::get_if<F>(&w);
            if (!f || !isa_allowed(isa, opt, why)) return nullptr;
            if (!opt.jit) {
              why = "generated kernels not allowed (KernelOptions::jit)";
              return nullptr;
            }
            try {  // the assembler's own errors (no executable memory where W^X is enforced, ...)
              return make(*f, isa, why);
            } catch (const std::exception& e) {
              why = std::string("code generation failed: ") + e.what();
              return nullptr;
            }
          }};
}

std::vector<SpmmImpl> build_impls() {
  std::vector<SpmmImpl> v;
  // oneDNN with the weight in the layout it prefers (prepacked), and in the
  // user's plain [N, K] order: where the preferred layout resolves to a
  // plain one it can be much slower (AVX2 gemm:jit: 17.8 vs 9.7 ms at
  // 128x768x3072), so both are candidates.
  v.push_back(format_impl<DenseMatrix>("dense_matmul_onednn", &make_dense_onednn));
  v.push_back(format_impl<DenseMatrix>("dense_matmul_onednn_plain", &make_dense_onednn_plain));
  v.push_back(format_impl<StructuredMatrix>("structured_spmm_onednn", &make_structured_onednn_prepacked));
  v.push_back(format_impl<StructuredMatrix>("structured_spmm_onednn_plain", &make_structured_onednn_plain));
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::portable}) {
    v.push_back(isa_impl<CsrMatrix>(isa, "csr_spmm_mvec", &IsaKernels::csr_mvec));
    v.push_back(isa_impl<CsrMatrix>(isa, "csr_spmm_mvec2", &IsaKernels::csr_mvec2));
    v.push_back(isa_impl<BsrMatrix>(isa, "bsr_spmm_nvec", &IsaKernels::bsr_nvec));
    v.push_back(isa_impl<BsrMatrix>(isa, "bsr_spmm_mvec", &IsaKernels::bsr_mvec));
    v.push_back(isa_impl<NmMatrix>(isa, "nm_spmm_nvec", &IsaKernels::nm_nvec));
    v.push_back(isa_impl<NmMatrix>(isa, "nm_spmm_mvec", &IsaKernels::nm_mvec));
    v.push_back(isa_impl<TilewiseMatrix>(isa, "tilewise_spmm_nvec", &IsaKernels::tilewise_nvec));
    v.push_back(isa_impl<DenseMatrix>(isa, "dense_gemm_nvec", &IsaKernels::dense_nvec));
    v.push_back(rowdot_impl<CsrMatrix>(isa, "csr_spmm_rowdot", &IsaKernels::csr_rowdot));
    v.push_back(rowdot_impl<NmMatrix>(isa, "nm_spmm_rowdot", &IsaKernels::nm_rowdot));
    v.push_back(rowdot_impl<BsrMatrix>(isa, "bsr_spmm_rowdot", &IsaKernels::bsr_rowdot));
    for (const char* main : {"bsr_spmm_nvec", "bsr_spmm_mvec", "nm_spmm_nvec", "nm_spmm_mvec"})
      v.push_back(decomposed_impl(isa, main));
  }
  // Generated for the weight's pattern: measured against the templates
  // above (KernelOptions::tune_m); after them in list order, so an
  // untimed choice takes the template kernel.
  for (Isa isa : {Isa::avx512, Isa::avx2}) {
    v.push_back(jit_impl<CsrMatrix>(isa, "csr", &jit::make_csr));
    v.push_back(jit_impl<BsrMatrix>(isa, "bsr", &jit::make_bsr));
    v.push_back(jit_impl<NmMatrix>(isa, "nm", &jit::make_nm));
    v.push_back(jit_impl<TilewiseMatrix>(isa, "tilewise", &jit::make_tilewise));
  }
  v.push_back({"spmm_ref", std::nullopt, [](const WeightFormat& w, const KernelOptions&, std::string&) {
                 return make_spmm_reference(w);
               }});
  return v;
}

}  // namespace

const std::vector<SpmmImpl>& spmm_impls() {
  static const std::vector<SpmmImpl> impls = build_impls();
  return impls;
}

namespace {

// The fastest of a few timed runs of k on a random X of m rows: on a
// shared machine noise only ever adds time, and a median of three picked
// the slower of two kernels 10-20% apart about one time in five.
double time_kernel(const SpmmKernel& k, int64_t m, int threads) {
  std::vector<float> x(static_cast<size_t>(m * k.k())), y(static_cast<size_t>(m * k.n()));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (auto& v : x) v = d(rng);
  const SpmmArgs a{x.data(), m, k.k(), y.data(), k.n(), Epilogue{}, threads};
  k.run(a);  // warm-up (and first-touch of scratch)
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    k.run(a);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return *std::min_element(ms.begin(), ms.end());
}

// The digest of every implementation's name, in list order.
uint64_t candidates_digest() {
  static const uint64_t d = [] {
    std::string names;
    for (const SpmmImpl& impl : spmm_impls()) names += impl.name + "\n";
    return hash64(names);
  }();
  return d;
}

// The cache key of a tuned choice for w under opt.
ChoiceKey choice_key(const WeightFormat& w, const KernelOptions& opt) {
  return ChoiceKey{"spmm",
                   format_label(w),
                   format_digest(w),
                   opt.tune_m,
                   format_rows(w),
                   format_cols(w),
                   opt.tune_threads,
                   std::string(isa_name(std::min(opt.max_isa, host_isa()))),
                   candidates_digest() ^ (opt.jit ? 0 : 0x9e3779b97f4a7c15ull)};
}

bool tuning(const KernelOptions& opt) { return opt.tune_m > 0 && opt.require.empty() && !opt.reference; }

}  // namespace

std::unique_ptr<SpmmKernel> make_spmm(const WeightFormat& w, const KernelOptions& opt_in, std::vector<std::string>* log,
                                      Choice* choice) {
  validate(w);
  SPARTA_CHECK(opt_in.tune_m >= 0 && opt_in.tune_threads >= 1, "kernel tuning needs tune_m >= 0 and tune_threads >= 1");
  // A choice measured before (in this process or an earlier one, see
  // tuning/choice_cache.h) is taken as it is: nothing is timed again.
  if (tuning(opt_in)) {
    const ChoiceKey key = choice_key(w, opt_in);
    if (std::optional<Choice> known = ChoiceCache::global().find(key)) {
      for (const SpmmImpl& impl : spmm_impls()) {
        if (impl.name != known->kernel) continue;
        std::string why;
        if (auto k = impl.make(w, opt_in, why)) {
          if (log) log->push_back(known->kernel + ": chosen earlier (kernel-choice cache)");
          if (choice) *choice = *known;
          return k;
        }
      }
      if (log) log->push_back(known->kernel + ": cached choice no longer accepts; timing again");
    }
  }
  const KernelOptions& opt = opt_in;
  std::unique_ptr<SpmmKernel> best;
  std::string best_impl;  // its name in the list (a composite kernel's own name says more)
  double best_ms = 0;
  bool found_required = false;
  std::vector<Candidate> timed;
  for (const SpmmImpl& impl : spmm_impls()) {
    if (!opt.require.empty() && impl.name != opt.require) continue;
    found_required = true;
    // When timing, lower-ISA builds of the same kernels are for hosts
    // without the higher ISA: not worth building or timing here.
    if (tuning(opt) && impl.isa && *impl.isa != std::min(opt.max_isa, host_isa())) continue;
    std::string why;
    auto k = impl.make(w, opt, why);
    if (!k) {
      if (log && !why.empty()) log->push_back(impl.name + ": " + why);
      SPARTA_CHECK(opt.require.empty() || !why.empty(), "kernel ", opt.require, " does not take a ", format_name(w),
                   " weight");
      SPARTA_CHECK(opt.require.empty(), "kernel ", opt.require, " declined: ", why);
      continue;
    }
    const bool reference = impl.name == "spmm_ref";
    if (opt.tune_m == 0 || reference) {
      if (!best) {  // list order: first acceptor wins
        if (choice) *choice = Choice{impl.name, 0, {}};
        return k;
      }
      break;  // tuning: the reference is only a last resort
    }
    const double ms = time_kernel(*k, opt.tune_m, opt.tune_threads);
    timed.push_back({impl.name, ms});
    if (log) log->push_back(impl.name + ": " + std::to_string(ms) + " ms (tuning, M=" + std::to_string(opt.tune_m) + ")");
    if (!best || ms < best_ms) {
      best = std::move(k);
      best_impl = impl.name;
      best_ms = ms;
    }
  }
  SPARTA_CHECK(found_required, "no kernel named '", opt.require, "'");
  SPARTA_ASSERT(best != nullptr, "the reference kernel accepts every format");
  Choice c{best_impl, best_ms, std::move(timed)};
  if (tuning(opt)) ChoiceCache::global().store(choice_key(w, opt), c);
  if (choice) *choice = std::move(c);
  return best;
}

void weight_to_nk(const float* w, int64_t n, int64_t k, bool k_major, float* out) {
  if (!k_major) {
    std::memcpy(out, w, static_cast<size_t>(n * k) * sizeof(float));
    return;
  }
  // [K, N] -> [N, K] in 8 x 8 tiles (the edges one by one), so that reads
  // and writes both stay in cache.
  int64_t j0 = 0;
  for (; j0 + 8 <= k; j0 += 8) {
    int64_t i0 = 0;
    for (; i0 + 8 <= n; i0 += 8)
      for (int64_t jj = 0; jj < 8; ++jj)
        for (int64_t ii = 0; ii < 8; ++ii) out[(i0 + ii) * k + j0 + jj] = w[(j0 + jj) * n + i0 + ii];
    for (; i0 < n; ++i0)
      for (int64_t jj = 0; jj < 8; ++jj) out[i0 * k + j0 + jj] = w[(j0 + jj) * n + i0];
  }
  for (; j0 < k; ++j0)
    for (int64_t i = 0; i < n; ++i) out[i * k + j0] = w[j0 * n + i];
}

std::unique_ptr<SpmmKernel> make_dense(const float* w, int64_t n, int64_t k, bool k_major, const KernelOptions& opt,
                                       std::vector<std::string>* log, Choice* choice) {
  SPARTA_CHECK(n > 0 && k > 0, "make_dense: empty weight [", n, ", ", k, "]");
  // sparta's own dense kernel packs straight from the given order, without
  // the [N, K] copy, when it is the choice (measured before, or required).
  const Isa isa = std::min(opt.max_isa, host_isa());
  const std::string own = "dense_gemm_nvec__" + std::string(isa_name(isa));
  std::optional<Choice> known;
  if (tuning(opt)) known = measured_dense_choice(n, k, opt);
  if ((known && known->kernel == own) || opt.require == own) {
    std::string why;
    if (auto kern = isa_kernels(isa).dense_nvec_raw(w, n, k, k_major, why)) {
      if (log) log->push_back(own + (known ? ": chosen earlier (kernel-choice cache)" : ": required"));
      if (choice) *choice = known ? *known : Choice{own, 0, {}};
      return kern;
    }
  }
  DenseMatrix d;
  d.rows = n;
  d.cols = k;
  d.values.resize(static_cast<size_t>(n * k));
  weight_to_nk(w, n, k, k_major, d.values.data());
  return make_spmm(d, opt, log, choice);
}

std::unique_ptr<SpmmKernel> load_packed_kernel(const std::string& name, int64_t n, int64_t k, const PackedWeight& w) {
  if (name == "dense_matmul_onednn" || name == "dense_matmul_onednn_plain")
    return OnednnDenseKernel::from_packed(n, k, name == "dense_matmul_onednn", w);
  throw Error("kernel '" + name + "' has no packed form to load");
}

std::vector<ColumnRun> column_gaps(const std::vector<ColumnRun>& covered, int64_t n) {
  std::vector<ColumnRun> gaps;
  int64_t next = 0;
  for (const ColumnRun& r : covered) {
    if (r.from > next) gaps.push_back({next, r.from - next});
    next = r.from + r.len;
  }
  if (next < n) gaps.push_back({next, n - next});
  return gaps;
}

void write_uncovered(const std::vector<ColumnRun>& runs, const SpmmArgs& a) {
  if (a.ep.accumulate && !a.ep.bias && a.ep.act == Activation::none) return;  // Y stays
  // Row by row (a column at a time, 12 KiB apart, took 1.1 ms for
  // BERT-base's 3072 x 128 output).
  for (int64_t i = 0; i < a.m; ++i)
    for (const ColumnRun& r : runs)
      for (int64_t n = r.from; n < r.from + r.len; ++n) {
        float& y = a.y[i * a.ldy + n];
        y = apply_activation((a.ep.accumulate ? y : 0.f) + (a.ep.bias ? a.ep.bias[n] : 0.f), a.ep.act);
      }
}

double time_spmm(const SpmmKernel& k, int64_t m, int threads) { return time_kernel(k, m, threads); }

std::optional<Choice> measured_dense_choice(int64_t n, int64_t k, const KernelOptions& opt) {
  if (!tuning(opt)) return std::nullopt;
  DenseMatrix shape_only;  // the key needs the shape only
  shape_only.rows = n;
  shape_only.cols = k;
  return ChoiceCache::global().find(choice_key(shape_only, opt));
}

void SpmmKernel::operator()(const Tensor& x, Tensor& y, const Tensor& bias, Activation act, int threads) const {
  SPARTA_CHECK(x.rank() == 2 && x.dtype() == DType::f32, "spmm: X must be a 2-D f32 tensor [M, K], got ",
               dtype_name(x.dtype()), " ", x.shape().str());
  SPARTA_CHECK(x.dim(1) == k_, "spmm: X has K=", x.dim(1), " but the weight has K=", k_);
  SPARTA_CHECK(y.rank() == 2 && y.dtype() == DType::f32 && y.dim(0) == x.dim(0) && y.dim(1) == n_,
               "spmm: Y must be f32 [", x.dim(0), ", ", n_, "], got ", dtype_name(y.dtype()), " ", y.shape().str());
  if (bias.defined())
    SPARTA_CHECK(bias.dtype() == DType::f32 && bias.numel() == n_, "spmm: bias must hold N=", n_,
                 " f32 values, got ", bias.shape().str());
  SPARTA_CHECK(threads >= 1 && threads <= 1024, "spmm: threads=", threads, " must be in [1, 1024]");
  SpmmArgs a{x.data<float>(), x.dim(0), k_, y.data<float>(), n_,
             Epilogue{bias.defined() ? bias.data<float>() : nullptr, act, false}, threads};
  run(a);
}

}  // namespace sparta
