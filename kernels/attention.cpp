#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/dot.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {

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
