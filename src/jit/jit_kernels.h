// Kernels generated for one weight's exact pattern (see jit/README.md):
// one family per format, each over the generators of this folder, for the
// ISA given (AVX2 or AVX-512; the generated code is the same logic in ymm
// or zmm registers). A family declines (null, `why` set) when it does not
// apply. Every kernel is checked against the reference kernel once when it
// is generated, on seeded random rows with bias and an activation; a
// mismatch declines it (a generator bug, reported as such).
#pragma once

#include <chrono>
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

// Internal to jit/: the ISA support, BSR's two generators, and the
// self-check every family runs.
// The ISA's packing and epilogue for generated code, or null with `why`.
const JitSupport* support(Isa isa, std::string& why);
// Whether byte offsets k * bytes_per_k into packed X fit the 32-bit
// offsets of the generated code for every k < K; else `why` says not.
bool offsets_fit(int64_t K, int64_t bytes_per_k, std::string& why);
// BSR by block height: whole vectors of N (nvec), else vectorized along M.
std::unique_ptr<SpmmKernel> make_bsr_nvec(const BsrMatrix& w, Isa isa, std::string& why);
std::unique_ptr<SpmmKernel> make_bsr_mvec(const BsrMatrix& w, Isa isa, std::string& why);
// k, generated since t0 with code_bytes of code, checked against the
// reference kernel of w and counted in jit::stats(); null with `why` set
// when it computes something else.
std::unique_ptr<SpmmKernel> checked(std::unique_ptr<SpmmKernel> k, size_t code_bytes, const WeightFormat& w,
                                    std::chrono::steady_clock::time_point t0, std::string& why);

}  // namespace sparta::jit
