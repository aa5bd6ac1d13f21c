// Portable 8-lane fp32 "vector": plain C++ the compiler vectorizes for the
// baseline ISA. Same interface as the AVX types, so every kernel template has
// a portable instance.
#pragma once

struct VecPortable {
  struct V {
    float v[8];
  };
  static constexpr int W = 8;
  static constexpr const char* isa = "portable";

  template <typename F>
  static V map(V a, F f) {
    for (float& x : a.v) x = f(x);
    return a;
  }
  template <typename F>
  static V zip(V a, V b, F f) {
    for (int i = 0; i < W; ++i) a.v[i] = f(a.v[i], b.v[i]);
    return a;
  }

  static V zero() { return V{}; }
  static V set1(float s) {
    V r;
    for (float& x : r.v) x = s;
    return r;
  }
  static V load(const float* p) {
    V r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static void store(float* p, V v) { std::memcpy(p, v.v, sizeof v.v); }
  static V load_partial(const float* p, int n) {
    V r{};
    std::memcpy(r.v, p, sizeof(float) * static_cast<size_t>(n));
    return r;
  }
  static void store_partial(float* p, V v, int n) { std::memcpy(p, v.v, sizeof(float) * static_cast<size_t>(n)); }
  static V bcast(const float* p) { return set1(*p); }
  struct VI {
    int32_t i[8];
  };
  static VI load_idx(const int32_t* p) {
    VI r;
    std::memcpy(r.i, p, sizeof r.i);
    return r;
  }
  static V permute(V x, VI idx) {
    V r;
    for (int l = 0; l < W; ++l) r.v[l] = x.v[idx.i[l] & (W - 1)];
    return r;
  }
  static V bcast4(const float* p) {
    V r;
    for (int l = 0; l < W; ++l) r.v[l] = p[l & 3];
    return r;
  }
  static V permute4(V x, VI idx) {
    V r;
    for (int l = 0; l < W; ++l) r.v[l] = x.v[(l & ~3) + (idx.i[l] & 3)];
    return r;
  }
  static V fmadd(V a, V b, V c) {
    for (int i = 0; i < W; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static V add(V a, V b) { return zip(a, b, [](float x, float y) { return x + y; }); }
  static V sub(V a, V b) { return zip(a, b, [](float x, float y) { return x - y; }); }
  static V mul(V a, V b) { return zip(a, b, [](float x, float y) { return x * y; }); }
  static V div(V a, V b) { return zip(a, b, [](float x, float y) { return x / y; }); }
  static V recip(V a) { return div(set1(1.f), a); }
  static V max(V a, V b) { return zip(a, b, [](float x, float y) { return x > y ? x : y; }); }
  static V min(V a, V b) { return zip(a, b, [](float x, float y) { return x < y ? x : y; }); }
  static V abs(V a) { return map(a, [](float x) { return std::fabs(x); }); }
  static V copysign(V a, V s) { return zip(a, s, [](float x, float y) { return std::copysign(x, y); }); }
  static V round(V a) { return map(a, [](float x) { return std::nearbyint(x); }); }
  static float hsum(V v) {
    float s = 0;
    for (float x : v.v) s += x;
    return s;
  }
  static float hmax(V v) {
    float m = v.v[0];
    for (float x : v.v) m = x > m ? x : m;
    return m;
  }
  static V select_lt(V a, V b, V x, V y) {
    for (int i = 0; i < W; ++i) x.v[i] = a.v[i] < b.v[i] ? x.v[i] : y.v[i];
    return x;
  }
  static V pow2n(V n) { return map(n, [](float x) { return std::ldexp(1.f, static_cast<int>(x)); }); }

  static void transpose_tile(const float* src, int64_t lds, float* dst, int64_t ldd) {
    for (int i = 0; i < W; ++i)
      for (int j = 0; j < W; ++j) dst[j * ldd + i] = src[i * lds + j];
  }
};

