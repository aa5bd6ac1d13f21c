// Convolution, pooling and batch normalization over N x C x spatial tensors
// (any number of spatial dimensions). Direct loops: the reference semantics,
// including groups, strides, dilations, explicit and automatic padding, and
// ceil mode; dense convolution is routed to oneDNN by later graph passes.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>
#include <type_traits>

#include "kernels/depthwise_conv.h"
#include "kernels/onednn_kernels.h"
#include "ops/op_def.h"

namespace sparta {
namespace {

using Window = WindowGeometry;

Window window(const OpCall& c, const std::vector<int64_t>& xd, const std::vector<int64_t>& k) {
  if (xd.size() < 3) c.fail("input must be N x C x spatial, got " + Shape(xd).str());
  return window_geometry(c.node, std::vector<int64_t>(xd.begin() + 2, xd.end()), k,
                         [&c](const std::string& m) { c.fail(m); });
}

int64_t prod(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

// Walks the output positions and, for each, the kernel taps; f(tap_in_offset
// or -1 when in padding, tap index).
template <typename F>
void for_each_tap(const Window& w, int64_t out_flat, F f) {
  const int64_t sp = w.spatial();
  std::vector<int64_t> o(static_cast<size_t>(sp));
  for (int64_t i = sp; i-- > 0;) {
    o[static_cast<size_t>(i)] = out_flat % w.out[static_cast<size_t>(i)];
    out_flat /= w.out[static_cast<size_t>(i)];
  }
  const int64_t taps = prod(w.k);
  for (int64_t t = 0; t < taps; ++t) {
    int64_t rem = t, off = 0, mult = 1;
    bool inside = true;
    std::vector<int64_t> kk(static_cast<size_t>(sp));
    for (int64_t i = sp; i-- > 0;) {
      kk[static_cast<size_t>(i)] = rem % w.k[static_cast<size_t>(i)];
      rem /= w.k[static_cast<size_t>(i)];
    }
    for (int64_t i = sp; i-- > 0;) {
      const size_t u = static_cast<size_t>(i);
      const int64_t pos = o[u] * w.stride[u] - w.pad_begin[u] + kk[u] * w.dil[u];
      if (pos < 0 || pos >= w.in[u]) inside = false;
      off += pos * mult;
      mult *= w.in[u];
    }
    f(inside ? off : -1, t);
  }
}

// The activation fused into this Conv node by passes/fuse, if any: its
// kind in "sparta.act", its parameters in "sparta.clip" (clip bounds) or
// "sparta.act_params"; then a scalar map alpha * y + beta from
// "sparta.post_linear".
ConvActivation fused_activation(const OpCall& c) {
  ConvActivation a;
  if (const Attribute* l = c.node.attr("sparta.post_linear")) {
    if (l->kind != Attribute::Kind::fs || l->fs.size() != 2) c.fail("sparta.post_linear must hold [alpha, beta]");
    a.alpha = l->fs[0];
    a.beta = l->fs[1];
  }
  const Attribute* k = c.node.attr("sparta.act");
  if (!k) return a;
  const auto params = [&c](const char* key) {
    const Attribute* b = c.node.attr(key);
    if (!b || b->fs.size() != 2) c.fail(std::string("fused activation without its parameters (") + key + ")");
    return std::pair{b->fs[0], b->fs[1]};
  };
  static const std::map<std::string, ConvActivation::Kind> kinds = {
      {"relu", ConvActivation::relu},         {"clip", ConvActivation::clip},
      {"leaky_relu", ConvActivation::leaky_relu}, {"hard_sigmoid", ConvActivation::hard_sigmoid},
      {"hard_swish", ConvActivation::hard_swish}, {"sigmoid", ConvActivation::sigmoid},
      {"tanh", ConvActivation::tanh}};
  const auto it = kinds.find(k->s);
  if (it == kinds.end()) c.fail("unknown fused activation '" + k->s + "'");
  a.kind = it->second;
  if (a.kind == ConvActivation::clip) std::tie(a.lo, a.hi) = params("sparta.clip");
  if (a.kind == ConvActivation::leaky_relu || a.kind == ConvActivation::hard_sigmoid)
    std::tie(a.lo, a.hi) = params("sparta.act_params");
  return a;
}

float activate(const ConvActivation& a, float v) {
  switch (a.kind) {
    case ConvActivation::none: return v;
    case ConvActivation::relu: return v > 0.f ? v : 0.f;
    case ConvActivation::clip: return std::min(std::max(v, a.lo), a.hi);
    case ConvActivation::leaky_relu: return v >= 0.f ? v : a.lo * v;
    case ConvActivation::hard_sigmoid: return std::min(1.f, std::max(0.f, a.lo * v + a.hi));
    case ConvActivation::hard_swish: return v * std::min(1.f, std::max(0.f, v / 6.f + 0.5f));
    case ConvActivation::sigmoid: return 1.f / (1.f + std::exp(-v));
    case ConvActivation::tanh: return std::tanh(v);
  }
  return v;
}
float apply(const ConvActivation& a, float v) { return a.alpha * activate(a, v) + a.beta; }

ConvLayout to_conv_layout(const Value* v) {
  if (!v || v->layout == Layout::plain) return ConvLayout::nchw;
  if (v->layout == Layout::nhwc) return ConvLayout::nhwc;
  return v->layout == Layout::nchw8c ? ConvLayout::nchw8c : ConvLayout::nchw16c;
}
ConvLayout layout_of(const OpCall& c, size_t i) {
  return i < c.node.inputs.size() ? to_conv_layout(c.node.inputs[i]) : ConvLayout::nchw;
}
ConvLayout out_layout(const OpCall& c) { return to_conv_layout(c.node.outputs.empty() ? nullptr : c.node.outputs[0]); }

// A 1-D window as a 2-D one over a unit height (oneDNN runs 1-D
// convolutions as 2-D ones of height 1); a 2-D window as it is.
Window as_2d(Window w) {
  if (w.spatial() != 1) return w;
  for (auto* v : {&w.in, &w.k, &w.stride, &w.dil, &w.out}) v->insert(v->begin(), 1);
  w.pad_begin.insert(w.pad_begin.begin(), 0);
  w.pad_end.insert(w.pad_end.begin(), 0);
  return w;
}

// N x C x spatial dims with a unit height inserted before a single spatial axis.
std::vector<int64_t> dims_2d(std::vector<int64_t> d) {
  if (d.size() == 3) d.insert(d.begin() + 2, 1);
  return d;
}

// The oneDNN convolution for a node's constant weight (and bias).
std::shared_ptr<OnednnConvKernel> make_conv_kernel(const Window& w1, int64_t group, const Tensor& wt, const Tensor* b) {
  const Window w = as_2d(w1);
  ConvGeometry g;
  g.groups = group;
  for (int i = 0; i < 2; ++i) {
    const size_t u = static_cast<size_t>(i);
    g.stride[i] = w.stride[u];
    g.dilation[i] = w.dil[u];
    g.pad_begin[i] = w.pad_begin[u];
    // the end padding that makes oneDNN's output extent match ours
    g.pad_end[i] = (w.out[u] - 1) * w.stride[u] + w.dil[u] * (w.k[u] - 1) + 1 - w.in[u] - w.pad_begin[u];
  }
  std::vector<float> bias;
  if (b) bias.assign(b->data<float>(), b->data<float>() + b->numel());
  return std::make_shared<OnednnConvKernel>(std::vector<float>(wt.data<float>(), wt.data<float>() + wt.numel()),
                                            dims_2d(wt.shape().dims()), bias, g);
}

// A convolution's plan: its oneDNN primitive with the packed weights.
struct ConvPlan : NodePlan {
  std::shared_ptr<OnednnConvKernel> kern;
  std::string kernel() const override { return "onednn:" + kern->impl_info(); }
};

std::shared_ptr<NodePlan> conv_plan(std::shared_ptr<OnednnConvKernel> kern) {
  auto p = std::make_shared<ConvPlan>();
  p->kern = std::move(kern);
  return p;
}

// A 1-D convolution without groups as one product per image: its columns
// [L_out, Ci*K] (im2col) times the weight as stored ([Co, Ci*K]), prepacked
// once. oneDNN's 1-D path (im2col + sgemm) repacks the weight on every call,
// which dominates the short sequences of speech models (4-10 frames).
struct Conv1dPlan : NodePlan {
  std::unique_ptr<OnednnDenseKernel> kern;
  std::string kernel() const override { return "conv1d_im2col_" + kern->name(); }
};

bool conv1d_as_product(const Node& n, int64_t group) {
  return group == 1 && n.inputs.size() >= 2 && n.inputs[0] && n.inputs[1] && n.inputs[1]->is_constant() &&
         n.inputs[1]->constant->rank() == 3 && (n.inputs.size() < 3 || !n.inputs[2] || n.inputs[2]->is_constant());
}

// Ahead of the first run: a 2-D convolution with constant weights and a
// statically shaped input gets its oneDNN primitive and packed weights
// (what the op would build on its first call).
std::string conv_plan_key(const Node& n, const PlanOptions&) {
  const bool ok = n.inputs.size() >= 2 && n.inputs[0] && n.inputs[1] && n.inputs[1]->is_constant() &&
                  n.inputs[1]->constant->dtype() == DType::f32 &&
                  (n.inputs[1]->constant->rank() == 4 || n.inputs[1]->constant->rank() == 3) &&
                  (n.inputs.size() < 3 || !n.inputs[2] || n.inputs[2]->is_constant()) && n.inputs[0]->dims &&
                  n.inputs[0]->dims->size() == size_t(n.inputs[1]->constant->rank()) &&
                  std::all_of(n.inputs[0]->dims->begin(), n.inputs[0]->dims->end(), [](int64_t d) { return d > 0; });
  return ok ? "conv" : "";  // no measured choice: one key, so all but the first are planned in parallel
}

std::shared_ptr<NodePlan> plan_conv(const Node& n, const PlanOptions& o) {
  OpCall c{n, {}, {}, o.threads, 17, nullptr};
  const Tensor& wt = *n.inputs[1]->constant;
  const std::vector<int64_t>& xd = *n.inputs[0]->dims;
  const int64_t group = n.attr_int("group", 1);
  if (group < 1 || xd[1] != wt.dim(1) * group || wt.dim(0) % group) return nullptr;  // the op reports it at run time
  if (conv1d_as_product(n, group)) return nullptr;  // planned on its first run (Conv1dPlan)
  std::vector<int64_t> k(wt.shape().dims().begin() + 2, wt.shape().dims().end());
  const Window w = window(c, xd, n.attr_ints("kernel_shape", k));
  auto kern = make_conv_kernel(w, group, wt, n.inputs.size() >= 3 && n.inputs[2] ? &*n.inputs[2]->constant : nullptr);
  kern->prepare(dims_2d(xd), layout_of(c, 0), out_layout(c), fused_activation(c),
                n.inputs.size() >= 4 && n.inputs[3] != nullptr);
  return conv_plan(std::move(kern));
}

void conv(OpCall& c) {
  const Tensor &x = c.input(0), &wt = c.input(1);
  const ConvActivation act = fused_activation(c);
  const Tensor* r = c.has_input(3) ? &c.input(3) : nullptr;  // fused residual (passes/fuse)
  if (x.dtype() != DType::f32 || wt.dtype() != DType::f32) c.fail("supports f32");
  if (wt.rank() != x.rank()) c.fail("weight rank differs from input rank");
  const int64_t group = c.node.attr_int("group", 1);
  const int64_t n = x.dim(0), ci = x.dim(1), co = wt.dim(0), cig = wt.dim(1);
  if (group < 1 || ci != cig * group || co % group) c.fail("channels do not match the groups");
  std::vector<int64_t> k(wt.shape().dims().begin() + 2, wt.shape().dims().end());
  const Window w = window(c, x.shape().dims(), c.node.attr_ints("kernel_shape", k));
  // Depthwise on plain data: the direct loop (oneDNN's depthwise kernels
  // want blocked data and fall back to a slow GEMM on plain data).
  std::vector<int64_t> out_dims = {n, co};
  out_dims.insert(out_dims.end(), w.out.begin(), w.out.end());
  if ((x.rank() == 4 || x.rank() == 3) && group == ci && co == ci && cig == 1 &&
      layout_of(c, 0) == ConvLayout::nchw && out_layout(c) == ConvLayout::nchw &&
      (!r || (r->dtype() == DType::f32 && r->shape().dims() == out_dims))) {
    const Window w2 = as_2d(w);
    DepthwiseGeometry g;
    for (size_t i = 0; i < 2; ++i) {
      g.in[i] = w2.in[i], g.k[i] = w2.k[i], g.stride[i] = w2.stride[i], g.dil[i] = w2.dil[i];
      g.pad[i] = w2.pad_begin[i], g.out[i] = w2.out[i];
    }
    Tensor y(DType::f32, Shape(out_dims), Uninitialized{});
    depthwise_conv_nchw(x.data<float>(), wt.data<float>(), c.has_input(2) ? c.input(2).data<float>() : nullptr,
                        y.data<float>(), n, co, g, c.threads);
    float* py = y.data<float>();
    const float* pr = r ? r->data<float>() : nullptr;
    if (!act.identity()) {  // act(conv + residual)
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = apply(act, pr ? py[i] + pr[i] : py[i]);
    } else if (pr) {
      for (int64_t i = 0; i < y.numel(); ++i) py[i] += pr[i];
    }
    c.impl = "depthwise_conv_nchw";
    return c.out.push_back(std::move(y));
  }
  if (c.plan && x.rank() == 3 && conv1d_as_product(c.node, group) && layout_of(c, 0) == ConvLayout::nchw &&
      out_layout(c) == ConvLayout::nchw && (!r || (r->dtype() == DType::f32 && r->shape().dims() == out_dims))) {
    const int64_t K = ci * k[0], L = w.out[0];
    Conv1dPlan& p = c.plan_as<Conv1dPlan>([&] {
      auto made = std::make_shared<Conv1dPlan>();
      made->kern = std::make_unique<OnednnDenseKernel>(co, K, std::vector<float>(wt.data<float>(), wt.data<float>() + wt.numel()),
                                                       /*prepacked=*/true);
      return made;
    });
    Tensor y(DType::f32, Shape(out_dims), Uninitialized{});
    std::vector<float> col(size_t(L * K)), prod(size_t(L * co));
    const float* bias = c.has_input(2) ? c.input(2).data<float>() : nullptr;
    const int64_t IL = w.in[0], s0 = w.stride[0], d0 = w.dil[0], p0 = w.pad_begin[0], KW = k[0];
    for (int64_t b = 0; b < n; ++b) {
      const float* xb = x.data<float>() + b * ci * IL;
      for (int64_t l = 0; l < L; ++l)
        for (int64_t i = 0; i < ci; ++i)
          for (int64_t t = 0; t < KW; ++t) {
            const int64_t pos = l * s0 - p0 + t * d0;
            col[size_t(l * K + i * KW + t)] = pos >= 0 && pos < IL ? xb[i * IL + pos] : 0.f;
          }
      SpmmArgs a;
      a.x = col.data(), a.m = L, a.ldx = K, a.y = prod.data(), a.ldy = co, a.threads = c.threads;
      a.ep.bias = bias;
      p.kern->run(a);
      float* yb = y.data<float>() + b * co * L;
      const float* rb = r ? r->data<float>() + b * co * L : nullptr;
      for (int64_t o = 0; o < co; ++o)
        for (int64_t l = 0; l < L; ++l) {
          const float v = prod[size_t(l * co + o)] + (rb ? rb[o * L + l] : 0.f);
          yb[o * L + l] = apply(act, v);
        }
    }
    c.impl = p.kernel();
    return c.out.push_back(std::move(y));
  }
  // 1-D and 2-D with constant weights (and bias): oneDNN, weights prepacked
  // once (1-D as 2-D of unit height: the same memory).
  if (c.plan && (x.rank() == 4 || x.rank() == 3) && c.constant_input(1) && (!c.has_input(2) || c.constant_input(2)) &&
      n > 0) {
    const OnednnConvKernel& kern = *c.plan_as<ConvPlan>([&] {
      return conv_plan(make_conv_kernel(w, group, wt, c.has_input(2) ? &c.input(2) : nullptr));
    }).kern;
    const std::vector<int64_t>& od = out_dims;
    const bool direct_residual = !r || (r->shape() == Shape(od) && r->dtype() == DType::f32);
    if (kern.out_dims(dims_2d(x.shape().dims())) == dims_2d(od) && direct_residual) {
      // The residual is summed in place (same layout, see passes/layout):
      // into its own storage when nothing else reads it, else into a copy.
      Tensor y = r && c.reusable(3) ? *r : Tensor(DType::f32, Shape(od), Uninitialized{});
      if (r && y.raw() != r->raw()) std::memcpy(y.raw(), r->raw(), y.nbytes());
      kern.run(x.data<float>(), dims_2d(x.shape().dims()), layout_of(c, 0), y.data<float>(), out_layout(c), act,
               r != nullptr, c.threads);
      c.impl = "onednn:" + kern.impl_info();
      return c.out.push_back(std::move(y));
    }
  }
  SPARTA_ASSERT(layout_of(c, 0) == ConvLayout::nchw && out_layout(c) == ConvLayout::nchw, "node '", c.node.name,
                "': a blocked-layout convolution needs the oneDNN path");
  const std::vector<int64_t>& od = out_dims;
  Tensor y(DType::f32, Shape(od));
  const int64_t in_sp = prod(w.in), out_sp = prod(w.out), taps = prod(w.k), cog = co / group;
  const float* b = c.has_input(2) ? c.input(2).data<float>() : nullptr;
  const float *px = x.data<float>(), *pw = wt.data<float>();
  float* py = y.data<float>();
  for (int64_t b0 = 0; b0 < n; ++b0)
    for (int64_t oc = 0; oc < co; ++oc) {
      const int64_t g = oc / cog;
      for (int64_t os = 0; os < out_sp; ++os) {
        double acc = b ? b[oc] : 0.0;
        for_each_tap(w, os, [&](int64_t off, int64_t t) {
          if (off < 0) return;
          for (int64_t ic = 0; ic < cig; ++ic)
            acc += double(px[(b0 * ci + g * cig + ic) * in_sp + off]) * pw[(oc * cig + ic) * taps + t];
        });
        py[(b0 * co + oc) * out_sp + os] = r ? static_cast<float>(acc) : apply(act, static_cast<float>(acc));
      }
    }
  if (r) {  // Y = act(conv + residual), the residual broadcast to Y
    if (r->dtype() != DType::f32 || broadcast_dims(r->shape().dims(), od, c) != od)
      c.fail("residual " + r->shape().str() + " does not broadcast to the output " + y.shape().str());
    const float* pr = r->data<float>();
    for_each_broadcast<1>(od, {r->shape().dims()},
                          [&](int64_t e, const std::array<int64_t, 1>& o) { py[e] = apply(act, py[e] + pr[o[0]]); });
  }
  c.out.push_back(std::move(y));
}

// 2-D pooling of one plane of L interleaved channels: L = 1 is an NCHW
// plane, L = 8 or 16 an nChw8c / nChw16c block (L channels side by side,
// one vector a tap).
// count_include_pad counts explicit padding taps, not ceil-mode overhang.
// One image plane (L = 1), one channel block (L = 8, 16) or all C channels
// of an image (channels last: L = 0, `lanes` = C) through the window, `acc`
// holding `lanes` accumulators. Max pooling accumulates in float (exact),
// average pooling in double.
template <int L, bool MAX>
void pool_lanes(const float* x, float* y, const Window& w, bool count_pad, int64_t lanes,
                std::conditional_t<MAX, float, double>* acc) {
  using Acc = std::conditional_t<MAX, float, double>;
  const int64_t n = L > 0 ? L : lanes;
  const int64_t H = w.in[0], W = w.in[1], OH = w.out[0], OW = w.out[1];
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow) {
      for (int64_t j = 0; j < n; ++j) acc[j] = MAX ? -INFINITY : Acc(0);
      int64_t count = 0, pad_count = 0;
      for (int64_t kh = 0; kh < w.k[0]; ++kh) {
        const int64_t ih = oh * w.stride[0] - w.pad_begin[0] + kh * w.dil[0];
        for (int64_t kw = 0; kw < w.k[1]; ++kw) {
          const int64_t iw = ow * w.stride[1] - w.pad_begin[1] + kw * w.dil[1];
          if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
            ++pad_count;
            continue;
          }
          const float* v = x + (ih * W + iw) * n;
          for (int64_t j = 0; j < n; ++j) acc[j] = MAX ? std::max(acc[j], Acc(v[j])) : acc[j] + Acc(v[j]);
          ++count;
        }
      }
      float* o = y + (oh * OW + ow) * n;
      const Acc div = MAX ? Acc(1) : Acc(count_pad ? count + pad_count : std::max<int64_t>(count, 1));
      for (int64_t j = 0; j < n; ++j) o[j] = static_cast<float>(MAX ? acc[j] : acc[j] / div);
    }
}

template <int L>
void pool_plane(const float* x, float* y, const Window& w, bool is_max, bool count_pad) {
  float fa[L];
  double da[L];
  if (is_max) pool_lanes<L, true>(x, y, w, count_pad, L, fa);
  else pool_lanes<L, false>(x, y, w, count_pad, L, da);
}

bool blocked_input(const OpCall& c, size_t i) {
  return i < c.node.inputs.size() && c.node.inputs[i] && c.node.inputs[i]->layout != Layout::plain;
}

void pool(OpCall& c, bool is_max) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::f32) c.fail("supports f32");
  const Window w = window(c, x.shape().dims(), c.node.attr_ints("kernel_shape"));
  const bool count_pad = c.node.attr_int("count_include_pad", 0) != 0;
  std::vector<int64_t> od = {x.dim(0), x.dim(1)};
  od.insert(od.end(), w.out.begin(), w.out.end());
  if (blocked_input(c, 0) && c.node.inputs[0]->layout == Layout::nhwc) {
    SPARTA_ASSERT(w.spatial() == 2 && c.node.outputs[0]->layout == Layout::nhwc, "node '", c.node.name,
                  "': channels-last pooling needs 2-D windows and the same layout out");
    Tensor y(DType::f32, Shape(od), Uninitialized{});
    const int64_t C = x.dim(1), in_sp = prod(w.in), out_sp = prod(w.out);
    const float* px = x.data<float>();
    float* py = y.data<float>();
    parallel_for(c.threads, x.dim(0), 1, [&](int64_t n0, int64_t n1) {
      std::vector<float> fa(static_cast<size_t>(C));
      std::vector<double> da(static_cast<size_t>(C));
      for (int64_t n = n0; n < n1; ++n) {
        if (is_max) pool_lanes<0, true>(px + n * in_sp * C, py + n * out_sp * C, w, count_pad, C, fa.data());
        else pool_lanes<0, false>(px + n * in_sp * C, py + n * out_sp * C, w, count_pad, C, da.data());
      }
    });
    return c.out.push_back(std::move(y));
  }
  if (blocked_input(c, 0)) {
    const Layout l = c.node.inputs[0]->layout;
    const int64_t B = layout_block(l, x.dim(1));
    SPARTA_ASSERT(w.spatial() == 2 && x.dim(1) % B == 0 && c.node.outputs[0]->layout == l, "node '", c.node.name,
                  "': blocked pooling needs 2-D windows, C a multiple of the block and the same layout out");
    Tensor y(DType::f32, Shape(od), Uninitialized{});
    const int64_t blocks = x.dim(0) * (x.dim(1) / B), in_sp = prod(w.in), out_sp = prod(w.out);
    const float* px = x.data<float>();
    float* py = y.data<float>();
    parallel_for(c.threads, blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        if (B == 16) pool_plane<16>(px + b * in_sp * 16, py + b * out_sp * 16, w, is_max, count_pad);
        else pool_plane<8>(px + b * in_sp * 8, py + b * out_sp * 8, w, is_max, count_pad);
      }
    });
    return c.out.push_back(std::move(y));
  }
  Tensor y(DType::f32, Shape(od));
  const int64_t planes = x.dim(0) * x.dim(1), in_sp = prod(w.in), out_sp = prod(w.out);
  if (w.spatial() == 2) {  // direct 2-D loop: the common case, without the generic tap walker
    for (int64_t p = 0; p < planes; ++p)
      pool_plane<1>(x.data<float>() + p * in_sp, y.data<float>() + p * out_sp, w, is_max, count_pad);
    return c.out.push_back(std::move(y));
  }
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t os = 0; os < out_sp; ++os) {
      double acc = is_max ? -INFINITY : 0.0;
      int64_t count = 0, pad_count = 0;
      for_each_tap(w, os, [&](int64_t off, int64_t) {
        if (off < 0) {
          ++pad_count;
          return;
        }
        const float v = x.data<float>()[p * in_sp + off];
        acc = is_max ? std::max(acc, double(v)) : acc + v;
        ++count;
      });
      // count_include_pad counts explicit padding taps, not ceil-mode overhang
      float out;
      if (is_max) out = static_cast<float>(acc);
      else out = static_cast<float>(acc / double(count_pad ? count + pad_count : std::max<int64_t>(count, 1)));
      y.data<float>()[p * out_sp + os] = out;
    }
  c.out.push_back(std::move(y));
}

void global_average_pool(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::f32 || x.rank() < 3) c.fail("expects f32 N x C x spatial");
  std::vector<int64_t> od = {x.dim(0), x.dim(1)};
  od.resize(static_cast<size_t>(x.rank()), 1);
  Tensor y(DType::f32, Shape(od));
  const int64_t planes = x.dim(0) * x.dim(1), sp = planes ? x.numel() / planes : 0;
  if (blocked_input(c, 0)) {  // blocked in; the [N, C, 1, 1] result is the same in every layout
    const int64_t B = layout_block(c.node.inputs[0]->layout, x.dim(1));
    SPARTA_ASSERT(x.rank() == 4 && B > 0 && x.dim(1) % B == 0, "node '", c.node.name,
                  "': a blocked input must be N x C x H x W with C a multiple of the block");
    const float* px = x.data<float>();
    float* py = y.data<float>();
    std::vector<float> acc(static_cast<size_t>(B));
    for (int64_t b = 0; b < planes / B; ++b) {
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t i = 0; i < sp; ++i)
        for (int64_t j = 0; j < B; ++j) acc[static_cast<size_t>(j)] += px[(b * sp + i) * B + j];
      for (int64_t j = 0; j < B; ++j) py[b * B + j] = acc[static_cast<size_t>(j)] / static_cast<float>(sp);
    }
    return c.out.push_back(std::move(y));
  }
  const float* px = x.data<float>();
  float* py = y.data<float>();
  parallel_for(c.threads, planes, 16, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {  // 16 partial sums: a vectorized loop
      const float* v = px + p * sp;
      float acc[16] = {};
      int64_t i = 0;
      for (; i + 16 <= sp; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += v[i + j];
      double total = 0;
      for (; i < sp; ++i) total += v[i];
      for (int j = 0; j < 16; ++j) total += acc[j];
      py[p] = static_cast<float>(total / double(sp));
    }
  });
  c.out.push_back(std::move(y));
}

void batch_norm(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::f32 || x.rank() < 2) c.fail("expects f32 N x C x ...");
  if (c.node.attr_int("training_mode", 0)) c.fail("training mode is not supported (sparta runs inference)");
  const float eps = c.node.attr_float("epsilon", 1e-5f);
  const int64_t ch = x.dim(1);
  for (size_t i = 1; i < 5; ++i)
    if (c.input(i).numel() != ch) c.fail("scale, bias, mean and var must have C=" + std::to_string(ch) + " values");
  const float *s = c.input(1).data<float>(), *b = c.input(2).data<float>(), *m = c.input(3).data<float>(),
              *v = c.input(4).data<float>();
  Tensor y(DType::f32, x.shape());
  const int64_t inner = x.numel() / std::max<int64_t>(1, x.dim(0) * ch);
  for (int64_t n = 0; n < x.dim(0); ++n)
    for (int64_t k = 0; k < ch; ++k) {
      const float a = s[k] / std::sqrt(v[k] + eps), shift = b[k] - m[k] * a;
      const float* px = x.data<float>() + (n * ch + k) * inner;
      float* py = y.data<float>() + (n * ch + k) * inner;
      for (int64_t i = 0; i < inner; ++i) py[i] = px[i] * a + shift;
    }
  c.out.push_back(std::move(y));
}

// sparta.Reorder (from passes/layout): nChw8c, nChw16c or NHWC to plain
// NCHW (to="plain"), or plain to NHWC (to="nhwc", before a channels-last
// convolution).
void reorder(OpCall& c) {
  const Tensor& x = c.input(0);
  const Attribute* to = c.node.attr("to");
  const bool to_nhwc = to && to->s == "nhwc";
  SPARTA_ASSERT(to && (to->s == "plain" ? blocked_input(c, 0) : to_nhwc && !blocked_input(c, 0) &&
                                                                   c.node.outputs[0]->layout == Layout::nhwc),
                "node '", c.node.name, "': only blocked to plain and plain to nhwc reorders exist");
  const int64_t B = to_nhwc ? x.dim(1) : layout_block(c.node.inputs[0]->layout, x.dim(1));
  SPARTA_ASSERT(x.rank() == 4 && B > 0 && x.dim(1) % B == 0 && x.dtype() == DType::f32, "node '", c.node.name,
                "': not a blocked tensor");
  const int64_t HW = x.dim(2) * x.dim(3);
  if (HW == 1 || (B == 1 && !to_nhwc)) return c.out.push_back(x);  // the same bytes in both layouts
  Tensor y(DType::f32, x.shape(), Uninitialized{});
  const ConvLayout from = to_nhwc ? ConvLayout::nchw : layout_of(c, 0);
  onednn_reorder(x.data<float>(), from, y.data<float>(), to_nhwc ? ConvLayout::nhwc : ConvLayout::nchw,
                 x.shape().dims(), c.threads);
  c.out.push_back(std::move(y));
}

// Output N x C_out x spatial of a convolution (C_out from the weight) or a
// pooling (C kept).
void window_shape(const ShapeCtx& c, bool conv) {
  using Dims = ShapeCtx::Dims;
  const Dims* x = c.dims(0);
  if (!x) return c.set(0, std::nullopt, c.dtype(0));
  c.require(x->size() >= 3, "input must be N x C x spatial");
  Dims k = c.n.attr_ints("kernel_shape");
  int64_t out_c = (*x)[1];
  if (conv) {
    const Dims* w = c.dims(1);
    if (!w) return c.set(0, std::nullopt, c.dtype(0));
    c.require(w->size() == x->size(), "weight rank differs from input rank");
    if (k.empty()) k.assign(w->begin() + 2, w->end());
    out_c = (*w)[0];
    const int64_t group = c.n.attr_int("group", 1);
    c.require(group >= 1, "group must be >= 1");
    c.require((*x)[1] < 0 || (*w)[1] < 0 || (*x)[1] == (*w)[1] * group,
              "input channels " + std::to_string((*x)[1]) + " != weight channels " + std::to_string((*w)[1]) +
                  " x group " + std::to_string(group));
  }
  const WindowGeometry g = window_geometry(c.n, Dims(x->begin() + 2, x->end()), k,
                                           [&c](const std::string& m) { c.require(false, m); });
  Dims out = {(*x)[0], out_c};
  out.insert(out.end(), g.out.begin(), g.out.end());
  c.set(0, out, c.dtype(0));
}

// A 2-D convolution the oneDNN path runs (constant weight and bias), with
// groups oneDNN handles on blocked data: none, or depthwise.
bool blockable_conv(const Node& n) {
  if (n.inputs.size() < 2 || !n.inputs[0] || !n.inputs[1] || n.outputs.empty() || !n.outputs[0]) return false;
  const Value* w = n.inputs[1];
  if (!w->is_constant() || w->constant->rank() != 4) return false;
  if (n.inputs.size() >= 3 && n.inputs[2] && !n.inputs[2]->is_constant()) return false;
  if (!n.inputs[0]->static_rank(4) || !n.outputs[0]->static_rank(4)) return false;
  const int64_t groups = n.attr_int("group", 1), ci = (*n.inputs[0]->dims)[1], co = (*n.outputs[0]->dims)[1];
  return groups == 1 || (groups == ci && groups == co);
}

bool static_rank4_input(const Node& n) { return !n.inputs.empty() && n.inputs[0] && n.inputs[0]->static_rank(4); }

}  // namespace

void define_conv_ops() {
  using tesa_rules::ChannelKind;
  define_op({"Conv"}, {.shape = [](const ShapeCtx& c) { window_shape(c, true); },
                       .tesa = tesa_rules::channels(ChannelKind::conv),
                       .run = conv,
                       .dims_kept = DimsKept::batch,
                       .layout = LayoutRole::producer,
                       .can_block = blockable_conv,
                       .plan_key = conv_plan_key,
                       .plan = plan_conv});
  for (bool is_max : {true, false})
    define_op({is_max ? "MaxPool" : "AveragePool"}, {.shape = [](const ShapeCtx& c) { window_shape(c, false); },
                                                    .tesa = tesa_rules::channels(ChannelKind::pool),
                                                    .run = [is_max](OpCall& c) { pool(c, is_max); },
                                                    .dims_kept = DimsKept::batch,
                                                    .layout = LayoutRole::passthrough,
                                                    .can_block = static_rank4_input});
  define_op({"GlobalAveragePool"}, {.shape =
                                        [](const ShapeCtx& c) {
                                          const ShapeCtx::Dims* x = c.dims(0);
                                          if (!x) return c.set(0, std::nullopt, c.dtype(0));
                                          ShapeCtx::Dims out(x->begin(), x->begin() + std::min<size_t>(2, x->size()));
                                          out.resize(x->size(), 1);
                                          c.set(0, out, c.dtype(0));
                                        },
                                    .tesa = tesa_rules::channels(ChannelKind::pool),
                                    .run = global_average_pool,
                                    .dims_kept = DimsKept::batch,
                                    .layout = LayoutRole::reader,
                                    .can_block = static_rank4_input});
  define_op({"BatchNormalization"}, {.shape = same_shape_as_input,
                                     .tesa = tesa_rules::channels(ChannelKind::batch_norm),
                                     .run = batch_norm, .dims_kept = DimsKept::all});
  define_op({"sparta.Reorder"}, {.shape = same_shape_as_input, .run = reorder, .dims_kept = DimsKept::all,
                                 .layout = LayoutRole::reorder});
}

}  // namespace sparta
