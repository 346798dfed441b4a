// AVX2 (and, built again by attention_queries_avx512.cpp, AVX-512) attention for the queries that share one KV head (kernels/attention.hpp,
// AttentionQueries), with the softmax computed online over blocks of kAttentionKeyBlock keys
// (flash attention). Each block of keys and values is converted to float32 once, into L1, and
// then serves every query of the group: the query heads of a KV head and several tokens.
//
// What a query's output is, whatever the other queries (blocks start at multiples of
// kAttentionKeyBlock, so they depend on the key index alone):
//   M = -inf, S = 0, O = 0 (head_dim floats)
//   for each block of keys, up to the query's n_keys:
//     s_j = (q . k_j) * scale (8 lanes, then reduced as sum_lanes_of_eight)
//     M' = max(M, max_j s_j);  c = exp(M - M');  p_j = exp(s_j - M')
//     S = S * c + (sum of p_j: 8 lanes, then reduced);  M = M'
//     O = O * c, then O += p_j * v_j key by key (in add_weighted_values' order)
//   out = O * (1 / S)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/attention.hpp"
#include "kernels/attention_avx2.hpp"
#include "kernels/simd_avx2.hpp"

// attention_queries_avx512.cpp builds this file again with zmm rows, in namespace avx512.
#ifndef SLM_ATTENTION_KERNELS
#define SLM_ATTENTION_KERNELS avx2
#define SLM_ATTEND_QUERIES attend_queries_avx2
#endif

namespace slm::kernels::SLM_ATTENTION_KERNELS {
namespace {

using namespace slm::kernels::avx2;  // exp_nonpositive, load_row8, store_row8, Avx2Lanes

constexpr int32_t kKeyBlock = kAttentionKeyBlock;

#if defined(__AVX512F__)
// A row of head_dim floats (a query, a key, a value, an output) 16 floats per zmm register.
struct RowLanes {
  using Vec = __m512;
  static constexpr int32_t kWidth = 16;
  static __mmask16 first(int32_t count) { return __mmask16((1u << count) - 1); }
  // The first `count` floats from row (all 16 when count >= 16), zero after.
  static Vec load(const float* row, int32_t count) {
    return count >= kWidth ? _mm512_loadu_ps(row) : _mm512_maskz_loadu_ps(first(count), row);
  }
  static Vec load(const uint16_t* row, int32_t count) {
    return _mm512_cvtph_ps(count >= kWidth ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row))
                                           : _mm256_maskz_loadu_epi16(first(count), row));
  }
  static void store(float* row, Vec v, int32_t count) {
    if (count >= kWidth) _mm512_storeu_ps(row, v);
    else _mm512_mask_storeu_ps(row, first(count), v);
  }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec broadcast(float v) { return _mm512_set1_ps(v); }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm512_fmadd_ps(a, b, acc); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static constexpr int kAccumulators = 16;  // of the 32 zmm registers, for independent FMA chains
  // Lane i + lane i + 8: the 8 lanes a score is summed from.
  static __m256 fold_to_eight(Vec v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
};
#else
// A row of head_dim floats (a query, a key, a value, an output) 8 floats per ymm register.
struct RowLanes {
  using Vec = __m256;
  static constexpr int32_t kWidth = 8;
  // The first `count` floats from row (all 8 when count >= 8), zero after.
  static Vec load(const float* row, int32_t count) { return load_row8(row, count); }
  static Vec load(const uint16_t* row, int32_t count) { return load_row8(row, count); }
  static void store(float* row, Vec v, int32_t count) { store_row8(row, v, count); }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec broadcast(float v) { return _mm256_set1_ps(v); }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm256_fmadd_ps(a, b, acc); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static constexpr int kAccumulators = 8;  // of the 16 ymm registers, for independent FMA chains
  static __m256 fold_to_eight(Vec v) { return v; }
};
#endif
using Vec = RowLanes::Vec;
constexpr int32_t kWidth = RowLanes::kWidth;

// Chunk c (kWidth floats) of a row of head_dim floats: kChunks > 0 means head_dim = kWidth *
// kChunks, so every chunk is whole; kChunks = 0 takes any head_dim.
template <int kChunks>
Vec load_chunk(const float* row, int32_t c, int32_t head_dim) {
  return RowLanes::load(row + kWidth * c, kChunks > 0 ? kWidth : head_dim - kWidth * c);
}
template <int kChunks>
void store_chunk(float* row, int32_t c, int32_t head_dim, Vec v) {
  RowLanes::store(row + kWidth * c, v, kChunks > 0 ? kWidth : head_dim - kWidth * c);
}

// One query's running M, S and O, in the scratch between blocks.
struct QueryState {
  float* m;
  float* s;
  float* o;
};

// A block of keys and values as float32 rows, row_stride floats apart.
struct KeyBlock {
  const float* keys;
  const float* values;
  int64_t row_stride;
};

// o = o * correction, then o += weights[j] * v_j for the n_keys value rows, for the kGroup
// chunks of o from chunk c0. Key j goes to accumulator set j % kStreams (set 0 holds o * correction),
// the sets added in order at the end: kGroup chains alone would each wait on their last FMA's
// latency for every key (4 chains of 32 FMAs for a head of 64 in zmm registers).
template <int kGroup, int kChunks>
void add_weighted_values(const KeyBlock& block, const float* weights, int32_t n_keys, float correction, int32_t c0,
                         int32_t head_dim, float* o) {
  constexpr int kStreams = std::clamp(RowLanes::kAccumulators / kGroup, 1, 4);
  Vec acc[kStreams][kGroup];
  for (int i = 0; i < kGroup; ++i) {
    acc[0][i] = RowLanes::mul(load_chunk<kChunks>(o, c0 + i, head_dim), RowLanes::broadcast(correction));
    for (int s = 1; s < kStreams; ++s) acc[s][i] = RowLanes::zero();
  }
  const auto add_key = [&](int32_t j, Vec* stream) {
    const Vec weight = RowLanes::broadcast(weights[j]);
    const float* value = block.values + j * block.row_stride;
    for (int i = 0; i < kGroup; ++i) stream[i] = RowLanes::fma(weight, load_chunk<kChunks>(value, c0 + i, head_dim), stream[i]);
  };
  int32_t j = 0;
  for (; j + kStreams <= n_keys; j += kStreams)
    for (int s = 0; s < kStreams; ++s) add_key(j + s, acc[s]);
  for (int s = 0; s < kStreams && j + s < n_keys; ++s) add_key(j + s, acc[s]);
  for (int i = 0; i < kGroup; ++i) {
    Vec total = acc[0][i];
    for (int s = 1; s < kStreams; ++s) total = RowLanes::add(total, acc[s][i]);
    store_chunk<kChunks>(o, c0 + i, head_dim, total);
  }
}

// The lane sums of eight accumulators as one vector: lane i is the sum of acc[i]'s lanes, added
// as (0+1) + (2+3) and (4+5) + (6+7), then the two halves.
inline __m256 sum_lanes_of_eight(const __m256 acc[8]) {
  const __m256 pairs01 = _mm256_hadd_ps(acc[0], acc[1]), pairs23 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 pairs45 = _mm256_hadd_ps(acc[4], acc[5]), pairs67 = _mm256_hadd_ps(acc[6], acc[7]);
  const __m256 quads0123 = _mm256_hadd_ps(pairs01, pairs23), quads4567 = _mm256_hadd_ps(pairs45, pairs67);
  return _mm256_add_ps(_mm256_permute2f128_ps(quads0123, quads4567, 0x20), _mm256_permute2f128_ps(quads0123, quads4567, 0x31));
}

// Scores of keys k0 .. k0 + count - 1 (count <= 8) of a block, in lanes 0 .. count - 1 (the
// others 0): q . k_j in kWidth lanes (element d in lane d % kWidth), folded to 8 lanes
// (fold_to_eight), the lanes summed by sum_lanes_of_eight, times scale, then soft-capped.
template <int kChunks>
__m256 scores_of_eight_keys(const float* q, float scale, float softcap, int32_t head_dim, const KeyBlock& block,
                            int32_t k0, int32_t count) {
  const int32_t n_chunks = kChunks > 0 ? kChunks : (head_dim + kWidth - 1) / kWidth;
  Vec acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = RowLanes::zero();
  if (count == 8) {
    for (int32_t c = 0; c < n_chunks; ++c) {
      const Vec q_chunk = load_chunk<kChunks>(q, c, head_dim);
      for (int i = 0; i < 8; ++i)
        acc[i] = RowLanes::fma(q_chunk, load_chunk<kChunks>(block.keys + (k0 + i) * block.row_stride, c, head_dim), acc[i]);
    }
  } else {
    for (int32_t c = 0; c < n_chunks; ++c) {
      const Vec q_chunk = load_chunk<kChunks>(q, c, head_dim);
      for (int i = 0; i < count; ++i)
        acc[i] = RowLanes::fma(q_chunk, load_chunk<kChunks>(block.keys + (k0 + i) * block.row_stride, c, head_dim), acc[i]);
    }
  }
  __m256 folded[8];
  for (int i = 0; i < 8; ++i) folded[i] = RowLanes::fold_to_eight(acc[i]);
  __m256 scores = _mm256_mul_ps(sum_lanes_of_eight(folded), _mm256_set1_ps(scale));
  if (softcap > 0.0f) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, scores);
    for (float& score : lanes) score = soft_capped(score, softcap);
    scores = _mm256_load_ps(lanes);
  }
  return scores;
}

// One query over keys first .. n_keys - 1 of a block.
template <int kChunks>
void attend_block(const float* q, float scale, float softcap, int32_t head_dim, const KeyBlock& block, int32_t first,
                  int32_t n_keys, QueryState state) {
  const int32_t n_chunks = kChunks > 0 ? kChunks : (head_dim + kWidth - 1) / kWidth;
  constexpr int32_t kGroups = kKeyBlock / 8;
  n_keys = std::min(n_keys, kKeyBlock);  // as the caller guarantees
  const int32_t n_groups = (n_keys + 7) / 8;
  // Keys before `first` (outside the window) and past n_keys weigh exactly 0.
  __m256 scores[kGroups], in_range[kGroups];
  __m256 block_max = _mm256_set1_ps(-INFINITY);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int32_t g = 0; g < n_groups; ++g) {
    const int32_t k = 8 * g, count = std::min<int32_t>(8, n_keys - k);
    scores[g] = scores_of_eight_keys<kChunks>(q, scale, softcap, head_dim, block, k, count);
    in_range[g] = _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(first - k), lane),
                                                          _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lane)));
    block_max = _mm256_max_ps(block_max, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), scores[g], in_range[g]));
  }
  // The maximum is exact in any order.
  __m128 max4 = _mm_max_ps(_mm256_castps256_ps128(block_max), _mm256_extractf128_ps(block_max, 1));
  max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
  max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
  const float new_max = std::max(*state.m, _mm_cvtss_f32(max4));
  // exp(M - M') is 0 for the first block (M = -inf; exp_nonpositive clamps it to 2^-126, which
  // only ever multiplies the zero S and O).
  const float correction = _mm256_cvtss_f32(exp_nonpositive(_mm256_set1_ps(*state.m - new_max)));
  const __m256 max_vec = _mm256_set1_ps(new_max);
  __m256 sum = _mm256_setzero_ps();
  alignas(32) float weights[kKeyBlock];
  for (int32_t g = 0; g < n_groups; ++g) {
    const __m256 e = _mm256_and_ps(exp_nonpositive(_mm256_sub_ps(scores[g], max_vec)), in_range[g]);
    _mm256_store_ps(weights + 8 * g, e);
    sum = _mm256_add_ps(sum, e);
  }
  *state.s = *state.s * correction + Avx2Lanes::reduce(sum);
  *state.m = new_max;

  int32_t c = 0;
  for (; c + 8 <= n_chunks; c += 8) add_weighted_values<8, kChunks>(block, weights, n_keys, correction, c, head_dim, state.o);
  for (; c + 4 <= n_chunks; c += 4) add_weighted_values<4, kChunks>(block, weights, n_keys, correction, c, head_dim, state.o);
  for (; c < n_chunks; ++c) add_weighted_values<1, kChunks>(block, weights, n_keys, correction, c, head_dim, state.o);
}

// n F16 rows, stride apart, as float32 rows of head_dim, head_dim apart.
void convert_rows(const uint16_t* rows, int64_t stride, int32_t n, int32_t head_dim, float* out) {
  for (int32_t j = 0; j < n; ++j) {
    const uint16_t* row = rows + j * stride;
    for (int32_t d = 0; d < head_dim; d += kWidth) RowLanes::store(out + j * head_dim + d, RowLanes::load(row + d, head_dim - d), head_dim - d);
  }
}

// Asks for n rows of head_dim elements, stride apart, to be brought into L2.
template <typename Element>
void prefetch_rows(const Element* rows, int64_t stride, int32_t n, int32_t head_dim) {
  const int64_t row_bytes = int64_t(head_dim) * int64_t(sizeof(Element));
  for (int32_t j = 0; j < n; ++j)
    for (int64_t byte = 0; byte < row_bytes; byte += 64)
      _mm_prefetch(reinterpret_cast<const char*>(rows + j * stride) + byte, _MM_HINT_T1);
}

template <int kChunks, typename Element>
void attend_all(const AttentionQueries& a, const Element* keys, const Element* values) {
  const int32_t D = a.head_dim;
  const int64_t n_queries = int64_t(a.n_tokens) * a.n_heads;
  const auto state_of = [&](int32_t t, int32_t h) {
    float* base = a.scratch + (int64_t(t) * a.n_heads + h) * (D + 2);
    return QueryState{base, base + 1, base + 2};
  };
  for (int32_t t = 0; t < a.n_tokens; ++t)
    for (int32_t h = 0; h < a.n_heads; ++h) {
      const QueryState state = state_of(t, h);
      *state.m = -INFINITY;
      *state.s = 0.0f;
      std::fill(state.o, state.o + D, 0.0f);
    }
  float* converted_keys = a.scratch + n_queries * (D + 2);
  float* converted_values = converted_keys + kKeyBlock * D;
  const int32_t last_n_keys = a.first_n_keys + a.n_tokens - 1;
  // Blocks start at multiples of kKeyBlock whatever the window, so a query's result depends on
  // its own keys alone; blocks before every query's window are skipped.
  const int32_t first_block = first_visible_key(a.first_n_keys, a.window) / kKeyBlock * kKeyBlock;
  for (int32_t first_key = first_block; first_key < last_n_keys; first_key += kKeyBlock) {
    KeyBlock block;
    const int64_t first_row = a.kv.offset(first_key);  // the block's rows are stride apart (kKvBlockRows)
    // The next block's keys and values are fetched while this one is computed: at depth they come
    // from memory, a KV head's rows are a strided part of each cache row, and a paged block spans
    // several pages, at each of which the hardware prefetcher starts over.
    if (const int32_t next = first_key + kKeyBlock; next < last_n_keys) {
      const int64_t next_row = a.kv.offset(next);
      const int32_t n_next = std::min(kKeyBlock, last_n_keys - next);
      prefetch_rows(keys + next_row, a.kv.stride, n_next, D);
      prefetch_rows(values + next_row, a.kv.stride, n_next, D);
    }
    if constexpr (std::is_same_v<Element, float>) {
      block = {keys + first_row, values + first_row, a.kv.stride};
    } else {
      const int32_t n_block = std::min(kKeyBlock, last_n_keys - first_key);
      convert_rows(keys + first_row, a.kv.stride, n_block, D, converted_keys);
      convert_rows(values + first_row, a.kv.stride, n_block, D, converted_values);
      block = {converted_keys, converted_values, D};
    }
    for (int32_t t = 0; t < a.n_tokens; ++t) {
      const int32_t n_keys = std::min(kKeyBlock, a.first_n_keys + t - first_key);
      const int32_t first = std::max(0, first_visible_key(a.first_n_keys + t, a.window) - first_key);
      if (n_keys <= first) continue;
      for (int32_t h = 0; h < a.n_heads; ++h)
        attend_block<kChunks>(a.q + t * a.token_stride + int64_t(h) * D, a.scale, a.softcap, D, block, first, n_keys,
                              state_of(t, h));
    }
  }
  for (int32_t t = 0; t < a.n_tokens; ++t)
    for (int32_t h = 0; h < a.n_heads; ++h) {
      const QueryState state = state_of(t, h);
      const Vec inverse = RowLanes::broadcast(1.0f / *state.s);
      float* out = a.out + t * a.token_stride + int64_t(h) * D;
      for (int32_t d = 0; d < D; d += kWidth) RowLanes::store(out + d, RowLanes::mul(RowLanes::load(state.o + d, D - d), inverse), D - d);
    }
}

template <typename Element>
void attend_all(const AttentionQueries& a, const Element* keys, const Element* values) {
  switch (a.head_dim) {
    case 64: return attend_all<64 / kWidth>(a, keys, values);
    case 128: return attend_all<128 / kWidth>(a, keys, values);
    case 256: return attend_all<256 / kWidth>(a, keys, values);  // qwen35's attention layers, gemma 3
    default: return attend_all<0>(a, keys, values);
  }
}

}  // namespace

void SLM_ATTEND_QUERIES(const AttentionQueries& a) {
  if (a.kv.keys_f16) attend_all(a, a.kv.keys_f16, a.kv.values_f16);
  else attend_all(a, a.kv.keys_f32, a.kv.values_f32);
}

}  // namespace slm::kernels::SLM_ATTENTION_KERNELS
