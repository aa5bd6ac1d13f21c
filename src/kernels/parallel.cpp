#include "kernels/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace sparta {

void parallel_run(int threads, const std::function<void(int, int)>& fn) {
  if (threads <= 1) {
    fn(0, 1);
    return;
  }
#pragma omp parallel num_threads(threads)
  fn(omp_get_thread_num(), omp_get_num_threads());
}

void parallel_for(int threads, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, n / std::max<int64_t>(1, grain)));
  if (parts <= 1) {
    if (n > 0) f(0, n);
    return;
  }
  parallel_run(static_cast<int>(parts), [&](int t, int nt) {
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) f(b, e);
  });
}

void parallel_parts(int parts, int64_t n, const std::function<void(int, int64_t, int64_t)>& f) {
  // The bounds are arguments of f, so its loop need not recompute them
  // after every store (which may alias a captured n).
  // Parts, not threads, fix the split: two passes over the same parts
  // (count, then write) agree even if the runtime grants fewer threads.
  parts = std::max(1, parts);
  parallel_run(parts, [&](int t, int nt) {
    for (int p = t; p < parts; p += nt) f(p, n * p / parts, n * (p + 1) / parts);
  });
}

std::vector<int64_t> balanced_split(const std::vector<int64_t>& prefix, int parts) {
  SPARTA_ASSERT(!prefix.empty() && parts >= 1);
  const int64_t n = static_cast<int64_t>(prefix.size()) - 1, total = prefix.back();
  std::vector<int64_t> b(static_cast<size_t>(parts + 1));
  b[0] = 0;
  b[static_cast<size_t>(parts)] = n;
  for (int p = 1; p < parts; ++p) {
    const int64_t target = total * p / parts;
    int64_t i = std::lower_bound(prefix.begin(), prefix.end(), target) - prefix.begin();
    if (total == 0) i = n * p / parts;  // no cost information: split evenly
    b[static_cast<size_t>(p)] = std::clamp<int64_t>(i, b[static_cast<size_t>(p - 1)], n);
  }
  return b;
}

float* Scratch::get(size_t floats) {
  if (floats > cap_) {
    std::free(p_);
    cap_ = (floats + 1023) / 1024 * 1024;
    p_ = static_cast<float*>(std::aligned_alloc(64, cap_ * sizeof(float)));
    SPARTA_CHECK(p_ != nullptr, "out of memory for kernel scratch (", cap_ * 4, " bytes)");
    std::memset(p_, 0, cap_ * sizeof(float));
  }
  return p_;
}

Scratch::~Scratch() { std::free(p_); }

}  // namespace sparta
