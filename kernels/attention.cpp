#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/dequantize.hpp"
#include "kernels/dot.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {

namespace {

// Rows first .. end - 1 of a Q8_0 cache dequantized into `storage` as F32 rows, row j at
// offset j * head_dim (the rows before `first`, which no query sees, are not written).
KvRows dequantized_rows(const KvRows& kv, int32_t first, int32_t end, int32_t head_dim, std::vector<float>& storage) {
  const size_t n = size_t(end) * size_t(head_dim);
  if (storage.size() < 2 * n) storage.resize(2 * n);
  KvRows rows;
  rows.keys_f32 = storage.data();
  rows.values_f32 = storage.data() + n;
  rows.stride = head_dim;
  for (int32_t j = first; j < end; ++j) {
    const size_t row = size_t(j) * size_t(head_dim);
    dequantize_row_q8_0(kv.keys_q8_0 + kv.offset(j), storage.data() + row, head_dim);
    dequantize_row_q8_0(kv.values_q8_0 + kv.offset(j), storage.data() + n + row, head_dim);
  }
  return rows;
}

}  // namespace

void attend_head_dequantized(const AttentionHead& h, void (*attend_head_f32)(const AttentionHead&)) {
  thread_local std::vector<float> storage;  // per thread, kept between calls
  AttentionHead f32 = h;
  f32.kv = dequantized_rows(h.kv, h.first_key, h.n_keys, h.head_dim, storage);
  attend_head_f32(f32);
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
  if (h.kv.keys_q8_0) return attend_head_dequantized(h, attend_head_scalar);
  const bool f16 = h.kv.keys_f16 != nullptr;
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    const float dot = f16 ? kernels_for(Isa::Scalar).dot_f16_f32(h.kv.keys_f16 + h.kv.offset(j), h.q, h.head_dim)
                          : dot_f32(h.q, h.kv.keys_f32 + h.kv.offset(j), h.head_dim);
    h.scores[j] = soft_capped(dot * h.scale, h.softcap);
  }
  const float inv_sum = softmax_numerators(h.scores, h.first_key, h.n_keys);
  std::fill(h.out, h.out + h.head_dim, 0.0f);
  for (int32_t j = h.first_key; j < h.n_keys; ++j) {
    const float weight = h.scores[j] * inv_sum;
    if (f16)
      for (int32_t d = 0; d < h.head_dim; ++d) h.out[d] += weight * fp16_to_fp32(h.kv.values_f16[h.kv.offset(j) + d]);
    else
      for (int32_t d = 0; d < h.head_dim; ++d) h.out[d] += weight * h.kv.values_f32[h.kv.offset(j) + d];
  }
}

void attend_queries_one_by_one(const AttentionQueries& a, void (*attend_head)(const AttentionHead&)) {
  thread_local std::vector<float> storage;  // per thread, kept between calls
  const KvRows kv = a.kv.keys_q8_0 ? dequantized_rows(a.kv, first_visible_key(a.first_n_keys, a.window),
                                                      a.first_n_keys + a.n_tokens - 1, a.head_dim, storage)
                                   : a.kv;
  for (int32_t t = 0; t < a.n_tokens; ++t)
    for (int32_t h = 0; h < a.n_heads; ++h) {
      const int64_t offset = t * a.token_stride + int64_t(h) * a.head_dim;
      AttentionHead head;
      head.q = a.q + offset;
      head.head_dim = a.head_dim;
      head.scale = a.scale;
      head.softcap = a.softcap;
      head.kv = kv;
      head.n_keys = a.first_n_keys + t;
      head.first_key = first_visible_key(head.n_keys, a.window);
      head.scores = a.scratch;
      head.out = a.out + offset;
      attend_head(head);
    }
}

}  // namespace slm::kernels
