// ConvTranspose over N x C x spatial tensors: groups, strides, pads,
// auto_pad, output_padding, output_shape and dilations. 2-D with a constant
// weight runs as oneDNN's deconvolution (weights packed once); anything
// else runs the reference scatter loop, which also defines the semantics.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/onednn_kernels.h"
#include "ops/op_def.h"

namespace sparta {
namespace {

using Fail = std::function<void(const std::string&)>;

// Per spatial axis: stride, dilation, begin pad and the output extent
// (output_padding, or an output_shape past the full extent, adds end
// positions only the bias reaches).
struct TransposedGeometry {
  std::vector<int64_t> in, k, stride, dil, pad_begin, out;
};

TransposedGeometry transposed_geometry(const Node& n, const std::vector<int64_t>& in, const std::vector<int64_t>& k,
                                       const Fail& fail) {
  const size_t s = in.size();
  TransposedGeometry g{in, k, n.attr_ints("strides", std::vector<int64_t>(s, 1)),
                       n.attr_ints("dilations", std::vector<int64_t>(s, 1)), {}, {}};
  std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * s, 0));
  const std::vector<int64_t> adj = n.attr_ints("output_padding", std::vector<int64_t>(s, 0));
  std::vector<int64_t> shape = n.attr_ints("output_shape");
  if (shape.size() == s + 2) shape.erase(shape.begin(), shape.begin() + 2);
  if (k.size() != s || g.stride.size() != s || g.dil.size() != s || pads.size() != 2 * s || adj.size() != s ||
      (!shape.empty() && shape.size() != s))
    fail("kernel_shape, strides, dilations, pads, output_padding and output_shape must match the " +
         std::to_string(s) + " spatial axes");
  const Attribute* ap = n.attr("auto_pad");
  const std::string auto_pad = ap ? ap->s : "NOTSET";
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    fail("unknown auto_pad '" + auto_pad + "'");
  for (size_t i = 0; i < s; ++i) {
    const int64_t lim = int64_t{1} << 24;
    if (g.stride[i] < 1 || g.dil[i] < 1 || k[i] < 1 || g.stride[i] > lim || g.dil[i] > lim || k[i] > lim ||
        std::abs(pads[i]) > lim || std::abs(pads[i + s]) > lim || (!shape.empty() && (shape[i] < 0 || shape[i] > lim * lim)))
      fail("strides, dilations and kernel extents must lie in [1, 2^24], pads within 2^24");
    if (adj[i] < 0 || (adj[i] >= g.stride[i] && adj[i] >= g.dil[i]))
      fail("output_padding must be smaller than the stride or the dilation");
    const int64_t full = in[i] < 0 ? -1
                                   : extent_add(extent_mul(g.stride[i], std::max<int64_t>(in[i] - 1, 0), fail),
                                                adj[i] + (k[i] - 1) * g.dil[i] + 1, fail) -
                                         (in[i] == 0 ? g.stride[i] : 0);
    int64_t out, begin;
    if (!shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out = !shape.empty() ? shape[i] : in[i] < 0 ? -1 : in[i] * g.stride[i];
      const int64_t total = full < 0 || out < 0 ? 0 : std::max<int64_t>(0, full - out);
      begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else if (auto_pad == "VALID") {
      out = full, begin = 0;
    } else {
      begin = pads[i];
      out = full < 0 ? -1 : full - pads[i] - pads[i + s];
    }
    if (out == 0 || out < -1) fail("the output would have no positions along spatial axis " + std::to_string(i));
    g.pad_begin.push_back(begin);
    g.out.push_back(out);
  }
  return g;
}

struct DeconvPlan : NodePlan {
  std::shared_ptr<OnednnDeconvKernel> kern;
  bool usable = true;  // false: oneDNN declined the shape; the reference loop runs
  std::string kernel() const override { return usable ? "onednn:" + kern->impl_info() : "conv_transpose_ref"; }
};

void conv_transpose(OpCall& c) {
  const Tensor &x = c.input(0), &wt = c.input(1);
  if (x.dtype() != DType::f32 || wt.dtype() != DType::f32) c.fail("supports f32");
  if (x.rank() < 3 || wt.rank() != x.rank()) c.fail("expects N x C x spatial input and a weight of the same rank");
  const int64_t group = c.node.attr_int("group", 1);
  const int64_t n = x.dim(0), ci = x.dim(1), cog = wt.dim(1), co = cog * group;
  if (group < 1 || wt.dim(0) != ci || ci % group) c.fail("weight must be [C_in, C_out / group, k...] with C_in a multiple of group");
  const std::vector<int64_t> xd = x.shape().dims();
  std::vector<int64_t> k(wt.shape().dims().begin() + 2, wt.shape().dims().end());
  const std::vector<int64_t> ks = c.node.attr_ints("kernel_shape", k);
  if (ks != k) c.fail("kernel_shape does not match the weight");
  const TransposedGeometry g =
      transposed_geometry(c.node, std::vector<int64_t>(xd.begin() + 2, xd.end()), k, [&c](const std::string& m) { c.fail(m); });
  std::vector<int64_t> od = {n, co};
  od.insert(od.end(), g.out.begin(), g.out.end());
  const Tensor* bias = c.has_input(2) ? &c.input(2) : nullptr;
  if (bias && (bias->dtype() != DType::f32 || bias->numel() != co)) c.fail("bias must hold C_out f32 values");
  Tensor y(DType::f32, Shape(od), Uninitialized{});
  if (y.numel() == 0) return c.out.push_back(std::move(y));
  if (c.plan && x.rank() == 4 && c.constant_input(1) && (!bias || c.constant_input(2)) && x.numel() > 0) {
    DeconvPlan& p = c.plan_as<DeconvPlan>([&] {
      ConvGeometry cg;
      cg.groups = group;
      for (size_t i = 0; i < 2; ++i) {  // the end pad oneDNN needs for our extent (negative past the full one)
        cg.stride[i] = g.stride[i], cg.dilation[i] = g.dil[i], cg.pad_begin[i] = g.pad_begin[i];
        cg.pad_end[i] = (x.dim(int(i) + 2) - 1) * g.stride[i] + (k[i] - 1) * g.dil[i] + 1 - g.out[i] - g.pad_begin[i];
      }
      auto dp = std::make_shared<DeconvPlan>();
      dp->kern = std::make_shared<OnednnDeconvKernel>(std::vector<float>(wt.data<float>(), wt.data<float>() + wt.numel()),
                                                      wt.shape().dims(),
                                                      bias ? std::vector<float>(bias->data<float>(), bias->data<float>() + co)
                                                           : std::vector<float>{},
                                                      cg);
      return dp;
    });
    if (p.usable) {
      try {
        p.kern->run(x.data<float>(), xd, y.data<float>(), od, c.threads);
        c.impl = p.kernel();
        return c.out.push_back(std::move(y));
      } catch (const Error&) {
        p.usable = false;
      }
    }
  }
  // Reference: every input position scatters through every tap.
  const size_t s = g.in.size();
  int64_t in_sp = 1, out_sp = 1, taps = 1;
  for (size_t i = 0; i < s; ++i) in_sp *= g.in[i], out_sp *= g.out[i], taps *= k[i];
  const int64_t cig = ci / group;
  const float *px = x.data<float>(), *pw = wt.data<float>();
  float* py = y.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oc = 0; oc < co; ++oc) std::fill_n(py + (b * co + oc) * out_sp, out_sp, bias ? bias->data<float>()[oc] : 0.f);
  parallel_for(c.threads, n * group, 1, [&](int64_t q0, int64_t q1) {
    std::vector<int64_t> ip(s), kt(s);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t b = q / group, gi = q % group;
      for (int64_t ic = gi * cig; ic < (gi + 1) * cig; ++ic)
        for (int64_t e = 0; e < in_sp; ++e) {
          const float v = px[(b * ci + ic) * in_sp + e];
          for (int64_t r = e, i = int64_t(s); i-- > 0;) ip[size_t(i)] = r % g.in[size_t(i)], r /= g.in[size_t(i)];
          for (int64_t t = 0; t < taps; ++t) {
            int64_t r = t, off = 0;
            bool inside = true;
            for (int64_t i = int64_t(s); i-- > 0;) kt[size_t(i)] = r % k[size_t(i)], r /= k[size_t(i)];
            for (size_t i = 0; i < s; ++i) {
              const int64_t o = ip[i] * g.stride[i] - g.pad_begin[i] + kt[i] * g.dil[i];
              if (o < 0 || o >= g.out[i]) inside = false;
              off = off * g.out[i] + o;
            }
            if (!inside) continue;
            const float* w = pw + (ic * cog) * taps + t;
            float* out = py + (b * co + gi * cog) * out_sp + off;
            for (int64_t oc = 0; oc < cog; ++oc) out[oc * out_sp] += v * w[oc * taps];
          }
        }
    }
  });
  c.out.push_back(std::move(y));
}

void conv_transpose_shape(const ShapeCtx& c) {
  const ShapeCtx::Dims *x = c.dims(0), *w = c.dims(1);
  if (!x || !w) return c.set(0, std::nullopt, c.dtype(0));
  c.require(x->size() >= 3 && w->size() == x->size(), "expects N x C x spatial input and a weight of the same rank");
  const int64_t group = c.n.attr_int("group", 1);
  c.require(group >= 1, "group must be >= 1");
  c.require((*x)[1] < 0 || (*w)[0] < 0 || (*x)[1] == (*w)[0], "input channels differ from the weight's first axis");
  const std::vector<int64_t> k = c.n.attr_ints("kernel_shape", ShapeCtx::Dims(w->begin() + 2, w->end()));
  if (std::any_of(k.begin(), k.end(), [](int64_t v) { return v < 0; })) return c.set(0, std::nullopt, c.dtype(0));
  const TransposedGeometry g = transposed_geometry(c.n, ShapeCtx::Dims(x->begin() + 2, x->end()), k,
                                                   [&c](const std::string& m) { c.require(false, m); });
  ShapeCtx::Dims out = {(*x)[0], (*w)[1] < 0 ? -1 : (*w)[1] * group};
  out.insert(out.end(), g.out.begin(), g.out.end());
  c.set(0, out, c.dtype(0));
}

}  // namespace

void define_conv_transpose_ops() {
  define_op({"ConvTranspose"}, {.shape = conv_transpose_shape, .run = conv_transpose, .dims_kept = DimsKept::batch});
}

}  // namespace sparta
