// Validation and the versioned binary form of the weight formats.
//
// File layout (little-endian): magic "SPWF", u32 version, u32 format index,
// then the format's fields in declaration order (scalars as i64, arrays as
// i64 length + raw elements), then a u64 FNV-1a checksum of everything after
// the magic. load() checks magic, version, every length against the bytes
// left, the checksum, and finally validate().
#include <algorithm>
#include <cstring>
#include <istream>
#include <ostream>
#include <type_traits>

#include "core/error.h"
#include "formats/formats.h"

namespace sparta {
namespace {

constexpr char kMagic[4] = {'S', 'P', 'W', 'F'};
constexpr uint32_t kVersion = 1;

template <typename T>
void check_ptr(const std::vector<T>& ptr, size_t expect_len, int64_t end, const char* what) {
  SPARTA_CHECK(ptr.size() == expect_len, what, " has ", ptr.size(), " entries, expected ", expect_len);
  SPARTA_CHECK(expect_len == 0 || ptr.front() == 0, what, " does not start at 0");
  for (size_t i = 1; i < ptr.size(); ++i)
    SPARTA_CHECK(ptr[i] >= ptr[i - 1], what, " decreases at entry ", i);
  SPARTA_CHECK(expect_len == 0 || ptr.back() == end, what, " ends at ", expect_len ? ptr.back() : 0,
               ", expected ", end);
}

void check_sorted_index(const int32_t* idx, int64_t n, int64_t bound, const char* what) {
  for (int64_t i = 0; i < n; ++i) {
    SPARTA_CHECK(idx[i] >= 0 && idx[i] < bound, what, " index ", idx[i], " is outside [0, ", bound, ")");
    SPARTA_CHECK(i == 0 || idx[i] > idx[i - 1], what, " indices are not strictly ascending");
  }
}

void check_dims(int64_t rows, int64_t cols) {
  SPARTA_CHECK(rows >= 0 && cols >= 0 && cols <= INT32_MAX && rows <= INT32_MAX, "bad matrix dims ", rows, "x",
               cols);
}

void validate_csr(const CsrMatrix& m) {
  check_dims(m.rows, m.cols);
  SPARTA_CHECK(m.col_idx.size() == m.values.size(), "csr: ", m.col_idx.size(), " column indices but ",
               m.values.size(), " values");
  check_ptr(m.row_ptr, static_cast<size_t>(m.rows + 1), m.nnz(), "csr row_ptr");
  for (int64_t r = 0; r < m.rows; ++r) {
    const int64_t b = m.row_ptr[static_cast<size_t>(r)];
    check_sorted_index(m.col_idx.data() + b, m.row_ptr[static_cast<size_t>(r + 1)] - b, m.cols, "csr column");
  }
}

struct Validator {
  void operator()(const DenseMatrix& m) const {
    check_dims(m.rows, m.cols);
    SPARTA_CHECK(static_cast<int64_t>(m.values.size()) == m.rows * m.cols, "dense: ", m.values.size(),
                 " values for ", m.rows, "x", m.cols);
  }
  void operator()(const CsrMatrix& m) const { validate_csr(m); }
  void operator()(const BsrMatrix& m) const {
    check_dims(m.rows, m.cols);
    const int r = m.block.r, c = m.block.c;
    SPARTA_CHECK(r > 0 && c > 0 && r <= 4096 && c <= 4096, "bsr: bad block shape ", m.block.str());
    SPARTA_CHECK(m.rows % r == 0 && m.cols % c == 0, "bsr: block ", m.block.str(), " does not divide ", m.rows,
                 "x", m.cols);
    check_ptr(m.block_row_ptr, static_cast<size_t>(m.rows / r + 1), m.nblocks(), "bsr block_row_ptr");
    SPARTA_CHECK(static_cast<int64_t>(m.values.size()) == m.nblocks() * r * c, "bsr: ", m.values.size(),
                 " values for ", m.nblocks(), " blocks of ", m.block.str());
    for (int64_t br = 0; br < m.rows / r; ++br) {
      const int64_t b = m.block_row_ptr[static_cast<size_t>(br)];
      check_sorted_index(m.block_col.data() + b, m.block_row_ptr[static_cast<size_t>(br + 1)] - b, m.cols / c,
                         "bsr block column");
    }
  }
  void operator()(const NmMatrix& m) const {
    check_dims(m.rows, m.cols);
    SPARTA_CHECK(m.nm.m > 0 && m.nm.m <= 255 && m.nm.n > 0 && m.nm.n <= m.nm.m, "nm: bad N:M ", m.nm.str());
    SPARTA_CHECK(m.cols % m.nm.m == 0, "nm: M=", m.nm.m, " does not divide K=", m.cols);
    const size_t slots = static_cast<size_t>(m.rows * m.slots_per_row());
    SPARTA_CHECK(m.values.size() == slots && m.index.size() == slots, "nm: expected ", slots, " slots, got ",
                 m.values.size(), " values and ", m.index.size(), " indices");
    for (uint8_t i : m.index) SPARTA_CHECK(i < m.nm.m, "nm: index ", int(i), " is outside the group of ", m.nm.m);
  }
  void operator()(const TilewiseMatrix& m) const {
    check_dims(m.rows, m.cols);
    SPARTA_CHECK(m.g > 0, "tilewise: tile size ", m.g, " must be positive");
    const int64_t ntiles = (m.rows + m.g - 1) / m.g;
    check_ptr(m.tile_ptr, static_cast<size_t>(ntiles + 1), static_cast<int64_t>(m.kept_k.size()),
              "tilewise tile_ptr");
    check_ptr(m.value_ptr, static_cast<size_t>(ntiles + 1), static_cast<int64_t>(m.values.size()),
              "tilewise value_ptr");
    for (int64_t t = 0; t < ntiles; ++t) {
      const int64_t b = m.tile_ptr[static_cast<size_t>(t)], n = m.tile_ptr[static_cast<size_t>(t + 1)] - b;
      const int64_t tr = std::min<int64_t>(m.g, m.rows - t * m.g);
      check_sorted_index(m.kept_k.data() + b, n, m.cols, "tilewise kept column");
      SPARTA_CHECK(m.value_ptr[static_cast<size_t>(t + 1)] - m.value_ptr[static_cast<size_t>(t)] == n * tr,
                   "tilewise: tile ", t, " has the wrong number of values");
    }
    SPARTA_CHECK(m.remainder.rows == m.rows && m.remainder.cols == m.cols, "tilewise: remainder is ",
                 m.remainder.rows, "x", m.remainder.cols, ", expected ", m.rows, "x", m.cols);
    validate_csr(m.remainder);
  }
  void operator()(const DecomposedMatrix& m) const {
    check_dims(m.rows, m.cols);
    std::visit([&](const auto& p) {
      (*this)(p);
      SPARTA_CHECK(p.rows == m.rows && p.cols == m.cols, "decomposed: main part is ", p.rows, "x", p.cols,
                   ", expected ", m.rows, "x", m.cols);
    }, m.main);
    SPARTA_CHECK(m.remainder.rows == m.rows && m.remainder.cols == m.cols, "decomposed: remainder is ",
                 m.remainder.rows, "x", m.remainder.cols, ", expected ", m.rows, "x", m.cols);
    validate_csr(m.remainder);
  }
  void operator()(const StructuredMatrix& m) const {
    check_dims(m.rows, m.cols);
    check_sorted_index(m.kept_rows.data(), static_cast<int64_t>(m.kept_rows.size()), m.rows, "structured row");
    check_sorted_index(m.kept_cols.data(), static_cast<int64_t>(m.kept_cols.size()), m.cols, "structured column");
    SPARTA_CHECK(m.values.size() == m.kept_rows.size() * m.kept_cols.size(), "structured: ", m.values.size(),
                 " values for ", m.kept_rows.size(), "x", m.kept_cols.size());
  }
};

class Writer {
 public:
  explicit Writer(std::ostream& os) : os_(os) {}
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) hash_ = (hash_ ^ b[i]) * 1099511628211ull;
    os_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
  }
  void num(int64_t v) { bytes(&v, sizeof v); }
  // The field visitors below take references for both directions.
  void dims(int64_t& rows, int64_t& cols) {
    num(rows);
    num(cols);
  }
  void small(int& v, const char*) { num(v); }
  template <typename T>
  void array(std::vector<T>& v) {
    num(static_cast<int64_t>(v.size()));
    if (!v.empty()) bytes(v.data(), v.size() * sizeof(T));
  }
  uint64_t hash() const { return hash_; }

 private:
  std::ostream& os_;
  uint64_t hash_ = 14695981039346656037ull;
};

class Reader {
 public:
  explicit Reader(std::istream& is) : is_(is) {}
  void bytes(void* p, size_t n) {
    is_.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    SPARTA_CHECK(static_cast<size_t>(is_.gcount()) == n, "weight file is truncated");
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) hash_ = (hash_ ^ b[i]) * 1099511628211ull;
  }
  int64_t num() {
    int64_t v;
    bytes(&v, sizeof v);
    return v;
  }
  void dims(int64_t& rows, int64_t& cols) {
    rows = num();
    cols = num();
    check_dims(rows, cols);
  }
  void small(int& v, const char* what) {
    const int64_t x = num();
    SPARTA_CHECK(x >= 0 && x <= 1 << 20, "weight file has a corrupt ", what, " ", x);
    v = static_cast<int>(x);
  }
  template <typename T>
  void array(std::vector<T>& v) {
    const int64_t n = num();
    // Lengths are checked against a hard cap before allocating, so a corrupt
    // length cannot ask for terabytes; truncation is caught by bytes().
    SPARTA_CHECK(n >= 0 && n <= (int64_t{1} << 34) / static_cast<int64_t>(sizeof(T)),
                 "weight file has a corrupt array length ", n);
    // Read in bounded chunks, so memory grows only with bytes actually present:
    // a corrupt length in a small file fails as truncated after at most one
    // chunk instead of first allocating (and zeroing) up to the cap.
    constexpr size_t kChunk = (size_t{1} << 20) / sizeof(T);
    v.clear();
    for (size_t done = 0, total = static_cast<size_t>(n); done < total;) {
      const size_t step = std::min(kChunk, total - done);
      v.resize(done + step);
      bytes(v.data() + done, step * sizeof(T));
      done += step;
    }
  }
  uint64_t hash() const { return hash_; }

 private:
  std::istream& is_;
  uint64_t hash_ = 14695981039346656037ull;
};

// Each format's fields in file order, for writing and reading alike.
template <class IO>
void fields(IO& io, DenseMatrix& m) {
  io.dims(m.rows, m.cols);
  io.array(m.values);
}
template <class IO>
void fields(IO& io, CsrMatrix& m) {
  io.dims(m.rows, m.cols);
  io.array(m.row_ptr);
  io.array(m.col_idx);
  io.array(m.values);
}
template <class IO>
void fields(IO& io, BsrMatrix& m) {
  io.dims(m.rows, m.cols);
  io.small(m.block.r, "block height");
  io.small(m.block.c, "block width");
  io.array(m.block_row_ptr);
  io.array(m.block_col);
  io.array(m.values);
}
template <class IO>
void fields(IO& io, NmMatrix& m) {
  io.dims(m.rows, m.cols);
  io.small(m.nm.n, "N");
  io.small(m.nm.m, "M");
  io.array(m.values);
  io.array(m.index);
}
template <class IO>
void fields(IO& io, TilewiseMatrix& m) {
  io.dims(m.rows, m.cols);
  io.small(m.g, "tile size");
  io.array(m.tile_ptr);
  io.array(m.kept_k);
  io.array(m.value_ptr);
  io.array(m.values);
  fields(io, m.remainder);
}
template <class IO>
void fields(IO& io, StructuredMatrix& m) {
  io.dims(m.rows, m.cols);
  io.array(m.kept_rows);
  io.array(m.kept_cols);
  io.array(m.values);
}

template <class IO>
void fields(IO& io, DecomposedMatrix& m) {
  io.dims(m.rows, m.cols);
  int kind = static_cast<int>(m.main.index());
  io.small(kind, "decomposed main kind");
  SPARTA_CHECK(kind <= 1, "weight file has a corrupt decomposed main kind ", kind);
  if (kind != static_cast<int>(m.main.index())) {  // reading
    if (kind == 0) m.main = BsrMatrix{};
    else m.main = NmMatrix{};
  }
  std::visit([&io](auto& p) { fields(io, p); }, m.main);
  fields(io, m.remainder);
}

// The variant alternative with index `kind`, read from r.
template <size_t I = 0>
WeightFormat load_body(Reader& r, uint32_t kind) {
  if constexpr (I < std::variant_size_v<WeightFormat>) {
    if (kind == I) {
      std::variant_alternative_t<I, WeightFormat> m;
      fields(r, m);
      return m;
    }
    return load_body<I + 1>(r, kind);
  } else {
    throw Error("weight file has unknown format tag " + std::to_string(kind));
  }
}

}  // namespace

void validate(const WeightFormat& f) { std::visit(Validator{}, f); }

void save(const WeightFormat& f, std::ostream& os) {
  os.write(kMagic, 4);
  Writer w(os);
  const uint32_t version = kVersion, kind = static_cast<uint32_t>(f.index());
  w.bytes(&version, 4);
  w.bytes(&kind, 4);
  // Writing does not modify: the visitors take references so that one field
  // list serves both directions.
  std::visit([&w](const auto& m) { fields(w, const_cast<std::remove_const_t<std::remove_reference_t<decltype(m)>>&>(m)); }, f);
  const uint64_t h = w.hash();
  os.write(reinterpret_cast<const char*>(&h), sizeof h);
  SPARTA_CHECK(os.good(), "writing the weight file failed");
}

WeightFormat load(std::istream& is) {
  char magic[4] = {};
  is.read(magic, 4);
  SPARTA_CHECK(is.gcount() == 4 && std::memcmp(magic, kMagic, 4) == 0, "not a sparta weight file (bad magic)");
  Reader r(is);
  uint32_t version = 0, kind = 0;
  r.bytes(&version, 4);
  SPARTA_CHECK(version == kVersion, "weight file version ", version, " is not supported (this build reads ",
               kVersion, ")");
  r.bytes(&kind, 4);
  WeightFormat f = load_body(r, kind);
  const uint64_t expect = r.hash();
  uint64_t h = 0;
  is.read(reinterpret_cast<char*>(&h), sizeof h);
  SPARTA_CHECK(is.gcount() == sizeof h, "weight file is truncated (no checksum)");
  SPARTA_CHECK(h == expect, "weight file checksum mismatch: the file is corrupt");
  validate(f);
  return f;
}

}  // namespace sparta
