// Helpers of the AVX2 attention kernels (attention_avx2.cpp, attention_queries_avx2.cpp, and
// attention_queries_avx512.cpp, which builds the latter again). Included only by files compiled
// with -mavx2 -mfma -mf16c; internal linkage, so each file keeps the copy built with its own flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace slm::kernels::avx2 {
namespace {

// exp(x) for x <= 0 (scores minus their maximum): x = n ln2 + r with |r| <= ln2/2, then
// 2^n times a degree-7 polynomial of r (Cephes' expf coefficients; within 2 ulp of expf).
inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));  // below, exp is under FLT_MIN: 2^-126 stands in for it
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 split in two for an exact first step
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 e_r = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
  const __m256i two_to_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(e_r, _mm256_castsi256_ps(two_to_n));
}

// 8 elements of a row as floats, zero past `count`.
inline __m256 load_row8(const float* row, int32_t count) {
  if (count >= 8) return _mm256_loadu_ps(row);
  float padded[8] = {};
  std::memcpy(padded, row, size_t(count) * sizeof(float));
  return _mm256_loadu_ps(padded);
}
inline __m256 load_row8(const uint16_t* row, int32_t count) {
  if (count >= 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row)));
  uint16_t padded[8] = {};
  std::memcpy(padded, row, size_t(count) * sizeof(uint16_t));
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(padded)));
}

// Stores the first `count` (<= 8) lanes of v at out.
inline void store_row8(float* out, __m256 v, int32_t count) {
  if (count >= 8) {
    _mm256_storeu_ps(out, v);
    return;
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, v);
  std::memcpy(out, lanes, size_t(count) * sizeof(float));
}

}  // namespace
}  // namespace slm::kernels::avx2
