// TeSA: Tensor with Sparsity Attribute.
//
// A Tesa has the same shape as the tensor it describes and holds one small
// code per element: the element is pruned (always zero), or it needs 4, 8, 16
// or 32 bits, or propagation proved it a known constant. Every later stage of
// sparta (propagation, transformation, kernel choice) reads and refines these
// codes; pattern analysis (pattern.h) summarizes them for kernel selection.
#pragma once

#include <cstdint>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"

namespace sparta {

enum class ElemCode : uint8_t {
  pruned = 0,
  bits4 = 4,
  bits8 = 8,
  bits16 = 16,
  bits32 = 32,
  constant = 0xFF,
};

bool is_valid_code(uint8_t c);

class Tesa {
 public:
  Tesa() = default;
  // Every element kept, with the given code.
  Tesa(Shape shape, ElemCode fill);

  // Attribute derived from a tensor's zeros: zero -> pruned, else the dtype's
  // width (f32 -> 32, bf16 -> 16, i8 -> 8, i32 -> 32).
  static Tesa from_zeros(const Tensor& t);
  // Mask form: mask[i] != 0 -> kept (with `kept` code), else pruned.
  static Tesa from_mask(Shape shape, const std::vector<uint8_t>& mask, ElemCode kept = ElemCode::bits32);

  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  ElemCode at(int64_t flat) const { return static_cast<ElemCode>(codes_[static_cast<size_t>(flat)]); }
  bool kept(int64_t flat) const { return codes_[static_cast<size_t>(flat)] != 0; }
  void set(int64_t flat, ElemCode c) { codes_[static_cast<size_t>(flat)] = static_cast<uint8_t>(c); }
  // Known constants (propagation proves them: a pruned channel plus a bias).
  // A constant of value 0 is recorded as pruned: pruned means exactly zero.
  bool is_constant(int64_t flat) const { return at(flat) == ElemCode::constant; }
  float constant_value(int64_t flat) const { return values_.empty() ? 0.f : values_[static_cast<size_t>(flat)]; }
  void set_constant(int64_t flat, float v);
  int64_t count_constant() const;
  const uint8_t* codes() const { return codes_.data(); }

  int64_t count_kept() const;  // not pruned (constants count as kept)
  double density() const;  // kept / numel; 1 for an empty tensor

  // Zero every pruned element of `t` (t must have this Tesa's shape, f32).
  void apply(Tensor& t) const;

 private:
  Shape shape_;
  std::vector<uint8_t> codes_;
  std::vector<float> values_;  // constant elements' values; allocated with the first one
};

}  // namespace sparta
