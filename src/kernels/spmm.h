// Sparse x dense products for linear layers: Y[M,N] = X[M,K] * W^T + bias,
// then an optional activation, with W[N,K] in any format of formats.h.
//
// A kernel is prepared once per weight (it may repack the weight, as oneDNN
// prepacks dense weights) and then run on any number of activations. Choice
// follows an ordered list per format, fastest first and the reference last;
// each candidate accepts the problem or says why not, and the chosen kernel's
// name (e.g. "bsr_spmm_nvec__avx2") is always reported.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/cpu.h"
#include "core/tensor.h"
#include "formats/formats.h"
#include "tuning/choice_cache.h"

namespace sparta {

enum class Activation { none, relu, gelu };
std::string activation_name(Activation a);
Activation parse_activation(const std::string& s);  // "none", "relu", "gelu"

struct Epilogue {
  const float* bias = nullptr;  // N values, or null
  Activation act = Activation::none;
  bool accumulate = false;      // Y += result (before bias/act); internal use by composite kernels
};

// Raw call arguments: X is M rows of K floats with row stride ldx, Y is M rows
// of N floats with row stride ldy.
struct SpmmArgs {
  const float* x = nullptr;
  int64_t m = 0;
  int64_t ldx = 0;
  float* y = nullptr;
  int64_t ldy = 0;
  Epilogue ep;
  int threads = 1;
  // Packed handoff between two products of kernels with the same
  // packed_tile() T (see SpmmKernel::packed_tile): X given already packed
  // (ldx ignored), or Y written packed (ldy ignored; no accumulate).
  int x_packed = 0;
  int y_packed = 0;
  // Nonzero: names X's content (a run of a model and one of its values), so
  // a kernel that packs X may reuse its packing of the same X (the three
  // attention products of one input). 0: unknown, always packed.
  uint64_t x_token = 0;
};

// A packed activation of M rows and C columns with tile T: ceil(M / T)
// tiles, each C rows of T values (tile t, column c, row i of the tile at
// [(t * C + c) * T + i]); rows past M hold anything.
inline int64_t packed_floats(int64_t m, int64_t c, int t) { return (m + t - 1) / t * t * c; }

// A kernel's weight in its own packed form, as a compiled model saves it
// (see load_packed_kernel): small parameters and the packed bytes.
struct PackedWeight {
  std::string params;
  Bytes data;
};

class SpmmKernel {
 public:
  virtual ~SpmmKernel() = default;
  virtual std::string name() const = 0;
  virtual void run(const SpmmArgs& a) const = 0;
  // The weight as this kernel packed it, for kernels that can be made
  // again from it (load_packed_kernel); nullopt for the others.
  virtual std::optional<PackedWeight> packed_weight() const { return std::nullopt; }
  // Prepares for calls of M rows ahead of the first (packs the weight
  // where the kernel packs per call shape); a no-op for most.
  virtual void prepare_rows(int64_t m) const {}
  // T > 0 when the kernel packs X in tiles of T rows transposed (its own
  // first step) and produces Y in that same layout before transposing it:
  // two such products in a row can then hand their activation over packed
  // (SpmmArgs::x_packed / y_packed), skipping one transposed store and one
  // packing. 0 for the others.
  virtual int packed_tile() const { return 0; }
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }

  // Checked entry point for tensors: X [M,K] f32, Y [M,N] f32, bias [N] or
  // undefined. Throws sparta::Error naming the offending argument.
  void operator()(const Tensor& x, Tensor& y, const Tensor& bias, Activation act, int threads) const;

 protected:
  SpmmKernel(int64_t n, int64_t k) : n_(n), k_(k) {}
  int64_t n_, k_;
};

struct KernelOptions {
  Isa max_isa = host_isa();
  bool reference = false;  // force the scalar reference kernel
  bool jit = true;         // kernels generated for the weight's pattern may compete (jit/)
  std::string require;     // only this implementation (by name); error if it declines
  // Measured choice: when tune_m > 0, every optimized candidate that accepts
  // is prepared and timed on a random X of tune_m rows with tune_threads
  // threads, and the fastest is kept. Otherwise the first in list order.
  int64_t tune_m = 0;
  int tune_threads = 1;
};

// One entry of the ordered implementation list.
struct SpmmImpl {
  std::string name;  // e.g. "csr_spmm_mvec__avx2", "jit_csr_avx512"
  // The vector ISA the implementation is built for (none: any host).
  std::optional<Isa> isa;
  // Returns the prepared kernel, or null with `why` set when it does not apply.
  std::function<std::unique_ptr<SpmmKernel>(const WeightFormat&, const KernelOptions&, std::string& why)> make;
};
const std::vector<SpmmImpl>& spmm_impls();

// The first implementation that accepts (or the fastest measured, see
// KernelOptions::tune_m; a choice measured before, for the same key, is
// taken from the kernel-choice cache without timing). `log`, when given,
// receives one line per rejected candidate ("name: reason") and, when
// tuning, one per timed candidate; `choice` the chosen kernel with its
// measured time and every candidate's (ms 0 when nothing was timed).
std::unique_ptr<SpmmKernel> make_spmm(const WeightFormat& w, const KernelOptions& opt = {},
                                      std::vector<std::string>* log = nullptr, Choice* choice = nullptr);

// A dense W for the graph runtime, read from `w` as [K, N] (k_major: the
// MatMul form) or [N, K] (Gemm with transB): the implementation measured
// fastest for this shape (KernelOptions::tune_m, remembered per shape, as in
// make_spmm), packed straight from the given order when that choice is
// known (no [N, K] copy for sparta's own kernel).
std::unique_ptr<SpmmKernel> make_dense(const float* w, int64_t n, int64_t k, bool k_major, const KernelOptions& opt,
                                       std::vector<std::string>* log = nullptr, Choice* choice = nullptr);

// The kernel `name` for an [n, k] weight again from its packed_weight(),
// without repacking where the host packs the same way. Throws
// sparta::Error when the kernel has no packed form or the data does not
// fit (a corrupt file, another library version).
std::unique_ptr<SpmmKernel> load_packed_kernel(const std::string& name, int64_t n, int64_t k, const PackedWeight& w);

// A weight given as [K, N] (k_major) or [N, K], written to out as [N, K].
void weight_to_nk(const float* w, int64_t n, int64_t k, bool k_major, float* out);

// The best time (ms) of a few runs of k on a random X of m rows with
// `threads` threads: the measure behind every kernel choice.
double time_spmm(const SpmmKernel& k, int64_t m, int threads);

// The choice measured (now or in an earlier process) for a dense [n, k]
// weight with these tuning options, if there is one.
std::optional<Choice> measured_dense_choice(int64_t n, int64_t k, const KernelOptions& opt);

// The scalar reference kernel for any format: the oracle of every test.
std::unique_ptr<SpmmKernel> make_spmm_reference(const WeightFormat& w);

// Apply activation to one value, exactly as the reference does.
float apply_activation(float v, Activation a);

// Output columns [from, from + len).
struct ColumnRun {
  int64_t from = 0, len = 0;
};
// The columns of [0, n) outside `covered` (runs in ascending order, not
// overlapping): the gaps between them.
std::vector<ColumnRun> column_gaps(const std::vector<ColumnRun>& covered, int64_t n);
// Columns no part of a weight covers (an empty block row or tile, a pruned
// row) still get the epilogue: Y (when accumulating) plus bias, then the
// activation; written row by row.
void write_uncovered(const std::vector<ColumnRun>& runs, const SpmmArgs& a);

}  // namespace sparta
