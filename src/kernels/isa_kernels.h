// The optimized kernel families, one table per ISA. Each table is filled by a
// translation unit that compiles the same templates (spmm_isa.inc) for its
// target; dispatch (spmm.cpp) picks the table once from the host's features.
#pragma once

#include <memory>
#include <string>

#include "formats/formats.h"
#include "kernels/spmm.h"

namespace sparta {

struct IsaKernels {
  using CsrMaker = std::unique_ptr<SpmmKernel> (*)(const CsrMatrix&, std::string& why);
  using BsrMaker = std::unique_ptr<SpmmKernel> (*)(const BsrMatrix&, std::string& why);
  using NmMaker = std::unique_ptr<SpmmKernel> (*)(const NmMatrix&, std::string& why);
  using TileMaker = std::unique_ptr<SpmmKernel> (*)(const TilewiseMatrix&, std::string& why);
  Isa isa;
  CsrMaker csr_mvec;
  BsrMaker bsr_mvec;   // vectorized along M: small block heights
  BsrMaker bsr_nvec;   // vectorized along N: block height a multiple of the vector width
  NmMaker nm_nvec;    // vectorized along N with register permutes; M must divide the width
  NmMaker nm_mvec;
  TileMaker tilewise_nvec;
  double (*peak_fma_gflops)(double seconds);  // one core, this ISA
};

const IsaKernels& isa_kernels_avx512();
const IsaKernels& isa_kernels_avx2();
const IsaKernels& isa_kernels_portable();
const IsaKernels& isa_kernels(Isa isa);

}  // namespace sparta
