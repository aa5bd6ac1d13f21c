// The kernel templates of spmm_isa.inc compiled for avx512. Every symbol lives in
// namespace sparta::isa_avx512 so that nothing compiled for this target can be picked
// by the linker for another one.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/isa_kernels.h"
#include "kernels/parallel.h"
#include "kernels/spmm.h"

// GCC 12 reports its own AVX-512 intrinsics (their _mm512_undefined_ps
// operand) as (maybe-)uninitialized once inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,bmi,bmi2")
namespace sparta::isa_avx512 {
#include "kernels/simd/vec_avx512.h"
#include "kernels/simd/vmath.h"
using S = VecAvx512;
#include "kernels/spmm_isa.inc"
}  // namespace sparta::isa_avx512
#pragma GCC pop_options

namespace sparta {

const IsaKernels& isa_kernels_avx512() {
  static const IsaKernels k{Isa::avx512,           &isa_avx512::make_csr_mvec, &isa_avx512::make_csr_mvec2, &isa_avx512::make_bsr_mvec,
                            &isa_avx512::make_bsr_nvec, &isa_avx512::make_nm_nvec, &isa_avx512::make_nm_mvec,  &isa_avx512::make_tilewise_nvec, &isa_avx512::make_dense_nvec, &isa_avx512::make_dense_nvec_raw, &isa_avx512::peak_fma_gflops,
                            &isa_avx512::row_ops_table, &isa_avx512::jit_support_table, &isa_avx512::make_csr_rowdot, &isa_avx512::make_nm_rowdot, &isa_avx512::make_bsr_rowdot,
                            &isa_avx512::sparse_conv_table};
  return k;
}

}  // namespace sparta
