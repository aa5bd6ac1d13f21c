// Code generation on Xbyak (Debian's libxbyak-dev, the assembler oneDNN
// uses): the common base of sparta's generators, the accounting of what
// they generate, and the policy for baking a pattern into straight-line
// code (see jit/README.md for the design and its measurements).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#define XBYAK_NO_OP_NAMES
#include <xbyak/xbyak.h>

namespace sparta::jit {

// A generated function's code: grows as it is emitted, is made read+exec by
// finish(), and lives as long as this object.
class Code : public Xbyak::CodeGenerator {
 public:
  Code() : Xbyak::CodeGenerator(4096, Xbyak::AutoGrow) {}
  // Seals the code (W^X: writable while emitted, then read+exec).
  void finish() { readyRE(); }
  const uint8_t* entry(size_t offset) const { return getCode() + offset; }
};

// Totals of this process's generation, for reports and load times.
struct Stats {
  int64_t kernels = 0;     // generated kernels (a kernel may hold several functions)
  int64_t code_bytes = 0;  // machine code emitted
  double gen_ms = 0;       // emitting code and tables
  double check_ms = 0;     // the self-check of each kernel against the reference
};
Stats stats();
void record(int64_t code_bytes, double gen_ms, double check_ms);
Stats since(const Stats& before);  // what was generated after `before`
std::string stats_str(const Stats& s);  // "3 kernels, 41 KiB of code, 2.1 ms + 0.8 ms self-check"

// Whether a generator bakes a pattern's offsets into straight-line code or
// keeps them in compact tables: SPARTA_JIT_BAKE=auto (the default: bake
// while the code stays under the budget), always, never.
enum class Bake { automatic, always, never };
Bake bake_policy();
// Overrides the environment (tests sweep every generator in both forms).
void set_bake_policy(Bake b);
// Straight-line code above this many bytes per kernel loses to tables (the
// instruction fetch outruns the table reads it saves); see jit/README.md.
constexpr size_t kBakeBudgetBytes = 96 * 1024;

}  // namespace sparta::jit
