#include "runtime/ops.h"

#include <map>

#include "core/error.h"

namespace sparta {
namespace {

std::map<std::string, OpFn>& table() {
  static std::map<std::string, OpFn> r;
  return r;
}

const std::map<std::string, OpFn>& registry() {
  static const bool once = [] {
    register_elementwise_ops();
    register_tensor_ops();
    register_nn_ops();
    register_conv_ops();
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

const OpFn* find_op(const std::string& op_type) {
  auto it = registry().find(op_type);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> v;
  for (const auto& [k, _] : registry()) v.push_back(k);
  return v;
}

void add_op(std::initializer_list<const char*> names, OpFn fn) {
  for (const char* n : names) table()[n] = fn;
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

int64_t normalize_axis(int64_t axis, int64_t rank, const OpCall& c) {
  if (axis < -rank || axis >= rank)
    c.fail("axis " + std::to_string(axis) + " is outside rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

}  // namespace sparta
