// The elementwise, data-movement and row rule families (tesa_rules.h).
#include "analysis/tesa_rules.h"
#include "analysis/tesa_rules_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "analysis/onnx_rules.h"
#include "core/error.h"

namespace sparta {

int64_t Facts::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

namespace {

double element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::f32: return t.data<float>()[i];
    case DType::i64: return static_cast<double>(t.data<int64_t>()[i]);
    case DType::i32: return t.data<int32_t>()[i];
    case DType::i8: return t.data<int8_t>()[i];
    case DType::u8: return t.data<uint8_t>()[i];
    case DType::boolean: return static_cast<const uint8_t*>(t.raw())[i];
    case DType::bf16: {
      const uint32_t bits = uint32_t{t.data<bf16>()[i].bits} << 16;
      float f;
      std::memcpy(&f, &bits, sizeof f);
      return f;
    }
  }
  return 0;
}

}  // namespace

bool LiveMask::any() const { return all_ || std::find(bits_.begin(), bits_.end(), 1) != bits_.end(); }

void LiveMask::set_range(int64_t begin, int64_t end) {
  if (all_ || begin >= end) return;
  if (bits_.empty()) bits_.assign(static_cast<size_t>(n_), 0);
  std::fill(bits_.begin() + begin, bits_.begin() + end, uint8_t{1});
}

void LiveMask::merge(const LiveMask& o) {
  if (all_ || (!o.all_ && o.bits_.empty())) return;
  if (o.all_) return fill();
  if (bits_.empty()) bits_ = o.bits_;
  else
    for (size_t i = 0; i < bits_.size(); ++i) bits_[i] |= o.bits_[i];
  if (std::find(bits_.begin(), bits_.end(), 0) == bits_.end()) fill();
}

std::vector<uint8_t> LiveMask::bytes() const {
  if (all_) return std::vector<uint8_t>(static_cast<size_t>(n_), 1);
  return bits_.empty() ? std::vector<uint8_t>(static_cast<size_t>(n_), 0) : bits_;
}

void Facts::prepare() {
  values = nullptr;
  codes = nullptr;
  all_var = any_zero = any_nonfinite = false;
  if (!present) return;
  const int64_t n = numel();
  if (constant) {
    if (constant->dtype() == DType::f32) {
      values = constant->data<float>();
    } else {
      converted = std::make_shared<std::vector<float>>(static_cast<size_t>(constant->numel()));
      for (int64_t i = 0; i < constant->numel(); ++i) (*converted)[static_cast<size_t>(i)] = static_cast<float>(element(*constant, i));
      values = converted->data();
    }
    // Branch-free blocks, so that the scan vectorizes (weights are large).
    for (int64_t b = 0; b < n && !(any_zero && any_nonfinite); b += 1024) {
      bool z = false, nf = false;
      for (int64_t i = b; i < std::min(n, b + 1024); ++i) {
        z |= values[i] == 0.f;
        nf |= !(std::fabs(values[i]) <= 3.4e38f);  // inf or NaN
      }
      any_zero = any_zero || z;
      any_nonfinite = any_nonfinite || nf;
    }
    return;
  }
  if (!tesa) {
    all_var = true;
    return;
  }
  codes = tesa->codes();
  const size_t un = static_cast<size_t>(n);
  any_zero = un && std::memchr(codes, 0, un) != nullptr;  // (an empty TeSA's codes may be null)
  const bool any_constant = un && std::memchr(codes, 0xFF, un) != nullptr;
  all_var = !any_zero && !any_constant;
  max_bits = 0;
  if (!any_constant && n > 0) {
    max_bits = *std::max_element(codes, codes + n);
  } else {
    for (int64_t i = 0; i < n; ++i)
      if (codes[i] != 0xFF) max_bits = std::max<int>(max_bits, codes[i]);
  }
  if (max_bits == 0) max_bits = 32;
}

namespace tesa_rules {

namespace {

// One operand of an elementwise node seen over the output's elements: a code
// per output element (0 pruned, 0xFF known, else the width) and, where it
// broadcasts, the source index of each (-1 where it does not: the operand
// has the output's shape). Flat arrays keep the rule's loops simple.
struct Operand {
  bool present = false;
  std::vector<uint8_t> own;     // codes, when they had to be made
  const uint8_t* code = nullptr;
  std::vector<int64_t> src;     // per output element, when broadcast
  int64_t at(int64_t e) const { return src.empty() ? e : src[static_cast<size_t>(e)]; }
};

Operand expand(const Facts& f, const std::vector<int64_t>& out_dims, int64_t n) {
  Operand o;
  o.present = f.present;
  if (!f.present) return o;
  SPARTA_CHECK(f.dims.size() <= out_dims.size(), "an operand of higher rank than the output");
  if (f.numel() != n || f.dims.size() != out_dims.size() || f.dims != out_dims) {
    std::vector<int64_t> st = broadcast_strides(f.dims, out_dims.size());
    o.src.resize(static_cast<size_t>(n));
    std::vector<int64_t> idx(out_dims.size(), 0);
    int64_t off = 0;
    for (int64_t e = 0; e < n; ++e) {
      o.src[static_cast<size_t>(e)] = off;
      for (size_t d = out_dims.size(); d-- > 0;) {
        off += st[d];
        if (++idx[d] < out_dims[d]) break;
        off -= st[d] * out_dims[d];
        idx[d] = 0;
      }
    }
  }
  const int64_t m = f.numel();
  if (f.codes && o.src.empty()) {
    o.code = f.codes;
    return o;
  }
  std::vector<uint8_t> base(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i)
    base[static_cast<size_t>(i)] = f.zero(i) ? 0 : f.known(i) ? 0xFF : static_cast<uint8_t>(f.bits(i));
  if (o.src.empty()) {
    o.own = std::move(base);
  } else {
    o.own.resize(static_cast<size_t>(n));
    for (int64_t e = 0; e < n; ++e) o.own[static_cast<size_t>(e)] = base[static_cast<size_t>(o.src[static_cast<size_t>(e)])];
  }
  o.code = o.own.data();
  return o;
}

}  // namespace

TesaRule elementwise(ElementFn f, std::vector<Absorb> absorb, bool zero_safe) {
  return elementwise_by_node([f](const Node&) { return f; }, std::move(absorb), zero_safe);
}

TesaRule elementwise_by_node(std::function<ElementFn(const Node&)> of_node, std::vector<Absorb> absorb,
                             bool zero_safe) {
  // Whether operand j's zero at output element e decides the result. Facts
  // assume run-time values are finite; a partner known to be inf or NaN
  // (0 x inf is NaN) does not let a zero decide.
  auto absorbs = [absorb](const std::vector<Operand>& ops, const std::vector<Facts>& in, int64_t e, size_t j) {
    const Absorb a = j < absorb.size() ? absorb[j] : Absorb::never;
    if (a == Absorb::never || ops[j].code[e] != 0) return false;
    for (size_t o = 0; o < ops.size(); ++o) {
      if (o == j || !ops[o].present) continue;
      if (ops[o].code[e] == 0xFF && !std::isfinite(in[o].value(ops[o].at(e)))) return false;
      if (a == Absorb::if_others_nonzero && ops[o].code[e] != 0xFF) return false;  // others known non-zero
    }
    return true;
  };
  // Where some operand is a run-time value with no element known and no
  // operand can absorb (no zero where it would), every output element
  // varies: the dense case, decided without visiting elements.
  auto all_vary = [absorb](const std::vector<Facts>& in, int* bits) {
    bool any_var = false;
    *bits = 0;
    for (size_t j = 0; j < in.size(); ++j) {
      if (!in[j].present) continue;
      const Absorb a = j < absorb.size() ? absorb[j] : Absorb::never;
      if (a != Absorb::never && in[j].any_zero) return false;
      if (in[j].all_var) any_var = true;
      *bits = std::max(*bits, in[j].constant ? 32 : in[j].max_bits);
    }
    return any_var;
  };
  const bool can_absorb = std::any_of(absorb.begin(), absorb.end(), [](Absorb a) { return a != Absorb::never; });
  TesaRule r;
  r.zero_safe = zero_safe;
  r.forward = [of_node, absorbs, all_vary](TesaForward& t) {
    Tesa& out = t.out[0];
    int widest = 32;
    if (all_vary(t.in, &widest)) {
      if (widest < 32)
        for (int64_t i = 0; i < out.numel(); ++i) out.set(i, bits_code(widest));
      return;
    }
    const int64_t n = out.numel();
    std::vector<Operand> ops;
    for (const Facts& in : t.in) ops.push_back(expand(in, out.shape().dims(), n));
    const ElementFn f = of_node(t.n);
    // Absent operands (and any an operator expects but the node lacks) read as NaN.
    std::vector<float> vals(std::max<size_t>(t.in.size(), 8), NAN);
    for (int64_t e = 0; e < n; ++e) {
      bool all_known = true, absorbed = false;
      int bits = 0;
      for (size_t j = 0; j < ops.size(); ++j) {
        if (!ops[j].present) continue;
        const uint8_t c = ops[j].code[e];
        absorbed = absorbed || absorbs(ops, t.in, e, j);
        all_known = all_known && (c == 0 || c == 0xFF);
        if (c != 0 && c != 0xFF) bits = std::max<int>(bits, c);
      }
      if (absorbed) {
        out.set(e, ElemCode::pruned);
      } else if (all_known) {
        for (size_t j = 0; j < ops.size(); ++j)
          if (ops[j].present) vals[j] = t.in[j].value(ops[j].at(e));
        out.set_constant(e, f(vals.data()));
      } else {
        out.set(e, bits_code(bits ? bits : 32));
      }
    }
  };
  r.backward = [absorbs, all_vary, can_absorb, absorb](TesaBackward& b) {
    const LiveMask* live = b.out_live[0];
    int widest = 32;
    if (all_live(live) && all_vary(b.in, &widest)) {  // every operand element reaches a needed output
      for (size_t j = 0; j < b.in.size(); ++j)
        if (b.in[j].present) b.in_live[j].fill();
      return;
    }
    std::vector<int64_t> out_dims;
    // The output's dims: the broadcast of the operands' (what the forward
    // rule was given as the output shape).
    for (const Facts& f : b.in)
      if (f.present) out_dims = broadcast_shapes(out_dims, f.dims, "tesa");
    int64_t n = 1;
    for (int64_t d : out_dims) n *= d;
    std::vector<Operand> ops;
    for (const Facts& in : b.in) ops.push_back(expand(in, out_dims, n));
    for (int64_t e = 0; e < n; ++e) {
      if (!live_at(live, e)) continue;
      // The first operand whose zero decides the result (Mul's) is needed
      // and the others are not; Div's numerator decides only because the
      // divisor is a known non-zero, so the divisor stays needed too. (One
      // absorber, not each zero absorbing the others: two zeros that each
      // excuse the other could both change.)
      size_t absorber = ops.size();
      for (size_t o = 0; can_absorb && o < ops.size() && absorber == ops.size(); ++o)
        if (ops[o].present && absorbs(ops, b.in, e, o)) absorber = o;
      const bool drops_others = absorber < ops.size() && absorber < absorb.size() && absorb[absorber] == Absorb::always;
      for (size_t j = 0; j < ops.size(); ++j)
        if (ops[j].present && (!drops_others || j == absorber)) b.in_live[j].set(ops[j].at(e));
    }
  };
  return r;
}

namespace {

// Copies input 0's facts through a source map per output.
using SourceMap = std::function<std::vector<std::vector<int64_t>>(const Node&, const std::vector<Facts>&)>;
// `bijective`: every input element goes to exactly one output element
// (Reshape, Transpose), so a wholly needed output needs the whole input.
TesaRule move_by(SourceMap map, bool bijective = false) {
  TesaRule r;
  r.forward = [map](TesaForward& t) {
    if (t.in[0].all_var && t.in[0].max_bits == 32) return;  // nothing known moves: every output element varies
    const std::vector<std::vector<int64_t>> src = map(t.n, t.in);
    for (size_t o = 0; o < std::min(src.size(), t.out.size()); ++o)
      SPARTA_CHECK(static_cast<int64_t>(src[o].size()) == t.out[o].numel(), "output ", o, " has another extent");
    for (size_t o = 0; o < std::min(src.size(), t.out.size()); ++o)
      for (int64_t i = 0; i < t.out[o].numel(); ++i) {
        const int64_t s = src[o][static_cast<size_t>(i)];
        if (s < 0 || t.in[0].zero(s)) t.out[o].set(i, ElemCode::pruned);
        else if (t.in[0].known(s)) t.out[o].set_constant(i, t.in[0].value(s));
        else t.out[o].set(i, bits_code(t.in[0].bits(s)));
      }
  };
  r.backward = [map, bijective](TesaBackward& b) {
    all_needed_if_any(b, 1);
    if (bijective && b.out_live.size() == 1 && all_live(b.out_live[0])) return b.in_live[0].fill();
    const std::vector<std::vector<int64_t>> src = map(b.n, b.in);
    for (size_t o = 0; o < src.size(); ++o)
      SPARTA_CHECK(o < b.out_live.size() && (!b.out_live[o] || b.out_live[o]->size() == static_cast<int64_t>(src[o].size())),
                   "output ", o, " has another extent");
    for (size_t o = 0; o < src.size(); ++o)
      for (size_t i = 0; i < src[o].size(); ++i)
        if (src[o][i] >= 0 && live_at(b.out_live[o], static_cast<int64_t>(i))) b.in_live[0].set(src[o][i]);
  };
  return r;
}

std::vector<int64_t> contiguous(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size());
  int64_t s = 1;
  for (size_t i = dims.size(); i-- > 0;) st[i] = s, s *= dims[i];
  return st;
}

// Source indices of a strided view of input 0 (dims, element strides from
// an offset), in row-major order of the view.
std::vector<int64_t> view_sources(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides, int64_t offset) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  std::vector<int64_t> src(static_cast<size_t>(total));
  std::vector<int64_t> idx(dims.size(), 0);
  int64_t off = offset;
  for (int64_t e = 0; e < total; ++e) {
    src[static_cast<size_t>(e)] = off;
    for (size_t d = dims.size(); d-- > 0;) {
      off += strides[d];
      if (++idx[d] < dims[d]) break;
      off -= strides[d] * dims[d];
      idx[d] = 0;
    }
  }
  return src;
}

// A constant integer argument (Slice's starts, Gather's indices...); a
// run-time one makes the rule give up (the engine then keeps everything).
std::vector<int64_t> constant_ints(const Facts& f) {
  std::vector<int64_t> v;
  if (!f.present) return v;
  SPARTA_CHECK(f.constant, "a run-time argument");
  for (int64_t i = 0; i < f.constant->numel(); ++i) v.push_back(static_cast<int64_t>(element(*f.constant, i)));
  return v;
}

// An axis in [-r, r), normalized; out of range, the rule gives up (the
// engine then keeps everything).
int64_t norm_axis(int64_t a, int64_t r) {
  SPARTA_CHECK(a >= -r && a < r, "axis ", a, " outside rank ", r);
  return a < 0 ? a + r : a;
}

}  // namespace

TesaRule same_order() {
  return move_by([](const Node&, const std::vector<Facts>& in) {
    std::vector<int64_t> src(static_cast<size_t>(in[0].numel()));
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<int64_t>(i);
    return std::vector<std::vector<int64_t>>{src};
  }, /*bijective=*/true);
}

TesaRule transpose() {
  return move_by([](const Node& n, const std::vector<Facts>& in) {
    const std::vector<int64_t>& d = in[0].dims;
    std::vector<int64_t> perm = n.attr_ints("perm");
    if (perm.empty())
      for (size_t i = d.size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
    const std::vector<int64_t> st = contiguous(d);
    std::vector<int64_t> od, os;
    for (int64_t p : perm) {
      const size_t a = static_cast<size_t>(norm_axis(p, static_cast<int64_t>(d.size())));
      od.push_back(d[a]);
      os.push_back(st[a]);
    }
    return std::vector<std::vector<int64_t>>{view_sources(od, os, 0)};
  }, /*bijective=*/true);
}

TesaRule slice() {
  return move_by([](const Node&, const std::vector<Facts>& in) {
    const auto arg = [&](size_t i) { return i < in.size() && in[i].present ? constant_ints(in[i]) : std::vector<int64_t>{}; };
    const SliceBox box = slice_box(in[0].dims, arg(1), arg(2), arg(3), arg(4), [](const std::string& m) { throw Error(m); });
    const std::vector<int64_t> st = contiguous(in[0].dims);
    int64_t offset = 0;
    std::vector<int64_t> vs(st.size());
    for (size_t a = 0; a < st.size(); ++a) {
      offset += box.begin[a] * st[a];
      vs[a] = box.step[a] * st[a];
    }
    return std::vector<std::vector<int64_t>>{view_sources(box.extent, vs, offset)};
  });
}

TesaRule split() {
  return move_by([](const Node& n, const std::vector<Facts>& in) {
    const std::vector<int64_t>& d = in[0].dims;
    const size_t axis = static_cast<size_t>(norm_axis(n.attr_int("axis", 0), static_cast<int64_t>(d.size())));
    const std::vector<int64_t> given = in.size() > 1 && in[1].present ? constant_ints(in[1]) : std::vector<int64_t>{};
    const std::vector<int64_t> sizes =
        split_sizes(n, d[axis], given.empty() ? nullptr : &given, [](const std::string& m) { throw Error(m); });
    const std::vector<int64_t> st = contiguous(d);
    std::vector<std::vector<int64_t>> out;
    int64_t begin = 0;
    for (int64_t s : sizes) {
      std::vector<int64_t> od = d;
      od[axis] = s;
      out.push_back(view_sources(od, st, begin * st[axis]));
      begin += s;
    }
    return out;
  });
}

TesaRule gather() {
  return move_by([](const Node& n, const std::vector<Facts>& in) {
    const std::vector<int64_t>& d = in[0].dims;
    const size_t axis = static_cast<size_t>(norm_axis(n.attr_int("axis", 0), static_cast<int64_t>(d.size())));
    SPARTA_CHECK(in.size() > 1, "Gather without indices");
    const std::vector<int64_t> idx = constant_ints(in[1]);
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < axis; ++i) outer *= d[i];
    for (size_t i = axis + 1; i < d.size(); ++i) inner *= d[i];
    std::vector<int64_t> src;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t g : idx) {
        const int64_t gi = g < 0 ? g + d[axis] : g;
        for (int64_t i = 0; i < inner; ++i) src.push_back(gi < 0 || gi >= d[axis] ? -1 : (o * d[axis] + gi) * inner + i);
      }
    return std::vector<std::vector<int64_t>>{src};
  });
}

TesaRule expand() {
  return move_by([](const Node&, const std::vector<Facts>& in) {
    SPARTA_CHECK(in.size() > 1, "Expand without a shape");
    std::vector<int64_t> od = broadcast_shapes(in[0].dims, constant_ints(in[1]), "Expand");
    return std::vector<std::vector<int64_t>>{view_sources(od, broadcast_strides(in[0].dims, od.size()), 0)};
  });
}

TesaRule concat() {
  TesaRule r;
  // Output element -> (input, element): inputs laid side by side along the axis.
  auto sources = [](const Node& n, const std::vector<Facts>& in) {
    const std::vector<int64_t>& d0 = in[0].dims;
    const size_t axis = static_cast<size_t>(norm_axis(n.attr_int("axis", 0), static_cast<int64_t>(d0.size())));
    int64_t outer = 1;
    for (size_t i = 0; i < axis; ++i) outer *= d0[i];
    std::vector<std::pair<size_t, int64_t>> src;
    for (int64_t o = 0; o < outer; ++o)
      for (size_t j = 0; j < in.size(); ++j) {
        const int64_t block = in[j].numel() / std::max<int64_t>(1, outer);
        for (int64_t i = 0; i < block; ++i) src.emplace_back(j, o * block + i);
      }
    return src;
  };
  r.forward = [sources](TesaForward& t) {
    const auto src = sources(t.n, t.in);
    SPARTA_CHECK(static_cast<int64_t>(src.size()) == t.out[0].numel(), "inputs do not add up to the output");
    for (size_t i = 0; i < src.size(); ++i) {
      const Facts& f = t.in[src[i].first];
      const int64_t s = src[i].second;
      if (f.zero(s)) t.out[0].set(static_cast<int64_t>(i), ElemCode::pruned);
      else if (f.known(s)) t.out[0].set_constant(static_cast<int64_t>(i), f.value(s));
      else t.out[0].set(static_cast<int64_t>(i), bits_code(f.bits(s)));
    }
  };
  r.backward = [sources](TesaBackward& b) {
    const auto src = sources(b.n, b.in);
    SPARTA_CHECK(!b.out_live[0] || b.out_live[0]->size() == static_cast<int64_t>(src.size()), "inputs do not add up to the output");
    for (size_t i = 0; i < src.size(); ++i)
      if (live_at(b.out_live[0], static_cast<int64_t>(i))) b.in_live[src[i].first].set(src[i].second);
  };
  return r;
}

namespace {

// The groups a row rule works on: input element -> group (row), and the
// row's extent. Softmax: one axis; LayerNorm: axis..end; reductions: their
// axes (attribute or constant input), the output one element per group.
struct Groups {
  std::vector<int64_t> of;  // per input element
  int64_t count = 0;
};

Groups groups_of(const Node& n, const std::vector<Facts>& in, RowKind kind, int64_t opset) {
  const std::vector<int64_t>& d = in[0].dims;
  const int64_t r = static_cast<int64_t>(d.size());
  std::vector<bool> red(d.size(), false);
  if (kind == RowKind::softmax) {
    red[static_cast<size_t>(norm_axis(n.attr_int("axis", opset >= 13 ? -1 : 1), r))] = true;
    if (opset < 13)  // coerced to 2-D at the axis: the row is axis..end
      for (size_t i = static_cast<size_t>(norm_axis(n.attr_int("axis", 1), r)); i < d.size(); ++i) red[i] = true;
  } else if (kind == RowKind::layer_norm) {
    for (size_t i = static_cast<size_t>(norm_axis(n.attr_int("axis", -1), r)); i < d.size(); ++i) red[i] = true;
  } else {
    std::vector<int64_t> axes = n.attr_ints("axes");
    if (axes.empty() && in.size() > 1 && in[1].present) axes = constant_ints(in[1]);
    if (axes.empty() && !n.attr_int("noop_with_empty_axes", 0)) std::fill(red.begin(), red.end(), true);
    for (int64_t a : axes) red[static_cast<size_t>(norm_axis(a, r))] = true;
  }
  Groups g;
  std::vector<int64_t> kd(d.size());
  for (size_t i = 0; i < d.size(); ++i) kd[i] = red[i] ? 1 : d[i];
  const std::vector<int64_t> ks = contiguous(kd);
  g.count = 1;
  for (int64_t e : kd) g.count *= e;
  g.of = view_sources(d, [&] {
    std::vector<int64_t> s(d.size());
    for (size_t i = 0; i < d.size(); ++i) s[i] = red[i] ? 0 : ks[i];
    return s;
  }(), 0);
  return g;
}

}  // namespace

TesaRule rows(RowKind kind) {
  TesaRule r;
  r.forward = [kind](TesaForward& t) {
    if (t.in[0].all_var) return;  // no row is known: every output element varies
    const Groups g = groups_of(t.n, t.in, kind, t.opset);
    const size_t ng = static_cast<size_t>(g.count);
    std::vector<uint8_t> all_known(ng, 1), all_zero(ng, 1);
    std::vector<std::vector<int64_t>> members(ng);
    for (size_t i = 0; i < g.of.size(); ++i) {
      const size_t gi = static_cast<size_t>(g.of[i]);
      members[gi].push_back(static_cast<int64_t>(i));
      all_known[gi] &= t.in[0].known(static_cast<int64_t>(i));
      all_zero[gi] &= t.in[0].zero(static_cast<int64_t>(i));
    }
    Tesa& out = t.out[0];
    const bool per_group = kind == RowKind::reduce_mean || kind == RowKind::reduce_sum || kind == RowKind::reduce_max;
    for (size_t gi = 0; gi < ng; ++gi) {
      const std::vector<int64_t>& m = members[gi];
      if (per_group) {
        if (all_zero[gi] && !m.empty()) out.set(static_cast<int64_t>(gi), ElemCode::pruned);
        else if (all_known[gi] && !m.empty()) {
          double acc = kind == RowKind::reduce_max ? -INFINITY : 0.0;
          for (int64_t i : m) acc = kind == RowKind::reduce_max ? std::max(acc, double(t.in[0].value(i))) : acc + t.in[0].value(i);
          if (kind == RowKind::reduce_mean) acc /= static_cast<double>(m.size());
          out.set_constant(static_cast<int64_t>(gi), static_cast<float>(acc));
        }
        continue;
      }
      if (!all_known[gi] || m.empty()) continue;
      // A row of known values folds: softmax, or normalization with known
      // scale and bias.
      if (kind == RowKind::softmax) {
        double mx = -INFINITY, sum = 0;
        for (int64_t i : m) mx = std::max(mx, double(t.in[0].value(i)));
        for (int64_t i : m) sum += std::exp(double(t.in[0].value(i)) - mx);
        for (int64_t i : m) out.set_constant(i, static_cast<float>(std::exp(double(t.in[0].value(i)) - mx) / sum));
      } else {
        const size_t norm = m.size();
        for (size_t q = 1; q < 3 && q < t.in.size(); ++q)
          SPARTA_CHECK(!t.in[q].present || t.in[q].numel() > 0, "empty scale or bias");
        bool params_known = true;
        for (size_t j = 0; j < norm; ++j)
          for (size_t p = 1; p < 3 && p < t.in.size(); ++p)
            params_known = params_known && (!t.in[p].present || t.in[p].known(static_cast<int64_t>(j % t.in[p].numel())));
        if (!params_known) continue;
        double mean = 0, var = 0;
        for (int64_t i : m) mean += t.in[0].value(i);
        mean /= static_cast<double>(norm);
        for (int64_t i : m) var += (t.in[0].value(i) - mean) * (t.in[0].value(i) - mean);
        var /= static_cast<double>(norm);
        const double inv = 1.0 / std::sqrt(var + t.n.attr_float("epsilon", 1e-5f));
        for (size_t j = 0; j < norm; ++j) {
          const int64_t i = m[j];
          const double gamma = t.in.size() > 1 && t.in[1].present ? t.in[1].value(static_cast<int64_t>(j % t.in[1].numel())) : 1.0;
          const double beta = t.in.size() > 2 && t.in[2].present ? t.in[2].value(static_cast<int64_t>(j % t.in[2].numel())) : 0.0;
          out.set_constant(i, static_cast<float>((t.in[0].value(i) - mean) * inv * gamma + beta));
        }
      }
    }
  };
  r.backward = [kind](TesaBackward& b) {
    if (all_live(b.out_live[0])) {  // every row needed whole
      b.in_live[0].fill();
      return all_needed_if_any(b, 1);
    }
    const Groups g = groups_of(b.n, b.in, kind, b.opset);
    const bool per_group = kind == RowKind::reduce_mean || kind == RowKind::reduce_sum || kind == RowKind::reduce_max;
    std::vector<uint8_t> needed(static_cast<size_t>(g.count), 0);
    for (size_t i = 0; i < g.of.size(); ++i)
      if (live_at(b.out_live[0], per_group ? g.of[i] : static_cast<int64_t>(i))) needed[static_cast<size_t>(g.of[i])] = 1;
    for (size_t i = 0; i < g.of.size(); ++i)
      if (needed[static_cast<size_t>(g.of[i])]) b.in_live[0].set(static_cast<int64_t>(i));
    all_needed_if_any(b, 1);  // scale, bias, axes
  };
  return r;
}

}  // namespace tesa_rules
}  // namespace sparta
