// What this process's code generators produced (jit/): counted by every
// generated kernel, read by compiling, loading and the benchmarks. Light
// on purpose: no assembler behind it.
#pragma once

#include <cstdint>
#include <string>

namespace sparta::jit {

struct Stats {
  int64_t kernels = 0;     // generated kernels (a kernel may hold several functions)
  int64_t code_bytes = 0;  // machine code emitted
  double gen_ms = 0;       // emitting code and tables
  double check_ms = 0;     // the self-check of each kernel against the reference
};
Stats stats();
void record(int64_t code_bytes, double gen_ms, double check_ms);
Stats since(const Stats& before);  // what was generated after `before`
// "generated kernels: 71, 46 KiB of code, 38.0 ms + 40.1 ms self-check"
std::string stats_str(const Stats& s);

}  // namespace sparta::jit
