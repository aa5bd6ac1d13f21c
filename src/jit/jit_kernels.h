// Kernels generated for one weight's exact pattern (see jit/README.md):
// one family per format, each over the generators of this folder, for the
// ISA given (AVX2 or AVX-512; the generated code is the same logic in ymm
// or zmm registers). A family declines (null, `why` set) when it does not
// apply. Every kernel is checked against the reference kernel once when it
// is generated, on seeded random rows with bias and an activation; a
// mismatch declines it (a generator bug, reported as such).
#pragma once

#include <memory>
#include <string>

#include "core/cpu.h"
#include "formats/formats.h"
#include "kernels/spmm.h"

namespace sparta {
struct JitSupport;  // kernels/isa_kernels.h
}  // namespace sparta

namespace sparta::jit {

// "jit_csr_avx2", "jit_bsr_avx512", ...
std::string kernel_name(const char* family, Isa isa);

std::unique_ptr<SpmmKernel> make_csr(const CsrMatrix& w, Isa isa, std::string& why);
std::unique_ptr<SpmmKernel> make_bsr(const BsrMatrix& w, Isa isa, std::string& why);
std::unique_ptr<SpmmKernel> make_nm(const NmMatrix& w, Isa isa, std::string& why);
std::unique_ptr<SpmmKernel> make_tilewise(const TilewiseMatrix& w, Isa isa, std::string& why);

// Internal to jit/: the mvec and nvec kernels over a prepared program, and
// the self-check every family runs.
struct Checked {
  std::unique_ptr<SpmmKernel> kernel;
  std::string why;  // set when declined
};
// The ISA's packing and epilogue for generated code, or null with `why`.
const JitSupport* support(Isa isa, std::string& why);
// BSR by block height: whole vectors of N (nvec), else vectorized along M.
std::unique_ptr<SpmmKernel> make_bsr_nvec(const BsrMatrix& w, Isa isa, std::string& why);
std::unique_ptr<SpmmKernel> make_bsr_mvec(const BsrMatrix& w, Isa isa, std::string& why);
Checked self_checked(std::unique_ptr<SpmmKernel> k, const WeightFormat& w, double gen_ms, size_t code_bytes);

}  // namespace sparta::jit
