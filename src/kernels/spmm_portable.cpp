// The kernel templates of spmm_isa.inc compiled for portable. Every symbol lives in
// namespace sparta::isa_portable so that nothing compiled for this target can be picked
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


namespace sparta::isa_portable {
#include "kernels/simd/vec_portable.h"
#include "kernels/simd/vmath.h"
using S = VecPortable;
#include "kernels/spmm_isa.inc"
}  // namespace sparta::isa_portable


namespace sparta {

const IsaKernels& isa_kernels_portable() {
  static const IsaKernels k{Isa::portable,           &isa_portable::make_csr_mvec, &isa_portable::make_csr_mvec2, &isa_portable::make_bsr_mvec,
                            &isa_portable::make_bsr_nvec, &isa_portable::make_nm_nvec, &isa_portable::make_nm_mvec,  &isa_portable::make_tilewise_nvec, &isa_portable::make_dense_nvec, &isa_portable::make_dense_nvec_raw, &isa_portable::peak_fma_gflops,
                            &isa_portable::row_ops_table, &isa_portable::jit_support_table, &isa_portable::make_csr_rowdot, &isa_portable::make_nm_rowdot, &isa_portable::make_bsr_rowdot,
                            &isa_portable::sparse_conv_table};
  return k;
}

}  // namespace sparta
