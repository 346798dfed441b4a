// AVX2 attention for one query head: the per-key work inlined (no call per key), exp
// evaluated 8 keys at a time, values accumulated with FMA.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/attention.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {

namespace {

// exp(x) for x <= 0 (scores minus their maximum): x = n ln2 + r with |r| <= ln2/2, then
// 2^n times a degree-7 polynomial of r (Cephes' expf coefficients; within 2 ulp of expf).
__m256 exp_nonpositive(__m256 x) {
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
__m256 load_row8(const float* row, int32_t count) {
  if (count >= 8) return _mm256_loadu_ps(row);
  float padded[8] = {};
  std::memcpy(padded, row, size_t(count) * sizeof(float));
  return _mm256_loadu_ps(padded);
}
__m256 load_row8(const uint16_t* row, int32_t count) {
  if (count >= 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row)));
  uint16_t padded[8] = {};
  std::memcpy(padded, row, size_t(count) * sizeof(uint16_t));
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(padded)));
}

template <typename Element>
void attend(const AttentionHead& h, const Element* keys, const Element* values) {
  const int32_t D = h.head_dim;
  // Scores: q.k_j in 8 lanes (element d in lane d % 8), reduced pairwise.
  for (int32_t j = 0; j < h.n_keys; ++j) {
    const Element* key = keys + j * h.stride;
    __m256 acc = _mm256_setzero_ps();
    for (int32_t d = 0; d < D; d += 8) acc = _mm256_fmadd_ps(load_row8(h.q + d, D - d), load_row8(key + d, D - d), acc);
    h.scores[j] = Avx2Lanes::reduce(acc) * h.scale;
  }
  // Softmax: exp of 8 keys at a time, the sum in 8 lanes (key j in lane j % 8).
  const float max_score = *std::max_element(h.scores, h.scores + h.n_keys);
  const __m256 max_vec = _mm256_set1_ps(max_score);
  __m256 sum = _mm256_setzero_ps();
  int32_t j = 0;
  for (; j + 8 <= h.n_keys; j += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(h.scores + j), max_vec));
    _mm256_storeu_ps(h.scores + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (j < h.n_keys) {
    float tail[8];
    std::fill(tail, tail + 8, max_score - 1000.0f);  // exp of the padding is (almost) 0 and not stored
    std::memcpy(tail, h.scores + j, size_t(h.n_keys - j) * sizeof(float));
    const __m256 e = _mm256_and_ps(exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(tail), max_vec)),
                                   _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(h.n_keys - j),
                                                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
    _mm256_storeu_ps(tail, e);
    std::memcpy(h.scores + j, tail, size_t(h.n_keys - j) * sizeof(float));
    sum = _mm256_add_ps(sum, e);
  }
  const float inv_sum = 1.0f / Avx2Lanes::reduce(sum);
  // Values: out += weight_j * v_j, key by key.
  std::fill(h.out, h.out + D, 0.0f);
  for (int32_t k = 0; k < h.n_keys; ++k) {
    const __m256 weight = _mm256_set1_ps(h.scores[k] * inv_sum);
    const Element* value = values + k * h.stride;
    for (int32_t d = 0; d < D; d += 8) {
      const int32_t count = std::min(8, D - d);
      const __m256 updated = _mm256_fmadd_ps(weight, load_row8(value + d, count), load_row8(h.out + d, count));
      if (count == 8) {
        _mm256_storeu_ps(h.out + d, updated);
      } else {
        float lanes[8];
        _mm256_storeu_ps(lanes, updated);
        std::memcpy(h.out + d, lanes, size_t(count) * sizeof(float));
      }
    }
  }
}

}  // namespace

void attend_head_avx2(const AttentionHead& h) {
  if (h.keys_f16) attend(h, h.keys_f16, h.values_f16);
  else attend(h, h.keys_f32, h.values_f32);
}

}  // namespace slm::kernels::avx2
