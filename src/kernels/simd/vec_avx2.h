// 8-lane fp32 vector for AVX2 + FMA. Included by an ISA translation unit
// (spmm_avx2.cpp etc.) inside its own namespace and target region, after the
// system headers it needs.
#pragma once

struct VecAvx2 {
  using V = __m256;
  static constexpr int W = 8;
  static constexpr const char* isa = "avx2";

  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i tail_mask(int n) {
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - n));
  }
  static V load_partial(const float* p, int n) { return _mm256_maskload_ps(p, tail_mask(n)); }
  static void store_partial(float* p, V v, int n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  // Lane-index vectors for permute(): lane i of the result is x[idx[i]].
  using VI = __m256i;
  static VI load_idx(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static V permute(V x, VI idx) { return _mm256_permutevar8x32_ps(x, idx); }
  // p[0..3] in every 128-bit lane, and a permute inside each lane (idx 0..3):
  // cheaper than the cross-lane permute on every x86 core.
  static V bcast4(const float* p) { return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(p)); }
  static V permute4(V x, VI idx) { return _mm256_permutevar_ps(x, idx); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  // 1 / a for a >= 1: the 12-bit estimate and one Newton step (~2^-23).
  static V recip(V a) {
    const V r = _mm256_rcp_ps(a);
    return _mm256_mul_ps(r, _mm256_fnmadd_ps(a, r, _mm256_set1_ps(2.f)));
  }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), a); }
  // |a| with the sign of s.
  static V copysign(V a, V s) {
    const V sign = _mm256_set1_ps(-0.f);
    return _mm256_or_ps(_mm256_andnot_ps(sign, a), _mm256_and_ps(sign, s));
  }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // Horizontal sum and maximum of the lanes.
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static float hmax(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
  }
  // Per lane: a < b ? x : y.
  static V select_lt(V a, V b, V x, V y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
  // 2^n for integral-valued n in [-126, 127].
  static V pow2n(V n) {
    __m256i i = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(i, 23));
  }

  // dst[j][i] = src[i][j] for an 8x8 tile.
  static void transpose_tile(const float* src, int64_t lds, float* dst, int64_t ldd) {
    V r0 = load(src + 0 * lds), r1 = load(src + 1 * lds), r2 = load(src + 2 * lds), r3 = load(src + 3 * lds);
    V r4 = load(src + 4 * lds), r5 = load(src + 5 * lds), r6 = load(src + 6 * lds), r7 = load(src + 7 * lds);
    V t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    V t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    V t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    V t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    V s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    V s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    V s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    V s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    store(dst + 0 * ldd, _mm256_permute2f128_ps(s0, s4, 0x20));
    store(dst + 1 * ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    store(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    store(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    store(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    store(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    store(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    store(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
  }
};

