// Packing dense + Tesa into each format, and unpacking back.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "formats/formats.h"

namespace sparta {
namespace {

struct Dense2D {
  int64_t rows, cols;
  const float* w;
  const uint8_t* keep;
  bool kept(int64_t r, int64_t c) const { return keep[r * cols + c] != 0; }
  float at(int64_t r, int64_t c) const { return w[r * cols + c]; }
};

Dense2D view(const Tensor& w, const Tesa& t, const char* what) {
  SPARTA_CHECK(w.rank() == 2, what, ": weight must be 2-D [N, K], got shape ", w.shape().str());
  SPARTA_CHECK(w.dtype() == DType::f32, what, ": weight must be f32, got ", dtype_name(w.dtype()));
  SPARTA_CHECK(t.shape() == w.shape(), what, ": tesa shape ", t.shape().str(), " does not match weight shape ",
               w.shape().str());
  return {w.dim(0), w.dim(1), w.data<float>(), t.codes()};
}

int32_t narrow(int64_t v) {
  SPARTA_CHECK(v <= INT32_MAX, "index ", v, " does not fit in 32 bits");
  return static_cast<int32_t>(v);
}

}  // namespace

DenseMatrix pack_dense(const Tensor& w, const Tesa& t) {
  Dense2D d = view(w, t, "dense");
  DenseMatrix m{d.rows, d.cols, std::vector<float>(static_cast<size_t>(d.rows * d.cols))};
  for (int64_t i = 0; i < d.rows * d.cols; ++i) m.values[static_cast<size_t>(i)] = d.keep[i] ? d.w[i] : 0.f;
  return m;
}

CsrMatrix pack_csr(const Tensor& w, const Tesa& t) {
  Dense2D d = view(w, t, "csr");
  CsrMatrix m;
  m.rows = d.rows;
  m.cols = d.cols;
  narrow(d.cols);
  m.row_ptr.reserve(static_cast<size_t>(d.rows + 1));
  m.row_ptr.push_back(0);
  for (int64_t r = 0; r < d.rows; ++r) {
    for (int64_t c = 0; c < d.cols; ++c)
      if (d.kept(r, c)) {
        m.col_idx.push_back(static_cast<int32_t>(c));
        m.values.push_back(d.at(r, c));
      }
    m.row_ptr.push_back(static_cast<int64_t>(m.values.size()));
  }
  return m;
}

BsrMatrix pack_bsr(const Tensor& w, const Tesa& t, BlockShape b) {
  Dense2D d = view(w, t, "bsr");
  SPARTA_CHECK(b.r > 0 && b.c > 0, "bsr: block shape ", b.str(), " must be positive");
  SPARTA_CHECK(d.rows % b.r == 0, "bsr: block rows ", b.r, " do not divide N=", d.rows,
               " (--block RxC needs R to divide N)");
  SPARTA_CHECK(d.cols % b.c == 0, "bsr: block columns ", b.c, " do not divide K=", d.cols,
               " (--block RxC needs C to divide K)");
  BsrMatrix m;
  m.rows = d.rows;
  m.cols = d.cols;
  m.block = b;
  narrow(d.cols / b.c);
  m.block_row_ptr.push_back(0);
  for (int64_t br = 0; br < d.rows / b.r; ++br) {
    for (int64_t bc = 0; bc < d.cols / b.c; ++bc) {
      bool any = false;
      for (int i = 0; i < b.r && !any; ++i)
        for (int j = 0; j < b.c && !any; ++j) any = d.kept(br * b.r + i, bc * b.c + j);
      if (!any) continue;
      m.block_col.push_back(static_cast<int32_t>(bc));
      for (int j = 0; j < b.c; ++j)
        for (int i = 0; i < b.r; ++i) {
          const int64_t r = br * b.r + i, c = bc * b.c + j;
          m.values.push_back(d.kept(r, c) ? d.at(r, c) : 0.f);
        }
    }
    m.block_row_ptr.push_back(m.nblocks());
  }
  return m;
}

NmMatrix pack_nm(const Tensor& w, const Tesa& t, NmShape nm) {
  Dense2D d = view(w, t, "nm");
  SPARTA_CHECK(nm.m > 0 && nm.m <= 255, "nm: M=", nm.m, " must be in [1, 255]");
  SPARTA_CHECK(nm.n > 0 && nm.n <= nm.m, "nm: N=", nm.n, " must be in [1, M=", nm.m, "]");
  SPARTA_CHECK(d.cols % nm.m == 0, "nm: M=", nm.m, " does not divide K=", d.cols);
  NmMatrix m;
  m.rows = d.rows;
  m.cols = d.cols;
  m.nm = nm;
  const size_t slots = static_cast<size_t>(d.rows * m.slots_per_row());
  m.values.assign(slots, 0.f);
  m.index.assign(slots, 0);
  size_t s = 0;
  for (int64_t r = 0; r < d.rows; ++r)
    for (int64_t g = 0; g < d.cols / nm.m; ++g) {
      int used = 0;
      for (int j = 0; j < nm.m; ++j) {
        if (!d.kept(r, g * nm.m + j)) continue;
        SPARTA_CHECK(used < nm.n, "nm: row ", r, " group ", g, " (columns ", g * nm.m, "..", g * nm.m + nm.m - 1,
                     ") keeps more than N=", nm.n, " of M=", nm.m, " elements; the tesa is not ", nm.str());
        m.values[s + static_cast<size_t>(used)] = d.at(r, g * nm.m + j);
        m.index[s + static_cast<size_t>(used)] = static_cast<uint8_t>(j);
        ++used;
      }
      s += static_cast<size_t>(nm.n);
    }
  return m;
}

TilewiseMatrix pack_tilewise(const Tensor& w, const Tesa& t, int g, double keep_fraction) {
  Dense2D d = view(w, t, "tilewise");
  SPARTA_CHECK(g > 0, "tilewise: tile size G=", g, " must be positive");
  SPARTA_CHECK(keep_fraction > 0 && keep_fraction <= 1, "tilewise: keep fraction ", keep_fraction,
               " must be in (0, 1]");
  TilewiseMatrix m;
  m.rows = d.rows;
  m.cols = d.cols;
  m.g = g;
  narrow(d.cols);
  m.tile_ptr.push_back(0);
  m.value_ptr.push_back(0);
  std::vector<uint8_t> covered(static_cast<size_t>(d.rows * d.cols), 0);
  for (int64_t r0 = 0; r0 < d.rows; r0 += g) {
    const int64_t tr = std::min<int64_t>(g, d.rows - r0);
    const int64_t need = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(keep_fraction * static_cast<double>(tr))));
    for (int64_t c = 0; c < d.cols; ++c) {
      int64_t cnt = 0;
      for (int64_t r = r0; r < r0 + tr; ++r) cnt += d.kept(r, c);
      if (cnt < need) continue;
      m.kept_k.push_back(static_cast<int32_t>(c));
      for (int64_t r = r0; r < r0 + tr; ++r) {
        m.values.push_back(d.kept(r, c) ? d.at(r, c) : 0.f);
        covered[static_cast<size_t>(r * d.cols + c)] = 1;
      }
    }
    m.tile_ptr.push_back(static_cast<int64_t>(m.kept_k.size()));
    m.value_ptr.push_back(static_cast<int64_t>(m.values.size()));
  }
  CsrMatrix& rem = m.remainder;
  rem.rows = d.rows;
  rem.cols = d.cols;
  rem.row_ptr.push_back(0);
  for (int64_t r = 0; r < d.rows; ++r) {
    for (int64_t c = 0; c < d.cols; ++c)
      if (d.kept(r, c) && !covered[static_cast<size_t>(r * d.cols + c)]) {
        rem.col_idx.push_back(static_cast<int32_t>(c));
        rem.values.push_back(d.at(r, c));
      }
    rem.row_ptr.push_back(rem.nnz());
  }
  return m;
}

StructuredMatrix pack_structured(const Tensor& w, const Tesa& t) {
  Dense2D d = view(w, t, "structured");
  StructuredMatrix m;
  m.rows = d.rows;
  m.cols = d.cols;
  narrow(std::max(d.rows, d.cols));
  std::vector<uint8_t> row_any(static_cast<size_t>(d.rows), 0), col_any(static_cast<size_t>(d.cols), 0);
  for (int64_t r = 0; r < d.rows; ++r)
    for (int64_t c = 0; c < d.cols; ++c)
      if (d.kept(r, c)) row_any[static_cast<size_t>(r)] = col_any[static_cast<size_t>(c)] = 1;
  for (int64_t r = 0; r < d.rows; ++r)
    if (row_any[static_cast<size_t>(r)]) m.kept_rows.push_back(static_cast<int32_t>(r));
  for (int64_t c = 0; c < d.cols; ++c)
    if (col_any[static_cast<size_t>(c)]) m.kept_cols.push_back(static_cast<int32_t>(c));
  m.values.reserve(m.kept_rows.size() * m.kept_cols.size());
  for (int32_t r : m.kept_rows)
    for (int32_t c : m.kept_cols) m.values.push_back(d.kept(r, c) ? d.at(r, c) : 0.f);
  return m;
}

WeightFormat pack(const std::string& format, const Tensor& w, const Tesa& t, const PackOptions& opt) {
  if (format == "dense") return pack_dense(w, t);
  if (format == "csr") return pack_csr(w, t);
  if (format == "bsr") return pack_bsr(w, t, opt.block);
  if (format == "nm") return pack_nm(w, t, opt.nm);
  if (format == "tilewise") return pack_tilewise(w, t, opt.tile, opt.tile_keep_fraction);
  if (format == "structured") return pack_structured(w, t);
  if (format == "decomposed") return pack_decomposed(w, t, opt);
  throw Error("unknown format '" + format + "' (expected one of dense, csr, bsr, nm, tilewise, structured, decomposed)");
}

// The regular part: for "bsr", every block whose kept fraction reaches
// min_block_density (its pruned elements stored as zeros); for "nm", in
// each group of M along K the N kept elements of largest magnitude. The
// remainder holds every other kept element.
DecomposedMatrix pack_decomposed(const Tensor& w, const Tesa& t, const PackOptions& opt) {
  Dense2D d = view(w, t, "decomposed");
  DecomposedMatrix m;
  m.rows = d.rows;
  m.cols = d.cols;
  Tesa main_t(Shape{d.rows, d.cols}, ElemCode::pruned), rest_t(Shape{d.rows, d.cols}, ElemCode::pruned);
  auto keep = [&](Tesa& x, int64_t r, int64_t c) { x.set(r * d.cols + c, ElemCode::bits32); };
  if (opt.main == "bsr") {
    const BlockShape b = opt.block;
    SPARTA_CHECK(b.r > 0 && b.c > 0 && d.rows % b.r == 0 && d.cols % b.c == 0, "decomposed: block ", b.str(),
                 " does not divide ", d.rows, "x", d.cols);
    SPARTA_CHECK(opt.min_block_density >= 0 && opt.min_block_density <= 1, "decomposed: min block density ",
                 opt.min_block_density, " outside [0, 1]");
    for (int64_t br = 0; br < d.rows; br += b.r)
      for (int64_t bc = 0; bc < d.cols; bc += b.c) {
        int64_t kept = 0;
        for (int i = 0; i < b.r; ++i)
          for (int j = 0; j < b.c; ++j) kept += d.kept(br + i, bc + j);
        const bool dense_enough = kept > 0 && double(kept) >= opt.min_block_density * b.r * b.c;
        for (int i = 0; i < b.r; ++i)
          for (int j = 0; j < b.c; ++j)
            if (d.kept(br + i, bc + j)) keep(dense_enough ? main_t : rest_t, br + i, bc + j);
      }
    m.main = pack_bsr(w, main_t, b);
  } else if (opt.main == "nm") {
    const NmShape nm = opt.nm;
    SPARTA_CHECK(nm.m > 0 && nm.n > 0 && nm.n <= nm.m && d.cols % nm.m == 0, "decomposed: N:M ", nm.str(),
                 " does not fit K=", d.cols);
    std::vector<int64_t> idx;
    for (int64_t r = 0; r < d.rows; ++r)
      for (int64_t g = 0; g < d.cols; g += nm.m) {
        idx.clear();
        for (int64_t j = g; j < g + nm.m; ++j)
          if (d.kept(r, j)) idx.push_back(j);
        std::stable_sort(idx.begin(), idx.end(),
                         [&](int64_t a, int64_t b2) { return std::fabs(d.at(r, a)) > std::fabs(d.at(r, b2)); });
        for (size_t i = 0; i < idx.size(); ++i) keep(static_cast<int>(i) < nm.n ? main_t : rest_t, r, idx[i]);
      }
    m.main = pack_nm(w, main_t, nm);
  } else {
    throw Error("decomposed: the main part must be bsr or nm, not '" + opt.main + "'");
  }
  m.remainder = pack_csr(w, rest_t);
  return m;
}

WeightFormat main_part(const DecomposedMatrix& d) {
  return std::visit([](const auto& p) -> WeightFormat { return p; }, d.main);
}

namespace {

void unpack_csr_into(const CsrMatrix& m, float* y) {
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t i = m.row_ptr[static_cast<size_t>(r)]; i < m.row_ptr[static_cast<size_t>(r + 1)]; ++i)
      y[r * m.cols + m.col_idx[static_cast<size_t>(i)]] = m.values[static_cast<size_t>(i)];
}

struct Unpacker {
  float* y;
  void operator()(const DenseMatrix& m) const { std::copy(m.values.begin(), m.values.end(), y); }
  void operator()(const CsrMatrix& m) const { unpack_csr_into(m, y); }
  void operator()(const BsrMatrix& m) const {
    const int r = m.block.r, c = m.block.c;
    for (int64_t br = 0; br < m.rows / r; ++br)
      for (int64_t b = m.block_row_ptr[static_cast<size_t>(br)]; b < m.block_row_ptr[static_cast<size_t>(br + 1)]; ++b) {
        const float* v = &m.values[static_cast<size_t>(b * r * c)];
        const int64_t c0 = static_cast<int64_t>(m.block_col[static_cast<size_t>(b)]) * c;
        for (int j = 0; j < c; ++j)
          for (int i = 0; i < r; ++i) y[(br * r + i) * m.cols + c0 + j] = v[j * r + i];
      }
  }
  void operator()(const NmMatrix& m) const {
    const int64_t groups = m.cols / m.nm.m;
    size_t s = 0;
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t g = 0; g < groups; ++g)
        for (int j = 0; j < m.nm.n; ++j, ++s) {
          // Padded slots are +0 at any position of the group, maybe a kept
          // one: skip them rather than add (0 + -0 is +0), and store the first
          // value at a position as is, so a kept -0.0 survives exactly.
          const float v = m.values[s];
          if (v == 0.f && !std::signbit(v)) continue;
          float& o = y[r * m.cols + g * m.nm.m + m.index[s]];
          o = o == 0.f ? v : o + v;
        }
  }
  void operator()(const TilewiseMatrix& m) const {
    for (int64_t t = 0; t < m.ntiles(); ++t) {
      const int64_t r0 = t * m.g, tr = std::min<int64_t>(m.g, m.rows - r0);
      // data() + offset: a trailing tile with no kept columns starts at values.size()
      const float* v = m.values.data() + m.value_ptr[static_cast<size_t>(t)];
      for (int64_t i = m.tile_ptr[static_cast<size_t>(t)]; i < m.tile_ptr[static_cast<size_t>(t + 1)]; ++i, v += tr)
        for (int64_t r = 0; r < tr; ++r) y[(r0 + r) * m.cols + m.kept_k[static_cast<size_t>(i)]] = v[r];
    }
    unpack_csr_into(m.remainder, y);
  }
  void operator()(const StructuredMatrix& m) const {
    size_t s = 0;
    for (int32_t r : m.kept_rows)
      for (int32_t c : m.kept_cols) y[r * m.cols + c] = m.values[s++];
  }
  void operator()(const DecomposedMatrix& m) const {
    std::visit(*this, m.main);  // first: an N:M part writes zeros into its padding slots
    unpack_csr_into(m.remainder, y);
  }
};

}  // namespace

Tensor unpack(const WeightFormat& f) {
  Tensor y(DType::f32, Shape{format_rows(f), format_cols(f)});
  std::visit(Unpacker{y.data<float>()}, f);
  return y;
}

std::string format_name(const WeightFormat& f) {
  static const char* names[] = {"dense", "csr", "bsr", "nm", "tilewise", "structured", "decomposed"};
  return names[f.index()];
}

int64_t format_rows(const WeightFormat& f) {
  return std::visit([](const auto& m) { return m.rows; }, f);
}

int64_t format_cols(const WeightFormat& f) {
  return std::visit([](const auto& m) { return m.cols; }, f);
}

int64_t format_stored(const WeightFormat& f) {
  struct V {
    int64_t operator()(const DenseMatrix& m) const { return static_cast<int64_t>(m.values.size()); }
    int64_t operator()(const CsrMatrix& m) const { return m.nnz(); }
    int64_t operator()(const BsrMatrix& m) const { return static_cast<int64_t>(m.values.size()); }
    int64_t operator()(const NmMatrix& m) const { return static_cast<int64_t>(m.values.size()); }
    int64_t operator()(const TilewiseMatrix& m) const {
      return static_cast<int64_t>(m.values.size()) + m.remainder.nnz();
    }
    int64_t operator()(const StructuredMatrix& m) const { return static_cast<int64_t>(m.values.size()); }
    int64_t operator()(const DecomposedMatrix& m) const {
      return std::visit([this](const auto& p) { return (*this)(p); }, m.main) + m.remainder.nnz();
    }
  };
  return std::visit(V{}, f);
}

}  // namespace sparta
