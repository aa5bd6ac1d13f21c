#include "core/cpu.h"

#include <cstdlib>
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

bool host_supports(Isa isa) { return isa <= host_isa(); }

std::vector<Isa> host_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::portable, Isa::avx2, Isa::avx512})
    if (host_supports(i)) v.push_back(i);
  return v;
}

}  // namespace sparta
