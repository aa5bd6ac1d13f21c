// Neural-network operators: MatMul, Gemm, Softmax, reductions and
// normalizations. Plain loops for now (correctness first; the graph passes
// route the heavy products to oneDNN and to sparta's sparse kernels).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/tesa.h"
#include "kernels/isa_kernels.h"
#include "kernels/onednn_kernels.h"
#include "ops/op_def.h"
#include "ops/weight_plan.h"

namespace sparta {
namespace {

// C[m,n] = sum_k A[m,k] B[k,n] with row strides; C is zeroed first.
void gemm_rowmajor(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
                   int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    std::fill(ci, ci + n, 0.f);
    for (int64_t p = 0; p < k; ++p) {
      const float av = a[i * lda + p];
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] += av * bp[j];
    }
  }
}

// The plan of a product of two run-time operands: oneDNN batched matmul
// primitives, made per shape on first use.
struct BatchedPlan : NodePlan {
  OnednnBatchedMatmul bm;
  std::string kernel() const override { return "onednn:" + bm.impl_info(); }
};

const OnednnBatchedMatmul& batched(OpCall& c) {
  return c.plan_as<BatchedPlan>([] { return std::make_shared<BatchedPlan>(); }).bm;
}

// A x B with numpy matmul broadcasting, both operands known only at run
// time. Equal batch dims on both sides (attention's [B, H, T, d] x
// [B, H, d, T]) go to one batched oneDNN matmul (its plans kept in the
// node's state); anything else to plain loops.
Tensor matmul_runtime(const Tensor& A, const Tensor& B, OpCall& c) {
  if (A.dtype() != DType::f32 || B.dtype() != DType::f32) c.fail("supports f32 inputs");
  if (A.rank() == 0 || B.rank() == 0) c.fail("inputs must have rank >= 1");
  std::vector<int64_t> ad = A.shape().dims(), bd = B.shape().dims();
  const bool va = ad.size() == 1, vb = bd.size() == 1;
  if (va) ad.insert(ad.begin(), 1);
  if (vb) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  if (bd[bd.size() - 2] != k) c.fail("inner dimensions differ: " + std::to_string(k) + " vs " + std::to_string(bd[bd.size() - 2]));
  const std::vector<int64_t> abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  const std::vector<int64_t> batch = broadcast_dims(abatch, bbatch, c);
  int64_t nb = 1;
  for (int64_t d : batch) nb *= d;
  if (c.plan && abatch == bbatch && !va && !vb && m > 0 && n > 0 && k > 0 && nb > 0) {
    std::vector<int64_t> od = batch;
    od.push_back(m);
    od.push_back(n);
    Tensor y(DType::f32, Shape(od), Uninitialized{});
    batched(c).run(A.data<float>(), MatView::contiguous({nb, m, k}), B.data<float>(), MatView::contiguous({nb, k, n}),
              y.data<float>(), MatView::contiguous({nb, m, n}), 1.f, c.threads);
    return y;
  }
  std::vector<int64_t> od = batch;
  if (!va) od.push_back(m);
  if (!vb) od.push_back(n);
  Tensor y(DType::f32, Shape(od));
  // Batch index -> offset of that operand's matrix. Its batch dims are
  // right-aligned against `batch`; an extent of 1 (or a missing leading
  // dim) repeats the same matrix.
  auto offset = [&](const std::vector<int64_t>& dims, int64_t bi, int64_t mat) {
    int64_t off = 0, stride = mat;
    const int64_t lead = static_cast<int64_t>(batch.size() - dims.size());
    for (size_t d = batch.size(); d-- > 0;) {
      const int64_t idx = bi % batch[d];
      bi /= batch[d];
      const int64_t j = static_cast<int64_t>(d) - lead;
      if (j < 0) continue;
      if (dims[static_cast<size_t>(j)] != 1) off += idx * stride;
      stride *= dims[static_cast<size_t>(j)];
    }
    return off;
  };
  for (int64_t bi = 0; bi < nb; ++bi)
    gemm_rowmajor(A.data<float>() + offset(abatch, bi, m * k), k, B.data<float>() + offset(bbatch, bi, k * n), n,
                  y.data<float>() + bi * m * n, n, m, n, k);
  return y;
}

void matmul(OpCall& c) {
  const Tensor &A = c.input(0), &B = c.input(1);
  if (c.plan && c.constant_input(1) && B.rank() == 2 && A.rank() >= 2 && A.dtype() == DType::f32 &&
      B.dtype() == DType::f32 && A.dim(A.rank() - 1) == B.dim(0) && B.dim(0) > 0) {
    std::vector<int64_t> od = A.shape().dims();
    od.back() = B.dim(1);
    Tensor y(DType::f32, Shape(od), Uninitialized{});
    const int64_t m = A.numel() / std::max<int64_t>(1, B.dim(0));
    if (m > 0) dense_kernel(c, B, false, m).run({A.data<float>(), m, B.dim(0), y.data<float>(), B.dim(1), Epilogue{}, c.threads});
    return c.out.push_back(std::move(y));
  }
  c.out.push_back(matmul_runtime(A, B, c));
}

// sparta.Linear (from passes/fuse): Y = act(X W + bias + residual), W a
// constant [K, N] (or [N, K] with trans_w), through oneDNN with the bias,
// the residual (a sum post-op) and the activation fused.
void linear(OpCall& c) {
  const Tensor &X = c.input(0), &W = c.input(1);
  const bool tw = c.node.attr_int("trans_w", 0) != 0;
  if (X.dtype() != DType::f32 || W.dtype() != DType::f32 || W.rank() != 2 || X.rank() < 1)
    c.fail("expects f32 X of rank >= 1 and a 2-D f32 weight");
  const int64_t k = tw ? W.dim(1) : W.dim(0), n = tw ? W.dim(0) : W.dim(1);
  if (X.dim(X.rank() - 1) != k)
    c.fail("X " + X.shape().str() + " does not match the weight " + W.shape().str() + (tw ? " (transposed)" : ""));
  const float* bias = nullptr;
  if (c.has_input(2)) {
    if (c.input(2).dtype() != DType::f32 || c.input(2).numel() != n) c.fail("bias must hold N f32 values");
    bias = c.input(2).data<float>();
  }
  const Activation act = parse_activation(c.node.attrs.count("act") ? c.node.attrs.at("act").s : "none");
  std::vector<int64_t> od = X.shape().dims();
  od.back() = n;
  const Tensor* r = c.has_input(3) ? &c.input(3) : nullptr;
  if (r && r->dtype() != DType::f32) c.fail("residual must be f32");
  const bool r_direct = r && r->shape() == Shape(od);
  if (r && !r_direct && broadcast_dims(r->shape().dims(), od, c) != od)
    c.fail("residual " + r->shape().str() + " would change the output shape " + Shape(od).str());
  // The kernel's epilogue adds bias, a same-shape residual and the
  // activation; a broadcast residual, or an empty product (K = 0), is
  // finished here instead.
  const bool finish_here = (r && !r_direct) || k == 0;
  // A packed handoff to (or from) the next product (kernels/spmm.h): X
  // arrives packed, or Y leaves packed in a buffer padded to whole tiles.
  const int64_t m = n ? Shape(od).numel() / n : 0;
  const WeightPlan* wp = k > 0 && m > 0 ? &weight_plan_of(c, W, tw, m) : nullptr;
  const int pin = wp ? wp->packed_in : 0, pout = wp && !r ? wp->packed_out : 0;
  // A residual nothing else reads is summed in its own storage.
  Tensor y = pout ? Tensor(DType::f32, Shape(od), aligned_alloc_shared(static_cast<size_t>(packed_floats(m, n, pout)) * 4, false))
             : r_direct && c.reusable(3) && k > 0 ? *r
                                                  : Tensor(DType::f32, Shape(od), Uninitialized{});
  float* py = y.data<float>();
  if (k == 0) {
    for (int64_t i = 0; i < y.numel(); ++i) py[i] = bias ? bias[i % n] : 0.f;
  } else if (m > 0) {
    if (r_direct && y.raw() != r->raw()) std::memcpy(py, r->data<float>(), y.nbytes());
    const SpmmKernel& kern = *wp->k;
    // X named by this run and its value: Q, K and V pack their input once.
    const uint64_t token = c.run && c.node.inputs[0]
                               ? ((c.run * 0x9E3779B97F4A7C15ull) ^ reinterpret_cast<uintptr_t>(c.node.inputs[0])) | 1
                               : 0;
    kern.run({X.data<float>(), m, k, py, n, Epilogue{bias, finish_here ? Activation::none : act, r_direct}, c.threads,
              pin, pout, token});
  }
  if (finish_here) {
    if (r) {
      const float* pr = r->data<float>();
      for_each_broadcast<1>(od, {r->shape().dims()}, [&](int64_t e, const std::array<int64_t, 1>& o) { py[e] += pr[o[0]]; });
    }
    if (act == Activation::relu)
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = std::max(py[i], 0.f);
    else if (act == Activation::gelu)
      row_ops().gelu(py, py, y.numel());
  }
  c.out.push_back(std::move(y));
}

// The permutation attribute `key` for rank r, checked and normalized
// (empty when absent).
std::vector<int64_t> perm_attr(const char* key, size_t r, const OpCall& c) {
  if (!c.node.attr(key)) return {};
  std::vector<int64_t> perm = c.node.attr_ints(key);
  if (perm.size() != r) c.fail(std::string(key) + " does not have " + std::to_string(r) + " entries");
  std::vector<bool> seen(r, false);
  for (int64_t& a : perm) {
    a = normalize_axis(a, static_cast<int64_t>(r), c);
    if (seen[static_cast<size_t>(a)]) c.fail(std::string(key) + " is not a permutation");
    seen[static_cast<size_t>(a)] = true;
  }
  return perm;
}

// The strided view of t through an optional permutation attribute.
MatView permuted_view(const Tensor& t, const char* key, const OpCall& c) {
  const MatView v = MatView::contiguous(t.shape().dims());
  const std::vector<int64_t> perm = perm_attr(key, v.dims.size(), c);
  if (perm.empty()) return v;
  MatView p = v;
  for (size_t i = 0; i < perm.size(); ++i) {
    p.dims[i] = v.dims[static_cast<size_t>(perm[i])];
    p.strides[i] = v.strides[static_cast<size_t>(perm[i])];
  }
  return p;
}

Tensor materialize(const Tensor& t, const MatView& v) {
  Tensor y(t.dtype(), Shape(v.dims), Uninitialized{});
  copy_view(t.raw(), dtype_size(t.dtype()), 0, v.dims, v.strides, y.raw());
  return y;
}

// sparta.BatchMatMul (from passes/fuse): Y = transpose(scale * A' x B',
// perm_y) where A' and B' are transposed views of the inputs. With equal
// batch dims the transposes are strides of one oneDNN matmul.
void batch_matmul(OpCall& c) {
  const Tensor &A = c.input(0), &B = c.input(1);
  if (A.dtype() != DType::f32 || B.dtype() != DType::f32) c.fail("supports f32 inputs");
  const MatView av = permuted_view(A, "perm_a", c), bv = permuted_view(B, "perm_b", c);
  const float scale = c.node.attr_float("scale", 1.f);
  const size_t r = av.dims.size();
  bool direct = r >= 2 && bv.dims.size() == r && av.dims[r - 1] == bv.dims[r - 2] &&
                std::equal(av.dims.begin(), av.dims.end() - 2, bv.dims.begin());
  std::vector<int64_t> cd;
  if (direct) {
    cd.assign(av.dims.begin(), av.dims.end() - 1);
    cd.push_back(bv.dims[r - 1]);
    for (int64_t d : cd) direct &= d > 0;
    direct &= av.dims[r - 1] > 0;
  }
  if (!direct) {  // broadcasting, vectors or empty: materialize and use the general product
    Tensor y = matmul_runtime(materialize(A, av), materialize(B, bv), c);
    if (scale != 1.f)
      for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] *= scale;
    if (c.node.attr("perm_y")) y = materialize(y, permuted_view(y, "perm_y", c));
    return c.out.push_back(std::move(y));
  }
  // The stored output Z is the product C transposed: C's axis perm_y[j] is
  // Z's axis j, so C is a strided view of Z.
  MatView cv = MatView::contiguous(cd);
  std::vector<int64_t> zd = cd;
  const std::vector<int64_t> py = perm_attr("perm_y", r, c);
  if (!py.empty()) {
    for (size_t j = 0; j < r; ++j) zd[j] = cd[static_cast<size_t>(py[j])];
    const std::vector<int64_t> zs = contiguous_strides(zd);
    for (size_t j = 0; j < r; ++j) cv.strides[static_cast<size_t>(py[j])] = zs[j];
  }
  Tensor z(DType::f32, Shape(zd), Uninitialized{});
  const OnednnBatchedMatmul& bm = batched(c);
  bm.run(A.data<float>(), av, B.data<float>(), bv, z.data<float>(), cv, scale, c.threads);
  c.impl = "onednn:" + bm.impl_info();
  c.out.push_back(std::move(z));
}

void gemm(OpCall& c) {
  const Tensor &A = c.input(0), &B = c.input(1);
  if (A.rank() != 2 || B.rank() != 2) c.fail("A and B must be 2-D");
  if (A.dtype() != DType::f32 || B.dtype() != DType::f32) c.fail("supports f32 inputs");
  const bool ta = c.node.attr_int("transA", 0) != 0, tb = c.node.attr_int("transB", 0) != 0;
  const float alpha = c.node.attr_float("alpha", 1.f), beta = c.node.attr_float("beta", 1.f);
  const int64_t m = ta ? A.dim(1) : A.dim(0), k = ta ? A.dim(0) : A.dim(1);
  const int64_t n = tb ? B.dim(0) : B.dim(1), kb = tb ? B.dim(1) : B.dim(0);
  if (k != kb) c.fail("inner dimensions differ: " + std::to_string(k) + " vs " + std::to_string(kb));
  // The Linear layer form (constant B, alpha 1, no transposed A, a [N] or
  // [1, N] bias with beta 1) goes to oneDNN with the bias fused.
  const bool bias_ok = !c.has_input(2) || beta == 0.f ||
                       (beta == 1.f && c.input(2).dtype() == DType::f32 && c.input(2).numel() == n &&
                        (c.input(2).rank() == 1 || (c.input(2).rank() == 2 && c.input(2).dim(0) == 1)));
  if (c.plan && c.constant_input(1) && !ta && alpha == 1.f && bias_ok && k > 0) {
    Tensor y(DType::f32, Shape{m, n}, Uninitialized{});
    const float* bias = c.has_input(2) && beta != 0.f ? c.input(2).data<float>() : nullptr;
    if (m > 0) dense_kernel(c, B, tb, m).run({A.data<float>(), m, k, y.data<float>(), n, Epilogue{bias, Activation::none, false}, c.threads});
    return c.out.push_back(std::move(y));
  }
  Tensor y(DType::f32, Shape{m, n});
  const float *a = A.data<float>(), *b = B.data<float>();
  float* py = y.data<float>();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += double(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      py[i * n + j] = static_cast<float>(alpha * acc);
    }
  if (c.has_input(2) && beta != 0.f) {
    const Tensor& C = c.input(2);
    const auto cd = broadcast_dims(C.shape().dims(), {m, n}, c);
    if (cd != std::vector<int64_t>{m, n}) c.fail("C does not broadcast to [M, N]");
    const int64_t cr = C.rank() == 2 ? C.dim(0) : 1, cc = C.rank() >= 1 ? C.dim(C.rank() - 1) : 1;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        py[i * n + j] += beta * C.data<float>()[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
  }
  c.out.push_back(std::move(y));
}

// Splits x's dims around [axis_begin, axis_end) into outer x mid x inner.
void split3(const Tensor& x, int64_t a0, int64_t a1, int64_t& outer, int64_t& mid, int64_t& inner) {
  outer = mid = inner = 1;
  for (int i = 0; i < x.rank(); ++i) (i < a0 ? outer : i < a1 ? mid : inner) *= x.dim(i);
}

void softmax(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::f32) c.fail("supports f32");
  const int64_t r = x.rank();
  const int64_t axis = normalize_axis(c.node.attr_int("axis", c.opset >= 13 ? -1 : 1), r, c);
  int64_t outer, mid, inner;
  // Before opset 13 the input is coerced to 2-D at the axis.
  if (c.opset >= 13) split3(x, axis, axis + 1, outer, mid, inner);
  else split3(x, axis, r, outer, mid, inner), mid *= inner, inner = 1;
  Tensor y(DType::f32, x.shape(), Uninitialized{});
  const float* px = x.data<float>();
  float* py = y.data<float>();
  if (inner == 1) {  // rows along the last axis: the vectorized kernel
    parallel_for(c.threads, outer, 8192 / std::max<int64_t>(1, mid) + 1,
                 [&](int64_t b, int64_t e) { row_ops().softmax(px + b * mid, nullptr, py + b * mid, e - b, mid); });
    return c.out.push_back(std::move(y));
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * mid * inner + i;
      float mx = -INFINITY;
      for (int64_t j = 0; j < mid; ++j) mx = std::max(mx, px[base + j * inner]);
      double sum = 0;
      for (int64_t j = 0; j < mid; ++j) sum += py[base + j * inner] = std::exp(px[base + j * inner] - mx);
      for (int64_t j = 0; j < mid; ++j) py[base + j * inner] = static_cast<float>(py[base + j * inner] / sum);
    }
  c.out.push_back(std::move(y));
}

// sparta.Softmax (from passes/fuse): y = softmax(a + b) along the last axis,
// where one operand has the output's shape and the other (an attention
// mask) broadcasts to it. Rows that share a mask row run as one call.
void masked_softmax(OpCall& c) {
  const Tensor *x = &c.input(0), *m = &c.input(1);
  if (x->dtype() != DType::f32 || m->dtype() != DType::f32) c.fail("supports f32");
  const auto od = broadcast_dims(x->shape().dims(), m->shape().dims(), c);
  if (x->shape().dims() != od) std::swap(x, m);
  if (x->shape().dims() != od || od.empty()) c.fail("neither input has the output's shape " + Shape(od).str());
  const int64_t n = od.back(), rows = n ? x->numel() / n : 0;
  Tensor y(DType::f32, x->shape(), Uninitialized{});
  const float *px = x->data<float>(), *pm = m->data<float>();
  float* py = y.data<float>();
  const size_t r = od.size();
  const std::vector<int64_t> mst = bstrides(m->shape().dims(), r);
  const bool row_mask = m->rank() > 0 && m->shape().dims().back() == n && mst[r - 1] == 1;
  // The mask row of output row `row`: its offset from the leading indices.
  auto mask_offset = [&](int64_t row) {
    int64_t off = 0;
    for (size_t d = r - 1; d-- > 0;) {
      off += (row % od[d]) * mst[d];
      row /= od[d];
    }
    return off;
  };
  parallel_for(c.threads, rows, 8192 / std::max<int64_t>(1, n) + 1, [&](int64_t b, int64_t e) {
    std::vector<float> tmp;
    for (int64_t row = b; row < e;) {
      const int64_t off = mask_offset(row);
      int64_t end = row + 1;  // consecutive rows with the same mask row
      while (end < e && mask_offset(end) == off) ++end;
      const float* bias = pm + off;
      if (!row_mask) {  // the mask broadcasts along the row too: expand it
        tmp.resize(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) tmp[static_cast<size_t>(j)] = pm[off + j * mst[r - 1]];
        bias = tmp.data();
      }
      row_ops().softmax(px + row * n, bias, py + row * n, end - row, n);
      row = end;
    }
  });
  c.out.push_back(std::move(y));
}

void layer_norm(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::f32) c.fail("supports f32");
  const int64_t axis = normalize_axis(c.node.attr_int("axis", -1), x.rank(), c);
  const float eps = c.node.attr_float("epsilon", 1e-5f);
  int64_t outer, norm, unused;
  split3(x, axis, x.rank(), outer, norm, unused);
  outer = norm ? x.numel() / norm : 0;
  const Tensor& scale = c.input(1);
  const bool has_b = c.has_input(2);
  if (scale.numel() != norm || (has_b && c.input(2).numel() != norm)) c.fail("scale/bias size differs from the normalized size");
  Tensor y(DType::f32, x.shape(), Uninitialized{});
  std::vector<int64_t> sd = x.shape().dims();
  for (size_t i = static_cast<size_t>(axis); i < sd.size(); ++i) sd[i] = 1;
  Tensor mean(DType::f32, Shape(sd)), inv(DType::f32, Shape(sd));
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const float* g = scale.data<float>();
  const float* b = has_b ? c.input(2).data<float>() : nullptr;
  parallel_for(c.threads, outer, 8192 / std::max<int64_t>(1, norm) + 1, [&](int64_t r0, int64_t r1) {
    row_ops().layer_norm(px + r0 * norm, g, b, eps, py + r0 * norm, mean.data<float>() + r0, inv.data<float>() + r0,
                         r1 - r0, norm);
  });
  c.out.push_back(std::move(y));
  c.out.push_back(std::move(mean));
  c.out.push_back(std::move(inv));
}

void gelu(OpCall& c) {
    const Tensor& x = c.input(0);
    if (x.dtype() != DType::f32) c.fail("expects f32");
    Tensor y(DType::f32, x.shape(), Uninitialized{});
    const float* px = x.data<float>();
    float* py = y.data<float>();
    parallel_for(c.threads, x.numel(), 16384, [&](int64_t b, int64_t e) { row_ops().gelu(px + b, py + b, e - b); });
    c.out.push_back(std::move(y));
  }

TesaRule gelu_rule() {
  return tesa_rules::elementwise(
      [](const float* v) { return static_cast<float>(0.5 * v[0] * (1.0 + std::erf(v[0] / std::sqrt(2.0)))); });
}

// Shape rules.
namespace shape_rule {

using Dims = ShapeCtx::Dims;

void matmul(const ShapeCtx& c) {
  const Dims *a = c.dims(0), *b = c.dims(1);
  if (!a || !b) return c.set(0, std::nullopt, c.dtype(0));
  c.require(!a->empty() && !b->empty(), "MatMul inputs must have rank >= 1");
  Dims A = *a, B = *b;
  const bool va = A.size() == 1, vb = B.size() == 1;
  if (va) A.insert(A.begin(), 1);
  if (vb) B.push_back(1);
  const int64_t ka = A.back(), kb = B[B.size() - 2];
  c.require(ka < 0 || kb < 0 || ka == kb,
            "inner dimensions differ: " + std::to_string(ka) + " vs " + std::to_string(kb));
  Dims batch = broadcast_shapes(Dims(A.begin(), A.end() - 2), Dims(B.begin(), B.end() - 2), c.where());
  if (!va) batch.push_back(A[A.size() - 2]);
  if (!vb) batch.push_back(B.back());
  c.set(0, batch, c.dtype(0));
}

void gemm(const ShapeCtx& c) {
  const Dims *a = c.dims(0), *b = c.dims(1);
  if (!a || !b) return c.set(0, std::nullopt, c.dtype(0));
  c.require(a->size() == 2 && b->size() == 2, "Gemm inputs must be 2-D");
  const bool ta = c.n.attr_int("transA", 0), tb = c.n.attr_int("transB", 0);
  const int64_t m = ta ? (*a)[1] : (*a)[0], ka = ta ? (*a)[0] : (*a)[1];
  const int64_t kb = tb ? (*b)[1] : (*b)[0], n = tb ? (*b)[0] : (*b)[1];
  c.require(ka < 0 || kb < 0 || ka == kb, "inner dimensions differ: " + std::to_string(ka) + " vs " + std::to_string(kb));
  c.set(0, Dims{m, n}, c.dtype(0));
}

}  // namespace shape_rule

}  // namespace

void define_nn_ops() {
  namespace sr = shape_rule;
  define_op({"MatMul"}, {.shape = sr::matmul,
                         .tesa = tesa_rules::product(tesa_rules::ProductKind::matmul),
                         .run = matmul,
                         .dims_kept = DimsKept::all_but_last,
                         .plan_key = weight_plan_key,
                         .plan = plan_weight,
                         .load_plan = load_weight_plan});
  define_op({"Gemm"}, {.shape = sr::gemm, .tesa = tesa_rules::product(tesa_rules::ProductKind::gemm), .run = gemm, .dims_kept = DimsKept::all_but_last});
  define_op({"Softmax"}, {.shape = same_shape_as_input, .tesa = tesa_rules::rows(tesa_rules::RowKind::softmax), .run = softmax, .dims_kept = DimsKept::all});
  define_op({"LayerNormalization"}, {.shape = same_shape_as_input, .tesa = tesa_rules::rows(tesa_rules::RowKind::layer_norm), .run = layer_norm, .dims_kept = DimsKept::all});
  define_op({"sparta.Linear"}, {.tesa = tesa_rules::product(tesa_rules::ProductKind::linear),
                                .run = linear,
                                .dims_kept = DimsKept::all_but_last,
                                .plan_key = weight_plan_key,
                                .plan = plan_weight,
                                .load_plan = load_weight_plan});
  define_op({"sparta.Softmax"}, {.run = masked_softmax, .dims_kept = DimsKept::all});
  define_op({"sparta.BatchMatMul"}, {.run = batch_matmul});
  define_op({"sparta.Gelu"}, {.shape = same_shape_as_input,
                               .tesa = gelu_rule(),
                               .run = gelu,
                               .dims_kept = DimsKept::all,
                               .elementwise = true});
  // Known shapes without a kernel yet (see define_elementwise_ops).
  define_op({"InstanceNormalization"}, {.shape = same_shape_as_input, .dims_kept = DimsKept::all});
}

}  // namespace sparta
