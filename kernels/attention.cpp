#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/dot.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {

void attend_head_scalar(const AttentionHead& h) {
  const bool f16 = h.keys_f16 != nullptr;
  for (int32_t j = 0; j < h.n_keys; ++j) {
    const float dot = f16 ? kernels_for(Isa::Scalar).dot_f16_f32(h.keys_f16 + j * h.stride, h.q, h.head_dim)
                          : dot_f32(h.q, h.keys_f32 + j * h.stride, h.head_dim);
    h.scores[j] = dot * h.scale;
  }
  const float max_score = *std::max_element(h.scores, h.scores + h.n_keys);
  double sum = 0.0;
  for (int32_t j = 0; j < h.n_keys; ++j) {
    h.scores[j] = std::exp(h.scores[j] - max_score);
    sum += h.scores[j];
  }
  const float inv_sum = static_cast<float>(1.0 / sum);
  std::fill(h.out, h.out + h.head_dim, 0.0f);
  for (int32_t j = 0; j < h.n_keys; ++j) {
    const float weight = h.scores[j] * inv_sum;
    if (f16)
      for (int32_t d = 0; d < h.head_dim; ++d) h.out[d] += weight * fp16_to_fp32(h.values_f16[j * h.stride + d]);
    else
      for (int32_t d = 0; d < h.head_dim; ++d) h.out[d] += weight * h.values_f32[j * h.stride + d];
  }
}

}  // namespace slm::kernels
