#include "core/tesa.h"

#include <algorithm>

namespace sparta {

bool is_valid_code(uint8_t c) {
  return c == 0 || c == 4 || c == 8 || c == 16 || c == 32 || c == 0xFF;
}

Tesa::Tesa(Shape shape, ElemCode fill)
    : shape_(std::move(shape)), codes_(static_cast<size_t>(shape_.numel()), static_cast<uint8_t>(fill)) {}

Tesa Tesa::from_zeros(const Tensor& t) {
  Tesa a(t.shape(), ElemCode::pruned);
  const int64_t n = t.numel();
  auto mark = [&](auto* p, ElemCode c) {
    for (int64_t i = 0; i < n; ++i)
      if (p[i] != 0) a.codes_[static_cast<size_t>(i)] = static_cast<uint8_t>(c);
  };
  switch (t.dtype()) {
    case DType::f32: mark(t.data<float>(), ElemCode::bits32); break;
    case DType::i8: mark(t.data<int8_t>(), ElemCode::bits8); break;
    case DType::i32: mark(t.data<int32_t>(), ElemCode::bits32); break;
    case DType::i64: mark(t.data<int64_t>(), ElemCode::bits32); break;  // widest code
    case DType::u8: mark(t.data<uint8_t>(), ElemCode::bits8); break;
    case DType::boolean: mark(static_cast<const uint8_t*>(t.raw()), ElemCode::bits8); break;
    case DType::bf16: {
      const bf16* p = t.data<bf16>();
      for (int64_t i = 0; i < n; ++i)  // +0 and -0 are both zero
        if ((p[i].bits & 0x7FFF) != 0) a.codes_[static_cast<size_t>(i)] = static_cast<uint8_t>(ElemCode::bits16);
      break;
    }
  }
  return a;
}

Tesa Tesa::from_mask(Shape shape, const std::vector<uint8_t>& mask, ElemCode kept) {
  SPARTA_CHECK(static_cast<int64_t>(mask.size()) == shape.numel(), "mask has ", mask.size(),
               " elements but shape ", shape.str(), " needs ", shape.numel());
  Tesa a(std::move(shape), ElemCode::pruned);
  for (size_t i = 0; i < mask.size(); ++i)
    if (mask[i]) a.codes_[i] = static_cast<uint8_t>(kept);
  return a;
}

void Tesa::set_constant(int64_t flat, float v) {
  if (v == 0.f) return set(flat, ElemCode::pruned);
  if (values_.empty()) values_.assign(codes_.size(), 0.f);
  values_[static_cast<size_t>(flat)] = v;
  set(flat, ElemCode::constant);
}

int64_t Tesa::count_constant() const { return std::count(codes_.begin(), codes_.end(), uint8_t{0xFF}); }

int64_t Tesa::count_kept() const {
  return static_cast<int64_t>(codes_.size()) - std::count(codes_.begin(), codes_.end(), uint8_t{0});
}

double Tesa::density() const {
  return codes_.empty() ? 1.0 : static_cast<double>(count_kept()) / static_cast<double>(codes_.size());
}

void Tesa::apply(Tensor& t) const {
  SPARTA_CHECK(t.shape() == shape_, "tesa shape ", shape_.str(), " does not match tensor shape ",
               t.shape().str());
  float* p = t.data<float>();
  for (size_t i = 0; i < codes_.size(); ++i)
    if (!codes_[i]) p[i] = 0.f;
}

}  // namespace sparta
