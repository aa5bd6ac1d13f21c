#include "core/npy.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/error.h"

namespace sparta {
namespace {

const char kMagic[] = "\x93NUMPY";

const char* descr_of(DType t) {
  switch (t) {
    case DType::f32: return "<f4";
    case DType::i64: return "<i8";
    case DType::i32: return "<i4";
    case DType::i8: return "|i1";
    case DType::u8: return "|u1";
    case DType::boolean: return "|b1";
    case DType::bf16: return nullptr;
  }
  return nullptr;
}

DType dtype_of_descr(const std::string& d, const std::string& what) {
  if (d == "<f4" || d == "=f4") return DType::f32;
  if (d == "<i8" || d == "=i8") return DType::i64;
  if (d == "<i4" || d == "=i4") return DType::i32;
  if (d == "|i1" || d == "<i1") return DType::i8;
  if (d == "|u1" || d == "<u1") return DType::u8;
  if (d == "|b1" || d == "<b1") return DType::boolean;
  throw Error(what + ": numpy dtype '" + d + "' is not supported (use float32, int64, int32, int8, uint8 or bool)");
}

}  // namespace

Tensor parse_npy(const std::string& b, const std::string& what) {
  SPARTA_CHECK(b.size() >= 10 && std::memcmp(b.data(), kMagic, 6) == 0, what, ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(b[6]);
  SPARTA_CHECK(major >= 1 && major <= 3, what, ": .npy format version ", major, " is not supported");
  size_t hlen, start;
  if (major == 1) {
    hlen = static_cast<unsigned char>(b[8]) | static_cast<size_t>(static_cast<unsigned char>(b[9])) << 8;
    start = 10;
  } else {
    SPARTA_CHECK(b.size() >= 12, what, ": truncated .npy header");
    uint32_t h;
    std::memcpy(&h, b.data() + 8, 4);
    hlen = h;
    start = 12;
  }
  SPARTA_CHECK(hlen <= 1 << 20 && start + hlen <= b.size(), what, ": truncated .npy header");
  const std::string header = b.substr(start, hlen);
  std::smatch m;
  SPARTA_CHECK(std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")), what,
               ": .npy header has no descr");
  const DType dt = dtype_of_descr(m[1], what);
  SPARTA_CHECK(!std::regex_search(header, std::regex(R"('fortran_order'\s*:\s*True)")), what,
               ": Fortran-ordered arrays are not supported (save with np.ascontiguousarray)");
  SPARTA_CHECK(std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))")), what,
               ": .npy header has no shape");
  std::vector<int64_t> dims;
  const std::string shape = m[1];
  const std::regex number(R"(\d+)");
  for (std::sregex_iterator it(shape.begin(), shape.end(), number), end; it != end; ++it) {
    SPARTA_CHECK(it->str().size() <= 12, what, ": .npy shape extent too large");
    dims.push_back(std::stoll(it->str()));
  }
  int64_t numel = 1;
  for (int64_t d : dims) {
    SPARTA_CHECK(d == 0 || numel <= (int64_t{1} << 40) / d, what, ": .npy array too large");
    numel *= d;
  }
  const size_t bytes = static_cast<size_t>(numel) * dtype_size(dt), data = start + hlen;
  SPARTA_CHECK(b.size() - data == bytes, what, ": .npy data has ", b.size() - data, " bytes, expected ", bytes,
               " for shape ", Shape(dims).str());
  Tensor t(dt, Shape(dims));
  if (bytes) std::memcpy(t.raw(), b.data() + data, bytes);
  return t;
}

Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SPARTA_CHECK(f.good(), path, ": cannot open");
  std::ostringstream s;
  s << f.rdbuf();
  return parse_npy(s.str(), path);
}

std::string format_npy(const Tensor& t) {
  const char* descr = descr_of(t.dtype());
  SPARTA_CHECK(descr != nullptr, "cannot write ", dtype_name(t.dtype()), " to .npy (numpy has no such dtype)");
  std::string shape = "(";
  for (int i = 0; i < t.rank(); ++i) shape += std::to_string(t.dim(i)) + (t.rank() == 1 ? "," : i + 1 < t.rank() ? ", " : "");
  shape += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so the data starts on a 64-byte boundary; end with \n.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

void write_npy(const std::string& path, const Tensor& t) {
  std::ofstream f(path, std::ios::binary);
  SPARTA_CHECK(f.good(), path, ": cannot write");
  const std::string b = format_npy(t);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
  SPARTA_CHECK(f.good(), path, ": write failed");
}

}  // namespace sparta
