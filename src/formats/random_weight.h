// Random pruned weights with the structure each format is built for, for
// benchmarks and examples: a stand-in for a pruning algorithm's output with
// a controlled pattern and density.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "formats/formats.h"

namespace sparta {

// W[N,K] with values uniform in [-1, 1] (never exactly zero where kept) and
// zeros placed by `format`'s structure:
//   dense       density ignored, all kept
//   csr         exactly round(density * N * K) elements, uniformly at random
//   bsr         exactly round(density * blocks) whole blocks of opt.block
//   nm          every group of M keeps exactly N (density ignored: N/M)
//   tilewise    each tile of opt.tile rows keeps its own round(density * K) columns
//   structured  round(sqrt(density) * N) rows x round(sqrt(density) * K) columns
Tensor random_pruned_weight(const std::string& format, const PackOptions& opt, int64_t n, int64_t k, double density,
                            uint64_t seed);

}  // namespace sparta
