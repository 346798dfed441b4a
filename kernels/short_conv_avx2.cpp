// The gated short convolution with AVX2: eight channels at a time; the last few
// channels (of a count that is not a multiple of 8) by the reference.
#include <immintrin.h>

#include <cmath>

#include "kernels/short_conv.hpp"

namespace slm::kernels::avx2 {

void gated_short_conv_avx2(const ShortConvRows& r) {
  const int64_t S = r.row_stride;
  const int32_t last_tap = r.kernel_len - 1;
  const int64_t vector_channels = r.channels / 8 * 8;
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    const float *b = r.b ? r.b + t * r.in_stride : nullptr, *c = r.c ? r.c + t * r.in_stride : nullptr;
    const float* x = r.x + t * r.in_stride;
    float* out = r.out + t * r.out_stride;
    for (int64_t ch = 0; ch < vector_channels; ch += 8) {
      const __m256 y = b ? _mm256_mul_ps(_mm256_loadu_ps(b + ch), _mm256_loadu_ps(x + ch)) : _mm256_loadu_ps(x + ch);
      __m256 sum = _mm256_setzero_ps();
      for (int32_t k = 0; k < last_tap; ++k)
        sum = _mm256_fmadd_ps(_mm256_loadu_ps(r.weights + k * S + ch), _mm256_loadu_ps(r.state + k * S + ch), sum);
      sum = _mm256_fmadd_ps(_mm256_loadu_ps(r.weights + last_tap * S + ch), y, sum);
      for (int32_t k = 0; k + 1 < last_tap; ++k)
        _mm256_storeu_ps(r.state + k * S + ch, _mm256_loadu_ps(r.state + (k + 1) * S + ch));
      _mm256_storeu_ps(r.state + (last_tap - 1) * S + ch, y);
      _mm256_storeu_ps(out + ch, c ? _mm256_mul_ps(_mm256_loadu_ps(c + ch), sum) : sum);
    }
  }
  if (vector_channels == r.channels) return;
  gated_short_conv_scalar(channel_tail(r, vector_channels));
}

}  // namespace slm::kernels::avx2
