// AVX2 attention for one query head: the per-key work inlined (no call per key), exp
// evaluated 8 keys at a time, values accumulated with FMA.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attention.hpp"
#include "kernels/attention_avx2.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {

namespace {

// Heads up to this many 8-float chunks keep q and the output in registers.
constexpr int32_t kMaxRegisterChunks = 8;

// out = sum_j (scores[j] * inv_sum) * v_j. Narrow heads split the keys over `Streams`
// independent register accumulators (key j in stream j % Streams, streams added in order at
// the end), so consecutive keys do not wait on one FMA chain; the order depends only on
// n_keys and head_dim.
template <int Streams, typename Element>
void accumulate_in_registers(const AttentionHead& h, const Element* values, float inv_sum, int32_t n_chunks) {
  __m256 acc[Streams][kMaxRegisterChunks];
  for (int s = 0; s < Streams; ++s)
    for (int32_t c = 0; c < n_chunks; ++c) acc[s][c] = _mm256_setzero_ps();
  const int32_t D = h.head_dim;
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    const __m256 weight = _mm256_set1_ps(h.scores[j] * inv_sum);
    const Element* value = values + h.kv.offset(j);
    __m256* stream = acc[(j - h.first_key) % Streams];
    for (int32_t c = 0; c < n_chunks; ++c)
      stream[c] = _mm256_fmadd_ps(weight, load_row8(value + 8 * c, D - 8 * c), stream[c]);
  }
  for (int32_t c = 0; c < n_chunks; ++c) {
    __m256 total = acc[0][c];
    for (int s = 1; s < Streams; ++s) total = _mm256_add_ps(total, acc[s][c]);
    store_row8(h.out + 8 * c, total, D - 8 * c);
  }
}

template <typename Element>
void accumulate_values(const AttentionHead& h, const Element* values, float inv_sum) {
  const int32_t D = h.head_dim;
  const int32_t n_chunks = (D + 7) / 8;
  if (n_chunks <= 2) return accumulate_in_registers<4>(h, values, inv_sum, n_chunks);
  if (n_chunks <= 4) return accumulate_in_registers<2>(h, values, inv_sum, n_chunks);
  if (n_chunks <= kMaxRegisterChunks) return accumulate_in_registers<1>(h, values, inv_sum, n_chunks);
  // Wide heads: the output row in memory, key by key.
  std::fill(h.out, h.out + D, 0.0f);
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    const __m256 weight = _mm256_set1_ps(h.scores[j] * inv_sum);
    const Element* value = values + h.kv.offset(j);
    for (int32_t d = 0; d < D; d += 8)
      store_row8(h.out + d, _mm256_fmadd_ps(weight, load_row8(value + d, D - d), load_row8(h.out + d, D - d)), D - d);
  }
}

template <typename Element>
void attend(const AttentionHead& h, const Element* keys, const Element* values) {
  const int32_t D = h.head_dim;
  // Scores: q.k_j in 8 lanes (element d in lane d % 8), reduced pairwise. q stays in
  // registers for heads up to kMaxRegisterChunks * 8 wide.
  const int32_t n_chunks = (D + 7) / 8;
  __m256 q_chunks[kMaxRegisterChunks];
  const bool q_in_registers = n_chunks <= kMaxRegisterChunks;
  if (q_in_registers)
    for (int32_t c = 0; c < n_chunks; ++c) q_chunks[c] = load_row8(h.q + 8 * c, D - 8 * c);
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    const Element* key = keys + h.kv.offset(j);
    __m256 acc = _mm256_setzero_ps();
    for (int32_t c = 0; c < n_chunks; ++c) {
      const __m256 q_chunk = q_in_registers ? q_chunks[c] : load_row8(h.q + 8 * c, D - 8 * c);
      acc = _mm256_fmadd_ps(q_chunk, load_row8(key + 8 * c, D - 8 * c), acc);
    }
    h.scores[j] = soft_capped(Avx2Lanes::reduce(acc) * h.scale, h.softcap);
  }
  // Softmax: exp of 8 keys at a time, the sum in 8 lanes (key j in lane j % 8).
  const float max_score = *std::max_element(h.scores + h.first_key, h.scores + h.n_keys);
  const __m256 max_vec = _mm256_set1_ps(max_score);
  __m256 sum = _mm256_setzero_ps();
  int32_t j = h.first_key;
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
  accumulate_values(h, values, inv_sum);
}

}  // namespace

void attend_head_avx2(const AttentionHead& h) {
  if (h.kv.keys_q8_0) return attend_head_scalar(h);  // the reference's integer scores (attention.hpp)
  if (h.kv.keys_f16) attend(h, h.kv.keys_f16, h.kv.values_f16);
  else attend(h, h.kv.keys_f32, h.kv.values_f32);
}

}  // namespace slm::kernels::avx2
