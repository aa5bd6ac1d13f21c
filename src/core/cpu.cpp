#include "core/cpu.h"

#include <cpuid.h>

#include <cstdlib>
#include <dnnl.h>
#include <string>
#include <cstring>

#include "core/error.h"

namespace sparta {
namespace {

Isa detect() {
  __builtin_cpu_init();
  Isa best = Isa::portable;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
  if (best == Isa::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    best = Isa::avx512;
  return best;
}

Isa capped() {
  Isa hw = detect();
  const char* cap = std::getenv("SPARTA_ISA");
  if (!cap || !*cap) return hw;
  Isa want;
  if (!std::strcmp(cap, "avx512")) want = Isa::avx512;
  else if (!std::strcmp(cap, "avx2")) want = Isa::avx2;
  else if (!std::strcmp(cap, "portable")) want = Isa::portable;
  else throw Error(std::string("SPARTA_ISA='") + cap + "' is not one of avx512, avx2, portable");
  return want < hw ? want : hw;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::portable: return "portable";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa host_isa() {
  static const Isa isa = capped();
  return isa;
}

const std::string& host_cpu_model() {
  static const std::string model = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    char vendor[13] = {};
    __get_cpuid(0, &a, &b, &c, &d);
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned family = (a >> 8) & 0xF, model = (a >> 4) & 0xF;
    if (family == 0xF) family += (a >> 20) & 0xFF;
    if (family >= 6) model |= ((a >> 16) & 0xF) << 4;
    std::string s = std::string(vendor) + " " + std::to_string(family) + "." + std::to_string(model) + "." +
                    std::to_string(a & 0xF);
    char brand[49] = {};
    unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
    if (max_ext >= 0x80000004u)
      for (unsigned i = 0; i < 3; ++i) {
        __get_cpuid(0x80000002u + i, &a, &b, &c, &d);
        std::memcpy(brand + 16 * i, &a, 4);
        std::memcpy(brand + 16 * i + 4, &b, 4);
        std::memcpy(brand + 16 * i + 8, &c, 4);
        std::memcpy(brand + 16 * i + 12, &d, 4);
      }
    std::string bs(brand);
    while (!bs.empty() && (bs.back() == ' ' || bs.back() == '\0')) bs.pop_back();
    const size_t start = bs.find_first_not_of(' ');
    if (start != std::string::npos) s += " " + bs.substr(start);
    return s;
  }();
  return model;
}

const std::string& onednn_version() {
  static const std::string v = [] {
    const dnnl_version_t* d = dnnl_version();
    return std::to_string(d->major) + "." + std::to_string(d->minor) + "." + std::to_string(d->patch);
  }();
  return v;
}

bool host_supports(Isa isa) { return isa <= host_isa(); }

std::vector<Isa> host_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::portable, Isa::avx2, Isa::avx512})
    if (host_supports(i)) v.push_back(i);
  return v;
}

}  // namespace sparta
