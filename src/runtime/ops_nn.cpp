// Neural-network operators: MatMul, Gemm, Softmax, reductions and
// normalizations. Plain loops for now (correctness first; the graph passes
// route the heavy products to oneDNN and to sparta's sparse kernels).
#include <cmath>
#include <cstring>

#include "kernels/onednn_kernels.h"
#include "runtime/ops.h"

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

// A product with a constant weight matrix goes to oneDNN with the weight
// prepacked once (kept in the node's state). W is [N, K] row-major.
const OnednnDenseKernel& dense_kernel(OpCall& c, const Tensor& B, bool b_is_nk) {
  if (!*c.state) {
    const int64_t n = b_is_nk ? B.dim(0) : B.dim(1), k = b_is_nk ? B.dim(1) : B.dim(0);
    std::vector<float> w(static_cast<size_t>(n * k));
    const float* pb = B.data<float>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) w[static_cast<size_t>(i * k + j)] = b_is_nk ? pb[i * k + j] : pb[j * n + i];
    *c.state = std::make_shared<OnednnDenseKernel>(n, k, std::move(w));
  }
  return *static_cast<const OnednnDenseKernel*>(c.state->get());
}

bool constant_input(const OpCall& c, size_t i) {
  return i < c.node.inputs.size() && c.node.inputs[i] && c.node.inputs[i]->is_constant();
}

void matmul(OpCall& c) {
  const Tensor &A = c.input(0), &B = c.input(1);
  if (c.state && constant_input(c, 1) && B.rank() == 2 && A.rank() >= 2 && A.dtype() == DType::f32 &&
      B.dtype() == DType::f32 && A.dim(A.rank() - 1) == B.dim(0)) {
    const OnednnDenseKernel& k = dense_kernel(c, B, false);
    std::vector<int64_t> od = A.shape().dims();
    od.back() = B.dim(1);
    Tensor y(DType::f32, Shape(od));
    const int64_t m = A.numel() / std::max<int64_t>(1, B.dim(0));
    if (m > 0) k.run({A.data<float>(), m, B.dim(0), y.data<float>(), B.dim(1), Epilogue{}, c.threads});
    return c.out.push_back(std::move(y));
  }
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
  // Same batch dims on both sides (attention's [B, H, T, d] x [B, H, d, T]):
  // one batched oneDNN matmul.
  if (c.state && abatch == bbatch && !va && !vb && m > 0 && n > 0 && k > 0) {
    if (!*c.state) *c.state = std::make_shared<OnednnBatchedMatmul>();
    std::vector<int64_t> od2 = batch;
    od2.push_back(m);
    od2.push_back(n);
    Tensor y(DType::f32, Shape(od2));
    int64_t nb2 = 1;
    for (int64_t d : batch) nb2 *= d;
    if (nb2 > 0)
      static_cast<const OnednnBatchedMatmul*>(c.state->get())
          ->run(A.data<float>(), B.data<float>(), y.data<float>(), nb2, m, k, n, c.threads);
    return c.out.push_back(std::move(y));
  }
  std::vector<int64_t> od = batch;
  if (!va) od.push_back(m);
  if (!vb) od.push_back(n);
  Tensor y(DType::f32, Shape(od));
  int64_t nb = 1;
  for (int64_t d : batch) nb *= d;
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
  c.out.push_back(std::move(y));
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
  if (c.state && constant_input(c, 1) && !ta && alpha == 1.f && bias_ok) {
    const OnednnDenseKernel& kern = dense_kernel(c, B, tb);
    Tensor y(DType::f32, Shape{m, n});
    const float* bias = c.has_input(2) && beta != 0.f ? c.input(2).data<float>() : nullptr;
    if (m > 0) kern.run({A.data<float>(), m, k, y.data<float>(), n, Epilogue{bias, Activation::none, false}, c.threads});
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
  Tensor y(DType::f32, x.shape());
  const float* px = x.data<float>();
  float* py = y.data<float>();
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

void reduce_mean(OpCall& c) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::f32) c.fail("supports f32");
  std::vector<int64_t> axes;
  if (const Attribute* a = c.node.attr("axes")) axes = a->is;
  else if (c.has_input(1)) axes = int_values(c.input(1), c);
  const bool keep = c.node.attr_int("keepdims", 1) != 0;
  if (axes.empty() && c.node.attr_int("noop_with_empty_axes", 0)) return c.out.push_back(x);
  std::vector<bool> red(static_cast<size_t>(x.rank()), axes.empty());
  for (int64_t a : axes) red[static_cast<size_t>(normalize_axis(a, x.rank(), c))] = true;
  std::vector<int64_t> od, kd;
  for (int i = 0; i < x.rank(); ++i) {
    kd.push_back(red[static_cast<size_t>(i)] ? 1 : x.dim(i));
    if (!red[static_cast<size_t>(i)]) od.push_back(x.dim(i));
    else if (keep) od.push_back(1);
  }
  std::vector<double> acc(static_cast<size_t>(Shape(kd).numel()), 0.0);
  std::vector<int64_t> idx(static_cast<size_t>(x.rank()), 0);
  const float* px = x.data<float>();
  for (int64_t e = 0; e < x.numel(); ++e) {
    int64_t o = 0;
    for (int i = 0; i < x.rank(); ++i) o = o * kd[static_cast<size_t>(i)] + (red[static_cast<size_t>(i)] ? 0 : idx[static_cast<size_t>(i)]);
    acc[static_cast<size_t>(o)] += px[e];
    for (int d = x.rank(); d-- > 0;) {
      if (++idx[static_cast<size_t>(d)] < x.dim(d)) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
  const double count = x.numel() ? double(x.numel()) / double(acc.size()) : 1.0;
  Tensor y(DType::f32, Shape(od));
  for (size_t i = 0; i < acc.size(); ++i) y.data<float>()[i] = static_cast<float>(acc[i] / count);
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
  Tensor y(DType::f32, x.shape());
  std::vector<int64_t> sd = x.shape().dims();
  for (size_t i = static_cast<size_t>(axis); i < sd.size(); ++i) sd[i] = 1;
  Tensor mean(DType::f32, Shape(sd)), inv(DType::f32, Shape(sd));
  for (int64_t o = 0; o < outer; ++o) {
    const float* px = x.data<float>() + o * norm;
    double m = 0, v = 0;
    for (int64_t j = 0; j < norm; ++j) m += px[j];
    m /= double(norm);
    for (int64_t j = 0; j < norm; ++j) v += (px[j] - m) * (px[j] - m);
    v /= double(norm);
    const double is = 1.0 / std::sqrt(v + eps);
    mean.data<float>()[o] = static_cast<float>(m);
    inv.data<float>()[o] = static_cast<float>(is);
    float* py = y.data<float>() + o * norm;
    for (int64_t j = 0; j < norm; ++j)
      py[j] = static_cast<float>((px[j] - m) * is * scale.data<float>()[j] + (has_b ? c.input(2).data<float>()[j] : 0.f));
  }
  c.out.push_back(std::move(y));
  c.out.push_back(std::move(mean));
  c.out.push_back(std::move(inv));
}

}  // namespace

void register_nn_ops() {
  add_op({"MatMul"}, matmul);
  add_op({"Gemm"}, gemm);
  add_op({"Softmax"}, softmax);
  add_op({"ReduceMean"}, reduce_mean);
  add_op({"LayerNormalization"}, layer_norm);
}

}  // namespace sparta
