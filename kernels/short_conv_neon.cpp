// The gated short convolution with NEON: four channels at a time, each tap one fused
// multiply-add in tap order as the reference does it (so the same bits); the last channels
// (of a count that is not a multiple of 4) by the reference.
#include <arm_neon.h>

#include "kernels/short_conv.hpp"

namespace slm::kernels::neon {

void gated_short_conv_neon(const ShortConvRows& r) {
  const int64_t S = r.row_stride;
  const int32_t last_tap = r.kernel_len - 1;
  const int64_t vector_channels = r.channels / 4 * 4;
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    const float *b = r.b ? r.b + t * r.in_stride : nullptr, *c = r.c ? r.c + t * r.in_stride : nullptr;
    const float* x = r.x + t * r.in_stride;
    float* out = r.out + t * r.out_stride;
    for (int64_t ch = 0; ch < vector_channels; ch += 4) {
      const float32x4_t y = b ? vmulq_f32(vld1q_f32(b + ch), vld1q_f32(x + ch)) : vld1q_f32(x + ch);
      float32x4_t sum = vdupq_n_f32(0.0f);
      for (int32_t k = 0; k < last_tap; ++k)
        sum = vfmaq_f32(sum, vld1q_f32(r.weights + k * S + ch), vld1q_f32(r.state + k * S + ch));
      sum = vfmaq_f32(sum, vld1q_f32(r.weights + last_tap * S + ch), y);
      for (int32_t k = 0; k + 1 < last_tap; ++k) vst1q_f32(r.state + k * S + ch, vld1q_f32(r.state + (k + 1) * S + ch));
      vst1q_f32(r.state + (last_tap - 1) * S + ch, y);
      vst1q_f32(out + ch, c ? vmulq_f32(vld1q_f32(c + ch), sum) : sum);
    }
  }
  if (vector_channels == r.channels) return;
  gated_short_conv_scalar(channel_tail(r, vector_channels));
}

}  // namespace slm::kernels::neon
