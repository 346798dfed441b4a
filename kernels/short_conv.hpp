// The gated short convolution of LFM2's conv layers (a causal depthwise convolution over a few
// tokens), for the rows of one sequence, in order. For token t and channel ch:
//   y      = b[t][ch] * x[t][ch]
//   conv   = sum over taps k of weights[k][ch] * window[k][ch], where the window is the state
//            (the y of the kernel_len - 1 tokens before, oldest first) and then y itself
//   out[t][ch] = c[t][ch] * conv
// and the state moves one token on. Each tap's product is added with one fused multiply-add,
// in tap order, so every ISA gives the same bits.
#pragma once

#include <cstdint>

#include "kernels/matmul.hpp"

namespace slm::kernels {

// Without gates (b and c nullptr: qwen35's DeltaNet conv), y = x and out = conv.
struct ShortConvRows {
  const float* b = nullptr;   // row t at b + t * in_stride (likewise c and x); b, c: nullptr for none
  const float* c = nullptr;
  const float* x = nullptr;
  int64_t in_stride = 0;
  float* out = nullptr;       // row t at out + t * out_stride
  int64_t out_stride = 0;
  float* state = nullptr;     // [kernel_len - 1] rows, row k at state + k * row_stride
  const float* weights = nullptr;  // [kernel_len] rows (tap-major), row k at weights + k * row_stride
  int64_t row_stride = 0;     // the layer's channels
  int64_t channels = 0;       // channels handled by this call (a slice of the layer's, at the pointers)
  int32_t kernel_len = 0;     // >= 2
  int64_t n_tokens = 0;
};

// The scalar reference, and the one for `isa` (throws std::invalid_argument unless isa_available).
void gated_short_conv_scalar(const ShortConvRows& rows);
// The channels from first_channel on (channels are independent): the SIMD kernels hand the
// last few, short of a whole vector, to the reference.
ShortConvRows channel_tail(const ShortConvRows& rows, int64_t first_channel);
using ShortConvFn = void (*)(const ShortConvRows& rows);
ShortConvFn short_conv_kernel(Isa isa);
// active_isa()'s.
void gated_short_conv(const ShortConvRows& rows);

namespace avx2 {
void gated_short_conv_avx2(const ShortConvRows& rows);  // short_conv_avx2.cpp
}
namespace neon {
void gated_short_conv_neon(const ShortConvRows& rows);  // short_conv_neon.cpp
}

}  // namespace slm::kernels
