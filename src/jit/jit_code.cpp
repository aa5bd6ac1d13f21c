#include "jit/jit_code.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace sparta::jit {

namespace {
std::mutex g_mu;
Stats g_stats;
}  // namespace

Stats stats() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_stats;
}

void record(int64_t code_bytes, double gen_ms, double check_ms) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_stats.kernels += 1;
  g_stats.code_bytes += code_bytes;
  g_stats.gen_ms += gen_ms;
  g_stats.check_ms += check_ms;
}

Stats since(const Stats& before) {
  Stats s = stats();
  s.kernels -= before.kernels;
  s.code_bytes -= before.code_bytes;
  s.gen_ms -= before.gen_ms;
  s.check_ms -= before.check_ms;
  return s;
}

std::string stats_str(const Stats& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "generated kernels: %lld, %.0f KiB of code, %.1f ms + %.1f ms self-check",
                static_cast<long long>(s.kernels), static_cast<double>(s.code_bytes) / 1024.0, s.gen_ms, s.check_ms);
  return buf;
}

namespace {
std::atomic<int> g_bake_override{-1};
}  // namespace

void set_bake_policy(Bake b) { g_bake_override = static_cast<int>(b); }

Bake bake_policy() {
  if (const int o = g_bake_override.load(); o >= 0) return static_cast<Bake>(o);
  static const Bake b = [] {
    const char* v = std::getenv("SPARTA_JIT_BAKE");
    if (!v || !*v || std::strcmp(v, "auto") == 0) return Bake::automatic;
    if (std::strcmp(v, "always") == 0) return Bake::always;
    if (std::strcmp(v, "never") == 0) return Bake::never;
    throw Error(std::string("SPARTA_JIT_BAKE='") + v + "': expected auto, always or never");
  }();
  return b;
}

}  // namespace sparta::jit
