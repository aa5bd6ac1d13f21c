// Coordinate order: the rows of packed coordinate keys (formats/coord_hash.h)
// sorted by key, stably. Sites, strided layers' output sites and blocked
// maps are all laid out in it.
#pragma once

#include <cstdint>
#include <vector>

namespace sparta {

// Rows [0, n) in ascending key order, equal keys in row order: a stable LSD
// radix sort over each field's range only (a scene spanning a few hundred
// cells per axis leaves about 30 of the 64 bits), with each row's
// index carried in the low bits of one 64-bit word when both fit. Threads
// split every pass's histogram and scatter by rows.
std::vector<int32_t> coordinate_order(const uint64_t* keys, int64_t n, int threads = 1);
// The same into order[0, n).
void coordinate_order(const uint64_t* keys, int64_t n, int threads, int32_t* order);

}  // namespace sparta
