// The kernel templates of spmm_isa.inc compiled for avx2. Every symbol lives in
// namespace sparta::isa_avx2 so that nothing compiled for this target can be picked
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

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2")
namespace sparta::isa_avx2 {
#include "kernels/simd/vec_avx2.h"
#include "kernels/simd/vmath.h"
using S = VecAvx2;
#include "kernels/spmm_isa.inc"
}  // namespace sparta::isa_avx2
#pragma GCC pop_options

namespace sparta {

const IsaKernels& isa_kernels_avx2() {
  static const IsaKernels k{Isa::avx2,           &isa_avx2::make_csr_mvec, &isa_avx2::make_csr_mvec2, &isa_avx2::make_bsr_mvec,
                            &isa_avx2::make_bsr_nvec, &isa_avx2::make_nm_nvec, &isa_avx2::make_nm_mvec,  &isa_avx2::make_tilewise_nvec, &isa_avx2::make_dense_nvec, &isa_avx2::make_dense_nvec_raw, &isa_avx2::peak_fma_gflops,
                            &isa_avx2::row_ops_table, &isa_avx2::jit_support_table, &isa_avx2::make_csr_rowdot, &isa_avx2::make_nm_rowdot, &isa_avx2::make_bsr_rowdot,
                            &isa_avx2::sparse_conv_table};
  return k;
}

}  // namespace sparta
