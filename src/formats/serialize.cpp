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
  void i64(int64_t v) { bytes(&v, sizeof v); }
  template <typename T>
  void vec(const std::vector<T>& v) {
    i64(static_cast<int64_t>(v.size()));
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
  int64_t i64() {
    int64_t v;
    bytes(&v, sizeof v);
    return v;
  }
  template <typename T>
  void vec(std::vector<T>& v) {
    const int64_t n = i64();
    // Lengths are checked against a hard cap before allocating, so a corrupt
    // length cannot ask for terabytes; truncation is caught by bytes().
    SPARTA_CHECK(n >= 0 && n <= (int64_t{1} << 34) / static_cast<int64_t>(sizeof(T)),
                 "weight file has a corrupt array length ", n);
    v.resize(static_cast<size_t>(n));
    if (n) bytes(v.data(), v.size() * sizeof(T));
  }
  uint64_t hash() const { return hash_; }

 private:
  std::istream& is_;
  uint64_t hash_ = 14695981039346656037ull;
};


void put_dims(Writer& w, int64_t r, int64_t c) {
  w.i64(r);
  w.i64(c);
}

struct Saver {
  Writer& w;
  void operator()(const DenseMatrix& m) {
    put_dims(w, m.rows, m.cols);
    w.vec(m.values);
  }
  void operator()(const CsrMatrix& m) {
    put_dims(w, m.rows, m.cols);
    w.vec(m.row_ptr);
    w.vec(m.col_idx);
    w.vec(m.values);
  }
  void operator()(const BsrMatrix& m) {
    put_dims(w, m.rows, m.cols);
    w.i64(m.block.r);
    w.i64(m.block.c);
    w.vec(m.block_row_ptr);
    w.vec(m.block_col);
    w.vec(m.values);
  }
  void operator()(const NmMatrix& m) {
    put_dims(w, m.rows, m.cols);
    w.i64(m.nm.n);
    w.i64(m.nm.m);
    w.vec(m.values);
    w.vec(m.index);
  }
  void operator()(const TilewiseMatrix& m) {
    put_dims(w, m.rows, m.cols);
    w.i64(m.g);
    w.vec(m.tile_ptr);
    w.vec(m.kept_k);
    w.vec(m.value_ptr);
    w.vec(m.values);
    (*this)(m.remainder);
  }
  void operator()(const StructuredMatrix& m) {
    put_dims(w, m.rows, m.cols);
    w.vec(m.kept_rows);
    w.vec(m.kept_cols);
    w.vec(m.values);
  }
};

int small_int(Reader& r, const char* what) {
  const int64_t v = r.i64();
  SPARTA_CHECK(v >= 0 && v <= 1 << 20, "weight file has a corrupt ", what, " ", v);
  return static_cast<int>(v);
}

void get_dims(Reader& r, int64_t& rows, int64_t& cols) {
  rows = r.i64();
  cols = r.i64();
  check_dims(rows, cols);
}

CsrMatrix load_csr(Reader& r) {
  CsrMatrix m;
  get_dims(r, m.rows, m.cols);
  r.vec(m.row_ptr);
  r.vec(m.col_idx);
  r.vec(m.values);
  return m;
}

WeightFormat load_body(Reader& r, uint32_t kind) {
  switch (kind) {
    case 0: {
      DenseMatrix m;
      get_dims(r, m.rows, m.cols);
      r.vec(m.values);
      return m;
    }
    case 1: return load_csr(r);
    case 2: {
      BsrMatrix m;
      get_dims(r, m.rows, m.cols);
      m.block.r = small_int(r, "block height");
      m.block.c = small_int(r, "block width");
      r.vec(m.block_row_ptr);
      r.vec(m.block_col);
      r.vec(m.values);
      return m;
    }
    case 3: {
      NmMatrix m;
      get_dims(r, m.rows, m.cols);
      m.nm.n = small_int(r, "N");
      m.nm.m = small_int(r, "M");
      r.vec(m.values);
      r.vec(m.index);
      return m;
    }
    case 4: {
      TilewiseMatrix m;
      get_dims(r, m.rows, m.cols);
      m.g = small_int(r, "tile size");
      r.vec(m.tile_ptr);
      r.vec(m.kept_k);
      r.vec(m.value_ptr);
      r.vec(m.values);
      m.remainder = load_csr(r);
      return m;
    }
    case 5: {
      StructuredMatrix m;
      get_dims(r, m.rows, m.cols);
      r.vec(m.kept_rows);
      r.vec(m.kept_cols);
      r.vec(m.values);
      return m;
    }
  }
  throw Error("weight file has unknown format tag " + std::to_string(kind));
}

}  // namespace

void validate(const WeightFormat& f) { std::visit(Validator{}, f); }

void save(const WeightFormat& f, std::ostream& os) {
  os.write(kMagic, 4);
  Writer w(os);
  const uint32_t version = kVersion, kind = static_cast<uint32_t>(f.index());
  w.bytes(&version, 4);
  w.bytes(&kind, 4);
  std::visit(Saver{w}, f);
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
