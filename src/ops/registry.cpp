#include "ops/op_def.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "core/error.h"
#include "kernels/parallel.h"

namespace sparta {
namespace {

std::map<std::string, OpDef>& table() {
  static std::map<std::string, OpDef> r;
  return r;
}

const std::map<std::string, OpDef>& registry() {
  static const bool once = [] {
    define_elementwise_ops();
    define_tensor_ops();
    define_nn_ops();
    define_conv_ops();
    define_reduce_ops();
    define_movement_ops();
    define_pad_ops();
    define_resize_ops();
    define_conv_transpose_ops();
    define_control_flow_ops();
    define_rnn_ops();
    define_indexing_ops();
    define_einsum_ops();
    return true;
  }();
  (void)once;
  return table();
}

}  // namespace

const Tensor& OpCall::input(size_t i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
  return *in[i];
}

void OpCall::fail(const std::string& msg) const {
  throw Error("node '" + node.name + "' (" + node.op_type + "): " + msg);
}

std::optional<ShapeCtx::Dims> ShapeCtx::ints(int i) const {
  Value* v = in(i);
  if (!v || (!v->constant && !v->shape_value)) return std::nullopt;
  const Tensor& t = v->constant ? *v->constant : *v->shape_value;
  Dims out(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::i64) std::copy(t.data<int64_t>(), t.data<int64_t>() + t.numel(), out.begin());
  else if (t.dtype() == DType::i32) std::copy(t.data<int32_t>(), t.data<int32_t>() + t.numel(), out.begin());
  else return std::nullopt;
  return out;
}

void ShapeCtx::set(int o, std::optional<Dims> d, std::optional<DType> t) const {
  if (o >= static_cast<int>(n.outputs.size())) return;
  Value* v = n.outputs[static_cast<size_t>(o)];
  if (!v) return;
  if (d && !v->dims) v->dims = std::move(d);
  if (t && !v->dtype) v->dtype = t;
}

int64_t ShapeCtx::axis(int64_t a, int64_t rank) const {
  require(a >= -rank && a < rank, "axis " + std::to_string(a) + " is outside rank " + std::to_string(rank));
  return a < 0 ? a + rank : a;
}

std::optional<ShapeCtx::Dims> ShapeCtx::axes_arg(int input) const {
  if (const Attribute* a = n.attr("axes")) return a->is;
  if (in(input)) return ints(input);
  return Dims{};
}

void same_shape_as_input(const ShapeCtx& c) {
  c.set(0, c.dims(0) ? std::optional<ShapeCtx::Dims>(*c.dims(0)) : std::nullopt, c.dtype(0));
}

void broadcast_inputs(const ShapeCtx& c, std::optional<DType> out) {
  std::optional<ShapeCtx::Dims> d;
  for (int i = 0; i < c.inputs(); ++i) {
    if (!c.dims(i)) return c.set(0, std::nullopt, out);
    d = d ? broadcast_shapes(*d, *c.dims(i), c.where()) : *c.dims(i);
  }
  c.set(0, d, out);
}

const OpDef* find_op_def(const std::string& key) {
  auto it = registry().find(key);
  return it == registry().end() ? nullptr : &it->second;
}

const OpDef* find_op_def(const Node& n) {
  if (n.domain.empty()) return find_op_def(n.op_type);
  if (n.domain == "sparta") return find_op_def("sparta." + n.op_type);
  return nullptr;
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> v;
  for (const auto& [k, def] : registry())
    if (def.run) v.push_back(k);
  return v;
}

void define_op(std::initializer_list<const char*> names, OpDef def) {
  for (const char* n : names) {
    OpDef d = def;
    d.name = n;
    SPARTA_ASSERT(table().emplace(n, std::move(d)).second, "operator ", n, " is defined twice");
  }
}

std::vector<int64_t> broadcast_dims(const std::vector<int64_t>& a, const std::vector<int64_t>& b, const OpCall& c) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t x = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t y = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (x != y && x != 1 && y != 1)
      c.fail("shapes " + Shape(a).str() + " and " + Shape(b).str() + " cannot broadcast");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

std::vector<int64_t> int_values(const Tensor& t, const OpCall& c) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::i64) std::copy(t.data<int64_t>(), t.data<int64_t>() + t.numel(), v.begin());
  else if (t.dtype() == DType::i32) std::copy(t.data<int32_t>(), t.data<int32_t>() + t.numel(), v.begin());
  else c.fail("expected an integer tensor, got " + std::string(dtype_name(t.dtype())));
  return v;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size());
  int64_t s = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    st[i] = s;
    s *= dims[i];
  }
  return st;
}

namespace {

// dst[0, n) = src[0, n * stride) with a stride, for an element type T.
template <typename T>
void copy_strided_row(const char* src, int64_t stride, int64_t n, char* dst) {
  const T* s = reinterpret_cast<const T*>(src);
  T* d = reinterpret_cast<T*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = s[i * stride];
}

}  // namespace

int64_t extent_mul(int64_t a, int64_t b, const std::function<void(const std::string&)>& fail) {
  if (a < 0 || b < 0) return -1;
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > (int64_t{1} << 48)) fail("an extent would be too large");
  return r;
}

int64_t extent_add(int64_t a, int64_t b, const std::function<void(const std::string&)>& fail) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r) || r > (int64_t{1} << 48) || r < -(int64_t{1} << 48))
    fail("an extent would be too large");
  return r;
}

bool per_channel_of(const Value* v, const Value* x) {
  if (!v || !x || !v->dims || !x->static_rank(4) || v->dims->size() > 4) return false;
  if (std::all_of(v->dims->begin(), v->dims->end(), [](int64_t e) { return e == 1; })) return true;  // a scalar
  if (v->dims->size() != 4) return false;
  const std::vector<int64_t>&d = *v->dims, &xd = *x->dims;
  return (d[0] == xd[0] || d[0] == 1) && d[1] == xd[1] && d[2] == 1 && d[3] == 1;
}

namespace {
SubgraphCompiler& compiler_slot() {
  static SubgraphCompiler f;
  return f;
}
}  // namespace

void set_subgraph_compiler(SubgraphCompiler f) { compiler_slot() = std::move(f); }

const SubgraphCompiler& subgraph_compiler() {
  SPARTA_CHECK(compiler_slot() != nullptr, "subgraphs (If, Loop) run only inside sparta's runtime");
  return compiler_slot();
}

void copy_view(const void* src, size_t es, int64_t offset, const std::vector<int64_t>& view_dims,
               const std::vector<int64_t>& view_strides, void* dst) {
  int64_t total = 1;
  for (int64_t d : view_dims) total *= d;
  if (total == 0) return;
  // Fewer, longer runs: unit axes dropped, and an axis merged into the next
  // one where the view steps over it contiguously.
  std::vector<int64_t> dims, strides;
  for (size_t i = 0; i < view_dims.size(); ++i) {
    if (view_dims[i] == 1) continue;
    if (!dims.empty() && strides.back() == view_strides[i] * view_dims[i]) {
      dims.back() *= view_dims[i];
      strides.back() = view_strides[i];
      continue;
    }
    dims.push_back(view_dims[i]);
    strides.push_back(view_strides[i]);
  }
  const char* ps = static_cast<const char*>(src) + offset * static_cast<int64_t>(es);
  char* pd = static_cast<char*>(dst);
  if (dims.empty()) return (void)std::memcpy(pd, ps, es);
  // The innermost axis is copied as a run: one memcpy when it is contiguous.
  const size_t r = dims.size();
  const int64_t n = dims[r - 1], st = strides[r - 1];
  const int64_t row_bytes = n * static_cast<int64_t>(es);
  std::vector<int64_t> idx(r - 1, 0);
  int64_t off = 0;  // element offset of the current run
  for (int64_t row = 0; row < total / n; ++row) {
    const char* s = ps + off * static_cast<int64_t>(es);
    if (st == 1) std::memcpy(pd, s, static_cast<size_t>(row_bytes));
    else if (es == 4) copy_strided_row<uint32_t>(s, st, n, pd);
    else if (es == 8) copy_strided_row<uint64_t>(s, st, n, pd);
    else if (es == 2) copy_strided_row<uint16_t>(s, st, n, pd);
    else if (es == 1) copy_strided_row<uint8_t>(s, st, n, pd);
    else
      for (int64_t i = 0; i < n; ++i) std::memcpy(pd + i * static_cast<int64_t>(es), s + i * st * static_cast<int64_t>(es), es);
    pd += row_bytes;
    for (size_t d = r - 1; d-- > 0;) {  // odometer over the outer axes
      off += strides[d];
      if (++idx[d] < dims[d]) break;
      off -= strides[d] * dims[d];
      idx[d] = 0;
    }
  }
}

int64_t normalize_axis(int64_t axis, int64_t rank, const OpCall& c) {
  if (axis < -rank || axis >= rank)
    c.fail("axis " + std::to_string(axis) + " is outside rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

}  // namespace sparta
