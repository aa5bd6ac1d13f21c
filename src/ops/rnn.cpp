// Recurrent layers: LSTM, GRU and RNN (forward, reverse, bidirectional;
// sequence_lens, initial states, peepholes, clip, input_forget,
// linear_before_reset, layout 0 and 1, every activation ONNX lists). The
// input projection of all time steps is one GEMM per direction; each step
// is one small GEMM with the recurrent weight and a fused gate loop.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/onednn_kernels.h"
#include "ops/op_def.h"

namespace sparta {
namespace {

enum class Cell { lstm, gru, rnn };

struct Act {
  enum Kind { sigmoid, tanh_, relu, affine, leaky_relu, thresholded_relu, scaled_tanh, hard_sigmoid, elu, softsign, softplus } kind;
  float alpha = 0, beta = 0;
  float operator()(float x) const {
    switch (kind) {
      case sigmoid: return 1.f / (1.f + std::exp(-x));
      case tanh_: return std::tanh(x);
      case relu: return x > 0 ? x : 0.f;
      case affine: return alpha * x + beta;
      case leaky_relu: return x >= 0 ? x : alpha * x;
      case thresholded_relu: return x > alpha ? x : 0.f;
      case scaled_tanh: return alpha * std::tanh(beta * x);
      case hard_sigmoid: return std::max(0.f, std::min(1.f, alpha * x + beta));
      case elu: return x >= 0 ? x : alpha * (std::exp(x) - 1.f);
      case softsign: return x / (1.f + std::fabs(x));
      case softplus: return std::log1p(std::exp(-std::fabs(x))) + std::max(x, 0.f);
    }
    return x;
  }
};

// The activations of every direction: `per_dir` functions each (LSTM 3,
// GRU 2, RNN 1), from the attributes or the defaults.
std::vector<Act> activations(const OpCall& c, Cell cell, int dirs) {
  const int per_dir = cell == Cell::lstm ? 3 : cell == Cell::gru ? 2 : 1;
  std::vector<std::string> names;
  if (const Attribute* a = c.node.attr("activations")) names = a->ss;
  if (names.empty()) {
    const std::vector<std::string> d = cell == Cell::lstm  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                       : cell == Cell::gru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                           : std::vector<std::string>{"Tanh"};
    for (int i = 0; i < dirs; ++i) names.insert(names.end(), d.begin(), d.end());
  }
  if (static_cast<int>(names.size()) == per_dir && dirs == 2) names.insert(names.end(), names.begin(), names.end());
  if (static_cast<int>(names.size()) != per_dir * dirs)
    c.fail("activations must list " + std::to_string(per_dir) + " functions per direction");
  std::vector<float> alphas, betas;
  if (const Attribute* a = c.node.attr("activation_alpha")) alphas = a->fs;
  if (const Attribute* b = c.node.attr("activation_beta")) betas = b->fs;
  size_t ai = 0, bi = 0;
  std::vector<Act> out;
  for (std::string n : names) {
    std::transform(n.begin(), n.end(), n.begin(), ::tolower);
    const auto take = [](const std::vector<float>& v, size_t& i, float d) { return i < v.size() ? v[i++] : d; };
    Act f{Act::sigmoid};
    if (n == "sigmoid") f = {Act::sigmoid};
    else if (n == "tanh") f = {Act::tanh_};
    else if (n == "relu") f = {Act::relu};
    else if (n == "affine") f = {Act::affine, take(alphas, ai, 1.f), take(betas, bi, 0.f)};
    else if (n == "leakyrelu") f = {Act::leaky_relu, take(alphas, ai, 0.01f)};
    else if (n == "thresholdedrelu") f = {Act::thresholded_relu, take(alphas, ai, 1.f)};
    else if (n == "scaledtanh") f = {Act::scaled_tanh, take(alphas, ai, 1.f), take(betas, bi, 1.f)};
    else if (n == "hardsigmoid") f = {Act::hard_sigmoid, take(alphas, ai, 0.2f), take(betas, bi, 0.5f)};
    else if (n == "elu") f = {Act::elu, take(alphas, ai, 1.f)};
    else if (n == "softsign") f = {Act::softsign};
    else if (n == "softplus") f = {Act::softplus};
    else c.fail("unknown activation '" + n + "'");
    out.push_back(f);
  }
  return out;
}

const Tensor* optional_f32(const OpCall& c, size_t i, int64_t numel, const char* what) {
  if (!c.has_input(i) || c.input(i).numel() == 0) return nullptr;
  const Tensor& t = c.input(i);
  if (t.dtype() != DType::f32 || t.numel() != numel)
    c.fail(std::string(what) + " must hold " + std::to_string(numel) + " f32 values, got " + t.shape().str());
  return &t;
}

// [a, b, c] -> [b, a, c] (layout 1 <-> 0).
std::vector<float> swap01(const float* x, int64_t a, int64_t b, int64_t c) {
  std::vector<float> y(size_t(a * b * c));
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j) std::memcpy(&y[size_t((j * a + i) * c)], x + (i * b + j) * c, size_t(c) * sizeof(float));
  return y;
}

void recurrent(OpCall& c, Cell cell) {
  const int G = cell == Cell::lstm ? 4 : cell == Cell::gru ? 3 : 1;  // gates
  const Tensor &xin = c.input(0), &W = c.input(1), &R = c.input(2);
  if (xin.dtype() != DType::f32 || W.dtype() != DType::f32 || R.dtype() != DType::f32) c.fail("supports f32");
  if (xin.rank() != 3 || W.rank() != 3 || R.rank() != 3) c.fail("X, W and R must be 3-D");
  const int64_t layout = c.node.attr_int("layout", 0);
  const Attribute* dattr = c.node.attr("direction");
  const std::string direction = dattr ? dattr->s : "forward";
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
    c.fail("unknown direction '" + direction + "'");
  const int dirs = direction == "bidirectional" ? 2 : 1;
  const int64_t T = layout ? xin.dim(1) : xin.dim(0), B = layout ? xin.dim(0) : xin.dim(1), I = xin.dim(2);
  const int64_t H = c.node.attr_int("hidden_size", R.dim(2));
  if (W.dim(0) != dirs || W.dim(1) != G * H || W.dim(2) != I)
    c.fail("W must be [" + std::to_string(dirs) + ", " + std::to_string(G * H) + ", " + std::to_string(I) + "], got " +
           W.shape().str());
  if (R.dim(0) != dirs || R.dim(1) != G * H || R.dim(2) != H) c.fail("R must be [dirs, gates x hidden, hidden]");
  const Tensor* bias = optional_f32(c, 3, dirs * 2 * G * H, "B");
  std::vector<int64_t> lens(size_t(B), T);
  if (c.has_input(4) && c.input(4).numel() > 0) {
    lens = int_values(c.input(4), c);
    if (static_cast<int64_t>(lens.size()) != B) c.fail("sequence_lens must have one value per batch row");
    for (int64_t l : lens)
      if (l < 0 || l > T) c.fail("sequence_lens values must lie in [0, sequence length]");
  }
  const Tensor* h0 = optional_f32(c, 5, dirs * B * H, "initial_h");
  const Tensor* c0 = cell == Cell::lstm ? optional_f32(c, 6, dirs * B * H, "initial_c") : nullptr;
  const Tensor* peep = cell == Cell::lstm ? optional_f32(c, 7, dirs * 3 * H, "P") : nullptr;
  const std::vector<Act> acts = activations(c, cell, dirs);
  const Attribute* clip_attr = c.node.attr("clip");
  const float clip = clip_attr ? clip_attr->f : 0.f;
  const bool input_forget = c.node.attr_int("input_forget", 0) != 0;
  const bool lbr = c.node.attr_int("linear_before_reset", 0) != 0;
  const auto clipped = [clip, clip_attr](float v) { return clip_attr ? std::min(clip, std::max(-clip, v)) : v; };

  std::vector<float> xs;  // X as [T, B, I]
  const float* x = xin.data<float>();
  if (layout) {
    xs = swap01(x, B, T, I);
    x = xs.data();
  }
  std::vector<float> y(size_t(T * dirs * B * H), 0.f), yh(size_t(dirs * B * H)), yc(size_t(dirs * B * H));
  std::vector<float> xw(size_t(T * B * G * H)), hr(size_t(B * G * H)), hprev(size_t(B * H)), cprev(size_t(B * H));
  std::vector<float> rh(size_t(B * H)), hh(size_t(B * H));  // GRU: r (.) H_prev, and its product with Rh
  for (int d = 0; d < dirs; ++d) {
    const bool reverse = direction == "reverse" || d == 1;
    const float* w = W.data<float>() + d * G * H * I;
    const float* r = R.data<float>() + d * G * H * H;
    const float* wb = bias ? bias->data<float>() + d * 2 * G * H : nullptr;
    const float* rb = wb ? wb + G * H : nullptr;
    const float* p = peep ? peep->data<float>() + d * 3 * H : nullptr;
    const Act* f = &acts[size_t(d * (G == 4 ? 3 : G == 3 ? 2 : 1))];
    onednn_sgemm(T * B, G * H, I, x, I, w, I, true, xw.data(), G * H, false, c.threads);
    if (wb)  // both biases into the projection, except GRU's recurrent h bias with linear_before_reset
      for (int64_t q = 0; q < T * B; ++q)
        for (int64_t j = 0; j < G * H; ++j)
          xw[size_t(q * G * H + j)] += wb[j] + ((cell == Cell::gru && j >= 2 * H) ? (lbr ? 0.f : rb[j]) : rb[j]);
    if (h0) std::memcpy(hprev.data(), h0->data<float>() + d * B * H, size_t(B * H) * sizeof(float));
    else std::fill(hprev.begin(), hprev.end(), 0.f);
    if (c0) std::memcpy(cprev.data(), c0->data<float>() + d * B * H, size_t(B * H) * sizeof(float));
    else std::fill(cprev.begin(), cprev.end(), 0.f);
    for (int64_t s = 0; s < T; ++s) {
      // H_prev R^T (for GRU without linear_before_reset, only the z and r gates)
      const int64_t cols = cell == Cell::gru && !lbr ? 2 * H : G * H;
      onednn_sgemm(B, cols, H, hprev.data(), H, r, H, true, hr.data(), G * H, false, c.threads);
      for (int64_t b = 0; b < B; ++b) {
        if (s >= lens[size_t(b)]) continue;
        const int64_t t = reverse ? lens[size_t(b)] - 1 - s : s;
        const float* g = &xw[size_t((t * B + b) * G * H)];
        const float* q = &hr[size_t(b * G * H)];
        float* out = &y[size_t(((t * dirs + d) * B + b) * H)];
        if (cell == Cell::lstm) {  // gates i, o, f, c
          float* cp = &cprev[size_t(b * H)];
          for (int64_t j = 0; j < H; ++j) {
            const float ci = cp[j];
            float it = f[0](clipped(g[j] + q[j] + (p ? p[j] * ci : 0.f)));
            const float ft = input_forget ? 1.f - it : f[0](clipped(g[2 * H + j] + q[2 * H + j] + (p ? p[2 * H + j] * ci : 0.f)));
            const float ct = f[1](clipped(g[3 * H + j] + q[3 * H + j]));
            const float cn = ft * ci + it * ct;
            const float ot = f[0](clipped(g[H + j] + q[H + j] + (p ? p[H + j] * cn : 0.f)));
            cp[j] = cn;
            out[j] = ot * f[2](cn);
          }
        } else if (cell == Cell::rnn) {
          for (int64_t j = 0; j < H; ++j) out[j] = f[0](clipped(g[j] + q[j]));
        } else {  // GRU: gates z, r, h
          for (int64_t j = 0; j < H; ++j) {
            const float z = f[0](clipped(g[j] + q[j]));
            const float rt = f[0](clipped(g[H + j] + q[H + j]));
            out[j] = z;  // kept until the h gate is known
            rh[size_t(b * H + j)] = rt;
          }
        }
      }
      if (cell == Cell::gru) {
        const float* rhw = r + 2 * H * H;  // Rh
        if (!lbr) {
          for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < H; ++j) rh[size_t(b * H + j)] *= hprev[size_t(b * H + j)];
          onednn_sgemm(B, H, H, rh.data(), H, rhw, H, true, hh.data(), H, false, c.threads);
        }
        for (int64_t b = 0; b < B; ++b) {
          if (s >= lens[size_t(b)]) continue;
          const int64_t t = reverse ? lens[size_t(b)] - 1 - s : s;
          const float* g = &xw[size_t((t * B + b) * G * H)];
          float* out = &y[size_t(((t * dirs + d) * B + b) * H)];
          for (int64_t j = 0; j < H; ++j) {
            const float rt = rh[size_t(b * H + j)];
            const float pre = lbr ? g[2 * H + j] + rt * (hr[size_t(b * G * H + 2 * H + j)] + (rb ? rb[2 * H + j] : 0.f))
                                  : g[2 * H + j] + hh[size_t(b * H + j)];
            const float ht = f[1](clipped(pre)), z = out[j];
            out[j] = (1.f - z) * ht + z * hprev[size_t(b * H + j)];
          }
        }
      }
      for (int64_t b = 0; b < B; ++b) {  // the new state of rows still running
        if (s >= lens[size_t(b)]) continue;
        const int64_t t = reverse ? lens[size_t(b)] - 1 - s : s;
        std::memcpy(&hprev[size_t(b * H)], &y[size_t(((t * dirs + d) * B + b) * H)], size_t(H) * sizeof(float));
      }
    }
    std::memcpy(&yh[size_t(d * B * H)], hprev.data(), size_t(B * H) * sizeof(float));
    std::memcpy(&yc[size_t(d * B * H)], cprev.data(), size_t(B * H) * sizeof(float));
  }
  const auto tensor = [](std::vector<int64_t> dims, const float* src) {
    Tensor t(DType::f32, Shape(dims), Uninitialized{});
    std::memcpy(t.raw(), src, t.nbytes());
    return t;
  };
  if (layout) {  // Y [B, T, dirs, H], Y_h and Y_c [B, dirs, H]
    std::vector<float> yl(y.size());
    for (int64_t t = 0; t < T; ++t)
      for (int d = 0; d < dirs; ++d)
        for (int64_t b = 0; b < B; ++b)
          std::memcpy(&yl[size_t(((b * T + t) * dirs + d) * H)], &y[size_t(((t * dirs + d) * B + b) * H)], size_t(H) * sizeof(float));
    c.out.push_back(tensor({B, T, dirs, H}, yl.data()));
    c.out.push_back(tensor({B, dirs, H}, swap01(yh.data(), dirs, B, H).data()));
    if (cell == Cell::lstm) c.out.push_back(tensor({B, dirs, H}, swap01(yc.data(), dirs, B, H).data()));
  } else {
    c.out.push_back(tensor({T, dirs, B, H}, y.data()));
    c.out.push_back(tensor({dirs, B, H}, yh.data()));
    if (cell == Cell::lstm) c.out.push_back(tensor({dirs, B, H}, yc.data()));
  }
}

void recurrent_shape(const ShapeCtx& c, Cell cell) {
  const ShapeCtx::Dims *x = c.dims(0), *r = c.dims(2);
  const int64_t layout = c.n.attr_int("layout", 0);
  const Attribute* d = c.n.attr("direction");
  const int64_t dirs = d && d->s == "bidirectional" ? 2 : 1;
  const int64_t H = c.n.attr_int("hidden_size", r && r->size() == 3 ? (*r)[2] : -1);
  const int64_t T = x && x->size() == 3 ? (*x)[layout ? 1 : 0] : -1, B = x && x->size() == 3 ? (*x)[layout ? 0 : 1] : -1;
  c.set(0, layout ? ShapeCtx::Dims{B, T, dirs, H} : ShapeCtx::Dims{T, dirs, B, H}, DType::f32);
  c.set(1, layout ? ShapeCtx::Dims{B, dirs, H} : ShapeCtx::Dims{dirs, B, H}, DType::f32);
  if (cell == Cell::lstm) c.set(2, layout ? ShapeCtx::Dims{B, dirs, H} : ShapeCtx::Dims{dirs, B, H}, DType::f32);
}

}  // namespace

void define_rnn_ops() {
  for (const auto& def : {std::pair{"LSTM", Cell::lstm}, std::pair{"GRU", Cell::gru}, std::pair{"RNN", Cell::rnn}}) {
    const Cell cell = def.second;  // a plain variable: lambdas may not capture structured bindings before C++20
    define_op({def.first}, {.shape = [cell](const ShapeCtx& c) { recurrent_shape(c, cell); },
                            .run = [cell](OpCall& c) { recurrent(c, cell); }});
  }
}

}  // namespace sparta
