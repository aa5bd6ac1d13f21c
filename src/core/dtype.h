// Element types a Tensor can hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sparta {

enum class DType : uint8_t { f32 = 0, i8 = 1, i32 = 2, bf16 = 3, i64 = 4, u8 = 5, boolean = 6 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::i8: return 1;
    case DType::i32: return 4;
    case DType::bf16: return 2;
    case DType::i64: return 8;
    case DType::u8: return 1;
    case DType::boolean: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::i8: return "i8";
    case DType::i32: return "i32";
    case DType::bf16: return "bf16";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
    case DType::boolean: return "bool";
  }
  return "?";
}

// The DType of an ONNX TensorProto.DataType code (as in Cast's "to"
// attribute and tensor protos), or nothing for types sparta does not hold.
constexpr std::optional<DType> dtype_from_onnx(int64_t code) {
  switch (code) {
    case 1: return DType::f32;       // FLOAT
    case 2: return DType::u8;        // UINT8
    case 3: return DType::i8;        // INT8
    case 6: return DType::i32;       // INT32
    case 7: return DType::i64;       // INT64
    case 9: return DType::boolean;   // BOOL
    case 16: return DType::bf16;     // BFLOAT16
  }
  return std::nullopt;
}

// The ONNX TensorProto.DataType code of a DType.
constexpr int dtype_to_onnx(DType t) {
  switch (t) {
    case DType::f32: return 1;
    case DType::u8: return 2;
    case DType::i8: return 3;
    case DType::i32: return 6;
    case DType::i64: return 7;
    case DType::boolean: return 9;
    case DType::bf16: return 16;
  }
  return 0;
}

// bf16 storage type: the upper 16 bits of an IEEE float.
struct bf16 {
  uint16_t bits = 0;
};

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::i8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };

}  // namespace sparta
