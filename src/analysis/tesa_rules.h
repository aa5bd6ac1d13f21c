// TeSA transfer rules: how one operator moves sparsity facts, forward (from
// its inputs' facts to its outputs') and backward (from which output
// elements are needed to which input elements are). Each operator's OpDef
// (ops/op_def.h) names its rule; the engine (analysis/tesa_propagation)
// runs them over the graph to a fixpoint. The rule families here are shared
// by the operators they fit: elementwise with broadcasting, data movement
// (an index map), rows (softmax, normalization, reductions), products
// (MatMul, Gemm, sparta.Linear) and channels (Conv, BatchNormalization,
// pooling).
//
// Forward facts are exact: a pruned element is exactly zero on every run, a
// constant element is exactly its value. Backward facts say which elements
// some graph output depends on; an element no output needs may hold
// anything, so the transformation may skip computing it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "core/tesa.h"
#include "ir/graph.h"

namespace sparta {

// What propagation knows about one input of a node, element by element: a
// constant tensor of the graph, a value's forward facts, or nothing (every
// element kept, unknown). Only f32 constants are read for their values.
struct Facts {
  const Tensor* constant = nullptr;
  const Tesa* tesa = nullptr;
  std::vector<int64_t> dims;  // static extents
  bool present = false;       // an input at all (optional inputs may be absent)

  // Fills the fast views and the summary below; call once the fields above
  // are set (the engine does, for every input it hands a rule).
  void prepare();
  const float* values = nullptr;   // a constant's elements as f32 (its data, or `converted`)
  const uint8_t* codes = nullptr;  // the TeSA's codes
  bool all_var = false;            // a run-time value with no element known (the dense case)
  bool any_zero = false;           // some element is exactly zero
  bool any_nonfinite = false;      // a constant with an inf or NaN
  int max_bits = 32;               // the widest kept, non-constant element's width
  std::shared_ptr<std::vector<float>> converted;

  int64_t numel() const;
  bool zero(int64_t i) const { return values ? values[i] == 0.f : codes && codes[i] == 0; }  // exactly zero
  bool known(int64_t i) const { return values || (codes && (codes[i] == 0 || codes[i] == 0xFF)); }
  float value(int64_t i) const {  // when known()
    return values ? values[i] : codes && codes[i] == 0xFF ? tesa->constant_value(i) : 0.f;
  }
  int bits(int64_t i) const {  // width a kept element needs (32 unless a TeSA says less)
    return codes && codes[i] >= 4 && codes[i] <= 32 ? codes[i] : 32;
  }
};

// Which elements of a value some graph output needs. "Every element" is a
// flag, not a byte per element: in most of a model everything is needed.
class LiveMask {
 public:
  LiveMask() = default;
  explicit LiveMask(int64_t n) : n_(n) {}
  int64_t size() const { return n_; }
  bool all() const { return all_; }
  bool any() const;
  bool operator[](int64_t i) const { return all_ || (!bits_.empty() && bits_[static_cast<size_t>(i)]); }
  void set(int64_t i) {
    if (all_) return;
    if (bits_.empty()) bits_.assign(static_cast<size_t>(n_), 0);
    bits_[static_cast<size_t>(i)] = 1;
  }
  void set_range(int64_t begin, int64_t end);
  void fill() {
    all_ = true;
    std::vector<uint8_t>().swap(bits_);
  }
  void merge(const LiveMask& o);  // OR; becomes all() when every element is set
  std::vector<uint8_t> bytes() const;

 private:
  int64_t n_ = 0;
  bool all_ = false;
  std::vector<uint8_t> bits_;  // empty: none set (unless all_)
};

struct TesaForward {
  const Node& n;
  int64_t opset;  // the graph's default-domain opset
  std::vector<Facts> in;
  std::vector<Tesa>& out;  // per output, of its static shape, preset to every element kept (32 bits)
};

struct TesaBackward {
  const Node& n;
  int64_t opset;
  std::vector<Facts> in;
  std::vector<const LiveMask*> out_live;  // per output (null: unknown, so every element needed)
  std::vector<LiveMask>& in_live;         // per input, preset to none: the rule marks what is needed
};

struct TesaRule {
  std::function<void(TesaForward&)> forward;
  std::function<void(TesaBackward&)> backward;
  // Whether zeroing a constant input's unneeded elements keeps every output
  // finite (a product's weight: yes; a divisor: no, x / 0 is inf, and an
  // unneeded inf times a zero is still NaN). Propagation zeroes a weight's
  // dead elements only where every consumer says yes.
  bool zero_safe = true;
  // Whether a constant input's unneeded elements are made zero at all. A
  // product's or convolution's weight keeps them: zeroing single elements
  // would break the block pattern its kernel is chosen for, and shrink cuts
  // whole unneeded channels by liveness anyway. Biases and other vectors
  // are zeroed (a zero bias makes a dead head exactly zero downstream).
  bool zero_dead_constants = true;
  explicit operator bool() const { return forward && backward; }
};

namespace tesa_rules {

// Elementwise with numpy broadcasting. `f` evaluates one element from the
// operands' values (used where every operand is known, so constants fold);
// `absorb` says, per operand, when its zero makes the result zero whatever
// the others are: never, always (Mul), or when every other operand is a
// known non-zero (Div's numerator).
enum class Absorb : uint8_t { never, always, if_others_nonzero };
using ElementFn = std::function<float(const float*)>;
TesaRule elementwise(ElementFn f, std::vector<Absorb> absorb = {}, bool zero_safe = true);
// The same where the element function depends on the node's attributes
// (Cast's target type, Clip-6's bounds, BatchNormalization's epsilon): `f`
// is asked once per node.
TesaRule elementwise_by_node(std::function<ElementFn(const Node&)> f, std::vector<Absorb> absorb = {},
                             bool zero_safe = true);
// Data movement: output element i is input 0's element src[i] (-1: none,
// a zero). The other inputs are arguments (shapes, indices, axes), needed
// whole when any output element is.
TesaRule same_order();  // Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout
TesaRule transpose();
TesaRule slice();   // constant starts/ends/axes/steps
TesaRule split();   // constant split sizes
TesaRule gather();  // constant indices
TesaRule expand();
// Concat: output elements come from each input in turn along the axis.
TesaRule concat();
// Rows along the trailing `axis`..end (LayerNormalization) or one axis
// (Softmax, reductions): a row is needed whole; a row of known elements
// folds through `row` (nullptr: only an all-zero row folds, to zero).
enum class RowKind { softmax, layer_norm, reduce_mean, reduce_sum, reduce_max };
TesaRule rows(RowKind kind);
// Y = X W (+ bias) (+ residual) (act) with X [.., M, K] and W [K, N] (or
// [N, K] transposed), or two run-time operands with equal batch dims.
enum class ProductKind { matmul, gemm, linear };
TesaRule product(ProductKind kind);
// Per-channel operators on N x C x spatial: Conv (a channel plane is
// pruned when every input channel feeding it is a zero plane or has zero
// weights; a bias makes it constant), BatchNormalization (a zero channel
// becomes the constant shift), pooling (zero planes stay zero).
enum class ChannelKind { conv, batch_norm, pool };
TesaRule channels(ChannelKind kind);

}  // namespace tesa_rules
}  // namespace sparta
