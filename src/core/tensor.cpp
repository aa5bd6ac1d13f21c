#include "core/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace sparta {
namespace {

// Large blocks are kept for reuse instead of going back to the system: a
// graph run frees and allocates the same sizes over and over, and a block
// fresh from the kernel costs a page fault per 4 KB (zeroed by the kernel)
// on first touch. Sizes are rounded to eight classes per power of two
// (at most 12.5% slack) and at most kMaxCached bytes are kept.
// Small blocks (under 64 KB, in power-of-two classes) are kept per thread,
// up to kPerClass of each: a model of small tensors (a voice frame, a short
// sentence) otherwise spends a fifth of its run in malloc and free. A block
// freed on another thread than it was made on joins that thread's lists.
class SmallCache {
 public:
  static constexpr int kClasses = 10;  // 64 B, 128 B, ..., 32 KB
  static constexpr size_t kPerClass = 32;
  ~SmallCache() {
    dead = true;
    for (auto& list : free_)
      for (void* p : list) std::free(p);
  }
  static int index(size_t cls) { return std::countr_zero(cls) - 6; }  // cls a power of two >= 64
  void* get(size_t cls) {
    auto& list = free_[index(cls)];
    if (list.empty()) return nullptr;
    void* p = list.back();
    list.pop_back();
    return p;
  }
  bool put(void* p, size_t cls) {
    auto& list = free_[index(cls)];
    if (list.size() >= kPerClass) return false;
    list.push_back(p);
    return true;
  }
  // Set when this thread's cache is gone (thread exit): later frees on it
  // (tensors destroyed by other thread-local or static destructors) go
  // straight to the system.
  static thread_local bool dead;

 private:
  std::vector<void*> free_[kClasses];
};
thread_local bool SmallCache::dead = false;

SmallCache* small_cache() {
  if (SmallCache::dead) return nullptr;
  thread_local SmallCache c;
  return &c;
}
void* small_get(size_t cls) {
  SmallCache* c = small_cache();
  return c ? c->get(cls) : nullptr;
}
bool small_put(void* p, size_t cls) {
  SmallCache* c = small_cache();
  return c && c->put(p, cls);
}

class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 10;
  static constexpr size_t kMaxCached = size_t{512} << 20;

  static size_t size_class(size_t bytes) {
    if (bytes < kMinBytes) return std::max<size_t>(64, std::bit_ceil(bytes));  // SmallCache's classes
    size_t top = size_t{1} << (63 - __builtin_clzll(bytes));  // highest power of two <= bytes
    const size_t step = top / 8;
    return (bytes + step - 1) / step * step;
  }
  void* get(size_t cls) {
    if (cls < kMinBytes)
      if (void* p = small_get(cls)) return p;
    if (cls >= kMinBytes) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= cls;
        return p;
      }
    }
    if (cls >= kHugeBytes) return map_huge(cls);
    return std::aligned_alloc(64, cls);
  }
  void put(void* p, size_t cls) {
    if (cls < kMinBytes && small_put(p, cls)) return;
    if (cls >= kMinBytes) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + cls <= kMaxCached) {
        free_[cls].push_back(p);
        cached_ += cls;
        return;
      }
    }
    if (cls >= kHugeBytes) {
      ::munmap(p, huge_length(cls));
      return;
    }
    std::free(p);
  }

 private:
  // Blocks of 4 MB and more are mapped 2 MB-aligned and advised as huge
  // pages: one fault per 2 MB instead of per 4 KB (importing BERT-base
  // touches 440 MB of fresh weights).
  static constexpr size_t kHugeBytes = size_t{4} << 20;
  static constexpr size_t kHugePage = size_t{2} << 20;
  static size_t huge_length(size_t cls) { return (cls + kHugePage - 1) / kHugePage * kHugePage; }
  static void* map_huge(size_t cls) {
    const size_t len = huge_length(cls);
    void* raw = ::mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    // Trim to a 2 MB-aligned range of len bytes.
    const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (base + kHugePage - 1) / kHugePage * kHugePage;
    if (aligned > base) ::munmap(raw, aligned - base);
    const size_t tail = (base + len + kHugePage) - (aligned + len);
    if (tail) ::munmap(reinterpret_cast<void*>(aligned + len), tail);
    ::madvise(reinterpret_cast<void*>(aligned), len, MADV_HUGEPAGE);
    return reinterpret_cast<void*>(aligned);
  }

  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

BlockCache& block_cache() {
  static BlockCache* c = new BlockCache;  // never destroyed: tensors may outlive statics
  return *c;
}

}  // namespace

void AlignedFree::operator()(void* p) const { block_cache().put(p, bytes); }

void* cached_alloc(size_t bytes) {
  void* p = block_cache().get(BlockCache::size_class(bytes == 0 ? 64 : bytes));
  if (!p) throw std::bad_alloc();
  return p;
}
void cached_free(void* p, size_t bytes) {
  if (p) block_cache().put(p, BlockCache::size_class(bytes == 0 ? 64 : bytes));
}

std::shared_ptr<void> aligned_alloc_shared(size_t bytes, bool zero) {
  const size_t cls = BlockCache::size_class(bytes == 0 ? 64 : bytes);
  void* p = block_cache().get(cls);
  SPARTA_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes");
  if (zero) std::memset(p, 0, bytes);
  return std::shared_ptr<void>(p, AlignedFree{cls});
}

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), data_(aligned_alloc_shared(nbytes())) {}

Tensor::Tensor(DType dtype, Shape shape, Uninitialized)
    : dtype_(dtype), shape_(std::move(shape)), data_(aligned_alloc_shared(nbytes(), false)) {}

Tensor::Tensor(DType dtype, Shape shape, std::shared_ptr<void> storage)
    : dtype_(dtype), shape_(std::move(shape)), data_(std::move(storage)) {
  SPARTA_ASSERT(data_ != nullptr || nbytes() == 0, "adopted tensor storage is null");
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_, Uninitialized{});
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  SPARTA_CHECK(shape.numel() == numel(), "cannot reshape ", shape_.str(), " to ", shape.str());
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor select_along(const Tensor& t, int axis, const std::vector<int64_t>& index) {
  SPARTA_CHECK(axis >= 0 && axis < t.rank(), "select_along: axis ", axis, " of a rank-", t.rank(), " tensor");
  std::vector<int64_t> d = t.shape().dims();
  const int64_t old = d[static_cast<size_t>(axis)];
  for (int64_t i : index) SPARTA_CHECK(i >= 0 && i < old, "select_along: index ", i, " outside [0, ", old, ")");
  d[static_cast<size_t>(axis)] = static_cast<int64_t>(index.size());
  Tensor out(t.dtype(), Shape(d), Uninitialized{});
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= t.dim(i);
  for (int i = axis + 1; i < t.rank(); ++i) inner *= t.dim(i);
  const size_t row = static_cast<size_t>(inner) * dtype_size(t.dtype());
  const auto* src = static_cast<const char*>(t.raw());
  auto* dst = static_cast<char*>(out.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < index.size(); ++k)
      std::memcpy(dst + (static_cast<size_t>(o) * index.size() + k) * row,
                  src + static_cast<size_t>(o * old + index[k]) * row, row);
  return out;
}

}  // namespace sparta
