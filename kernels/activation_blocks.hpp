// Activations quantized to 16-bit integers, once per matmul, for the integer dot products of
// the SIMD kernels (kernels/matmul_int_avx2.cpp). llama.cpp quantizes activations to 8 bits;
// slm keeps 15 bits of magnitude, so an activation moves by at most 2^-15 of its block's
// largest magnitude: ~500 times less than 8-bit blocks, far below the fp16 KV cache's rounding.
//
// A block of N activations (N = the weight format's block: 32, or 256 for K-quants) shares a
// power-of-two scale d; activation i becomes q[i] = round_to_nearest_even(x[i] / d), |q[i]| <= 2^14.
// A power of two makes x / d and d * q exact, so the only rounding is to the integer, and a
// one-hot activation vector gives exactly the dequantized weights.
// This header is the specification; the SIMD quantizers follow it bit for bit and the tests
// hold them to it.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "slm/ggml_type.hpp"

namespace slm::kernels {

inline constexpr int kActivationMagnitudeBits = 14;  // |q| <= 2^14: headroom in the int32 sums

// Below this largest magnitude a block is all zeros (d = 0): its dot products are below
// float32's resolution of any weight's contribution anyway, and a power-of-two d stays normal.
inline constexpr float kSmallestQuantizedMagnitude = 0x1p-100f;

struct ActivationScale {
  float d;        // the block's step: x ~ d * q
  float inverse;  // 1 / d (exact), or 0 when d is 0 or not finite
};

// d for a block whose largest |x| is `amax`: the power of two with amax / d in [2^13, 2^14).
// A NaN or infinite activation makes d NaN, so that it reaches the outputs as in float math.
inline ActivationScale activation_scale(float amax) {
  if (!(amax <= std::numeric_limits<float>::max())) return {std::numeric_limits<float>::quiet_NaN(), 0.0f};
  if (amax < kSmallestQuantizedMagnitude) return {0.0f, 0.0f};
  int exponent = 0;
  std::frexp(amax, &exponent);  // amax = m * 2^exponent, m in [0.5, 1)
  return {std::ldexp(1.0f, exponent - 1 - (kActivationMagnitudeBits - 1)),
          std::ldexp(1.0f, kActivationMagnitudeBits - exponent)};
}

// The activation block the integer kernels pair with a weight format: its own block.
inline int64_t activation_block_size(GgmlType weight_type) { return ggml_type_info(weight_type).block_size; }

}  // namespace slm::kernels
