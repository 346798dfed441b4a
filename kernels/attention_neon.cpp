// NEON attention for one query head, and for the queries that share a KV head (each on its own):
// the scalar reference's arithmetic (attend_head_scalar) in vector registers, so that on AArch64
// it gives the reference's bits. The reference's two inner loops are what cost, head_dim multiply-
// adds per key each: the score q.k_j accumulates element i in lane i % 8 and sums the lanes
// pairwise (dot_f32's order), and the output adds weight_j * v_j key by key. On AArch64, GCC
// and Clang contract the reference's `lane += a * b` and `out += weight * v` into one fused
// multiply-add (fused multiply-add is in the base ISA; GCC's C++ default is -ffp-contract=fast),
// so this file uses vfmaq where the reference has them; the exp, the double sum and the soft cap
// are the reference's own code (softmax_numerators, soft_capped). F16 keys and values are
// converted with fcvtl, which is exact like the reference's fp16_to_fp32. A query's result then
// depends on its own keys alone: the same bits in a batch or alone, from a paged cache or not.
// A Q8_0 cache takes the reference's integer scores (score_q8_0) and these value sums.
// tests/support/attention_kernel_checks.hpp checks the bits under qemu (tests/cross).
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/dequantize.hpp"
#include "kernels/simd_neon.hpp"

namespace slm::kernels::neon {
namespace {

using Vec = NeonLanes::Vec;

// 8 elements of a row as floats.
inline Vec load8(const float* row) { return NeonLanes::load(row); }
inline Vec load8(const uint16_t* row) {
  const float16x8_t halves = vreinterpretq_f16_u16(vld1q_u16(row));
  return {vcvt_f32_f16(vget_low_f16(halves)), vcvt_high_f32_f16(halves)};
}
inline float element(const float* row, int32_t i) { return row[i]; }
inline float element(const uint16_t* row, int32_t i) { return half_to_float(row[i]); }

// The first `count` (< 8) elements of a row as floats, the other lanes 0.
template <typename Element>
Vec load_partial(const Element* row, int32_t count) {
  float padded[8] = {};
  for (int32_t i = 0; i < count; ++i) padded[i] = element(row, i);
  return NeonLanes::load(padded);
}

// q . key in dot_f32's order: element i fused into lane i % 8, the lanes summed pairwise.
template <typename Element>
float dot_in_reference_order(const float* q, const Element* key, int32_t n) {
  Vec acc = NeonLanes::zero();
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) acc = NeonLanes::fma(load8(key + i), NeonLanes::load(q + i), acc);
  if (i < n) {  // the tail's lanes only: a padded lane would turn a -0 sum into +0
    float lanes[8];
    NeonLanes::store(lanes, acc);
    for (int32_t lane = 0; i < n; ++i, ++lane) lanes[lane] = std::fma(element(key, i), q[i], lanes[lane]);
    acc = NeonLanes::load(lanes);
  }
  return NeonLanes::reduce(acc);
}

// out[d0 ..] for kChunks chunks of 8 (the last may be partial): out = 0, then out += weight_j * v_j
// key by key, each element's sums in the reference's order, the chunks held in registers.
template <int kChunks, typename Element>
void accumulate_chunks(const AttentionHead& h, const Element* values, int32_t d0) {
  const int32_t D = h.head_dim;
  Vec acc[kChunks];
  for (int c = 0; c < kChunks; ++c) acc[c] = NeonLanes::zero();
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    const Vec weight = NeonLanes::broadcast(h.scores[j]);
    const Element* value = values + h.kv.offset(j) + d0;
    for (int c = 0; c < kChunks; ++c) {
      const int32_t count = D - d0 - 8 * c;
      acc[c] = NeonLanes::fma(weight, count >= 8 ? load8(value + 8 * c) : load_partial(value + 8 * c, count), acc[c]);
    }
  }
  for (int c = 0; c < kChunks; ++c) {
    const int32_t count = D - d0 - 8 * c;
    if (count >= 8) {
      NeonLanes::store(h.out + d0 + 8 * c, acc[c]);
    } else {
      float lanes[8];
      NeonLanes::store(lanes, acc[c]);
      std::memcpy(h.out + d0 + 8 * c, lanes, size_t(count) * sizeof(float));
    }
  }
}

// The softmax and the value sums of attend, over h.scores already filled with the scaled and
// soft-capped scores of keys first_key .. n_keys - 1.
template <typename Element>
void attend_scored(const AttentionHead& h, const Element* values) {
  const float inv_sum = softmax_numerators(h.scores, h.first_key, h.n_keys);
  for (int32_t j = h.first_key; j < h.n_keys; ++j) h.scores[j] *= inv_sum;  // the reference's weights
  // 32 output elements per pass over the values (8 q registers), then the rest.
  int32_t d = 0;
  for (; d + 32 <= h.head_dim; d += 32) accumulate_chunks<4>(h, values, d);
  for (; d < h.head_dim; d += 8) accumulate_chunks<1>(h, values, d);
}

template <typename Element>
void attend(const AttentionHead& h, const Element* keys, const Element* values) {
  for (int32_t j = h.first_key; j < h.n_keys; ++j)
    h.scores[j] = soft_capped(dot_in_reference_order(h.q, keys + h.kv.offset(j), h.head_dim) * h.scale, h.softcap);
  attend_scored(h, values);
}

// A Q8_0 cache: the reference's integer scores (score_q8_0 itself), then the value rows a query
// sees dequantized (exactly) into float rows, head_dim apart, for the float value sums.
void attend_q8_0(const AttentionHead& h) {
  thread_local std::vector<int16_t> q16;  // per thread, kept between calls
  thread_local std::vector<float> dq, rows;
  q16.resize(size_t(h.head_dim));
  dq.resize(size_t(h.head_dim / 32));
  rows.resize(size_t(h.n_keys) * size_t(h.head_dim));
  quantize_query_q8_0(h.q, h.head_dim, q16.data(), dq.data());
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    h.scores[j] = soft_capped(score_q8_0(q16.data(), dq.data(), h.kv.keys_q8_0 + h.kv.offset(j), h.head_dim) * h.scale, h.softcap);
    dequantize_row_q8_0(h.kv.values_q8_0 + h.kv.offset(j), rows.data() + size_t(j) * size_t(h.head_dim), h.head_dim);
  }
  AttentionHead dequantized = h;
  dequantized.kv = KvRows{};
  dequantized.kv.values_f32 = rows.data();
  dequantized.kv.stride = h.head_dim;
  attend_scored(dequantized, rows.data());
}

}  // namespace

void attend_head_neon(const AttentionHead& h) {
  if (h.kv.keys_q8_0) attend_q8_0(h);
  else if (h.kv.keys_f16) attend(h, h.kv.keys_f16, h.kv.values_f16);
  else attend(h, h.kv.keys_f32, h.kv.values_f32);
}

void attend_queries_neon(const AttentionQueries& queries) { attend_queries_one_by_one(queries, attend_head_neon); }

}  // namespace slm::kernels::neon
