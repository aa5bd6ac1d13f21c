// Operator implementations for the graph runtime. Each op reads its input
// tensors (shapes known only at run time, so ops compute their own output
// shapes), allocates and fills its outputs. Ops are registered by ONNX op
// type; the Session refuses a graph with an op that has no implementation,
// naming the op, the node and the opset.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "analysis/onnx_rules.h"
#include "ir/graph.h"

namespace sparta {

struct OpCall {
  const Node& node;
  std::vector<const Tensor*> in;  // nullptr for an omitted optional input
  std::vector<Tensor> out;        // one per node output, filled by the op
  int threads = 1;
  int64_t opset = 17;  // the graph's default-domain opset (some ops changed meaning)
  // Per-node state that lives as long as the Session (e.g. a prepacked
  // weight): an op may fill it on its first call and reuse it after.
  std::shared_ptr<void>* state = nullptr;
  // Which implementation ran, for profiles (e.g. "dense_gemm_nvec__avx2");
  // set by ops that choose between several.
  std::string impl;
  // Per input: this node is its last reader (not a constant, not a graph
  // output), so an op may reuse its storage for an output when the storage
  // is not shared (see reusable()).
  std::vector<bool> last_use;

  const Tensor& input(size_t i) const;  // error naming the node if missing
  bool has_input(size_t i) const { return i < in.size() && in[i] != nullptr; }
  // Input i is a constant of the graph (an initializer or a folded value).
  bool constant_input(size_t i) const {
    return i < node.inputs.size() && node.inputs[i] && node.inputs[i]->is_constant();
  }
  bool reusable(size_t i) const {
    return has_input(i) && i < last_use.size() && last_use[i] && in[i]->unique_storage();
  }
  [[noreturn]] void fail(const std::string& msg) const;
};

using OpFn = std::function<void(OpCall&)>;

// The implementation of an op type, or null. Ops of sparta's own domain
// (made by fusion passes) are registered as "sparta.<op>".
const OpFn* find_op(const std::string& op_type);
const OpFn* find_op(const Node& n);
std::vector<std::string> supported_ops();

// Ahead-of-time preparation of a node's state (e.g. a constant weight packed
// for the kernel that measured fastest), from the node alone: constants and
// static shapes. The Session prepares every node that has a preparer before
// the first run: nodes with a new `key` one at a time (their kernel choice
// is measured and remembered under it), then the rest in parallel.
struct Preparer {
  // The kernel-choice key of this node, or "" when it cannot be prepared
  // ahead (a shape known only at run time): the op then prepares lazily.
  std::function<std::string(const Node&, int threads)> key;
  std::function<void(const Node&, std::shared_ptr<void>& state, int threads)> prepare;
};
void add_preparer(std::initializer_list<const char*> names, Preparer p);
const Preparer* find_preparer(const Node& n);

// Registration: each op file defines one register_*_ops function, called
// once when the registry is first used (explicit calls, so that a static
// link keeps every op file).
void add_op(std::initializer_list<const char*> names, OpFn fn);
void register_elementwise_ops();
void register_tensor_ops();
void register_nn_ops();
void register_conv_ops();

// Helpers shared by op files.
std::vector<int64_t> broadcast_dims(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                    const OpCall& c);
// Reads an integer tensor (i64 or i32) as int64 values.
std::vector<int64_t> int_values(const Tensor& t, const OpCall& c);
int64_t normalize_axis(int64_t axis, int64_t rank, const OpCall& c);

// Calls f(begin, end) over parts of [0, n) on up to `threads` threads, each
// part at least `grain` items (inline when there is one part).
void parallel_for(int threads, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

// Row-major element strides of dims.
std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& dims);

// Copies the strided view of src (element size es; the view starts at
// element `offset` and has the given dims and element strides) into the
// contiguous dst. Transpose, Slice and Split are views.
void copy_view(const void* src, size_t es, int64_t offset, const std::vector<int64_t>& dims,
               const std::vector<int64_t>& strides, void* dst);

// Strides of `dims` aligned to an output of rank r, 0 where broadcast.
inline std::vector<int64_t> bstrides(const std::vector<int64_t>& dims, size_t r) {
  std::vector<int64_t> st(r, 0);
  int64_t s = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    const size_t o = r - dims.size() + i;
    st[o] = dims[i] == 1 ? 0 : s;
    s *= dims[i];
  }
  return st;
}

// Calls f(out_index, offsets...) for every output element.
template <size_t N, typename F>
void for_each_broadcast(const std::vector<int64_t>& out, const std::array<std::vector<int64_t>, N>& ins, F f) {
  const size_t r = out.size();
  std::array<std::vector<int64_t>, N> st;
  for (size_t k = 0; k < N; ++k) st[k] = bstrides(ins[k], r);
  int64_t total = 1;
  for (int64_t d : out) total *= d;
  if (total == 0) return;
  std::vector<int64_t> idx(r, 0);
  std::array<int64_t, N> off{};
  for (int64_t e = 0; e < total; ++e) {
    f(e, off);
    for (size_t d = r; d-- > 0;) {  // odometer increment
      ++idx[d];
      for (size_t k = 0; k < N; ++k) off[k] += st[k][d];
      if (idx[d] < out[d]) break;
      for (size_t k = 0; k < N; ++k) off[k] -= st[k][d] * out[d];
      idx[d] = 0;
    }
  }
}


}  // namespace sparta
