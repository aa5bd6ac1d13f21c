#include "runtime/sparse_nets.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "kernels/parallel.h"

namespace sparta {

namespace {

using I3 = std::array<int, 3>;

// One convolution (+ BatchNorm) (+ ReLU) of a network, by its parameters'
// names in the spconv state_dict.
struct ConvSpec {
  std::string conv, bn;  // bn empty: the convolution has a bias instead
  enum Kind { subm, down, inverse } kind = subm;
  I3 k{3, 3, 3}, stride{1, 1, 1}, pad{0, 0, 0};
  int64_t cin = 0, cout = 0;
  bool relu = true;
};

ConvSpec subm_spec(std::string conv, std::string bn, int k, int64_t cin, int64_t cout, bool relu = true) {
  ConvSpec s;
  s.conv = std::move(conv), s.bn = std::move(bn), s.kind = ConvSpec::subm, s.k = {k, k, k};
  s.cin = cin, s.cout = cout, s.relu = relu;
  return s;
}
ConvSpec down_spec(std::string conv, std::string bn, I3 k, I3 stride, I3 pad, int64_t cin, int64_t cout) {
  ConvSpec s;
  s.conv = std::move(conv), s.bn = std::move(bn), s.kind = ConvSpec::down, s.k = k, s.stride = stride, s.pad = pad;
  s.cin = cin, s.cout = cout;
  return s;
}

// A loaded layer: weight [kx, ky, kz, Cin, Cout] and bias with the
// BatchNorm folded in.
struct Layer {
  ConvSpec spec;
  Tensor w, b;

  VoxelTensor operator()(const VoxelTensor& x, int threads) const {
    SparseConv3dOptions o;
    o.geometry.subm = spec.kind == ConvSpec::subm;
    o.geometry.stride = spec.stride;
    o.geometry.pad = spec.pad;
    o.relu = spec.relu;
    o.threads = threads;
    return spec.kind == ConvSpec::inverse ? sparse_inverse_conv3d(x, w, b, o) : sparse_conv3d(x, w, b, o);
  }
};

const Tensor& param(const StateDict& s, const std::string& name, const std::vector<int64_t>& dims) {
  const auto it = s.find(name);
  SPARTA_CHECK(it != s.end(), "the state_dict has no '", name, "'");
  SPARTA_CHECK(it->second.dtype() == DType::f32 && it->second.shape().dims() == dims, "'", name, "' must be float32 ",
               Shape(dims).str(), ", got ", dtype_name(it->second.dtype()), " ", it->second.shape().str());
  return it->second;
}

Layer load(const StateDict& s, const ConvSpec& spec) {
  const auto& k = spec.k;
  const Tensor& w = param(s, spec.conv + ".weight", {spec.cout, k[0], k[1], k[2], spec.cin});
  const int64_t taps = int64_t(k[0]) * k[1] * k[2], ci = spec.cin, co = spec.cout;
  std::vector<float> scale(size_t(co), 1.f), shift(size_t(co), 0.f);
  if (spec.bn.empty()) {
    if (s.count(spec.conv + ".bias")) {
      const Tensor& b = param(s, spec.conv + ".bias", {co});
      std::copy(b.data<float>(), b.data<float>() + co, shift.begin());
    }
  } else {
    const float *g = param(s, spec.bn + ".weight", {co}).data<float>(), *be = param(s, spec.bn + ".bias", {co}).data<float>(),
                *mu = param(s, spec.bn + ".running_mean", {co}).data<float>(),
                *var = param(s, spec.bn + ".running_var", {co}).data<float>();
    for (int64_t c = 0; c < co; ++c) {
      scale[size_t(c)] = g[c] / std::sqrt(var[c] + 1e-5f);
      shift[size_t(c)] = be[c] - mu[c] * scale[size_t(c)];
    }
  }
  Layer l;
  l.spec = spec;
  l.w = Tensor(DType::f32, Shape{k[0], k[1], k[2], ci, co}, Uninitialized{});
  const float* src = w.data<float>();  // [co][taps][ci]
  float* dst = l.w.data<float>();      // [taps][ci][co]
  // spconv runs a 1x1x1 layer of stride 1 as a matrix product that reads
  // the weight's memory as [Cin, Cout] whatever its shape says
  // ([Cout, 1, 1, 1, Cin]); its state_dict means that layout there.
  const bool spconv_1x1 = taps == 1 && spec.kind != ConvSpec::inverse &&
                          (spec.kind == ConvSpec::subm || spec.stride == I3{1, 1, 1});
  for (int64_t o = 0; o < co; ++o)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t i = 0; i < ci; ++i)
        dst[(t * ci + i) * co + o] = (spconv_1x1 ? src[i * co + o] : src[(o * taps + t) * ci + i]) * scale[size_t(o)];
  l.b = Tensor(DType::f32, Shape{co}, Uninitialized{});
  std::copy(shift.begin(), shift.end(), l.b.data<float>());
  return l;
}

// relu(a + b) on the same sites.
VoxelTensor add_relu(const VoxelTensor& a, const VoxelTensor& b, int threads) {
  SPARTA_ASSERT(a.sites == b.sites && a.feats.shape() == b.feats.shape(), "a residual sum needs one set of sites");
  VoxelTensor y{a.sites, Tensor(DType::f32, a.feats.shape(), Uninitialized{})};
  const float *pa = a.feats.data<float>(), *pb = b.feats.data<float>();
  float* py = y.feats.data<float>();
  const int64_t c = a.feats.dim(1);
  parallel_for(threads, a.feats.dim(0), 2048, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * c; i < r1 * c; ++i) py[i] = std::max(0.f, pa[i] + pb[i]);
  });
  return y;
}

// Features of a then b, channel-wise, on the same sites.
VoxelTensor concat(const VoxelTensor& a, const VoxelTensor& b, int threads) {
  SPARTA_ASSERT(a.sites == b.sites, "a skip connection joins tensors on one set of sites");
  const int64_t n = a.feats.dim(0), ca = a.feats.dim(1), cb = b.feats.dim(1);
  VoxelTensor y{a.sites, Tensor(DType::f32, Shape{n, ca + cb}, Uninitialized{})};
  parallel_for(threads, n, 2048, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      std::memcpy(y.feats.data<float>() + r * (ca + cb), a.feats.data<float>() + r * ca, size_t(ca) * 4);
      std::memcpy(y.feats.data<float>() + r * (ca + cb) + ca, b.feats.data<float>() + r * cb, size_t(cb) * 4);
    }
  });
  return y;
}

// A residual block: relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut x),
// the shortcut a 1x1x1 convolution + BatchNorm when the widths differ.
struct Block {
  Layer c1, c2;
  std::optional<Layer> down;
  static std::vector<ConvSpec> specs(const std::string& p, int64_t cin, int64_t cout) {
    std::vector<ConvSpec> s = {subm_spec(p + ".conv1", p + ".bn1", 3, cin, cout),
                               subm_spec(p + ".conv2", p + ".bn2", 3, cout, cout, false)};
    if (cin != cout) s.push_back(subm_spec(p + ".down.0", p + ".down.1", 1, cin, cout, false));
    return s;
  }
  static Block load_from(const StateDict& s, const std::string& p, int64_t cin, int64_t cout) {
    const auto sp = specs(p, cin, cout);
    Block b{load(s, sp[0]), load(s, sp[1]), std::nullopt};
    if (sp.size() > 2) b.down = load(s, sp[2]);
    return b;
  }
  VoxelTensor operator()(const VoxelTensor& x, int threads) const {
    const VoxelTensor h = c2(c1(x, threads), threads);
    return add_relu(h, down ? (*down)(x, threads) : x, threads);
  }
};

std::vector<ConvSpec> minkunet_specs(const MinkUNetConfig& c) {
  SPARTA_CHECK(c.channels.size() == 9 && c.in_channels >= 1 && c.num_classes >= 1,
               "MinkUNet takes 9 widths (stem, 4 down, 4 up), input channels and classes >= 1");
  const auto& cs = c.channels;
  std::vector<ConvSpec> s = {subm_spec("stem.0", "stem.1", 3, c.in_channels, cs[0]),
                             subm_spec("stem.3", "stem.4", 3, cs[0], cs[0])};
  for (int i = 0; i < 4; ++i) {
    const std::string p = "downs." + std::to_string(i);
    s.push_back(down_spec(p + ".0", p + ".1", {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, cs[size_t(i)], cs[size_t(i)]));
    for (const auto& b : Block::specs(p + ".3", cs[size_t(i)], cs[size_t(i) + 1])) s.push_back(b);
    for (const auto& b : Block::specs(p + ".4", cs[size_t(i) + 1], cs[size_t(i) + 1])) s.push_back(b);
  }
  for (int i = 0; i < 4; ++i) {
    const std::string p = "ups." + std::to_string(i);
    const int64_t cin = cs[size_t(4 + i)], cout = cs[size_t(5 + i)], skip = cs[size_t(3 - i)];
    ConvSpec up = down_spec(p + ".0.0", p + ".0.1", {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, cin, cout);
    up.kind = ConvSpec::inverse;
    s.push_back(up);
    for (const auto& b : Block::specs(p + ".1.0", cout + skip, cout)) s.push_back(b);
    for (const auto& b : Block::specs(p + ".1.1", cout, cout)) s.push_back(b);
  }
  s.push_back(subm_spec("head", "", 1, cs[8], c.num_classes, false));
  return s;
}

class MinkUNet final : public SparseNet {
 public:
  MinkUNet(const StateDict& s, const MinkUNetConfig& c) {
    minkunet_specs(c);  // checks the config
    const auto& cs = c.channels;
    stem_ = {load(s, subm_spec("stem.0", "stem.1", 3, c.in_channels, cs[0])),
             load(s, subm_spec("stem.3", "stem.4", 3, cs[0], cs[0]))};
    for (int i = 0; i < 4; ++i) {
      const std::string p = "downs." + std::to_string(i);
      down_.push_back(load(s, down_spec(p + ".0", p + ".1", {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, cs[size_t(i)], cs[size_t(i)])));
      down_blocks_.push_back({Block::load_from(s, p + ".3", cs[size_t(i)], cs[size_t(i) + 1]),
                              Block::load_from(s, p + ".4", cs[size_t(i) + 1], cs[size_t(i) + 1])});
    }
    for (int i = 0; i < 4; ++i) {
      const std::string p = "ups." + std::to_string(i);
      const int64_t cin = cs[size_t(4 + i)], cout = cs[size_t(5 + i)], skip = cs[size_t(3 - i)];
      ConvSpec up = down_spec(p + ".0.0", p + ".0.1", {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, cin, cout);
      up.kind = ConvSpec::inverse;
      up_.push_back(load(s, up));
      up_blocks_.push_back({Block::load_from(s, p + ".1.0", cout + skip, cout), Block::load_from(s, p + ".1.1", cout, cout)});
    }
    head_ = load(s, subm_spec("head", "", 1, cs[8], c.num_classes, false));
  }
  VoxelTensor forward(const VoxelTensor& x, int threads) const override {
    std::vector<VoxelTensor> skips;
    VoxelTensor h = stem_[1](stem_[0](x, threads), threads);
    for (int i = 0; i < 4; ++i) {
      skips.push_back(h);
      h = down_[size_t(i)](h, threads);
      for (const Block& b : down_blocks_[size_t(i)]) h = b(h, threads);
    }
    for (int i = 0; i < 4; ++i) {
      h = concat(up_[size_t(i)](h, threads), skips[size_t(3 - i)], threads);
      for (const Block& b : up_blocks_[size_t(i)]) h = b(h, threads);
    }
    return head_(h, threads);
  }
  std::string name() const override { return "minkunet"; }
  int layers() const override {
    int n = 3 + 8;
    for (const auto& v : {down_blocks_, up_blocks_})
      for (const auto& bs : v)
        for (const Block& b : bs) n += 2 + (b.down ? 1 : 0);
    return n;
  }

 private:
  std::vector<Layer> stem_, down_, up_;
  std::vector<std::vector<Block>> down_blocks_, up_blocks_;
  Layer head_;
};

std::vector<ConvSpec> second_specs(const SecondConfig& c) {
  SPARTA_CHECK(c.in_channels >= 1, "the SECOND encoder needs at least one input channel");
  std::vector<ConvSpec> s = {subm_spec("conv_input.0", "conv_input.1", 3, c.in_channels, 16),
                             subm_spec("conv1.0.0", "conv1.0.1", 3, 16, 16)};
  const int64_t widths[4] = {16, 32, 64, 64};
  for (int st = 2; st <= 4; ++st) {
    const std::string p = "conv" + std::to_string(st);
    const int64_t cin = widths[st - 2], cout = widths[st - 1];
    s.push_back(down_spec(p + ".0.0", p + ".0.1", {3, 3, 3}, {2, 2, 2}, st == 4 ? I3{1, 1, 0} : I3{1, 1, 1}, cin, cout));
    for (int j = 1; j <= 2; ++j)
      s.push_back(subm_spec(p + "." + std::to_string(j) + ".0", p + "." + std::to_string(j) + ".1", 3, cout, cout));
  }
  s.push_back(down_spec("conv_out.0", "conv_out.1", {1, 1, 3}, {1, 1, 2}, {0, 0, 0}, 64, 128));
  return s;
}

class SecondEncoder final : public SparseNet {
 public:
  SecondEncoder(const StateDict& s, const SecondConfig& c) {
    for (const ConvSpec& spec : second_specs(c)) layers_.push_back(load(s, spec));
  }
  VoxelTensor forward(const VoxelTensor& x, int threads) const override {
    VoxelTensor h = x;
    for (const Layer& l : layers_) h = l(h, threads);
    return h;
  }
  std::string name() const override { return "second"; }
  int layers() const override { return int(layers_.size()); }

 private:
  std::vector<Layer> layers_;
};

StateDict random_state(const std::vector<ConvSpec>& specs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  StateDict s;
  const auto fill = [&](Shape shape, auto gen) {
    Tensor t(DType::f32, std::move(shape), Uninitialized{});
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = gen();
    return t;
  };
  for (const ConvSpec& c : specs) {
    const float scale = std::sqrt(2.f / float(c.cin * c.k[0] * c.k[1] * c.k[2]));  // He: activations keep their size
    s[c.conv + ".weight"] = fill(Shape{c.cout, c.k[0], c.k[1], c.k[2], c.cin}, [&] { return n(rng) * scale; });
    if (c.bn.empty()) {
      s[c.conv + ".bias"] = fill(Shape{c.cout}, [&] { return 0.1f * n(rng); });
      continue;
    }
    s[c.bn + ".weight"] = fill(Shape{c.cout}, [&] { return u(rng); });
    s[c.bn + ".bias"] = fill(Shape{c.cout}, [&] { return 0.1f * n(rng); });
    s[c.bn + ".running_mean"] = fill(Shape{c.cout}, [&] { return 0.1f * n(rng); });
    s[c.bn + ".running_var"] = fill(Shape{c.cout}, [&] { return u(rng); });
  }
  return s;
}

}  // namespace

std::unique_ptr<SparseNet> make_minkunet(const StateDict& state, const MinkUNetConfig& c) {
  return std::make_unique<MinkUNet>(state, c);
}
std::unique_ptr<SparseNet> make_second_encoder(const StateDict& state, const SecondConfig& c) {
  return std::make_unique<SecondEncoder>(state, c);
}
StateDict random_minkunet_state(const MinkUNetConfig& c, uint64_t seed) { return random_state(minkunet_specs(c), seed); }
StateDict random_second_state(const SecondConfig& c, uint64_t seed) { return random_state(second_specs(c), seed); }


namespace {

MinkUNetConfig minkunet_config(const SparseNetSpec& spec) {
  MinkUNetConfig c;
  c.in_channels = spec.in_channels, c.num_classes = spec.num_classes;
  if (!spec.channels.empty()) c.channels = spec.channels;
  return c;
}

SecondConfig second_config(const SparseNetSpec& spec) {
  SecondConfig c;
  c.in_channels = spec.in_channels;
  return c;
}

void check_kind(const SparseNetSpec& spec) {
  SPARTA_CHECK(spec.kind == "minkunet" || spec.kind == "second", "unknown network '", spec.kind, "' (minkunet, second)");
}

}  // namespace

std::unique_ptr<SparseNet> make_sparse_net(const SparseNetSpec& spec, const StateDict& state) {
  check_kind(spec);
  return spec.kind == "minkunet" ? make_minkunet(state, minkunet_config(spec))
                                 : make_second_encoder(state, second_config(spec));
}

StateDict random_sparse_net_state(const SparseNetSpec& spec, uint64_t seed) {
  check_kind(spec);
  return spec.kind == "minkunet" ? random_minkunet_state(minkunet_config(spec), seed)
                                 : random_second_state(second_config(spec), seed);
}

}  // namespace sparta
