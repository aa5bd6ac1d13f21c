// What the generated families share: names, the ISA check, BSR's dispatch
// by block height, and the self-check at generation.
#include "jit/jit_kernels.h"

#include <chrono>
#include <cmath>
#include <random>

#include "jit/jit_code.h"
#include "kernels/isa_kernels.h"

namespace sparta::jit {

std::string kernel_name(const char* family, Isa isa) {
  return std::string("jit_") + family + "_" + std::string(isa_name(isa));
}

const JitSupport* support(Isa isa, std::string& why) {
  if (isa != Isa::avx2 && isa != Isa::avx512) {
    why = "code is generated for AVX2 and AVX-512 only";
    return nullptr;
  }
  if (!host_supports(isa)) {
    why = "the host has no " + std::string(isa_name(isa));
    return nullptr;
  }
  return isa_kernels(isa).jit;
}

bool offsets_fit(int64_t K, int64_t bytes_per_k, std::string& why) {
  if (K * bytes_per_k >= (int64_t{1} << 31) - 4096) {
    why = "K=" + std::to_string(K) + " is too long for 32-bit X offsets";
    return false;
  }
  return true;
}

std::unique_ptr<SpmmKernel> make_bsr(const BsrMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io) return nullptr;
  return w.block.r % io->width == 0 ? make_bsr_nvec(w, isa, why) : make_bsr_mvec(w, isa, why);
}

// Two rows (a partial M tile on every ISA, and a row stride) of seeded
// random X, with a bias and ReLU, against the reference kernel in double.
std::unique_ptr<SpmmKernel> checked(std::unique_ptr<SpmmKernel> k, size_t code_bytes, const WeightFormat& w,
                                    std::chrono::steady_clock::time_point t0, std::string& why) {
  const auto t1 = std::chrono::steady_clock::now();
  const double gen_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  constexpr int64_t kRows = 2;
  const int64_t n = k->n(), kk = k->k();
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> x(static_cast<size_t>(kRows * kk)), bias(static_cast<size_t>(n));
  for (auto& v : x) v = d(rng);
  for (auto& v : bias) v = d(rng);
  std::vector<float> y(static_cast<size_t>(kRows * n), NAN), ref(static_cast<size_t>(kRows * n), NAN);
  const Epilogue ep{bias.data(), Activation::relu, false};
  k->run(SpmmArgs{x.data(), kRows, kk, y.data(), n, ep, 1});
  make_spmm_reference(w)->run(SpmmArgs{x.data(), kRows, kk, ref.data(), n, ep, 1});
  double scale = 1, err = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(ref[i])));
    const double e = std::fabs(static_cast<double>(y[i]) - ref[i]);
    err = std::isnan(e) ? INFINITY : std::max(err, e);
  }
  const double check_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  if (!(err <= 1e-4 * scale)) {
    why = "generated code failed its self-check against the reference (error " + std::to_string(err) + " at scale " +
          std::to_string(scale) + "): a generator bug";
    return nullptr;
  }
  record(static_cast<int64_t>(code_bytes), gen_ms, check_ms);
  return k;
}

}  // namespace sparta::jit
