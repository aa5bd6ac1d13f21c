// Threading for kernels: a parallel-for over work items split by cost, so a
// thread's share of nonzeros (not of rows) is balanced. Uses OpenMP, the
// runtime oneDNN uses too, so the two share one thread pool.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace sparta {

// Calls fn(tid, nthreads) on `threads` threads (or inline when threads <= 1).
void parallel_run(int threads, const std::function<void(int, int)>& fn);

// Calls f(begin, end) over parts of [0, n) on up to `threads` threads, each
// part at least `grain` items (inline when there is one part; not at all
// when n is 0).
void parallel_for(int threads, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

// Calls f(part, begin, end) for part p in [0, parts), owning [n * p /
// parts, n * (p + 1) / parts), on up to `parts` threads (inline when parts
// <= 1): for work that keeps per-part state (histograms, counts) merged in
// part order. The split never depends on the threads granted.
void parallel_parts(int parts, int64_t n, const std::function<void(int, int64_t, int64_t)>& f);

// Split [0, n) into `parts` contiguous ranges of near-equal cost; prefix has
// n + 1 entries (prefix[i] = cost of items [0, i)). Returns parts + 1 bounds.
std::vector<int64_t> balanced_split(const std::vector<int64_t>& prefix, int parts);

// Aligned scratch memory that grows on demand and is reused across calls.
class Scratch {
 public:
  float* get(size_t floats);
  ~Scratch();

 private:
  float* p_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace sparta
