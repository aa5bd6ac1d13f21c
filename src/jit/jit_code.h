// Code generation on Xbyak (Debian's libxbyak-dev, the assembler oneDNN
// uses): the common base of sparta's generators, the accounting of what
// they generate, and the policy for baking a pattern into straight-line
// code (see jit/README.md for the design and its measurements).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "jit/jit_stats.h"

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
