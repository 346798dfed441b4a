// One query head attending over cached keys and values: out = softmax(scale * q.K^T) V.
// Each score, the softmax sum and each output element are reduced in an order fixed by
// n_keys and head_dim alone, so a query gives the same bits whether it was evaluated in
// a batch or on its own.
#pragma once

#include <cmath>
#include <cstdint>

namespace slm::kernels {

struct BlockQ8_0;  // kernels/quant_blocks.hpp

// Rows per block of a paged cache.
inline constexpr int32_t kKvBlockRows = 32;

// Cached keys and values, F32, F16 or Q8_0 (exactly one pair set). Offsets and strides count
// elements (F32, F16) or Q8_0 blocks of 32 elements (a Q8_0 row is head_dim / 32 blocks: its
// head_dim is a multiple of 32). Contiguous (blocks == nullptr): row j at offset j * stride.
// Paged: row j is row j % kKvBlockRows of block blocks[j / kKvBlockRows], which starts at
// offset blocks[...] * block_stride.
struct KvRows {
  const float* keys_f32 = nullptr;
  const float* values_f32 = nullptr;
  const uint16_t* keys_f16 = nullptr;
  const uint16_t* values_f16 = nullptr;
  const BlockQ8_0* keys_q8_0 = nullptr;
  const BlockQ8_0* values_q8_0 = nullptr;
  int64_t stride = 0;
  const int32_t* blocks = nullptr;
  int64_t block_stride = 0;

  int64_t offset(int64_t j) const {
    return blocks ? blocks[j / kKvBlockRows] * block_stride + (j % kKvBlockRows) * stride : j * stride;
  }
};

// What changes a score before the softmax, and which keys a query sees.
struct AttentionOptions {
  float scale = 1.0f;    // score = q.k * scale
  float softcap = 0.0f;  // > 0: score = softcap * tanh(score / softcap) (Gemma 2)
  int32_t window = 0;    // > 0: a query sees only its last `window` keys (sliding-window attention)
};

inline float soft_capped(float score, float softcap) {
  return softcap > 0.0f ? softcap * std::tanh(score / softcap) : score;
}

// The first key a query with n_keys keys sees.
inline int32_t first_visible_key(int32_t n_keys, int32_t window) {
  return window > 0 && n_keys > window ? n_keys - window : 0;
}

struct AttentionHead {
  const float* q = nullptr;        // head_dim values
  int32_t head_dim = 0;
  float scale = 1.0f;
  float softcap = 0.0f;            // as AttentionOptions
  KvRows kv;
  int32_t first_key = 0;           // keys first_key .. n_keys - 1 are seen
  int32_t n_keys = 0;              // >= 1
  float* scores = nullptr;         // scratch of n_keys floats
  float* out = nullptr;            // head_dim values, overwritten
};

// Queries that share one KV head: n_tokens consecutive tokens x n_heads consecutive query
// heads. Query (t, h) is q + t * token_stride + h * head_dim (its output at the same offset of
// out) and attends to keys 0 .. first_n_keys + t - 1 (causal), or with a window only the last
// `window` of them. Evaluating the queries
// together lets each block of keys and values be read from memory once for all of them.
struct AttentionQueries {
  const float* q = nullptr;
  float* out = nullptr;
  int64_t token_stride = 0;  // floats between one token's rows of q (and of out) and the next's
  int32_t n_tokens = 0;
  int32_t n_heads = 0;
  int32_t head_dim = 0;
  float scale = 1.0f;
  float softcap = 0.0f;      // as AttentionOptions
  int32_t window = 0;        // as AttentionOptions
  KvRows kv;
  int32_t first_n_keys = 0;  // >= 1
  float* scratch = nullptr;  // attention_scratch_floats(*this) floats
};

// Keys per block of the online softmax: a block of F16 keys and values converted to float32
// (2 * 32 * head_dim floats, 16 KB for head_dim 64) stays in L1 while every query uses it.
// A block lies within one block of a paged cache, so its rows are stride apart.
inline constexpr int32_t kAttentionKeyBlock = 32;
static_assert(kKvBlockRows % kAttentionKeyBlock == 0);

// The scratch floats attend_queries needs: the queries transposed (with a Q8_0 cache, as int16
// and a scale per 32 elements), a block's scores, the running state of every query (in vectors
// of up to 16 lanes) and a block of keys and values as float32; or (evaluating the queries one by
// one) the scores of the longest query.
inline int64_t attention_scratch_floats(const AttentionQueries& a) {
  const int64_t n_queries = int64_t(a.n_tokens) * a.n_heads, lanes = (n_queries + 15) / 16 * 16;
  const int64_t state = lanes * (a.head_dim + a.head_dim / 32 + kAttentionKeyBlock + 5) + n_queries * a.head_dim +
                        2 * int64_t(kAttentionKeyBlock) * a.head_dim;
  const int64_t scores = int64_t(a.first_n_keys) + a.n_tokens;
  return state > scores ? state : scores;
}

// Q8_0 caches score int16 queries against the int8 keys: each 32-element block of a query is
// rounded to q16 * dq (q16 = lrint(q * 32767 / amax), dq = amax / 32767: 15 bits, far finer
// than the keys' 8), the block's dot product is an exact int32, and the score is
// s = fma(float(dot_b), dq_b * dk_b, s) in block order, times the scale. Integer multiply-adds
// take half the instructions of float32 FMAs on every x86 ISA (vpmaddwd: two per lane).
void quantize_query_q8_0(const float* q, int32_t head_dim, int16_t* q16, float* dq);
float score_q8_0(const int16_t* q16, const float* dq, const BlockQ8_0* key, int32_t head_dim);

// Dispatched to active_isa()'s kernel.
void attend_head(const AttentionHead& head);
void attend_queries(const AttentionQueries& queries);

// Each query on its own with `attend_head`: the kernel of the ISAs without a grouped one.
void attend_queries_one_by_one(const AttentionQueries& queries, void (*attend_head)(const AttentionHead&));

// The scalar reference: dot_f32 / dot_f16_f32 per key (score_q8_0 for Q8_0 keys), the soft cap
// with std::tanh, softmax with std::exp and a double sum, then the values accumulated key by key
// (Q8_0 values dequantized exactly: an int8 times an fp16 scale is a float). AVX2's single-query
// attend_head takes it for Q8_0 caches.
void attend_head_scalar(const AttentionHead& head);

// The reference's softmax: scores[first .. n - 1] each replaced by exp(score - max) (std::exp, in
// key order), and 1 / their sum (accumulated in double) returned. Shared with the SIMD kernels that
// give the reference's bits (attention_neon.cpp).
float softmax_numerators(float* scores, int32_t first, int32_t n);

}  // namespace slm::kernels
