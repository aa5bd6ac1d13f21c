// Operator definitions: everything sparta knows about one operator lives in
// its OpDef, defined once in the op family's file (ops/elementwise.cpp,
// tensor.cpp, nn.cpp, conv.cpp): the shape rule, its TeSA transfer rules
// (analysis/tesa_rules.h), how output dims keep the
// positions (and symbolic names) of input dims, which memory layouts it reads
// and writes, its ahead-of-time plan (the chosen kernel and its packed data)
// and run(). Graph passes, shape inference and the Executor ask the registry;
// nothing else keys behaviour by op-name strings.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/parallel.h"  // parallel_for
#include "analysis/onnx_rules.h"
#include "analysis/tesa_rules.h"
#include "ir/graph.h"
#include "tuning/choice_cache.h"

namespace sparta {

// A node's plan: what plan() chose and prepared ahead of the first run
// (a packed weight with its kernel, a oneDNN primitive), or what run()
// builds on its first call where shapes are known only then. Typed per op
// family (ops downcast with OpCall::plan_as); kernel() names the choice.
class NodePlan;

// A plan as a compiled model stores it (compile/artifact): the chosen
// implementation and, for a sparse choice, the packed weight, so that
// loading measures nothing and analyses nothing. Measured times ride along
// for the report.
struct PlanRecord {
  std::string kernel;  // the implementation chosen ("bsr_spmm_nvec__avx512")
  // The packed weight, or nothing when the plan is made again from the
  // node's constant input: a sparse format (formats/ serialization), or
  // the kernel's own packed form (SpmmKernel::packed_weight) with its
  // parameters. A loaded model's packed bytes stay in the mapped file.
  enum class Packed : uint8_t { none, format, kernel } packed_kind = Packed::none;
  Bytes packed;
  std::string params;
  // Inputs whose data only the plan needs (the packed weight replaces
  // them): a compiled model stores their shape, not their data.
  std::vector<int> held_inputs;
  std::string pattern;                 // the packed pattern ("bsr 32x1"), "" for a dense weight
  double ms = 0, dense_ms = 0;         // the choice's measured time and the dense one's (0: not timed)
  std::vector<Candidate> candidates;  // every alternative timed
};

class NodePlan {
 public:
  virtual ~NodePlan() = default;
  virtual std::string kernel() const = 0;
  // What a compiled model stores of this plan; nullopt when loading simply
  // plans the node again (no measured choice in it, e.g. a convolution's
  // oneDNN primitive).
  virtual std::optional<PlanRecord> record() const { return std::nullopt; }
  // Packed handoff (kernels/spmm.h): the tile width T > 0 when node n's
  // output could be written packed, or its input i read packed, by this
  // plan's kernel; set_packed commits (0: as before). The compiled model
  // links a producer and its sole consumer only when both agree.
  virtual int packed_output_tile(const Node& n) const { return 0; }
  virtual int packed_input_tile(const Node& n, size_t i) const { return 0; }
  virtual void set_packed(int input_tile, int output_tile) {}
};

// How nodes are planned: the thread count kernels are chosen (and run)
// with, and whether a pruned weight may get a sparse kernel (--dense: no).
struct PlanOptions {
  int threads = 1;
  bool sparse = true;
  bool decompose = true;  // with sparse: also measure decompositions of unstructured weights
  bool jit = true;        // with sparse: also measure kernels generated for the weight's pattern
};

struct OpCall {
  const Node& node;
  std::vector<const Tensor*> in;  // nullptr for an omitted optional input
  std::vector<Tensor> out;        // one per node output, filled by the op
  int threads = 1;
  int64_t opset = 17;  // the graph's default-domain opset (some ops changed meaning)
  // The node's plan, living as long as the Executor; null where the caller
  // keeps none (constant folding). An op may fill an empty one on its first
  // call and reuse it after.
  std::shared_ptr<NodePlan>* plan = nullptr;
  // Which implementation ran, for profiles (e.g. "dense_gemm_nvec__avx2");
  // set by ops that choose between several.
  std::string impl;
  // Per input: this node is its last reader (not a constant, not a graph
  // output), so an op may reuse its storage for an output when the storage
  // is not shared (see reusable()).
  const std::vector<bool>* last_use = nullptr;
  bool sparse = true;  // a lazily made plan may choose a sparse kernel (PlanOptions::sparse)
  // This run's number, unique in the process (0: not a model run, e.g.
  // folding): with a Value it names a tensor's content (SpmmArgs::x_token).
  uint64_t run = 0;

  const Tensor& input(size_t i) const;  // error naming the node if missing
  bool has_input(size_t i) const { return i < in.size() && in[i] != nullptr; }
  // Input i is a constant of the graph (an initializer or a folded value).
  bool constant_input(size_t i) const {
    return i < node.inputs.size() && node.inputs[i] && node.inputs[i]->is_constant();
  }
  bool reusable(size_t i) const {
    return has_input(i) && last_use && i < last_use->size() && (*last_use)[i] && in[i]->unique_storage();
  }
  // The node's plan as the op family's type P, made by `make` when empty.
  template <typename P, typename Make>
  P& plan_as(Make make) {
    SPARTA_ASSERT(plan, "node '", node.name, "' runs without a plan slot");
    if (!*plan) *plan = make();
    P* p = dynamic_cast<P*>(plan->get());
    SPARTA_ASSERT(p, "node '", node.name, "' holds a plan of another operator (", (*plan)->kernel(), ")");
    return *p;
  }
  [[noreturn]] void fail(const std::string& msg) const;
};

// What a shape rule sees: the node, its inputs' known dims and dtypes and
// constant values; it sets what it can of the outputs (an extent it cannot
// know is -1; a rule never guesses). require() reports a real inconsistency
// in the model, naming the node.
struct ShapeCtx {
  using Dims = std::vector<int64_t>;
  Node& n;
  std::string where() const { return "node '" + n.name + "' (" + n.op_type + ")"; }
  int inputs() const { return static_cast<int>(n.inputs.size()); }
  Value* in(int i) const { return i < inputs() ? n.inputs[static_cast<size_t>(i)] : nullptr; }
  const Dims* dims(int i) const {
    Value* v = in(i);
    return v && v->dims ? &*v->dims : nullptr;
  }
  std::optional<DType> dtype(int i) const {
    Value* v = in(i);
    return v ? v->dtype : std::nullopt;
  }
  // A constant integer input as a list (i64 or i32), if known.
  std::optional<Dims> ints(int i) const;
  // Sets output o's dims and dtype where they are not known yet.
  void set(int o, std::optional<Dims> d, std::optional<DType> t) const;
  void require(bool ok, const std::string& msg) const { SPARTA_CHECK(ok, where(), ": ", msg); }
  // Axis normalized into [0, rank), or a require() failure.
  int64_t axis(int64_t a, int64_t rank) const;
  // An `axes` list: the attribute (older opsets), else the constant input
  // (opset 13+), else empty; nullopt when the input is not constant.
  std::optional<Dims> axes_arg(int input) const;
};

// Shape rules several operators share.
void same_shape_as_input(const ShapeCtx& c);                          // output 0 = input 0
void broadcast_inputs(const ShapeCtx& c, std::optional<DType> out);  // numpy broadcast of every input

// Which leading dims of an output keep the position (and so the symbolic
// name, "batch") of the same dim of a same-rank input.
enum class DimsKept : uint8_t {
  none,
  all,           // elementwise and row-wise ops
  all_but_last,  // products
  batch,         // convolution and pooling: dim 0
};

// How an operator takes part in channel-blocked layouts (nChw8c, see
// passes/layout): which inputs it can read blocked and when its output is
// blocked. can_block() adds the node's own condition (static shapes, kind).
enum class LayoutRole : uint8_t {
  plain,        // reads and writes plain tensors only
  producer,     // writes blocked when it can (Conv); reads input 0 and a fused residual (3) blocked
  passthrough,  // output blocked iff input 0 is (Relu, Clip, pooling)
  binary,       // binary: output blocked iff both inputs are blocked with one shape, or one is
                // blocked and the other a per-channel [N or 1, C, 1, 1] value (SE scaling)
  reader,       // reads input 0 blocked, writes plain (global pooling)
  nary,         // every input blocked in one layout: output blocked too (Concat along channels)
  reorder,      // sparta.Reorder: blocked in, plain out
};

using RunFn = std::function<void(OpCall&)>;
using ShapeFn = std::function<void(const ShapeCtx&)>;

struct OpDef {
  std::string name;  // ONNX op type, or "sparta.<op>" for sparta's own (made by fusion passes)
  ShapeFn shape;     // null: outputs stay unknown until run time
  TesaRule tesa;     // TeSA transfer rules; empty: everything kept (and named in propagation's report)
  RunFn run;
  DimsKept dims_kept = DimsKept::none;
  // Output element e depends only on element e of each input (numpy
  // broadcasting aside): the ops a channel can be removed through
  // (passes/shrink).
  bool elementwise = false;
  LayoutRole layout = LayoutRole::plain;
  std::function<bool(const Node&)> can_block;  // null: always, for the role
  // Ahead-of-time planning from the node alone (constants, static shapes).
  // plan_key names the kernel choice the plan measures ("" when the node
  // cannot be planned ahead: it then plans lazily on its first run); nodes
  // with a new key are planned one at a time, the rest in parallel.
  std::function<std::string(const Node&, const PlanOptions&)> plan_key;
  std::function<std::shared_ptr<NodePlan>(const Node&, const PlanOptions&)> plan;
  // The plan again from what record() saved, without measuring (a
  // compiled model's load). Throws sparta::Error when the record does not
  // fit the node.
  std::function<std::shared_ptr<NodePlan>(const Node&, const PlanRecord&, const PlanOptions&)> load_plan;
};

// The definition of node n (default ONNX domain or sparta's own), or null.
const OpDef* find_op_def(const Node& n);
// By registry key: the ONNX op type, or "sparta.<op>".
const OpDef* find_op_def(const std::string& key);
std::vector<std::string> supported_ops();  // the keys of definitions that can run

// Registration: each op family file defines one define_*_ops function,
// called once when the registry is first used (explicit calls, so that a
// static link keeps every op file). `names` share one definition.
void define_op(std::initializer_list<const char*> names, OpDef def);
void define_elementwise_ops();
void define_tensor_ops();
void define_nn_ops();
void define_conv_ops();
void define_reduce_ops();
void define_movement_ops();
void define_pad_ops();
void define_resize_ops();
void define_conv_transpose_ops();
void define_control_flow_ops();
void define_rnn_ops();
void define_indexing_ops();
void define_einsum_ops();

// Subgraphs (If's branches, Loop's body) run on the runtime, which ops may
// not depend on: the runtime registers how a subgraph is compiled (for the
// extents of its first inputs, with the caller's threads and sparsity), and
// the control-flow ops ask for it.
class SubgraphRunner {
 public:
  virtual ~SubgraphRunner() = default;
  virtual const Graph& graph() const = 0;
  virtual std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs) = 0;
};
using SubgraphCompiler = std::function<std::unique_ptr<SubgraphRunner>(
    Graph g, const std::map<std::string, std::vector<int64_t>>& shapes, int threads, bool sparse)>;
void set_subgraph_compiler(SubgraphCompiler f);
// The registered compiler; a sparta::Error when none is (no runtime linked).
const SubgraphCompiler& subgraph_compiler();

// v holds one value per channel of x (dims [N or 1, C, 1, 1] against x's
// [N, C, H, W]) or a single value: the same bytes in every layout, so it
// combines with a blocked x channel by channel.
bool per_channel_of(const Value* v, const Value* x);

// Extent arithmetic on values a model chose (attributes, constant inputs):
// a * b and a + b with -1 (unknown) kept, and a `fail` call instead of an
// overflow past 2^48.
int64_t extent_mul(int64_t a, int64_t b, const std::function<void(const std::string&)>& fail);
int64_t extent_add(int64_t a, int64_t b, const std::function<void(const std::string&)>& fail);

// Helpers shared by op files.
std::vector<int64_t> broadcast_dims(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                    const OpCall& c);
// Reads an integer tensor (i64 or i32) as int64 values.
std::vector<int64_t> int_values(const Tensor& t, const OpCall& c);
int64_t normalize_axis(int64_t axis, int64_t rank, const OpCall& c);

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
