// The mvec-generated families: CSR (r = c = 1), N:M (CSR with a fixed
// count per row) and BSR blocks whose height is not a whole number of
// vectors (r x c items, groups of up to 8 rows).
#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "jit/jit_kernels.h"
#include "jit/mvec_gen.h"
#include "kernels/isa_kernels.h"
#include "kernels/parallel.h"

namespace sparta::jit {

namespace {

thread_local Scratch tls_xp;  // packed X, owned by the calling thread
thread_local Scratch tls_yt;  // per worker: one chunk's transposed results

// A weight as an mvec program with its values in program order.
struct MvecWeight {
  int64_t n = 0, k = 0;
  MvecShape shape;
  MvecProgram prog;
  std::vector<float> vals;
};

class MvecKernel final : public SpmmKernel {
 public:
  MvecKernel(std::string name, MvecWeight w, const JitSupport& io)
      : SpmmKernel(w.n, w.k), name_(std::move(name)), s_(w.shape), prog_(std::move(w.prog)), vals_(std::move(w.vals)),
        io_(io) {
    const int64_t groups = static_cast<int64_t>(prog_.counts.size());
    // Chunks of output rows share one transposed buffer and a thread's
    // share is whole chunks: 256 rows (the template kernels' best), fewer
    // for small N so that threads get several.
    const int64_t chunk_rows = std::clamp<int64_t>((n_ / 8 + s_.r - 1) / s_.r * s_.r, s_.r, 256);
    chunk_groups_ = std::max<int64_t>(1, chunk_rows / s_.r);
    for (int64_t g = 0; g < groups; g += chunk_groups_) chunks_.push_back(g);
    chunks_.push_back(groups);
    item_start_.push_back(0);
    cost_.push_back(0);
    int64_t item = 0;
    for (size_t ci = 0; ci + 1 < chunks_.size(); ++ci) {
      int64_t items = 0;
      for (int64_t g = chunks_[ci]; g < chunks_[ci + 1]; ++g) items += prog_.counts[static_cast<size_t>(g)];
      item += items;
      item_start_.push_back(item);
      cost_.push_back(cost_.back() + items * s_.c * s_.r + (chunks_[ci + 1] - chunks_[ci]) * s_.r * 4);
    }
    const Bake policy = bake_policy();
    baked_ = policy == Bake::always ||
             (policy == Bake::automatic && MvecCode::baked_bytes(s_, prog_) <= kBakeBudgetBytes);
    code_ = baked_ ? MvecCode::baked(s_, prog_, chunks_) : MvecCode::table(s_);
  }
  std::string name() const override { return name_; }
  size_t code_bytes() const { return code_->code_bytes(); }

  void run(const SpmmArgs& a) const override {
    const int MT = s_.mt();
    const int64_t tiles = (a.m + MT - 1) / MT;
    if (tiles == 0 || n_ == 0) return;
    float* xp = tls_xp.get(static_cast<size_t>(std::max<int64_t>(1, tiles * k_ * MT)));
    parallel_run(static_cast<int>(std::min<int64_t>(a.threads, tiles)), [&](int tid, int nt) {
      for (int64_t t = tid; t < tiles; t += nt)
        io_.pack_mvec(a.x + t * MT * a.ldx, a.ldx, std::min<int64_t>(MT, a.m - t * MT), k_, xp + t * k_ * MT, MT);
    });
    parallel_run(a.threads, [&](int tid, int nt) {
      const std::vector<int64_t> b = balanced_split(cost_, nt);
      const int64_t c0 = b[static_cast<size_t>(tid)], c1 = b[static_cast<size_t>(tid + 1)];
      if (c0 >= c1) return;
      float* yt = tls_yt.get(static_cast<size_t>((chunk_groups_ * s_.r + io_.width) * MT));
      const int64_t per_item = int64_t{s_.r} * s_.c;
      for (int64_t t = 0; t < tiles; ++t) {
        const float* xt = xp + t * k_ * MT;
        const int64_t mrows = std::min<int64_t>(MT, a.m - t * MT);
        for (int64_t ci = c0; ci < c1; ++ci) {
          const int64_t g0 = chunks_[static_cast<size_t>(ci)], g1 = chunks_[static_cast<size_t>(ci + 1)];
          const int64_t i0 = item_start_[static_cast<size_t>(ci)];
          const float* v = vals_.data() + i0 * per_item;
          if (baked_) code_->chunk_fn(static_cast<size_t>(ci))(xt, yt, v);
          else code_->table_fn()(xt, yt, prog_.counts.data() + g0, prog_.offs.data() + i0, v, g1 - g0);
          const int64_t n0 = g0 * s_.r;
          io_.store_mvec(yt, (g1 - g0) * s_.r, mrows, a.y + t * MT * a.ldy + n0, a.ldy, a.ep,
                         a.ep.bias ? a.ep.bias + n0 : nullptr, MT);
        }
      }
    });
  }

 private:
  std::string name_;
  MvecShape s_;
  MvecProgram prog_;
  std::vector<float> vals_;
  const JitSupport& io_;
  int64_t chunk_groups_ = 1;
  std::vector<int64_t> chunks_;      // first group of each chunk, then the group count
  std::vector<int64_t> item_start_;  // first item of each chunk
  std::vector<int64_t> cost_;        // prefix of the chunks' work
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

bool offsets_fit(int64_t k, const MvecShape& s, std::string& why) {
  if (k * s.mt() * 4 >= (int64_t{1} << 31) - 4096) {
    why = "K=" + std::to_string(k) + " is too long for 32-bit X offsets";
    return false;
  }
  return true;
}

std::unique_ptr<SpmmKernel> finish(const char* family, Isa isa, MvecWeight mw, const WeightFormat& w,
                                   std::chrono::steady_clock::time_point t0, std::string& why, const JitSupport& io) {
  auto k = std::make_unique<MvecKernel>(kernel_name(family, isa), std::move(mw), io);
  const size_t bytes = k->code_bytes();
  const double gen_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Checked c = self_checked(std::move(k), w, gen_ms, bytes);
  why = c.why;
  return std::move(c.kernel);
}

}  // namespace

std::unique_ptr<SpmmKernel> make_csr(const CsrMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  const double density = w.rows > 0 && w.cols > 0 ? static_cast<double>(w.nnz()) / static_cast<double>(w.rows * w.cols) : 0;
  // Wide M tiles reuse a broadcast weight more; narrow ones keep the
  // packed X tile nearer L1. 2 vectors win from about 10% density up.
  MvecWeight mw;
  mw.n = w.rows;
  mw.k = w.cols;
  mw.shape = mvec_shape(isa, 1, 1, density < 0.1 ? 4 : 2);
  if (!offsets_fit(w.cols, mw.shape, why)) return nullptr;
  const int64_t mt_bytes = int64_t{mw.shape.mt()} * 4;
  mw.prog.counts.resize(static_cast<size_t>(w.rows));
  mw.prog.offs.resize(w.col_idx.size());
  for (int64_t r = 0; r < w.rows; ++r)
    mw.prog.counts[static_cast<size_t>(r)] = static_cast<int32_t>(w.row_ptr[static_cast<size_t>(r + 1)] - w.row_ptr[static_cast<size_t>(r)]);
  for (size_t i = 0; i < w.col_idx.size(); ++i) mw.prog.offs[i] = static_cast<int32_t>(w.col_idx[i] * mt_bytes);
  mw.vals = w.values;
  return finish("csr", isa, std::move(mw), w, t0, why, *io);
}

std::unique_ptr<SpmmKernel> make_nm(const NmMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  MvecWeight mw;
  mw.n = w.rows;
  mw.k = w.cols;
  mw.shape = mvec_shape(isa, 1, 1, static_cast<double>(w.nm.n) / w.nm.m < 0.1 ? 4 : 2);
  if (!offsets_fit(w.cols, mw.shape, why)) return nullptr;
  const int64_t mt_bytes = int64_t{mw.shape.mt()} * 4, spr = w.slots_per_row(), n = w.nm.n, m = w.nm.m;
  mw.prog.counts.assign(static_cast<size_t>(w.rows), static_cast<int32_t>(spr));
  mw.prog.offs.resize(static_cast<size_t>(w.rows * spr));
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t s = 0; s < spr; ++s) {
      const size_t i = static_cast<size_t>(r * spr + s);
      mw.prog.offs[i] = static_cast<int32_t>(((s / n) * m + w.index[i]) * mt_bytes);
    }
  mw.vals = w.values;
  return finish("nm", isa, std::move(mw), w, t0, why, *io);
}

// BSR through the mvec generator: groups of R rows of a block row (R the
// largest of 8, 4, 2, 1 dividing r), items its blocks.
std::unique_ptr<SpmmKernel> make_bsr_mvec(const BsrMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  const int r = w.block.r, c = w.block.c;
  const int R = r % 8 == 0 ? 8 : r % 4 == 0 ? 4 : r % 2 == 0 ? 2 : 1;
  MvecWeight mw;
  mw.n = w.rows;
  mw.k = w.cols;
  mw.shape = mvec_shape(isa, R, c, 4);
  if (!offsets_fit(w.cols, mw.shape, why)) return nullptr;
  if (c > 64) {
    why = "block width " + std::to_string(c) + " above 64 (the item is unrolled)";
    return nullptr;
  }
  const int64_t mt_bytes = int64_t{mw.shape.mt()} * 4, nbr = w.rows / r, sub = r / R;
  mw.prog.counts.reserve(static_cast<size_t>(nbr * sub));
  mw.vals.reserve(w.values.size());
  for (int64_t br = 0; br < nbr; ++br) {
    const int64_t b0 = w.block_row_ptr[static_cast<size_t>(br)], b1 = w.block_row_ptr[static_cast<size_t>(br + 1)];
    for (int64_t q = 0; q < sub; ++q) {
      mw.prog.counts.push_back(static_cast<int32_t>(b1 - b0));
      for (int64_t b = b0; b < b1; ++b) {
        mw.prog.offs.push_back(static_cast<int32_t>(int64_t{w.block_col[static_cast<size_t>(b)]} * c * mt_bytes));
        const float* bv = w.values.data() + b * r * c;
        for (int j = 0; j < c; ++j)
          for (int i = 0; i < R; ++i) mw.vals.push_back(bv[j * r + q * R + i]);
      }
    }
  }
  return finish("bsr", isa, std::move(mw), w, t0, why, *io);
}

}  // namespace sparta::jit
