// AVX2 attention for one query head: the per-key work inlined (no call per key), exp
// evaluated 8 keys at a time, values accumulated with FMA.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
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

// Heads up to this many 8-float chunks keep q and the output in registers.
constexpr int32_t kMaxRegisterChunks = 8;

// Stores the first `count` (<= 8) lanes of v at out.
void store_row8(float* out, __m256 v, int32_t count) {
  if (count >= 8) {
    _mm256_storeu_ps(out, v);
    return;
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, v);
  std::memcpy(out, lanes, size_t(count) * sizeof(float));
}

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
  for (int32_t j = 0; j < h.n_keys; ++j) {
    const __m256 weight = _mm256_set1_ps(h.scores[j] * inv_sum);
    const Element* value = values + j * h.stride;
    __m256* stream = acc[j % Streams];
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
  for (int32_t j = 0; j < h.n_keys; ++j) {
    const __m256 weight = _mm256_set1_ps(h.scores[j] * inv_sum);
    const Element* value = values + j * h.stride;
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
  for (int32_t j = 0; j < h.n_keys; ++j) {
    const Element* key = keys + j * h.stride;
    __m256 acc = _mm256_setzero_ps();
    for (int32_t c = 0; c < n_chunks; ++c) {
      const __m256 q_chunk = q_in_registers ? q_chunks[c] : load_row8(h.q + 8 * c, D - 8 * c);
      acc = _mm256_fmadd_ps(q_chunk, load_row8(key + 8 * c, D - 8 * c), acc);
    }
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
  accumulate_values(h, values, inv_sum);
}

// ---------------------------------------------------------------------------
// Queries sharing a KV head, with the softmax computed online over blocks of kKeyBlock keys
// (flash attention): each block of keys and values is read once for all the queries, and
// stays in L1 while they use it. What a query's output is, whatever the other queries:
//   M = -inf, S = 0, O = 0 (head_dim floats)
//   for each block of keys [b, b + kKeyBlock) (blocks start at multiples of kKeyBlock), up to n_keys:
//     s_j = (q . k_j) * scale, as in attend();  M' = max(M, max_j s_j);  c = exp(M - M')
//     p_j = exp(s_j - M');  S = S * c + (sum of p_j, 8 lanes then reduced);  M = M'
//     O = O * c, then O += p_j * v_j key by key
//   out = O * (1 / S)
// ---------------------------------------------------------------------------

constexpr int32_t kKeyBlock = 64;

// One query's running M, S and O, in the scratch between blocks.
struct QueryState {
  float* m;
  float* s;
  float* o;
};

// o = o * correction, then o += weights[j] * v_j for the n_keys value rows, for the kChunks
// 8-float chunks of o from chunk c0: independent FMA chains, so consecutive keys do not wait.
template <int kChunks, typename Element>
void add_weighted_values(const AttentionQueries& a, const float* weights, int32_t n_keys, float correction,
                         const Element* values, int32_t c0, float* o) {
  const int32_t D = a.head_dim;
  __m256 acc[kChunks];
  for (int i = 0; i < kChunks; ++i)
    acc[i] = _mm256_mul_ps(load_row8(o + 8 * (c0 + i), D - 8 * (c0 + i)), _mm256_set1_ps(correction));
  for (int32_t j = 0; j < n_keys; ++j) {
    const __m256 weight = _mm256_set1_ps(weights[j]);
    const Element* value = values + int64_t(j) * a.stride;
    for (int i = 0; i < kChunks; ++i)
      acc[i] = _mm256_fmadd_ps(weight, load_row8(value + 8 * (c0 + i), D - 8 * (c0 + i)), acc[i]);
  }
  for (int i = 0; i < kChunks; ++i) store_row8(o + 8 * (c0 + i), acc[i], D - 8 * (c0 + i));
}

template <typename Element>
void attend_key_block(const AttentionQueries& a, const float* q, QueryState state, const Element* keys,
                      const Element* values, int32_t first_key, int32_t n_keys) {
  const int32_t D = a.head_dim;
  const int32_t n_chunks = (D + 7) / 8;
  alignas(32) float scores[kKeyBlock];
  for (int32_t j = 0; j < n_keys; ++j) {
    const Element* key = keys + int64_t(first_key + j) * a.stride;
    __m256 acc = _mm256_setzero_ps();
    for (int32_t c = 0; c < n_chunks; ++c)
      acc = _mm256_fmadd_ps(load_row8(q + 8 * c, D - 8 * c), load_row8(key + 8 * c, D - 8 * c), acc);
    scores[j] = Avx2Lanes::reduce(acc) * a.scale;
  }
  const float block_max = *std::max_element(scores, scores + n_keys);
  const float new_max = std::max(*state.m, block_max);
  // exp(M - M'): 0 for the first block (M = -inf), and M' is finite unless a score is not.
  const float correction =
      _mm256_cvtss_f32(exp_nonpositive(_mm256_set1_ps(*state.m == -INFINITY ? -INFINITY : *state.m - new_max)));
  const __m256 max_vec = _mm256_set1_ps(new_max);
  __m256 sum = _mm256_setzero_ps();
  for (int32_t j = 0; j < n_keys; j += 8) {
    const int32_t count = std::min<int32_t>(8, n_keys - j);
    __m256 e = exp_nonpositive(_mm256_sub_ps(load_row8(scores + j, count), max_vec));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(count),
                                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
    store_row8(scores + j, e, count);
    sum = _mm256_add_ps(sum, e);
  }
  *state.s = *state.s * correction + Avx2Lanes::reduce(sum);
  *state.m = new_max;
  const Element* block_values = values + int64_t(first_key) * a.stride;
  int32_t c = 0;
  for (; c + 8 <= n_chunks; c += 8) add_weighted_values<8>(a, scores, n_keys, correction, block_values, c, state.o);
  for (; c + 4 <= n_chunks; c += 4) add_weighted_values<4>(a, scores, n_keys, correction, block_values, c, state.o);
  for (; c < n_chunks; ++c) add_weighted_values<1>(a, scores, n_keys, correction, block_values, c, state.o);
}

template <typename Element>
void attend_queries(const AttentionQueries& a, const Element* keys, const Element* values) {
  const int32_t D = a.head_dim;
  const int64_t n_queries = int64_t(a.n_tokens) * a.n_heads;
  const auto state_of = [&](int64_t query) {
    float* base = a.scratch + query * (D + 2);
    return QueryState{base, base + 1, base + 2};
  };
  for (int64_t query = 0; query < n_queries; ++query) {
    const QueryState state = state_of(query);
    *state.m = -INFINITY;
    *state.s = 0.0f;
    std::fill(state.o, state.o + D, 0.0f);
  }
  const int32_t last_n_keys = a.first_n_keys + a.n_tokens - 1;
  for (int32_t first_key = 0; first_key < last_n_keys; first_key += kKeyBlock)
    for (int32_t t = 0; t < a.n_tokens; ++t) {
      const int32_t n_keys = std::min(kKeyBlock, a.first_n_keys + t - first_key);
      if (n_keys <= 0) continue;
      for (int32_t h = 0; h < a.n_heads; ++h)
        attend_key_block(a, a.q + t * a.token_stride + int64_t(h) * D, state_of(int64_t(t) * a.n_heads + h), keys,
                         values, first_key, n_keys);
    }
  for (int32_t t = 0; t < a.n_tokens; ++t)
    for (int32_t h = 0; h < a.n_heads; ++h) {
      const QueryState state = state_of(int64_t(t) * a.n_heads + h);
      const __m256 inverse = _mm256_set1_ps(1.0f / *state.s);
      float* out = a.out + t * a.token_stride + int64_t(h) * D;
      for (int32_t d = 0; d < D; d += 8) store_row8(out + d, _mm256_mul_ps(load_row8(state.o + d, D - d), inverse), D - d);
    }
}

}  // namespace

void attend_queries_avx2(const AttentionQueries& a) {
  if (a.keys_f16) attend_queries(a, a.keys_f16, a.values_f16);
  else attend_queries(a, a.keys_f32, a.values_f32);
}

void attend_head_avx2(const AttentionHead& h) {
  if (h.keys_f16) attend(h, h.keys_f16, h.values_f16);
  else attend(h, h.keys_f32, h.values_f32);
}

}  // namespace slm::kernels::avx2
