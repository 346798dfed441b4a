#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/dequantize.hpp"
#include "kernels/dot.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {

void quantize_query_q8_0(const float* q, int32_t head_dim, int16_t* q16, float* dq) {
  constexpr float kMax = 32767.0f;
  for (int32_t b = 0; b < head_dim / kLegacyBlockSize; ++b) {
    const float* x = q + b * kLegacyBlockSize;
    float amax = 0.0f;
    for (int32_t i = 0; i < kLegacyBlockSize; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float inverse = amax > 0.0f ? kMax / amax : 0.0f;
    dq[b] = amax / kMax;
    // lrint rounds to nearest even (the default mode); a NaN's result (LONG_MIN on x86) is clamped
    // to -32767 like any other out of range
    for (int32_t i = 0; i < kLegacyBlockSize; ++i)
      q16[b * kLegacyBlockSize + i] = int16_t(std::clamp(std::lrint(x[i] * inverse), -32767L, 32767L));
  }
}

float score_q8_0(const int16_t* q16, const float* dq, const BlockQ8_0* key, int32_t head_dim) {
  float s = 0.0f;
  for (int32_t b = 0; b < head_dim / kLegacyBlockSize; ++b) {
    int32_t dot = 0;  // |dot| <= 32 * 32767 * 128 < 2^31
    for (int32_t i = 0; i < kLegacyBlockSize; ++i) dot += int32_t(q16[b * kLegacyBlockSize + i]) * key[b].qs[i];
    s = std::fma(float(dot), dq[b] * fp16_to_fp32(key[b].d), s);
  }
  return s;
}

float softmax_numerators(float* scores, int32_t first, int32_t n) {
  const float max_score = *std::max_element(scores + first, scores + n);
  double sum = 0.0;
  for (int32_t j = first; j < n; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    sum += scores[j];
  }
  return static_cast<float>(1.0 / sum);
}

void attend_head_scalar(const AttentionHead& h) {
  const bool f16 = h.kv.keys_f16 != nullptr, q8_0 = h.kv.keys_q8_0 != nullptr;
  thread_local std::vector<int16_t> q16;  // per thread, kept between calls
  thread_local std::vector<float> dq, value;
  if (q8_0) {
    q16.resize(size_t(h.head_dim));
    dq.resize(size_t(h.head_dim / kLegacyBlockSize));
    value.resize(size_t(h.head_dim));
    quantize_query_q8_0(h.q, h.head_dim, q16.data(), dq.data());
  }
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    const float dot = q8_0  ? score_q8_0(q16.data(), dq.data(), h.kv.keys_q8_0 + h.kv.offset(j), h.head_dim)
                      : f16 ? kernels_for(Isa::Scalar).dot_f16_f32(h.kv.keys_f16 + h.kv.offset(j), h.q, h.head_dim)
                            : dot_f32(h.q, h.kv.keys_f32 + h.kv.offset(j), h.head_dim);
    h.scores[j] = soft_capped(dot * h.scale, h.softcap);
  }
  const float inv_sum = softmax_numerators(h.scores, h.first_key, h.n_keys);
  std::fill(h.out, h.out + h.head_dim, 0.0f);
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    const float weight = h.scores[j] * inv_sum;
    if (q8_0) {
      dequantize_row_q8_0(h.kv.values_q8_0 + h.kv.offset(j), value.data(), h.head_dim);
      for (int32_t d = 0; d < h.head_dim; ++d) h.out[d] += weight * value[size_t(d)];
    } else if (f16) {
      for (int32_t d = 0; d < h.head_dim; ++d) h.out[d] += weight * fp16_to_fp32(h.kv.values_f16[h.kv.offset(j) + d]);
    } else {
      for (int32_t d = 0; d < h.head_dim; ++d) h.out[d] += weight * h.kv.values_f32[h.kv.offset(j) + d];
    }
  }
}

void attend_queries_one_by_one(const AttentionQueries& a, void (*attend_head)(const AttentionHead&)) {
  for (int32_t t = 0; t < a.n_tokens; ++t)
    for (int32_t h = 0; h < a.n_heads; ++h) {
      const int64_t offset = t * a.token_stride + int64_t(h) * a.head_dim;
      AttentionHead head;
      head.q = a.q + offset;
      head.head_dim = a.head_dim;
      head.scale = a.scale;
      head.softcap = a.softcap;
      head.kv = a.kv;
      head.n_keys = a.first_n_keys + t;
      head.first_key = first_visible_key(head.n_keys, a.window);
      head.scores = a.scratch;
      head.out = a.out + offset;
      attend_head(head);
    }
}

}  // namespace slm::kernels
