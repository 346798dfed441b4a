#include "kernels/short_conv.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace slm::kernels {

void gated_short_conv_scalar(const ShortConvRows& r) {
  const int64_t S = r.row_stride;
  const int32_t last_tap = r.kernel_len - 1;
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    const float *b = r.b ? r.b + t * r.in_stride : nullptr, *c = r.c ? r.c + t * r.in_stride : nullptr;
    const float* x = r.x + t * r.in_stride;
    float* out = r.out + t * r.out_stride;
    for (int64_t ch = 0; ch < r.channels; ++ch) {
      const float y = b ? b[ch] * x[ch] : x[ch];
      float sum = 0.0f;
      for (int32_t k = 0; k < last_tap; ++k) sum = std::fma(r.weights[k * S + ch], r.state[k * S + ch], sum);
      sum = std::fma(r.weights[last_tap * S + ch], y, sum);
      for (int32_t k = 0; k + 1 < last_tap; ++k) r.state[k * S + ch] = r.state[(k + 1) * S + ch];
      r.state[(last_tap - 1) * S + ch] = y;
      out[ch] = c ? c[ch] * sum : sum;
    }
  }
}

ShortConvRows channel_tail(const ShortConvRows& rows, int64_t first_channel) {
  ShortConvRows tail = rows;
  if (tail.b) tail.b += first_channel;
  if (tail.c) tail.c += first_channel;
  tail.x += first_channel, tail.out += first_channel;
  tail.state += first_channel, tail.weights += first_channel;
  tail.channels = rows.channels - first_channel;
  return tail;
}

ShortConvFn short_conv_kernel(Isa isa) {
  if (!isa_available(isa)) throw std::invalid_argument(std::string("short_conv_kernel: ISA ") + isa_name(isa) + " is not available");
#if defined(SLM_HAVE_AVX2_KERNELS)
  // Every x86 tier above scalar (AVX2, and those that add integer instructions to it) has AVX2's floats.
  if (isa != Isa::Scalar && isa != Isa::Neon) return avx2::gated_short_conv_avx2;
#endif
#if defined(SLM_HAVE_NEON_KERNELS)
  if (isa == Isa::Neon) return neon::gated_short_conv_neon;
#endif
  return gated_short_conv_scalar;
}

void gated_short_conv(const ShortConvRows& rows) {
  static const ShortConvFn kernel = short_conv_kernel(active_isa());
  kernel(rows);
}

}  // namespace slm::kernels
