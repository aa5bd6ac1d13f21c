// The mvec-generated families: CSR (r = c = 1), N:M (CSR with a fixed
// count per row) and BSR blocks whose height is not a whole number of
// vectors (r x c items, groups of up to 8 rows).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <unistd.h>

#include "core/error.h"
#include "jit/jit_kernels.h"
#include "jit/mvec_gen.h"
#include "kernels/isa_kernels.h"
#include "kernels/parallel.h"

namespace sparta::jit {

namespace {

thread_local Scratch tls_xp;  // packed X, owned by the calling thread
// What tls_xp holds: X's token (SpmmArgs::x_token; 0: nothing reusable),
// address, shape and tile width.
struct PackedX {
  uint64_t token = 0;
  const float* x = nullptr;
  int64_t m = 0, ldx = 0, k = 0;
  int mt = 0;
  bool operator==(const PackedX& o) const {
    return token == o.token && x == o.x && m == o.m && ldx == o.ldx && k == o.k && mt == o.mt;
  }
};
thread_local PackedX tls_xp_holds;
thread_local Scratch tls_yt;  // per worker: one chunk's transposed results

// A weight for the mvec generator, before it is cut into slices: per
// group its item count, per item its first k, and the values in order.
struct MvecWeight {
  int64_t n = 0, k = 0;
  MvecShape shape;
  std::vector<int32_t> counts;
  std::vector<int32_t> item_k;  // within a group, ascending by k / align
  std::vector<float> vals;
  int align = 1;  // K panels start at multiples of this (c; M of N:M)
};

// The L1 data cache of this host (sysconf), 32 KiB when unknown.
int64_t l1_bytes() {
  static const int64_t b = [] {
    const long v = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    return v >= 16 * 1024 && v <= 1024 * 1024 ? int64_t{v} : int64_t{32 * 1024};
  }();
  return b;
}

class MvecKernel final : public SpmmKernel {
 public:
  // The program is the weight in slices: chunks of output rows (sharing
  // one transposed buffer; a thread's share is whole chunks), each cut
  // into K panels whose packed X fills 2/3 of L1, so that the X a
  // chunk reads stays in L1 while its rows pass (X of all of K does not
  // fit: at 768 columns a 64-row tile is 192 KiB, and each nonzero would
  // read its 4 cache lines from L2).
  MvecKernel(std::string name, const MvecWeight& w, const JitSupport& io)
      : SpmmKernel(w.n, w.k), name_(std::move(name)), s_(w.shape), io_(io) {
    const int64_t groups = static_cast<int64_t>(w.counts.size());
    const int64_t chunk_rows = std::clamp<int64_t>((n_ / 8 + s_.r - 1) / s_.r * s_.r, s_.r, 256);
    chunk_groups_ = std::max<int64_t>(1, chunk_rows / s_.r);
    const int64_t panel_bytes = l1_bytes() * 2 / 3;
    panel_k_ = std::max<int64_t>(w.align, panel_bytes / (int64_t{s_.mt()} * 4) / w.align * w.align);
    panels_ = std::max<int64_t>(1, (k_ + panel_k_ - 1) / panel_k_);
    std::vector<int64_t> first_item(static_cast<size_t>(groups + 1), 0);
    for (int64_t g = 0; g < groups; ++g) first_item[static_cast<size_t>(g + 1)] = first_item[static_cast<size_t>(g)] + w.counts[static_cast<size_t>(g)];
    const int64_t per_item = int64_t{s_.r} * s_.c, mt_bytes = int64_t{s_.mt()} * 4;
    const size_t prog_groups = static_cast<size_t>(panels_ * groups);
    const Bake policy = bake_policy();
    // Baked value positions are 32-bit displacements: larger weights use tables.
    const bool fits = static_cast<int64_t>(w.vals.size()) * 4 < (int64_t{1} << 31) - 4096;
    baked_ = fits && (policy == Bake::always ||
                      (policy == Bake::automatic &&
                       MvecCode::baked_bytes(s_, w.item_k.size(), prog_groups) <= kBakeBudgetBytes));
    s_.paired = !baked_ && s_.r == 1 && s_.c == 1;
    prog_.counts.reserve(prog_groups);
    if (s_.paired) {
      entries_.reserve(w.item_k.size());
    } else {
      prog_.offs.reserve(w.item_k.size());
      vals_.reserve(w.vals.size());
    }
    slice_group_.push_back(0);
    slice_item_.push_back(0);
    cost_.push_back(0);
    std::vector<bool> accumulate;
    // A group's items come in panel order (see MvecWeight::align): each
    // panel takes the next run of them.
    std::vector<int64_t> cur(first_item.begin(), first_item.end() - 1);
    for (int64_t g0 = 0; g0 < groups; g0 += chunk_groups_) {
      const int64_t g1 = std::min(groups, g0 + chunk_groups_);
      int64_t cost = 0;
      for (int64_t p = 0; p < panels_; ++p) {
        for (int64_t g = g0; g < g1; ++g) {
          int32_t n_in = 0;
          int64_t& i = cur[static_cast<size_t>(g)];
          for (; i < first_item[static_cast<size_t>(g + 1)] && w.item_k[static_cast<size_t>(i)] / panel_k_ == p; ++i) {
            ++n_in;
            const auto off = static_cast<int32_t>(w.item_k[static_cast<size_t>(i)] * mt_bytes);
            if (s_.paired) {
              uint32_t bits;
              std::memcpy(&bits, &w.vals[static_cast<size_t>(i)], 4);
              entries_.push_back(uint64_t{bits} | uint64_t{static_cast<uint32_t>(off)} << 32);
              continue;
            }
            prog_.offs.push_back(off);
            vals_.insert(vals_.end(), w.vals.begin() + i * per_item, w.vals.begin() + (i + 1) * per_item);
          }
          if (p + 1 == panels_)
            SPARTA_ASSERT(i == first_item[static_cast<size_t>(g + 1)], "mvec items out of panel order");
          prog_.counts.push_back(n_in);
          cost += n_in * per_item + s_.r * 2;
        }
        slice_group_.push_back(static_cast<int64_t>(prog_.counts.size()));
        slice_item_.push_back(static_cast<int64_t>(s_.paired ? entries_.size() : prog_.offs.size()));
        accumulate.push_back(p > 0);
      }
      chunk_first_.push_back(g0);
      cost_.push_back(cost_.back() + cost);
    }
    chunk_first_.push_back(groups);
    code_ = baked_ ? MvecCode::baked(s_, prog_, slice_group_, accumulate) : MvecCode::table(s_);
  }
  std::string name() const override { return name_; }
  size_t code_bytes() const { return code_->code_bytes(); }
  int packed_tile() const override { return s_.mt(); }

  void run(const SpmmArgs& a) const override {
    const int MT = s_.mt();
    const int64_t tiles = (a.m + MT - 1) / MT;
    if (tiles == 0 || n_ == 0) return;
    SPARTA_ASSERT((!a.x_packed || a.x_packed == MT) && (!a.y_packed || (a.y_packed == MT && !a.ep.accumulate)),
                  "packed handoff of another tile width");
    const float* xp = a.x;
    if (!a.x_packed) {
      const PackedX want{a.x_token, a.x, a.m, a.ldx, k_, MT};
      float* p = tls_xp.get(static_cast<size_t>(std::max<int64_t>(1, tiles * k_ * MT)));
      if (!(a.x_token && tls_xp_holds == want)) {  // else this thread packed this very X last
        tls_xp_holds = PackedX{};
        parallel_run(static_cast<int>(std::min<int64_t>(a.threads, tiles)), [&](int tid, int nt) {
          for (int64_t t = tid; t < tiles; t += nt)
            io_.pack_mvec(a.x + t * MT * a.ldx, a.ldx, std::min<int64_t>(MT, a.m - t * MT), k_, p + t * k_ * MT, MT);
        });
        tls_xp_holds = want;
      }
      xp = p;
    }
    parallel_run(a.threads, [&](int tid, int nt) {
      const std::vector<int64_t> b = balanced_split(cost_, nt);
      const int64_t c0 = b[static_cast<size_t>(tid)], c1 = b[static_cast<size_t>(tid + 1)];
      if (c0 >= c1) return;
      float* yt = tls_yt.get(static_cast<size_t>((chunk_groups_ * s_.r + io_.width) * MT));
      const int64_t per_item = int64_t{s_.r} * s_.c;
      // Tiles of M inside chunks: a chunk's tables (a weight is larger than
      // L2, and comes from L3 or memory in a model) are read from memory
      // once and from L2 for the other tiles; packed X (K x M) stays in L2.
      for (int64_t ci = c0; ci < c1; ++ci) {
        for (int64_t t = 0; t < tiles; ++t) {
          const float* xt = xp + t * k_ * MT;
          const int64_t mrows = std::min<int64_t>(MT, a.m - t * MT);
          for (int64_t p = 0; p < panels_; ++p) {
            const size_t sl = static_cast<size_t>(ci * panels_ + p);
            const int64_t i0 = slice_item_[sl];
            if (p > 0 && i0 == slice_item_[sl + 1]) continue;  // nothing to add
            const float* v = s_.paired ? nullptr : vals_.data() + i0 * per_item;
            if (baked_) code_->chunk_fn(sl)(xt, yt, v);
            else
              code_->table_fn(p > 0)(xt, yt, prog_.counts.data() + slice_group_[sl],
                                     s_.paired ? static_cast<const void*>(entries_.data() + i0) : prog_.offs.data() + i0, v,
                                     slice_group_[sl + 1] - slice_group_[sl]);
          }
          const int64_t g0 = chunk_first_[static_cast<size_t>(ci)], g1 = chunk_first_[static_cast<size_t>(ci + 1)];
          const int64_t n0 = g0 * s_.r;
          if (a.y_packed)
            io_.store_packed(yt, (g1 - g0) * s_.r, MT, a.y + (t * n_ + n0) * MT, a.ep.bias ? a.ep.bias + n0 : nullptr,
                             a.ep.act);
          else
            io_.store_mvec(yt, (g1 - g0) * s_.r, mrows, a.y + t * MT * a.ldy + n0, a.ldy, a.ep,
                           a.ep.bias ? a.ep.bias + n0 : nullptr, MT);
        }
      }
    });
  }

 private:
  std::string name_;
  MvecShape s_;
  const JitSupport& io_;
  int64_t chunk_groups_ = 1, panel_k_ = 1, panels_ = 1;
  MvecProgram prog_;                  // slices in order: chunk-major, then panel
  std::vector<float> vals_;           // in program order
  std::vector<uint64_t> entries_;     // paired form: value bits | offset << 32
  std::vector<int64_t> slice_group_;  // first program group of each slice, then the count
  std::vector<int64_t> slice_item_;   // first item of each slice, then the count
  std::vector<int64_t> chunk_first_;  // first group (of the weight) of each chunk, then the count
  std::vector<int64_t> cost_;         // prefix of the chunks' work
  bool baked_ = false;
  std::unique_ptr<MvecCode> code_;
};

// Register tiling for groups of r rows: mv vectors of M as wide as the
// accumulators allow (16 of 32 zmm, 8 of 16 ymm), then accumulator sets
// until 8 FMA chains are in flight (4-cycle latency on 2 pipes).
MvecShape mvec_shape(Isa isa, int r, int c, int mv_pref) {
  MvecShape s;
  s.avx512 = isa == Isa::avx512;
  s.r = r;
  s.c = c;
  const int budget = s.avx512 ? 16 : 8;
  s.mv = mv_pref;
  while (s.mv > 1 && r * s.mv > budget) s.mv /= 2;
  s.sets = std::max(1, 8 / (r * s.mv));
  if (c == 1 && r == 1 && s.sets < 2) s.sets = 2;
  while (s.sets > 1 && s.registers() > (s.avx512 ? 32 : 16)) --s.sets;
  return s;
}

// M tiles for one-element items: 2 vectors below 20% density, else 4.
// Each FMA reads its X vector from L1 at a table-given address, about 1.2
// such loads per cycle on this core (jit/README.md): a wider tile shares one broadcast
// weight among more FMAs, a narrower one keeps more K in an L1 panel.
// Measured at 128x768x3072 on AVX-512 (ms, 2 vs 4 vectors): 10% 0.51 vs
// 0.65, 20% 0.99 vs 0.98, 30% 1.44 vs 1.33, 50% 2.31 vs 2.05.
int csr_vectors(double density) { return density < 0.2 ? 2 : 4; }

std::unique_ptr<SpmmKernel> finish(const char* family, Isa isa, const MvecWeight& mw, const WeightFormat& w,
                                   std::chrono::steady_clock::time_point t0, std::string& why, const JitSupport& io) {
  auto k = std::make_unique<MvecKernel>(kernel_name(family, isa), mw, io);
  const size_t bytes = k->code_bytes();
  return checked(std::move(k), bytes, w, t0, why);
}

}  // namespace

std::unique_ptr<SpmmKernel> make_csr(const CsrMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  const double density = w.rows > 0 && w.cols > 0 ? static_cast<double>(w.nnz()) / static_cast<double>(w.rows * w.cols) : 0;
  MvecWeight mw;
  mw.n = w.rows;
  mw.k = w.cols;
  mw.shape = mvec_shape(isa, 1, 1, csr_vectors(density));
  if (!offsets_fit(w.cols, int64_t{mw.shape.mt()} * 4, why)) return nullptr;
  mw.counts.resize(static_cast<size_t>(w.rows));
  for (int64_t r = 0; r < w.rows; ++r)
    mw.counts[static_cast<size_t>(r)] = static_cast<int32_t>(w.row_ptr[static_cast<size_t>(r + 1)] - w.row_ptr[static_cast<size_t>(r)]);
  mw.item_k = w.col_idx;
  mw.vals = w.values;
  return finish("csr", isa, mw, w, t0, why, *io);
}

std::unique_ptr<SpmmKernel> make_nm(const NmMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  MvecWeight mw;
  mw.n = w.rows;
  mw.k = w.cols;
  mw.shape = mvec_shape(isa, 1, 1, csr_vectors(static_cast<double>(w.nm.n) / w.nm.m));
  if (!offsets_fit(w.cols, int64_t{mw.shape.mt()} * 4, why)) return nullptr;
  const int64_t spr = w.slots_per_row(), n = w.nm.n, m = w.nm.m;
  mw.align = w.nm.m;  // a group's slots are in any order inside it
  mw.counts.assign(static_cast<size_t>(w.rows), static_cast<int32_t>(spr));
  mw.item_k.resize(static_cast<size_t>(w.rows * spr));
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t s = 0; s < spr; ++s) {
      const size_t i = static_cast<size_t>(r * spr + s);
      mw.item_k[i] = static_cast<int32_t>((s / n) * m + w.index[i]);
    }
  mw.vals = w.values;
  return finish("nm", isa, mw, w, t0, why, *io);
}

// BSR through the mvec generator: groups of R rows of a block row (R the
// largest of 8, 4, 2, 1 dividing r), items its blocks, or for blocks wider
// than 64 columns (the item is unrolled) runs of cs consecutive columns of
// them, cs the largest divisor of c up to 64.
std::unique_ptr<SpmmKernel> make_bsr_mvec(const BsrMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  const int r = w.block.r, c = w.block.c;
  const int R = r % 8 == 0 ? 8 : r % 4 == 0 ? 4 : r % 2 == 0 ? 2 : 1;
  int cs = std::min(c, 64);
  while (c % cs != 0) --cs;
  const int parts = c / cs;
  MvecWeight mw;
  mw.n = w.rows;
  mw.k = w.cols;
  mw.shape = mvec_shape(isa, R, cs, 4);
  if (!offsets_fit(w.cols, int64_t{mw.shape.mt()} * 4, why)) return nullptr;
  const int64_t nbr = w.rows / r, sub = r / R;
  mw.align = cs;
  mw.counts.reserve(static_cast<size_t>(nbr * sub));
  mw.vals.reserve(w.values.size());
  for (int64_t br = 0; br < nbr; ++br) {
    const int64_t b0 = w.block_row_ptr[static_cast<size_t>(br)], b1 = w.block_row_ptr[static_cast<size_t>(br + 1)];
    for (int64_t q = 0; q < sub; ++q) {
      mw.counts.push_back(static_cast<int32_t>((b1 - b0) * parts));
      for (int64_t b = b0; b < b1; ++b) {
        const float* bv = w.values.data() + b * r * c;
        for (int s = 0; s < parts; ++s) {
          mw.item_k.push_back(static_cast<int32_t>(int64_t{w.block_col[static_cast<size_t>(b)]} * c + s * cs));
          for (int j = s * cs; j < (s + 1) * cs; ++j)
            for (int i = 0; i < R; ++i) mw.vals.push_back(bv[j * r + q * R + i]);
        }
      }
    }
  }
  return finish("bsr", isa, mw, w, t0, why, *io);
}

}  // namespace sparta::jit
