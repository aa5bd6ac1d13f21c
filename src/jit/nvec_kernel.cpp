// The nvec-generated families: BSR whose block height is a whole number of
// vectors, and tile-wise (each tile's kept columns a k-list for all of its
// rows; the unstructured remainder through the generated CSR kernel).
#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "jit/jit_kernels.h"
#include "jit/nvec_gen.h"
#include "kernels/isa_kernels.h"
#include "kernels/parallel.h"

namespace sparta::jit {

namespace {

// `rows` output rows from n0 sharing one k-list (as byte offsets into X
// packed for each of the two tile heights); weights w[kk * wstride + i].
struct Unit {
  int64_t n0, rows;
  std::vector<int32_t> koffs2, koffs1;
  const float* w;
  int64_t wstride;
};

class NvecKernel final : public SpmmKernel {
 public:
  NvecKernel(std::string name, int64_t n, int64_t k, Isa isa, const JitSupport& io)
      : SpmmKernel(n, k), name_(std::move(name)), isa_(isa), io_(io) {}

  void add_unit(int64_t n0, int64_t rows, const int32_t* klist, int64_t nk, const float* w, int64_t wstride) {
    Unit u{n0, rows, {}, {}, w, wstride};
    // 8 entries past the end: the generated loop reads the offset 8 ahead.
    u.koffs2.assign(static_cast<size_t>(nk + 8), 0);
    u.koffs1.assign(static_cast<size_t>(nk + 8), 0);
    for (int64_t i = 0; i < nk; ++i) {
      u.koffs2[static_cast<size_t>(i)] = static_cast<int32_t>(int64_t{klist[i]} * io_.nvec_rows2 * 4);
      u.koffs1[static_cast<size_t>(i)] = static_cast<int32_t>(int64_t{klist[i]} * io_.nvec_rows1 * 4);
    }
    units_.push_back(std::move(u));
  }

  // Generates the tiles the units need and the cost split; then the
  // remainder kernel, if any, runs after in accumulate mode.
  void generate(std::unique_ptr<SpmmKernel> remainder) {
    remainder_ = std::move(remainder);
    const int W = io_.width;
    cost_.assign(units_.size() + 1, 0);
    std::vector<ColumnRun> covered;  // units come in ascending, disjoint runs of rows
    for (size_t i = 0; i < units_.size(); ++i) {
      const Unit& u = units_[i];
      cost_[i + 1] = cost_[i] + (static_cast<int64_t>(u.koffs1.size() - 8) + 2) * u.rows;
      covered.push_back({u.n0, u.rows});
      has2_ |= u.rows >= 2 * W;
      for (int64_t i0 = u.rows / (2 * W) * (2 * W); i0 < u.rows; i0 += W)
        tile1_[static_cast<int>(std::min<int64_t>(W, u.rows - i0))];
    }
    uncovered_ = column_gaps(covered, n_);
    // A tile for every row count up to the packed block's, so that the
    // last block of M computes only the rows it has (M = 128 is 9 blocks
    // of 14 and one of 2 on AVX-512).
    std::vector<NvecShape> shapes;
    const bool z = isa_ == Isa::avx512;
    if (has2_)
      for (int h = 1; h <= io_.nvec_rows2; ++h) {
        tile2_.push_back(shapes.size());
        shapes.push_back({z, h, io_.nvec_rows2, 2, W});
      }
    for (auto& [nw, idx] : tile1_)
      for (int h = 1; h <= io_.nvec_rows1; ++h) {
        idx.push_back(shapes.size());
        shapes.push_back({z, h, io_.nvec_rows1, 1, nw});
      }
    if (!shapes.empty()) code_ = std::make_unique<NvecCode>(shapes);
  }

  // Keeps alive what the units point into.
  void hold(std::shared_ptr<const void> h) { held_ = std::move(h); }

  size_t code_bytes() const { return code_ ? code_->code_bytes() : 0; }
  std::string name() const override { return remainder_ ? name_ + "+" + remainder_->name() : name_; }

  void run(const SpmmArgs& a) const override {
    if (!remainder_) return run_units(a);
    SpmmArgs first = a;
    first.ep = Epilogue{};
    first.ep.accumulate = a.ep.accumulate;
    run_units(first);
    SpmmArgs second = a;
    second.ep.accumulate = true;
    remainder_->run(second);
  }

 private:
  void run_units(const SpmmArgs& a) const {
    if (a.m == 0) return;
    const float* xp2 = has2_ ? io_.pack_nvec(a, k_, io_.nvec_rows2) : nullptr;
    const float* xp1 = !tile1_.empty() ? io_.pack_nvec(a, k_, io_.nvec_rows1) : nullptr;
    parallel_run(a.threads, [&](int tid, int nt) {
      const std::vector<int64_t> b = balanced_split(cost_, nt);
      run_range(a, b[static_cast<size_t>(tid)], b[static_cast<size_t>(tid + 1)], xp2, xp1);
    });
    if (!uncovered_.empty()) write_uncovered(uncovered_, a);
  }

  // Units [u0, u1) in groups whose weights fit in about a quarter of L2;
  // within a group, M advances one register tile at a time over all of its
  // units, so the packed X block stays in L1 (as the template kernels do).
  void run_range(const SpmmArgs& a, int64_t u0, int64_t u1, const float* xp2, const float* xp1) const {
    constexpr int64_t kWeightBudget = 128 * 1024;
    const int W = io_.width;
    alignas(64) float tile[32 * 32];
    for (int64_t ua = u0; ua < u1;) {
      int64_t ub = ua, bytes = 0;
      while (ub < u1 && (ub == ua || bytes < kWeightBudget)) {
        bytes += static_cast<int64_t>(units_[static_cast<size_t>(ub)].koffs1.size() - 8) * units_[static_cast<size_t>(ub)].rows * 4;
        ++ub;
      }
      for (int pass = 0; pass < 2; ++pass) {
        const int mr = pass == 0 ? io_.nvec_rows2 : io_.nvec_rows1;
        const float* xp = pass == 0 ? xp2 : xp1;
        if (!xp) continue;
        for (int64_t m0 = 0; m0 < a.m; m0 += mr) {
          const int h = static_cast<int>(std::min<int64_t>(mr, a.m - m0));
          const float* xb = xp + m0 * k_;
          for (int64_t u = ua; u < ub; ++u) {
            const Unit& un = units_[static_cast<size_t>(u)];
            const int64_t full2 = un.rows / (2 * W) * (2 * W);
            const int64_t i0 = pass == 0 ? 0 : full2, i1 = pass == 0 ? full2 : un.rows;
            const int32_t* ko = pass == 0 ? un.koffs2.data() : un.koffs1.data();
            const int64_t nk = static_cast<int64_t>(un.koffs1.size() - 8);
            for (int64_t i = i0; i < i1; i += pass == 0 ? 2 * W : W) {
              const int nw = pass == 0 ? W : static_cast<int>(std::min<int64_t>(W, un.rows - i));
              const NvecFn fn = code_->fn(pass == 0 ? tile2_[static_cast<size_t>(h - 1)]
                                                    : tile1_.at(nw)[static_cast<size_t>(h - 1)]);
              fn(xb, ko, nk, un.w + i, un.wstride * 4, tile);
              const int64_t n = un.n0 + i;
              io_.finish_tile(tile, pass == 0 ? 2 : 1, h, nw, a.y + m0 * a.ldy + n, a.ldy,
                              a.ep.bias ? a.ep.bias + n : nullptr, a.ep);
            }
          }
        }
      }
      ua = ub;
    }
  }

  std::string name_;
  Isa isa_;
  const JitSupport& io_;
  std::vector<Unit> units_;
  std::vector<int64_t> cost_;
  std::vector<ColumnRun> uncovered_;  // output rows no unit covers
  bool has2_ = false;                       // tiles of 2 vectors
  std::vector<size_t> tile2_;               // their functions by rows - 1
  std::map<int, std::vector<size_t>> tile1_;  // tiles of 1 vector by its width, then rows - 1
  std::unique_ptr<NvecCode> code_;
  std::unique_ptr<SpmmKernel> remainder_;
  std::shared_ptr<const void> held_;
};

}  // namespace

// The k offsets are k * (rows of a packed X block) * 4.
static int64_t nvec_bytes_per_k(const JitSupport& io) { return int64_t{std::max(io.nvec_rows1, io.nvec_rows2)} * 4; }

std::unique_ptr<SpmmKernel> make_bsr_nvec(const BsrMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io || !offsets_fit(w.cols, nvec_bytes_per_k(*io), why)) return nullptr;
  if (w.block.r % io->width != 0) {
    why = "block height " + std::to_string(w.block.r) + " is not a multiple of the vector width " + std::to_string(io->width);
    return nullptr;
  }
  const auto t0 = std::chrono::steady_clock::now();
  // The kernel keeps the weight (units point into it) and the k-lists.
  auto holder = std::make_shared<BsrMatrix>(w);
  auto k = std::make_unique<NvecKernel>(kernel_name("bsr", isa), w.rows, w.cols, isa, *io);
  const int r = w.block.r, c = w.block.c;
  std::vector<int32_t> klist;
  for (int64_t br = 0; br < w.rows / r; ++br) {
    const int64_t b0 = w.block_row_ptr[static_cast<size_t>(br)], b1 = w.block_row_ptr[static_cast<size_t>(br + 1)];
    if (b0 == b1) continue;
    klist.clear();
    for (int64_t b = b0; b < b1; ++b)
      for (int j = 0; j < c; ++j) klist.push_back(holder->block_col[static_cast<size_t>(b)] * c + j);
    k->add_unit(br * r, r, klist.data(), static_cast<int64_t>(klist.size()), holder->values.data() + b0 * r * c, r);
  }
  k->generate(nullptr);
  k->hold(holder);
  const size_t bytes = k->code_bytes();
  return checked(std::move(k), bytes, w, t0, why);
}

std::unique_ptr<SpmmKernel> make_tilewise(const TilewiseMatrix& w, Isa isa, std::string& why) {
  const JitSupport* io = support(isa, why);
  if (!io || !offsets_fit(w.cols, nvec_bytes_per_k(*io), why)) return nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<SpmmKernel> rem;
  if (w.remainder.nnz() > 0) {
    rem = make_csr(w.remainder, isa, why);
    if (!rem) return nullptr;
  }
  auto holder = std::make_shared<TilewiseMatrix>(w);
  auto k = std::make_unique<NvecKernel>(kernel_name("tilewise", isa), w.rows, w.cols, isa, *io);
  for (int64_t t = 0; t < w.ntiles(); ++t) {
    const int64_t k0 = w.tile_ptr[static_cast<size_t>(t)], k1 = w.tile_ptr[static_cast<size_t>(t + 1)];
    if (k0 == k1) continue;
    const int64_t rows = std::min<int64_t>(w.g, w.rows - t * w.g);
    k->add_unit(t * w.g, rows, holder->kept_k.data() + k0, k1 - k0, holder->values.data() + w.value_ptr[static_cast<size_t>(t)], rows);
  }
  k->generate(std::move(rem));
  k->hold(holder);
  const size_t bytes = k->code_bytes();
  return checked(std::move(k), bytes, w, t0, why);
}

}  // namespace sparta::jit
