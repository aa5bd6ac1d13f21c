// Dense products through oneDNN: the dense kernel (weights prepacked into the
// layout oneDNN picks, as a production engine does) and the structured-sparse
// kernel, which is a smaller dense product between gathered X columns and the
// compact weight, scattered back to the kept output rows.
#include <omp.h>

#include <chrono>
#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <optional>

#include "core/error.h"
#include "kernels/onednn_kernels.h"
#include "kernels/parallel.h"

namespace sparta {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// One stream per calling thread, made once: a small product (10 rows of a
// voice model) otherwise pays a stream's creation on every call.
dnnl::stream& cpu_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

// Sets OpenMP's thread count for the duration of one oneDNN call.
class OmpThreads {
 public:
  explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(std::max(1, n)); }
  ~OmpThreads() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

struct OnednnDenseKernel::Plan {
  dnnl::matmul prim;
  memory weights;  // prepacked for this primitive (or the source itself)
};

struct OnednnDenseKernel::Source {
  std::vector<float> plain;     // the user's [N, K], until a packed copy replaces it
  memory mem;                   // plain, packed, or in a compiled model's mapped file
  Bytes keep;                   // owner of mapped bytes
  bool packed = false;          // mem is in oneDNN's preferred layout, chosen for M = packed_m
  int64_t packed_m = 0;
};

namespace {

memory::desc weights_any_or_plain(int64_t k, int64_t n, bool prepacked) {
  return prepacked ? memory::desc({k, n}, dt::f32, tag::any) : memory::desc({k, n}, dt::f32, tag::ba);
}

dnnl::matmul::primitive_desc matmul_pd(int64_t m, int64_t k, int64_t n, int64_t ldx, int64_t ldy, bool prepacked,
                                       bool bias, Activation act, bool accumulate) {
  memory::desc src_md({m, k}, dt::f32, memory::dims{ldx, 1});
  memory::desc bias_md = bias ? memory::desc({1, n}, dt::f32, tag::ab) : memory::desc();
  memory::desc dst_md({m, n}, dt::f32, memory::dims{ldy, 1});
  dnnl::post_ops po;
  if (accumulate) po.append_sum(1.f);
  if (act == Activation::relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  if (act == Activation::gelu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  return dnnl::matmul::primitive_desc(
      dnnl::matmul::desc(src_md, weights_any_or_plain(k, n, prepacked), bias_md, dst_md), attr, cpu_engine());
}

}  // namespace

OnednnDenseKernel::OnednnDenseKernel(int64_t n, int64_t k, std::vector<float> w, bool prepacked, std::string name)
    : SpmmKernel(n, k), src_(std::make_unique<Source>()), prepacked_(prepacked),
      name_(name.empty() ? (prepacked ? "dense_matmul_onednn" : "dense_matmul_onednn_plain") : std::move(name)) {
  src_->plain = std::move(w);
  src_->mem = memory(memory::desc({k_, n_}, dt::f32, tag::ba), cpu_engine(), src_->plain.data());
}

OnednnDenseKernel::~OnednnDenseKernel() = default;

// The saved parameters: the M the layout was chosen for, then oneDNN's
// memory descriptor as it is in memory (a plain C struct in oneDNN 2.x).
std::optional<PackedWeight> OnednnDenseKernel::packed_weight() const {
  std::lock_guard<std::mutex> lock(mu_);
  const dnnl_memory_desc_t& d = src_->mem.get_desc().data;
  std::string params(sizeof(int64_t) + sizeof d, '\0');
  const int64_t m = src_->packed ? src_->packed_m : 0;
  std::memcpy(params.data(), &m, sizeof(int64_t));
  std::memcpy(params.data() + sizeof(int64_t), &d, sizeof d);
  const size_t bytes = src_->mem.get_desc().get_size();
  auto keep = src_->keep.owner;
  return PackedWeight{params, Bytes::view(keep, src_->mem.get_data_handle(), bytes)};
}

std::unique_ptr<OnednnDenseKernel> OnednnDenseKernel::from_packed(int64_t n, int64_t k, bool prepacked,
                                                                  const PackedWeight& w) {
  dnnl_memory_desc_t d;
  int64_t m = 0;
  SPARTA_CHECK(w.params.size() == sizeof(int64_t) + sizeof d,
               "a packed oneDNN weight from another oneDNN build (descriptor size differs): compile the model again");
  std::memcpy(&m, w.params.data(), sizeof m);
  std::memcpy(&d, w.params.data() + sizeof m, sizeof d);
  SPARTA_CHECK(m >= 0 && m <= (int64_t{1} << 32) && n >= 1 && k >= 1 && (prepacked || m == 0),
               "a packed oneDNN weight with bad sizes");
  // Trusted only if it is exactly the descriptor this host's oneDNN makes
  // for the same problem (M = 0: the plain [N, K] order).
  const memory::desc want = m > 0 ? matmul_pd(m, k, n, k, n, true, false, Activation::none, false).weights_desc()
                                  : memory::desc({k, n}, dt::f32, tag::ba);
  SPARTA_CHECK(std::memcmp(&want.data, &d, sizeof d) == 0,
               "a packed oneDNN weight in a layout this host's oneDNN does not choose: compile the model again");
  SPARTA_CHECK(want.get_size() == w.data.size, "a packed oneDNN weight of ", w.data.size, " bytes, expected ",
               want.get_size());
  auto kern = std::unique_ptr<OnednnDenseKernel>(new OnednnDenseKernel(n, k, {}, prepacked));
  kern->src_->mem = memory(want, cpu_engine(), const_cast<uint8_t*>(w.data.data));
  kern->src_->keep = w.data;
  kern->src_->packed = m > 0;
  kern->src_->packed_m = m;
  return kern;
}

const OnednnDenseKernel::Plan& OnednnDenseKernel::plan(int64_t m, int64_t ldx, int64_t ldy, bool bias, Activation act,
                                                       bool accumulate) const {
  const Key key{m, ldx, ldy, bias, static_cast<int>(act), accumulate};
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  // The weight in the layout oneDNN prefers ("any"), or in the user's
  // [N, K] order as it is; which one runs faster is a measured choice
  // between two kernels (see spmm_impls).
  const dnnl::matmul::primitive_desc pd = matmul_pd(m, k_, n_, ldx, ldy, prepacked_, bias, act, accumulate);
  auto p = std::make_unique<Plan>();
  p->prim = dnnl::matmul(pd);
  if (pd.weights_desc() == src_->mem.get_desc()) {
    p->weights = src_->mem;
  } else {
    p->weights = memory(pd.weights_desc(), cpu_engine());
    dnnl::stream& s = cpu_stream();
    dnnl::reorder(src_->mem, p->weights).execute(s, src_->mem, p->weights);
    s.wait();
    if (prepacked_ && !src_->packed) {  // the packed copy becomes the source; the plain one goes
      src_->mem = p->weights;
      src_->plain = {};
      src_->keep = {};
      src_->packed = true;
      src_->packed_m = m;
    }
  }
  impl_ = std::string(pd.impl_info_str()) + (prepacked_ ? ":prepacked" : ":plain");
  return *plans_.emplace(key, std::move(p)).first->second;
}

void OnednnDenseKernel::prepare(int64_t m, bool bias, Activation act) const {
  plan(m, k_, n_, bias, act, false);
}

std::string OnednnDenseKernel::impl_info() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_;
}

void OnednnDenseKernel::run(const SpmmArgs& a) const {
  if (a.m == 0 || n_ == 0) return;
  if (k_ == 0) {  // oneDNN rejects an empty reduction; the product is zero.
    for (int64_t i = 0; i < a.m; ++i)
      for (int64_t j = 0; j < n_; ++j) {
        float v = (a.ep.accumulate ? a.y[i * a.ldy + j] : 0.f) + (a.ep.bias ? a.ep.bias[j] : 0.f);
        a.y[i * a.ldy + j] = apply_activation(v, a.ep.act);
      }
    return;
  }
  const Plan& p = plan(a.m, a.ldx, a.ldy, a.ep.bias != nullptr, a.ep.act, a.ep.accumulate);
  auto& eng = cpu_engine();
  memory src(memory::desc({a.m, k_}, dt::f32, memory::dims{a.ldx, 1}), eng, const_cast<float*>(a.x));
  memory dst(memory::desc({a.m, n_}, dt::f32, memory::dims{a.ldy, 1}), eng, a.y);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, p.weights}, {DNNL_ARG_DST, dst}};
  if (a.ep.bias)
    args.emplace(DNNL_ARG_BIAS, memory(memory::desc({1, n_}, dt::f32, tag::ab), eng, const_cast<float*>(a.ep.bias)));
  OmpThreads threads(a.threads);
  dnnl::stream& s = cpu_stream();
  p.prim.execute(s, args);
  s.wait();
}

// ---------------------------------------------------------------- batched

MatView MatView::contiguous(std::vector<int64_t> dims) {
  MatView v;
  v.strides.resize(dims.size());
  int64_t s = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    v.strides[i] = s;
    s *= dims[i];
  }
  v.dims = std::move(dims);
  return v;
}

struct OnednnBatchedMatmul::Plan {
  dnnl::matmul prim;
  memory::desc a, b, c;
};

OnednnBatchedMatmul::OnednnBatchedMatmul() = default;
OnednnBatchedMatmul::~OnednnBatchedMatmul() = default;

std::string OnednnBatchedMatmul::impl_info() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_;
}

void OnednnBatchedMatmul::run(const float* a, const MatView& av, const float* b, const MatView& bv, float* c,
                              const MatView& cv, float scale, int threads) const {
  SPARTA_ASSERT(av.dims.size() == bv.dims.size() && av.dims.size() == cv.dims.size() && av.dims.size() >= 2,
                "batched matmul views must have one rank");
  auto& eng = cpu_engine();
  std::vector<int64_t> key;
  for (const MatView* v : {&av, &bv, &cv}) {
    key.insert(key.end(), v->dims.begin(), v->dims.end());
    key.insert(key.end(), v->strides.begin(), v->strides.end());
  }
  int32_t sbits;
  std::memcpy(&sbits, &scale, 4);
  key.push_back(sbits);
  const Plan* p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = plans_[key];
    if (!slot) {
      slot = std::make_unique<Plan>();
      slot->a = memory::desc(av.dims, dt::f32, av.strides);
      slot->b = memory::desc(bv.dims, dt::f32, bv.strides);
      slot->c = memory::desc(cv.dims, dt::f32, cv.strides);
      dnnl::primitive_attr attr;
      if (scale != 1.f) attr.set_output_scales(0, {scale});
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(slot->a, slot->b, slot->c), attr, eng);
      impl_ = pd.impl_info_str();
      slot->prim = dnnl::matmul(pd);
    }
    p = slot.get();
  }
  OmpThreads t(threads);
  dnnl::stream& s = cpu_stream();
  p->prim.execute(s, {{DNNL_ARG_SRC, memory(p->a, eng, const_cast<float*>(a))},
                      {DNNL_ARG_WEIGHTS, memory(p->b, eng, const_cast<float*>(b))},
                      {DNNL_ARG_DST, memory(p->c, eng, c)}});
  s.wait();
}

// ---------------------------------------------------------------- convolution

struct OnednnConvKernel::Plan {
  dnnl::convolution_forward prim;
  memory weights;
};

OnednnConvKernel::OnednnConvKernel(std::vector<float> w, std::vector<int64_t> wdims, std::vector<float> bias,
                                   ConvGeometry g)
    : w_(std::move(w)), bias_(std::move(bias)), wdims_(std::move(wdims)), g_(g) {
  SPARTA_CHECK(wdims_.size() == 4, "oneDNN convolution needs a 4-D weight");
}

OnednnConvKernel::~OnednnConvKernel() = default;

std::vector<int64_t> OnednnConvKernel::out_dims(const std::vector<int64_t>& x) const {
  std::vector<int64_t> o = {x[0], wdims_[0]};
  for (int i = 0; i < 2; ++i) {
    const int64_t eff = g_.dilation[i] * (wdims_[2 + static_cast<size_t>(i)] - 1) + 1;
    o.push_back((x[2 + static_cast<size_t>(i)] + g_.pad_begin[i] + g_.pad_end[i] - eff) / g_.stride[i] + 1);
  }
  return o;
}

namespace {
tag conv_tag(ConvLayout l) {
  return l == ConvLayout::nchw8c ? tag::nChw8c : l == ConvLayout::nchw16c ? tag::nChw16c : l == ConvLayout::nhwc ? tag::nhwc : tag::nchw;
}

// The weight w (laid out as `user`) reordered once into the layout a
// (de)convolution primitive wants.
memory packed_weight(const memory::desc& user, const float* w, const memory::desc& want) {
  auto& eng = cpu_engine();
  memory from(user, eng, const_cast<float*>(w)), to(want, eng);
  dnnl::stream& s = cpu_stream();
  dnnl::reorder(from, to).execute(s, from, to);
  s.wait();
  return to;
}

// Runs a (de)convolution primitive on `threads` threads, with its packed
// weight and, when there is one, its bias.
void execute_conv(const dnnl::primitive& prim, const memory& src, const memory& weights, const memory& dst,
                  const std::vector<float>& bias, int threads) {
  auto& eng = cpu_engine();
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (!bias.empty())
    args.emplace(DNNL_ARG_BIAS, memory(memory::desc({int64_t(bias.size())}, dt::f32, tag::x), eng,
                                       const_cast<float*>(bias.data())));
  OmpThreads t(threads);
  dnnl::stream& s = cpu_stream();
  prim.execute(s, args);
  s.wait();
}
}  // namespace

const OnednnConvKernel::Plan& OnednnConvKernel::plan(const Key& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  const auto& [x, act, xl, yl, accumulate] = key;
  auto& eng = cpu_engine();
  const memory::dims src{x[0], x[1], x[2], x[3]}, dst = out_dims(x);
  const int64_t gr = g_.groups;
  memory::dims wd = gr == 1 ? memory::dims{wdims_[0], wdims_[1], wdims_[2], wdims_[3]}
                            : memory::dims{gr, wdims_[0] / gr, wdims_[1], wdims_[2], wdims_[3]};
  memory::desc src_md(src, dt::f32, conv_tag(xl)), dst_md(dst, dt::f32, conv_tag(yl));
  memory::desc w_any(wd, dt::f32, tag::any);
  memory::desc b_md = bias_.empty() ? memory::desc() : memory::desc({wdims_[0]}, dt::f32, tag::x);
  dnnl::post_ops po;
  if (accumulate) po.append_sum(1.f);
  using alg = dnnl::algorithm;
  switch (act.kind) {
    case ConvActivation::none: break;
    case ConvActivation::relu: po.append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f); break;
    case ConvActivation::clip: po.append_eltwise(1.f, alg::eltwise_clip, act.lo, act.hi); break;
    case ConvActivation::leaky_relu: po.append_eltwise(1.f, alg::eltwise_relu, act.lo, 0.f); break;
    case ConvActivation::hard_sigmoid:
      po.append_eltwise(1.f, alg::eltwise_linear, act.lo, act.hi);
      po.append_eltwise(1.f, alg::eltwise_clip, 0.f, 1.f);
      break;
    case ConvActivation::hard_swish: po.append_eltwise(1.f, alg::eltwise_hardswish, 0.f, 0.f); break;
    case ConvActivation::sigmoid: po.append_eltwise(1.f, alg::eltwise_logistic, 0.f, 0.f); break;
    case ConvActivation::tanh: po.append_eltwise(1.f, alg::eltwise_tanh, 0.f, 0.f); break;
  }
  if (act.alpha != 1.f || act.beta != 0.f) po.append_eltwise(1.f, alg::eltwise_linear, act.alpha, act.beta);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                    w_any, b_md, dst_md, {g_.stride[0], g_.stride[1]},
                                    {g_.dilation[0] - 1, g_.dilation[1] - 1}, {g_.pad_begin[0], g_.pad_begin[1]},
                                    {g_.pad_end[0], g_.pad_end[1]});
  dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
  auto p = std::make_unique<Plan>();
  p->prim = dnnl::convolution_forward(pd);
  p->weights = packed_weight(memory::desc(wd, dt::f32, gr == 1 ? tag::oihw : tag::goihw), w_.data(), pd.weights_desc());
  impl_ = pd.impl_info_str();
  return *plans_.emplace(key, std::move(p)).first->second;
}

void OnednnConvKernel::run(const float* x, const std::vector<int64_t>& xd, ConvLayout xl, float* y, ConvLayout yl,
                           ConvActivation act, bool accumulate, int threads) const {
  const Plan& p = plan(Key{xd, act, xl, yl, accumulate});
  auto& eng = cpu_engine();
  memory src(memory::desc({xd[0], xd[1], xd[2], xd[3]}, dt::f32, conv_tag(xl)), eng, const_cast<float*>(x));
  memory dst(memory::desc(out_dims(xd), dt::f32, conv_tag(yl)), eng, y);
  execute_conv(p.prim, src, p.weights, dst, bias_, threads);
}

void OnednnConvKernel::prepare(const std::vector<int64_t>& xd, ConvLayout xl, ConvLayout yl, ConvActivation act,
                               bool accumulate) const {
  plan(Key{xd, act, xl, yl, accumulate});
}

std::string OnednnConvKernel::impl_info() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_;
}

// ---------------------------------------------------------------- sgemm

void onednn_sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                  bool trans_b, float* c, int64_t ldc, bool accumulate, int threads) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::memset(c + i * ldc, 0, size_t(n) * sizeof(float));
    return;
  }
  OmpThreads t(threads);
  const dnnl_status_t st =
      dnnl_sgemm('N', trans_b ? 'T' : 'N', m, n, k, 1.f, a, lda, b, ldb, accumulate ? 1.f : 0.f, c, ldc);
  SPARTA_CHECK(st == dnnl_success, "oneDNN sgemm failed (status ", int(st), ")");
}

// ---------------------------------------------------------------- layout reorder

void onednn_reorder(const float* src, ConvLayout from, float* dst, ConvLayout to, const std::vector<int64_t>& d,
                    int threads) {
  SPARTA_CHECK(d.size() == 4, "a layout reorder needs N x C x H x W dims");
  using Key = std::tuple<std::vector<int64_t>, ConvLayout, ConvLayout>;
  static std::mutex mu;
  static std::map<Key, std::shared_ptr<dnnl::reorder>> cache;
  auto& eng = cpu_engine();
  const memory::dims md{d[0], d[1], d[2], d[3]};
  memory::desc a(md, dt::f32, conv_tag(from)), b(md, dt::f32, conv_tag(to));
  std::shared_ptr<dnnl::reorder> prim;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = cache[Key{d, from, to}];
    if (!slot) slot = std::make_shared<dnnl::reorder>(dnnl::reorder::primitive_desc(eng, a, eng, b));
    prim = slot;
  }
  memory ma(a, eng, const_cast<float*>(src)), mb(b, eng, dst);
  OmpThreads t(threads);
  dnnl::stream& s = cpu_stream();
  prim->execute(s, ma, mb);
  s.wait();
}

// ---------------------------------------------------------------- transposed convolution

struct OnednnDeconvKernel::Plan {
  dnnl::deconvolution_forward prim;
  memory weights;
};

OnednnDeconvKernel::OnednnDeconvKernel(std::vector<float> w, std::vector<int64_t> wdims, std::vector<float> bias,
                                       ConvGeometry g)
    : w_(std::move(w)), bias_(std::move(bias)), wdims_(std::move(wdims)), g_(g) {
  SPARTA_CHECK(wdims_.size() == 4, "oneDNN transposed convolution needs a 4-D weight");
}

OnednnDeconvKernel::~OnednnDeconvKernel() = default;

const OnednnDeconvKernel::Plan& OnednnDeconvKernel::plan(const Key& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  const auto& [x, y] = key;
  auto& eng = cpu_engine();
  const int64_t gr = g_.groups, ci = wdims_[0], cog = wdims_[1];
  // ONNX's [Ci, Co/g, Kh, Kw] is oneDNN's (g)iohw order.
  const memory::dims wd = gr == 1 ? memory::dims{cog, ci, wdims_[2], wdims_[3]}
                                  : memory::dims{gr, cog, ci / gr, wdims_[2], wdims_[3]};
  memory::desc src_md({x[0], x[1], x[2], x[3]}, dt::f32, tag::nchw), dst_md({y[0], y[1], y[2], y[3]}, dt::f32, tag::nchw);
  memory::desc b_md = bias_.empty() ? memory::desc() : memory::desc({y[1]}, dt::f32, tag::x);
  try {
    dnnl::deconvolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
                                        src_md, memory::desc(wd, dt::f32, tag::any), b_md, dst_md,
                                        {g_.stride[0], g_.stride[1]}, {g_.dilation[0] - 1, g_.dilation[1] - 1},
                                        {g_.pad_begin[0], g_.pad_begin[1]}, {g_.pad_end[0], g_.pad_end[1]});
    dnnl::deconvolution_forward::primitive_desc pd(d, eng);
    auto p = std::make_unique<Plan>();
    p->prim = dnnl::deconvolution_forward(pd);
    p->weights = packed_weight(memory::desc(wd, dt::f32, gr == 1 ? tag::iohw : tag::giohw), w_.data(), pd.weights_desc());
    impl_ = pd.impl_info_str();
    return *plans_.emplace(key, std::move(p)).first->second;
  } catch (const dnnl::error& e) {
    throw Error(std::string("oneDNN has no transposed convolution for this shape: ") + e.what());
  }
}

void OnednnDeconvKernel::run(const float* x, const std::vector<int64_t>& xd, float* y, const std::vector<int64_t>& yd,
                             int threads) const {
  const Plan& p = plan(Key{xd, yd});
  auto& eng = cpu_engine();
  memory src(memory::desc({xd[0], xd[1], xd[2], xd[3]}, dt::f32, tag::nchw), eng, const_cast<float*>(x));
  memory dst(memory::desc({yd[0], yd[1], yd[2], yd[3]}, dt::f32, tag::nchw), eng, y);
  execute_conv(p.prim, src, p.weights, dst, bias_, threads);
}

void OnednnDeconvKernel::prepare(const std::vector<int64_t>& xd, const std::vector<int64_t>& yd) const {
  plan(Key{xd, yd});
}

std::string OnednnDeconvKernel::impl_info() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_;
}

// ---------------------------------------------------------------- structured

namespace {

// Index lists as runs of consecutive indices (a pruned head is 64 of them).
using Run = ColumnRun;
std::vector<Run> runs_of(const std::vector<int32_t>& idx) {
  std::vector<Run> r;
  for (int32_t i : idx) {
    if (!r.empty() && r.back().from + r.back().len == i) ++r.back().len;
    else r.push_back({i, 1});
  }
  return r;
}

class StructuredOnednnKernel final : public SpmmKernel {
 public:
  StructuredOnednnKernel(const StructuredMatrix& w, bool prepacked)
      : SpmmKernel(w.rows, w.cols), rows_(w.kept_rows), cols_(w.kept_cols), prepacked_(prepacked) {
    const int64_t nk = static_cast<int64_t>(rows_.size()), kk = static_cast<int64_t>(cols_.size());
    if (nk > 0 && kk > 0) inner_ = std::make_unique<OnednnDenseKernel>(nk, kk, w.values, prepacked, "inner");
    row_runs_ = runs_of(rows_);
    col_runs_ = runs_of(cols_);
    // The pruned rows (all, without a compact product): the gaps between
    // the kept runs.
    pruned_runs_ = column_gaps(inner_ ? row_runs_ : std::vector<Run>{}, n_);
    all_rows_ = nk == n_;
    all_cols_ = kk == k_;
  }
  std::string name() const override { return prepacked_ ? "structured_spmm_onednn" : "structured_spmm_onednn_plain"; }

  void run(const SpmmArgs& a) const override {
    const int64_t nk = static_cast<int64_t>(rows_.size()), kk = static_cast<int64_t>(cols_.size());
    if (a.m == 0) return;
    if (inner_) {
      // The compact product reads X in place when every column is kept, and
      // writes Y in place when every row is; otherwise the kept columns are
      // gathered, and the result scattered, run by run.
      thread_local Scratch xs, ys, bs;
      const float* xc = a.x;
      int64_t ldxc = a.ldx;
      if (!all_cols_) {
        float* g = xs.get(static_cast<size_t>(a.m * kk));
        parallel_run(a.threads, [&](int tid, int nt) {
          for (int64_t i = tid; i < a.m; i += nt) {
            float* d = g + i * kk;
            for (const Run& r : col_runs_) d = std::copy_n(a.x + i * a.ldx + r.from, r.len, d);
          }
        });
        xc = g;
        ldxc = kk;
      }
      float* yc = a.y;
      int64_t ldyc = a.ldy;
      const float* bc = a.ep.bias;
      if (!all_rows_) {
        yc = ys.get(static_cast<size_t>(a.m * nk));
        ldyc = nk;
        if (a.ep.accumulate)
          for (int64_t i = 0; i < a.m; ++i) {
            float* d = yc + i * nk;
            for (const Run& r : row_runs_) d = std::copy_n(a.y + i * a.ldy + r.from, r.len, d);
          }
        if (a.ep.bias) {
          float* b = bs.get(static_cast<size_t>(nk));
          for (const Run& r : row_runs_) b = std::copy_n(a.ep.bias + r.from, r.len, b);
          bc = bs.get(static_cast<size_t>(nk));
        }
      }
      inner_->run({xc, a.m, ldxc, yc, ldyc, Epilogue{bc, a.ep.act, a.ep.accumulate}, a.threads});
      if (!all_rows_)
        parallel_run(a.threads, [&](int tid, int nt) {
          for (int64_t i = tid; i < a.m; i += nt) {
            const float* s = yc + i * nk;
            for (const Run& r : row_runs_) {
              std::copy_n(s, r.len, a.y + i * a.ldy + r.from);
              s += r.len;
            }
          }
        });
    }
    // Pruned output rows (and all rows when nothing is kept): bias only.
    write_uncovered(pruned_runs_, a);
  }

 private:
  std::vector<int32_t> rows_, cols_;
  std::vector<Run> row_runs_, col_runs_, pruned_runs_;
  bool all_rows_ = false, all_cols_ = false;
  bool prepacked_;
  std::unique_ptr<OnednnDenseKernel> inner_;
};

}  // namespace

std::unique_ptr<SpmmKernel> make_structured_onednn(const StructuredMatrix& w, bool prepacked) {
  return std::make_unique<StructuredOnednnKernel>(w, prepacked);
}

}  // namespace sparta
