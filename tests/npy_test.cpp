// .npy reading and writing: exact round trips for every dtype numpy has, and
// malformed files (bad magic, truncation, bad dtypes, Fortran order) as one
// sparta::Error, never a crash.
#include <gtest/gtest.h>

#include <random>

#include "core/npy.h"
#include "test_util.h"

namespace sparta {
namespace {

using testing::expect_error;

TEST(Npy, RoundTripEveryDtype) {
  for (DType t : {DType::f32, DType::i64, DType::i32, DType::i8, DType::u8, DType::boolean})
    for (const Shape& s : {Shape{}, Shape{0}, Shape{7}, Shape{2, 3, 5}}) {
      Tensor x(t, s);
      auto* b = static_cast<unsigned char*>(x.raw());
      for (size_t i = 0; i < x.nbytes(); ++i) b[i] = static_cast<unsigned char>(t == DType::boolean ? i % 2 : i * 37);
      const std::string bytes = format_npy(x);
      EXPECT_EQ((bytes.find('\n') + 1) % 64, 0u) << "data must start 64-byte aligned";
      const Tensor y = parse_npy(bytes, "t.npy");
      EXPECT_EQ(y.dtype(), t);
      EXPECT_EQ(y.shape(), s);
      EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0);
    }
  EXPECT_THROW(format_npy(Tensor(DType::bf16, Shape{2})), Error);
}

TEST(Npy, MalformedFilesAreErrors) {
  const std::string good = format_npy(Tensor(DType::f32, Shape{3, 4}));
  expect_error([] { parse_npy("not numpy at all", "a.npy"); }, {"a.npy", "bad magic"});
  expect_error([&] { parse_npy(good.substr(0, good.size() - 4), "b.npy"); }, {"b.npy", "44 bytes, expected 48"});
  std::string f8 = good;
  f8.replace(f8.find("<f4"), 3, "<f8");
  expect_error([&] { parse_npy(f8, "c.npy"); }, {"c.npy", "'<f8'", "not supported"});
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  expect_error([&] { parse_npy(fortran, "d.npy"); }, {"Fortran"});
  expect_error([] { read_npy("/nonexistent.npy"); }, {"cannot open"});
  // Every truncation and random corruption: an error or a valid tensor.
  std::mt19937 rng(3);
  for (size_t len = 0; len < good.size(); ++len) {
    try {
      parse_npy(good.substr(0, len), "t.npy");
    } catch (const Error&) {
    }
  }
  for (int trial = 0; trial < 2000; ++trial) {
    std::string b = good;
    b[std::uniform_int_distribution<size_t>(0, 127)(rng)] = static_cast<char>(rng());
    try {
      parse_npy(b, "t.npy");
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace sparta
