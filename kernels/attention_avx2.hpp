// Helpers of the AVX2 attention kernels (attention_avx2.cpp, attention_queries_avx2.cpp, and
// attention_queries_avx512.cpp, which builds the latter again). Included only by files compiled
// with -mavx2 -mfma -mf16c; internal linkage, so each file keeps the copy built with its own flags.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/quant_blocks.hpp"

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

// The cache lines of the next block's keys (or values), asked for one at a time from inside the
// loops that compute this block: at depth they come from memory, and a burst of a whole block's
// prefetches stalls the core until most of them are in flight, so that loading and computing
// would take turns instead of overlapping.
struct NextLines {
  const char* next = nullptr;
  const char* end = nullptr;
  void fetch() {
    if (next < end) {
      _mm_prefetch(next, _MM_HINT_T0);
      next += 64;
    }
  }
};

// n rows (F16 or float32), stride apart, as KeyPairLanes8 reads them: rows 2r and 2r + 1
// interleaved (element d of each side by side) at out + 2r * head_dim, an odd n's last row paired
// with zeros. head_dim is a multiple of 8.
template <typename Element>
void interleave_key_pairs(const Element* rows, int64_t stride, int32_t n, int32_t head_dim, float* out) {
  for (int32_t r = 0; 2 * r < n; ++r) {
    const Element* even = rows + 2 * r * stride;
    float* pair = out + int64_t(2 * r) * head_dim;
    for (int32_t d = 0; d < head_dim; d += 8) {
      const __m256 a = load_row8(even + d, 8), b = 2 * r + 1 < n ? load_row8(even + stride + d, 8) : _mm256_setzero_ps();
      const __m256 low = _mm256_unpacklo_ps(a, b), high = _mm256_unpackhi_ps(a, b);  // elements 0, 1, 4, 5 and 2, 3, 6, 7
      _mm256_storeu_ps(pair + 2 * d, _mm256_permute2f128_ps(low, high, 0x20));
      _mm256_storeu_ps(pair + 2 * d + 8, _mm256_permute2f128_ps(low, high, 0x31));
    }
  }
}

// The same for F16 rows, interleaved before they are converted (the 16-bit halves side by side,
// then one conversion per 4 pairs), which saves the float version's lane-crossing permutes.
inline void interleave_key_pairs(const uint16_t* rows, int64_t stride, int32_t n, int32_t head_dim, float* out) {
  for (int32_t r = 0; 2 * r < n; ++r) {
    const uint16_t* even = rows + 2 * r * stride;
    float* pair = out + int64_t(2 * r) * head_dim;
    for (int32_t d = 0; d < head_dim; d += 8) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(even + d));
      const __m128i b = 2 * r + 1 < n ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(even + stride + d)) : _mm_setzero_si128();
      _mm256_storeu_ps(pair + 2 * d, _mm256_cvtph_ps(_mm_unpacklo_epi16(a, b)));
      _mm256_storeu_ps(pair + 2 * d + 8, _mm256_cvtph_ps(_mm_unpackhi_epi16(a, b)));
    }
  }
}

// The cache lines of n rows of head_dim elements, stride apart (a paged block's rows of one KV
// head are contiguous: stride is a row).
template <typename Element>
NextLines lines_of_rows(const Element* rows, int64_t stride, int32_t n, int32_t head_dim) {
  const int64_t row_bytes = std::is_same_v<Element, BlockQ8_0>
                                ? int64_t(head_dim / kLegacyBlockSize) * int64_t(sizeof(BlockQ8_0))
                                : int64_t(head_dim) * int64_t(sizeof(Element));
  const char* first = reinterpret_cast<const char*>(rows);
  return {first, first + (n - 1) * stride * int64_t(sizeof(Element)) + row_bytes};
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
