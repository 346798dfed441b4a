// AVX2 (and, built again by attention_queries_avx512.cpp, AVX-512) attention for the queries that share one KV head (kernels/attention.hpp,
// AttentionQueries), with the softmax computed online over blocks of kAttentionKeyBlock keys
// (flash attention). Each block of keys is converted to float32 once, into L1, and then serves
// every query of the group: the query heads of a KV head and several tokens; F16 and Q8_0 values
// are converted where they are added, each chunk once for up to seven of a token's heads (kMaxHeads).
//
// What a query's output is, whatever the other queries and the vector width (blocks start at
// multiples of kAttentionKeyBlock, so they depend on the key index alone; every step below is
// one IEEE operation per query, so it gives the same bits in any lane of any register):
//   M = -inf, S = 0, O = 0 (head_dim floats)
//   for each block of keys, up to the query's n_keys:
//     s_j = (q . k_j) * scale, the dot product one FMA chain in the order of d: a = 0, then
//           a = fma(q_d, k_jd, a) for d = 0 .. head_dim - 1; soft-capped after the scale
//     M' = max(M, max of the visible s_j);  c = exp(M - M');  p_j = exp(s_j - M') (0 if not visible)
//     S = fma(S, c, e), e the sum of the block's 32 p_j (p_i + p_i+16, then + 8, + 4, + 2, + 1)
//     O = O * c, then O = fma(p_j, v_j, O) for the visible keys in order
//   out = O * (1 / S)
// The scores are computed with the queries in the lanes (query i of the call in lane i % W of
// vector i / W), so that each key element is broadcast once for W queries and no dot product
// needs a horizontal sum; four queries or fewer take two lanes each, for two keys
// (KeyPairLanes8); the values are accumulated with head_dim in the lanes. A Q8_0 cache's scores
// are integer dot products of int16 queries and int8 keys (attention_queries_q8_0.hpp), whose
// s_j is attention.hpp's score_q8_0 in place of the FMA chain above.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/attention_avx2.hpp"
#include "kernels/quant_blocks.hpp"

// attention_queries_avx512.cpp builds this file again with zmm rows, in namespace avx512.
#ifndef SLM_ATTENTION_KERNELS
#define SLM_ATTENTION_KERNELS avx2
#define SLM_ATTEND_QUERIES attend_queries_avx2
#endif

namespace slm::kernels::SLM_ATTENTION_KERNELS {
namespace {

using namespace slm::kernels::avx2;  // load_row8, store_row8

constexpr int32_t kKeyBlock = kAttentionKeyBlock;
static_assert(kKeyBlock == 32, "the sum of a block's weights is a tree over 32");

#include "kernels/attention_query_lanes.hpp"  // the lanes of queries and rows, and exp

// Chunk c (kWidth floats) of a row of head_dim floats: kChunks > 0 means head_dim = kWidth *
// kChunks, so every chunk is whole; kChunks = 0 takes any head_dim.
template <int kChunks, typename Element>
Vec load_chunk(const Element* row, int32_t c, int32_t head_dim) {
  return RowLanes::load(row + kWidth * c, kChunks > 0 ? kWidth : head_dim - kWidth * c);
}
// A Q8_0 row's chunk (head_dim a multiple of 32, so the chunk lies in one block and is whole):
// q * d, exact in float32, so the bits of the row dequantized.
template <int kChunks>
Vec load_chunk(const BlockQ8_0* row, int32_t c, int32_t) {
  const BlockQ8_0& block = row[kWidth * c / kLegacyBlockSize];
  return RowLanes::mul(RowLanes::load_q8(block.qs + kWidth * c % kLegacyBlockSize), RowLanes::broadcast(_cvtsh_ss(block.d)));
}
template <int kChunks>
void store_chunk(float* row, int32_t c, int32_t head_dim, Vec v) {
  RowLanes::store(row + kWidth * c, v, kChunks > 0 ? kWidth : head_dim - kWidth * c);
}

// A block of keys and values as float32 rows, key_stride and value_stride floats apart (with
// two keys per vector, key row r is keys 2r and 2r + 1 interleaved: interleave_key_pairs); the
// values of an F16 or Q8_0 cache are read as they are (values_f16 or values_q8_0, value_stride
// elements or blocks apart) and converted where they are used.
struct KeyBlock {
  const float* keys;
  const float* values;
  int64_t key_stride;
  int64_t value_stride;
  int32_t first_key;  // the key index of row 0
  int32_t n_keys;     // keys, <= kKeyBlock
  const uint16_t* values_f16 = nullptr;
  const BlockQ8_0* values_q8_0 = nullptr;
  const int16_t* keys_q16 = nullptr;  // a Q8_0 cache's keys widened to int16, head_dim apart,
  const float* key_scales = nullptr;  // and their scales, head_dim / 32 per key (widen_rows)
  NextLines* next_keys = nullptr;    // fetched by the score loops
  NextLines* next_values = nullptr;  // fetched by the value loops
};

// The scratch of a call (attention_scratch_floats): for every query vector, its queries
// transposed (head_dim rows of lanes), a block's scores or weights (kKeyBlock rows of every
// vector's lanes, so that a token's heads are adjacent lanes even where they span two vectors) and
// its running M, S and correction c; the visible keys of each lane; each query's O; a block of
// keys and values as float32.
template <class L>
struct Scratch {
  static constexpr int32_t W = L::kLanes;
  int32_t n_vectors;
  float* queries;   // [vector][d][lane]
  float* weights;   // [key row][vector][lane]
  float* m;         // [vector][lane]
  float* s;
  float* c;
  float* first;     // [vector][lane]: keys first .. end - 1 are visible (none for padding lanes),
  float* end;       // as floats (a context is far below 2^24 keys)
  float* dq;        // [vector][32-element block][lane]: a Q8_0 cache's query scales (queries: int16 pairs)
  float* o;         // [query][d]
  float* converted_keys;
  float* converted_values;

  Scratch(const AttentionQueries& a) {
    const int32_t n_queries = a.n_tokens * a.n_heads;
    n_vectors = (n_queries * L::kKeysPerVector + W - 1) / W;
    const int64_t lanes = int64_t(n_vectors) * W;
    float* next = a.scratch;
    const auto take = [&](int64_t n) { float* p = next; next += n; return p; };
    queries = take(lanes * a.head_dim);
    weights = take(lanes * kKeyBlock);
    m = take(lanes);
    s = take(lanes);
    c = take(lanes);
    first = take(lanes);
    end = take(lanes);
    dq = take(lanes * (a.head_dim / kLegacyBlockSize));
    o = take(int64_t(n_queries) * a.head_dim);
    converted_keys = take(int64_t(kKeyBlock) * a.head_dim);
    converted_values = take(int64_t(kKeyBlock) * a.head_dim);
  }
};

// The key rows of a block's scores (and weights): two keys per row with KeyPairLanes8.
template <class L>
int32_t key_rows(const KeyBlock& block) {
  return (block.n_keys + L::kKeysPerVector - 1) / L::kKeysPerVector;
}

// Scores of key rows j .. j + kKeys - 1 of a block for query vectors v .. v + kVectors - 1: each
// key element (or pair of them) broadcast once for every lane of every vector.
// kKeyStride > 0: block.key_stride, known when compiling (the converted keys of a head_dim the
// kernel is built for), so that each key row's address is an immediate offset.
template <class L, int kVectors, int kKeys, int64_t kKeyStride>
void score_tile(const Scratch<L>& sc, int32_t v, const KeyBlock& block, int32_t j, int32_t head_dim, float scale) {
  constexpr int32_t W = L::kLanes;
  using V = typename L::Vec;
  V acc[kVectors][kKeys];
  for (int i = 0; i < kVectors; ++i)
    for (int k = 0; k < kKeys; ++k) acc[i][k] = L::zero();
  const int64_t key_stride = kKeyStride > 0 ? kKeyStride : block.key_stride;
  const float* q = sc.queries + int64_t(v) * head_dim * W;
  const float* key = block.keys + j * key_stride;
  NextLines next = *block.next_keys;
#pragma GCC unroll 2
  for (int32_t d = 0; d < head_dim; ++d) {
    next.fetch();
    V key_d[kKeys];
    for (int k = 0; k < kKeys; ++k)
      if constexpr (L::kKeysPerVector == 2) key_d[k] = L::broadcast_pair(key + k * key_stride + 2 * d);
      else key_d[k] = L::broadcast(key[k * key_stride + d]);
    for (int i = 0; i < kVectors; ++i) {
      const V q_d = L::load(q + (int64_t(i) * head_dim + d) * W);
      for (int k = 0; k < kKeys; ++k) acc[i][k] = L::fma(q_d, key_d[k], acc[i][k]);
    }
  }
  *block.next_keys = next;
  const V scale_vec = L::broadcast(scale);
  for (int i = 0; i < kVectors; ++i)
    for (int k = 0; k < kKeys; ++k) L::store(sc.weights + (int64_t(j + k) * sc.n_vectors + v + i) * W, L::mul(acc[i][k], scale_vec));
}

#include "kernels/attention_queries_q8_0.hpp"  // score_tile_q8_0, widen_rows, quantize_queries

// Fewer query vectors than L::kVectors (a decode step's heads) take more keys per tile, so that
// as many FMA chains run side by side: with 4 of them, each FMA would wait on its chain's last.
// Q8_0 keys (kQ8_0) take as many keys as the integer accumulators, the keys' pairs and a query
// pair leave registers for.
template <class L, int kVectors, int64_t kKeyStride, bool kQ8_0>
void score_vectors(const Scratch<L>& sc, int32_t v, const KeyBlock& block, int32_t head_dim, float scale) {
  const int32_t n_rows = key_rows<L>(block);
  int32_t j = 0;
  if constexpr (kQ8_0) {
    constexpr int kKeys = std::min(8, (RowLanes::kRegisters - 3) / (kVectors + 1));
    constexpr int32_t kHeadDim = int32_t(kKeyStride);  // Q8_0: the widened keys' stride, head_dim
    for (; j + kKeys <= n_rows; j += kKeys) score_tile_q8_0<L, kVectors, kKeys, kHeadDim>(sc, v, block, j, head_dim, scale);
    for (; j < n_rows; ++j) score_tile_q8_0<L, kVectors, 1, kHeadDim>(sc, v, block, j, head_dim, scale);
  } else {
    constexpr int kKeys = std::min(8, L::kVectors * L::kKeys / kVectors);
    for (; j + kKeys <= n_rows; j += kKeys) score_tile<L, kVectors, kKeys, kKeyStride>(sc, v, block, j, head_dim, scale);
    for (; j < n_rows; ++j) score_tile<L, kVectors, 1, kKeyStride>(sc, v, block, j, head_dim, scale);
  }
}

// Every query's scores of a block, scaled and soft-capped, in sc.weights.
template <class L, int64_t kKeyStride, bool kQ8_0>
void score_block(const Scratch<L>& sc, const KeyBlock& block, int32_t head_dim, float scale, float softcap) {
  int32_t v = 0;
  for (; v + L::kVectors <= sc.n_vectors; v += L::kVectors)
    score_vectors<L, L::kVectors, kKeyStride, kQ8_0>(sc, v, block, head_dim, scale);
  switch (sc.n_vectors - v) {
    case 3: score_vectors<L, 3, kKeyStride, kQ8_0>(sc, v, block, head_dim, scale); break;
    case 2: score_vectors<L, 2, kKeyStride, kQ8_0>(sc, v, block, head_dim, scale); break;
    case 1: score_vectors<L, 1, kKeyStride, kQ8_0>(sc, v, block, head_dim, scale); break;
    default: break;
  }
  if (softcap > 0.0f)
    for (int32_t u = 0; u < sc.n_vectors; ++u)
      for (int32_t j = 0; j < key_rows<L>(block); ++j)
        for (int32_t l = 0; l < L::kLanes; ++l) {
          float& score = sc.weights[(int64_t(j) * sc.n_vectors + u) * L::kLanes + l];
          score = soft_capped(score, softcap);
        }
}

// A query vector's rows of a block in the online softmax step: row j's scores at
// weights + j * row_stride (rows n_rows .. kRows - 1 are past the block's keys).
template <class L, bool kWholeBlockVisible>
struct SoftmaxRows {
  using V = typename L::Vec;
  float* weights;
  int64_t row_stride;
  int32_t n_rows;
  float first_key;  // the key of row 0 (of its even lanes, with two keys per row)
  const float* first;
  const float* end;
  V new_max;

  typename L::Mask visible(int32_t j) const { return L::visible(first_key + float(L::kKeysPerVector * j), first, end); }
  V scores(int32_t j) const { return L::load(weights + j * row_stride); }
  V visible_scores(int32_t j) const {
    return kWholeBlockVisible ? scores(j) : L::select(visible(j), scores(j), L::broadcast(-INFINITY));
  }
  // Row j's weights p = exp(s - M') (0 for keys not seen), stored over its scores.
  [[gnu::always_inline]] V weight(int32_t j) const {
    if (!kWholeBlockVisible && j >= n_rows) {
      L::store(weights + j * row_stride, L::zero());
      return L::zero();
    }
    V p = exp_nonpositive<L>(L::sub(scores(j), new_max));
    if (!kWholeBlockVisible) p = L::select(visible(j), p, L::zero());
    L::store(weights + j * row_stride, p);
    return p;
  }
};

// The sum of the weights of rows r, r + kStep, r + 2 kStep, ... < kRows (kStep a power of two) in
// the order of the block's tree: rows j and j + kRows / 2 first, then + kRows / 4, ... down to + 1,
// that is sum(r, s) = sum(r, 2s) + sum(r + s, 2s). Depth-first, so that each row's weight is
// computed, stored and added with at most log2(kRows) partial sums live.
template <class L, bool kWholeBlockVisible, int32_t kRows, int32_t kStep>
[[gnu::always_inline]] inline typename L::Vec weights_in_tree(const SoftmaxRows<L, kWholeBlockVisible>& rows, int32_t r) {
  if constexpr (kStep == kRows) {
    return rows.weight(r);
  } else {
    const typename L::Vec low = weights_in_tree<L, kWholeBlockVisible, kRows, 2 * kStep>(rows, r);
    return L::add(low, weights_in_tree<L, kWholeBlockVisible, kRows, 2 * kStep>(rows, r + kStep));
  }
}

// The online softmax step of a block for every query: M, S and c updated, the scores replaced by
// the weights p_j (0 for keys a query does not see, and for the rows past the block's keys).
// kWholeBlockVisible: the block has kKeyBlock keys and every query sees all of them (no masks;
// the padding lanes' values are never used).
template <class L, bool kWholeBlockVisible>
void softmax_block(const Scratch<L>& sc, const KeyBlock& block) {
  constexpr int32_t W = L::kLanes, P = L::kKeysPerVector, kRows = kKeyBlock / P;
  using V = typename L::Vec;
  SoftmaxRows<L, kWholeBlockVisible> rows;
  rows.row_stride = int64_t(sc.n_vectors) * W;
  rows.n_rows = kWholeBlockVisible ? kRows : key_rows<L>(block);
  rows.first_key = float(block.first_key);
  for (int32_t v = 0; v < sc.n_vectors; ++v) {
    rows.weights = sc.weights + int64_t(v) * W;
    rows.first = sc.first + v * W;
    rows.end = sc.end + v * W;
    // The maximum in four chains (row j in chain j % 4), so that the loads need not wait on one
    // another's max; a maximum is exact, so its order changes no bit of a finite one.
    V block_max;
    if constexpr (kWholeBlockVisible) {
      V max0 = rows.scores(0), max1 = rows.scores(1), max2 = rows.scores(2), max3 = rows.scores(3);
      for (int32_t j = 4; j < kRows; j += 4) {
        max0 = L::max(max0, rows.scores(j));
        max1 = L::max(max1, rows.scores(j + 1));
        max2 = L::max(max2, rows.scores(j + 2));
        max3 = L::max(max3, rows.scores(j + 3));
      }
      block_max = L::max(L::max(max0, max1), L::max(max2, max3));
    } else {
      block_max = L::broadcast(-INFINITY);
      for (int32_t j = 0; j < rows.n_rows; ++j) block_max = L::max(block_max, rows.visible_scores(j));
    }
    if constexpr (P == 2) block_max = L::max(block_max, L::swap_pairs(block_max));  // both keys of a query's lanes
    const V old_max = L::load(sc.m + v * W);
    rows.new_max = L::max(old_max, block_max);
    // exp(M - M') is 1 where the block has no visible key, and (almost) 0 for a query's first block
    // (M = -inf; it only multiplies the zero S and O).
    const V correction = exp_nonpositive<L>(L::sub(old_max, rows.new_max));
    // The tree over the 32 keys: with two keys per row, row j + half holds keys 2j + 2 half and
    // 2j + 2 half + 1, so the rows' tree is the keys' down to keys 0 and 1, then the lanes' pair.
    V sum = weights_in_tree<L, kWholeBlockVisible, kRows, 1>(rows, 0);
    if constexpr (P == 2) sum = L::add(sum, L::swap_pairs(sum));
    L::store(sc.s + v * W, L::fma(L::load(sc.s + v * W), correction, sum));
    L::store(sc.m + v * W, rows.new_max);
    L::store(sc.c + v * W, correction);
  }
}

// The first of a query's lanes (its M, S, c, first and end); its weight j of a block is at
// sc.weights[(j / P) * n_vectors * W + j % P + lane].
template <class L>
int32_t lane_of(int32_t query) {
  return query * L::kKeysPerVector;
}

// Queries in adjacent lanes that share their visible keys (up to kMaxHeads of a token's heads),
// and the weights of a block, P keys per row of weights: weight j of query h at
// weights[(j / P) * row_stride + j % P + h * P].
template <int kHeads, int P>
struct WeightedQueries {
  const float* weights;
  int64_t row_stride;
  float correction[kHeads];
  float* o[kHeads];
  const float* row(int32_t j) const { return weights + (j / P) * row_stride + j % P; }
};
constexpr int kMaxHeads = 7;  // x 2 chunks of accumulators (4 with zmm rows), a value chunk and a weight

// O = O * c, then O = fma(p_j, v_j, O) for keys j0 .. j1 - 1 of the block, for kHeads queries,
// chunks c0 .. c0 + kGroup - 1 of their rows; value row j at values + j * value_stride (F16 rows
// converted here: each chunk once for the kHeads queries, and never stored).
template <int kGroup, int kHeads, int kChunks, int P, typename Element>
void add_weighted_values(const Element* values, int64_t value_stride, NextLines* next_values,
                         const WeightedQueries<kHeads, P>& wq, int32_t j0, int32_t j1, int32_t c0, int32_t head_dim) {
  // With few heads, the group's value chunks stay in registers and each weight is broadcast once;
  // with more, a weight is broadcast again for each chunk, so that the accumulators fit.
  constexpr bool kChunksHeld = kHeads * kGroup + kGroup + 1 <= RowLanes::kRegisters;
  static_assert(kHeads * kGroup + 2 <= RowLanes::kRegisters);
  Vec acc[kHeads][kGroup];
  for (int h = 0; h < kHeads; ++h) {
    const Vec c = RowLanes::broadcast(wq.correction[h]);
    for (int i = 0; i < kGroup; ++i) acc[h][i] = RowLanes::mul(load_chunk<kChunks>(wq.o[h], c0 + i, head_dim), c);
  }
  NextLines next = *next_values;
#pragma GCC unroll 2
  for (int32_t j = j0; j < j1; ++j) {
    next.fetch();
    const Element* value = values + j * value_stride;
    const float* weights = wq.row(j);
    if constexpr (kChunksHeld) {
      Vec value_chunk[kGroup];
      for (int i = 0; i < kGroup; ++i) {
        value_chunk[i] = load_chunk<kChunks>(value, c0 + i, head_dim);
        // In a register: folded into every FMA that uses it, the loads would outnumber the FMAs
        // (GCC folds them for 3 heads), and two loads per cycle would bound the loop.
        asm("" : "+v"(value_chunk[i]));
      }
      for (int h = 0; h < kHeads; ++h) {
        const Vec weight = RowLanes::broadcast(weights[h * P]);
        for (int i = 0; i < kGroup; ++i) acc[h][i] = RowLanes::fma(weight, value_chunk[i], acc[h][i]);
      }
    } else {
      for (int i = 0; i < kGroup; ++i) {
        Vec value_chunk = load_chunk<kChunks>(value, c0 + i, head_dim);
        asm("" : "+v"(value_chunk));
        // The weights' address hidden from GCC, so that it loads them again for this chunk
        // instead of holding kHeads broadcasts in registers (and spilling accumulators).
        const float* chunk_weights = weights;
        asm volatile("" : "+r"(chunk_weights));
        for (int h = 0; h < kHeads; ++h)
          acc[h][i] = RowLanes::fma(RowLanes::broadcast(chunk_weights[h * P]), value_chunk, acc[h][i]);
      }
    }
  }
  *next_values = next;
  for (int h = 0; h < kHeads; ++h)
    for (int i = 0; i < kGroup; ++i) store_chunk<kChunks>(wq.o[h], c0 + i, head_dim, acc[h][i]);
}

// kHeads queries of one token: every chunk of their rows.
template <class L, int kHeads, int kChunks>
void add_values_of_heads(const Scratch<L>& sc, const KeyBlock& block, int32_t query0, int32_t j0, int32_t j1,
                         int32_t head_dim) {
  WeightedQueries<kHeads, L::kKeysPerVector> wq;
  wq.weights = sc.weights + lane_of<L>(query0);
  wq.row_stride = int64_t(sc.n_vectors) * L::kLanes;
  for (int h = 0; h < kHeads; ++h) {
    wq.correction[h] = sc.c[lane_of<L>(query0 + h)];
    wq.o[h] = sc.o + int64_t(query0 + h) * head_dim;
  }
  const int32_t n_chunks = kChunks > 0 ? kChunks : (head_dim + kWidth - 1) / kWidth;
  constexpr int kGroup = RowLanes::kAccumulators / 4;  // chunks of accumulators for each query
  const auto add = [&]<int kChunksAtOnce>(const auto* values, int64_t value_stride, int32_t c) {
    add_weighted_values<kChunksAtOnce, kHeads, kChunks>(values, value_stride, block.next_values, wq, j0, j1, c, head_dim);
  };
  for (int32_t c = 0; c < n_chunks;) {
    const bool group = c + kGroup <= n_chunks;
    if (block.values_f16) {
      if (group) add.template operator()<kGroup>(block.values_f16, block.value_stride, c);
      else add.template operator()<1>(block.values_f16, block.value_stride, c);
    } else if (block.values_q8_0) {
      if (group) add.template operator()<kGroup>(block.values_q8_0, block.value_stride, c);
      else add.template operator()<1>(block.values_q8_0, block.value_stride, c);
    } else {
      if (group) add.template operator()<kGroup>(block.values, block.value_stride, c);
      else add.template operator()<1>(block.values, block.value_stride, c);
    }
    c += group ? kGroup : 1;
  }
}

// Every query's O updated with the block's weights; a token's heads (the same visible keys)
// share each value row loaded.
template <class L, int kChunks>
void add_values_block(const Scratch<L>& sc, const AttentionQueries& a, const KeyBlock& block) {
  const int32_t D = a.head_dim;
  // A token's heads in as few passes as kMaxHeads allows, of equal size (8 heads: 4 and 4).
  const int32_t passes = (a.n_heads + kMaxHeads - 1) / kMaxHeads;
  const int32_t heads_per_pass = (a.n_heads + passes - 1) / passes;
  for (int32_t t = 0; t < a.n_tokens; ++t) {
    const int32_t query0 = t * a.n_heads;
    const int32_t j0 = std::max(int32_t(sc.first[lane_of<L>(query0)]) - block.first_key, 0);
    const int32_t j1 = std::min(int32_t(sc.end[lane_of<L>(query0)]) - block.first_key, block.n_keys);
    if (j1 <= j0) continue;  // no visible key: M, S and O stay as they are (c = 1)
    for (int32_t h = 0; h < a.n_heads; h += heads_per_pass) {
      const int32_t query = query0 + h;
      switch (std::min(heads_per_pass, a.n_heads - h)) {
        case 7: add_values_of_heads<L, 7, kChunks>(sc, block, query, j0, j1, D); break;
        case 6: add_values_of_heads<L, 6, kChunks>(sc, block, query, j0, j1, D); break;
        case 5: add_values_of_heads<L, 5, kChunks>(sc, block, query, j0, j1, D); break;
        case 4: add_values_of_heads<L, 4, kChunks>(sc, block, query, j0, j1, D); break;
        case 3: add_values_of_heads<L, 3, kChunks>(sc, block, query, j0, j1, D); break;
        case 2: add_values_of_heads<L, 2, kChunks>(sc, block, query, j0, j1, D); break;
        default: add_values_of_heads<L, 1, kChunks>(sc, block, query, j0, j1, D); break;
      }
    }
  }
}

// n F16 rows, stride apart, as float32 rows of head_dim, head_dim apart (kChunks as load_chunk).
template <int kChunks>
void convert_rows(const uint16_t* rows, int64_t stride, int32_t n, int32_t head_dim, float* out) {
  const int32_t n_chunks = kChunks > 0 ? kChunks : (head_dim + kWidth - 1) / kWidth;
  for (int32_t j = 0; j < n; ++j)
    for (int32_t c = 0; c < n_chunks; ++c) store_chunk<kChunks>(out + j * head_dim, c, head_dim, load_chunk<kChunks>(rows + j * stride, c, head_dim));
}

// n Q8_0 rows (head_dim / 32 blocks each), stride blocks apart, as float32 rows of head_dim,
// head_dim apart: q * d is exact in float32, so these are load_chunk's bits.
template <int>
void convert_rows(const BlockQ8_0* rows, int64_t stride, int32_t n, int32_t head_dim, float* out) {
  for (int32_t j = 0; j < n; ++j)
    for (int32_t c = 0; c < head_dim / kWidth; ++c) store_chunk<1>(out + j * head_dim, c, head_dim, load_chunk<1>(rows + j * stride, c, head_dim));
}

template <class L, int kChunks, typename Element>
void attend_all(const AttentionQueries& a, const Element* keys, const Element* values) {
  constexpr int32_t W = L::kLanes;
  const int32_t D = a.head_dim;
  const Scratch<L> sc(a);
  const int32_t n_queries = a.n_tokens * a.n_heads;
  for (int32_t lane = 0; lane < sc.n_vectors * W; ++lane) {
    const int32_t query = lane / L::kKeysPerVector, t = query / a.n_heads, h = query % a.n_heads;
    float* q_lane = sc.queries + int64_t(lane / W) * D * W + lane % W;
    const bool real = query < n_queries;
    for (int32_t d = 0; d < D; ++d) q_lane[int64_t(d) * W] = real ? a.q[t * a.token_stride + int64_t(h) * D + d] : 0.0f;
    sc.end[lane] = real ? float(a.first_n_keys + t) : 0.0f;
    sc.first[lane] = real ? float(first_visible_key(a.first_n_keys + t, a.window)) : 0.0f;
    sc.m[lane] = -INFINITY;
    sc.s[lane] = 0.0f;
  }
  if constexpr (std::is_same_v<Element, BlockQ8_0>) quantize_queries(a, sc);
  std::fill(sc.o, sc.o + int64_t(n_queries) * D, 0.0f);
  const int32_t last_n_keys = a.first_n_keys + a.n_tokens - 1;
  const int32_t last_window_start = first_visible_key(last_n_keys, a.window);
  // Blocks start at multiples of kKeyBlock whatever the window, so a query's result depends on
  // its own keys alone; blocks before every query's window are skipped.
  const int32_t first_block = first_visible_key(a.first_n_keys, a.window) / kKeyBlock * kKeyBlock;
  for (int32_t first_key = first_block; first_key < last_n_keys; first_key += kKeyBlock) {
    const int64_t first_row = a.kv.offset(first_key);  // the block's rows are stride apart (kKvBlockRows)
    const int32_t n_block = std::min(kKeyBlock, last_n_keys - first_key);
    // The next block's keys and values are fetched while this one is computed (NextLines): at depth
    // they come from memory, and a paged block's rows start a new run of pages, at each of which
    // the hardware prefetcher starts over.
    NextLines next_keys, next_values;
    if (const int32_t next = first_key + kKeyBlock; next < last_n_keys) {
      const int64_t next_row = a.kv.offset(next);
      const int32_t n_next = std::min(kKeyBlock, last_n_keys - next);
      next_keys = lines_of_rows(keys + next_row, a.kv.stride, n_next, D);
      next_values = lines_of_rows(values + next_row, a.kv.stride, n_next, D);
    }
    KeyBlock block{nullptr, nullptr, a.kv.stride, a.kv.stride, first_key, n_block};
    block.next_keys = &next_keys;
    block.next_values = &next_values;
    if constexpr (std::is_same_v<Element, float>) {
      block.keys = keys + first_row;
      block.values = values + first_row;
    }
    if constexpr (std::is_same_v<Element, BlockQ8_0>) {
      // int16 rows (16 D floats' room) and then their scales
      int16_t* widened = reinterpret_cast<int16_t*>(sc.converted_keys);
      widen_rows(keys + first_row, a.kv.stride, n_block, D, widened, sc.converted_keys + kKeyBlock * D / 2);
      block.keys_q16 = widened;
      block.key_scales = sc.converted_keys + kKeyBlock * D / 2;
    } else if constexpr (L::kKeysPerVector == 2) {
      interleave_key_pairs(keys + first_row, a.kv.stride, n_block, D, sc.converted_keys);
      block.keys = sc.converted_keys;
      block.key_stride = 2 * D;
    } else if constexpr (!std::is_same_v<Element, float>) {
      convert_rows<kChunks>(keys + first_row, a.kv.stride, n_block, D, sc.converted_keys);
      block.keys = sc.converted_keys;
      block.key_stride = D;
    }
    if constexpr (std::is_same_v<Element, uint16_t>) {
      block.values_f16 = values + first_row;
    } else if constexpr (std::is_same_v<Element, BlockQ8_0>) {
      // A decode step uses each value once per head; a prompt's tokens each use it again, and a
      // Q8_0 chunk takes four instructions to convert (an F16 one, one): converted once, here.
      if (a.n_tokens == 1) {
        block.values_q8_0 = values + first_row;
      } else {
        convert_rows<kChunks>(values + first_row, a.kv.stride, n_block, D, sc.converted_values);
        block.values = sc.converted_values;
        block.value_stride = D;
      }
    }
    // The converted keys' rows are kKeyStride floats (Q8_0: int16) apart when head_dim is the kernel's.
    constexpr int64_t kKeyStride =
        kChunks > 0 && (L::kKeysPerVector == 2 || !std::is_same_v<Element, float>) ? int64_t(L::kKeysPerVector) * kChunks * kWidth : 0;
    score_block<L, kKeyStride, std::is_same_v<Element, BlockQ8_0>>(sc, block, D, a.scale, a.softcap);
    // Whole blocks whose keys every query sees: from the last query's window start to the first
    // query's end (both grow with the token).
    if (first_key >= last_window_start && first_key + n_block <= a.first_n_keys && n_block == kKeyBlock)
      softmax_block<L, true>(sc, block);
    else softmax_block<L, false>(sc, block);
    add_values_block<L, kChunks>(sc, a, block);
  }
  for (int32_t t = 0; t < a.n_tokens; ++t)
    for (int32_t h = 0; h < a.n_heads; ++h) {
      const int32_t query = t * a.n_heads + h;
      const Vec inverse = RowLanes::broadcast(1.0f / sc.s[lane_of<L>(query)]);
      const float* o = sc.o + int64_t(query) * D;
      float* out = a.out + t * a.token_stride + int64_t(h) * D;
      for (int32_t d = 0; d < D; d += kWidth) RowLanes::store(out + d, RowLanes::mul(RowLanes::load(o + d, D - d), inverse), D - d);
    }
}

template <class L, typename Element>
void attend_all(const AttentionQueries& a, const Element* keys, const Element* values) {
  switch (a.head_dim) {
    case 64: return attend_all<L, 64 / kWidth>(a, keys, values);
    case 128: return attend_all<L, 128 / kWidth>(a, keys, values);
    case 256: return attend_all<L, 256 / kWidth>(a, keys, values);  // qwen35's attention layers, gemma 3
    default: return attend_all<L, 0>(a, keys, values);
  }
}

template <typename Element>
void attend_all(const AttentionQueries& a, const Element* keys, const Element* values) {
  const int32_t n_queries = a.n_tokens * a.n_heads;
#if defined(__AVX512F__)
  // Eight queries or fewer (a decode step's heads) fill a ymm register; more take zmm ones.
  if (n_queries > QueryLanes8::kLanes) return attend_all<QueryLanes16>(a, keys, values);
#endif
  if constexpr (!std::is_same_v<Element, BlockQ8_0>)  // Q8_0 keys: one query a lane (score_tile_q8_0)
    if (2 * n_queries <= QueryLanes8::kLanes && a.head_dim % 8 == 0) return attend_all<KeyPairLanes8>(a, keys, values);
  attend_all<QueryLanes8>(a, keys, values);
}

}  // namespace

void SLM_ATTEND_QUERIES(const AttentionQueries& a) {
  if (a.kv.keys_q8_0) attend_all(a, a.kv.keys_q8_0, a.kv.values_q8_0);
  else if (a.kv.keys_f16) attend_all(a, a.kv.keys_f16, a.kv.values_f16);
  else attend_all(a, a.kv.keys_f32, a.kv.values_f32);
}

}  // namespace slm::kernels::SLM_ATTENTION_KERNELS
