// Activations quantized to 16-bit integers, once per matmul, for the integer dot products of
// the SIMD kernels (kernels/matmul_int_avx2.cpp). llama.cpp quantizes activations to 8 bits;
// slm keeps 12 to 15 bits of magnitude (by weight format), so an activation moves by at most
// 2^-13 to 2^-16 of its block's largest magnitude: 16 to 128 times less than 8-bit blocks.
//
// A block of N activations (N = the weight format's block: 32, or 256 for K-quants) shares a
// power-of-two scale d; activation i becomes q[i] = round_to_nearest_even(x[i] / d), |q[i]| <= 2^B - 1
// with B = activation_magnitude_bits(weight format).
// A power of two makes x / d and d * q exact, so the only rounding is to the integer, and a
// one-hot activation vector gives exactly the dequantized weights.
// This header is the specification; the SIMD quantizers follow it bit for bit and the tests
// hold them to it.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "slm/ggml_type.hpp"

namespace slm::kernels {

inline constexpr int kActivationMagnitudeBits = 14;  // the default of activation_scale

// The NEON dotprod kernels' activation bits for every format (matmul_int_neon.cpp): 14 bits
// split into two signed bytes for sdot.
inline constexpr int kNeonActivationBits = 14;

// The magnitude bits of the activations a weight format is multiplied with: as many as keep
// the integer kernels' int32 group sums exact (matmul_int_avx2.cpp sums groups of 32 legacy
// products, 128 Q4_K/Q5_K ones, 64 Q6_K ones and 256 Q3_K/Q2_K ones, the K-quant sub-block
// scale folded into the weight, so |w| <= 128, 945, 1953, 4096 and 128/45):
//   Q4_0, Q5_0, Q8_0: 15 bits (the int16 range), 32 * 128 * 2^15 = 2^27;
//   Q3_K, Q2_K: 15 bits, 256 * 128 * 2^15 = 2^30;
//   Q4_K 14, Q5_K 13, Q6_K 13: 128 * 945 * 2^14, 128 * 1953 * 2^13, 64 * 4096 * (2^13 - 1) < 2^31;
//   IQ4_NL 15 (|w| <= 127 in groups of 32, as Q8_0); IQ4_XS 13 (|w| <= 32 * 127 in groups of 64, as Q6_K).
// Even 13 bits are 32 times finer than llama.cpp's 8-bit activation blocks. (Q6_K with 12 bits
// and groups of 128 was 4% faster for one token but moved perplexity 6 times further from
// exact: 1.7e-4 against 2.9e-5 after the first chunk of syn-llama-tiny-Q4_K_M.)
constexpr int activation_magnitude_bits(GgmlType weight_type) {
  switch (weight_type) {
    case GgmlType::Q4_K: return 14;
    case GgmlType::Q5_K: return 13;
    case GgmlType::Q6_K: return 13;
    case GgmlType::IQ4_XS: return 13;
    default: return 15;
  }
}

// Below this largest magnitude a block is all zeros (d = 0): its dot products are below
// float32's resolution of any weight's contribution anyway, and a power-of-two d stays normal.
inline constexpr float kSmallestQuantizedMagnitude = 0x1p-100f;

struct ActivationScale {
  float d;        // the block's step: x ~ d * q
  float inverse;  // 1 / d (exact), or 0 when d is 0 or not finite
};

// d for a block whose largest |x| is `amax`, with B = magnitude_bits: the power of two with
// amax / d in [2^(B-1), 2^B), or twice that when amax / d would round to 2^B (amax / d >=
// 2^B - 1/2), so that every |q| <= 2^B - 1.
// A NaN or infinite activation makes d NaN, so that it reaches the outputs as in float math.
inline ActivationScale activation_scale(float amax, int magnitude_bits = kActivationMagnitudeBits) {
  if (!(amax <= std::numeric_limits<float>::max())) return {std::numeric_limits<float>::quiet_NaN(), 0.0f};
  if (amax < kSmallestQuantizedMagnitude) return {0.0f, 0.0f};
  int exponent = 0;
  std::frexp(amax, &exponent);  // amax = m * 2^exponent, m in [0.5, 1)
  int shift = magnitude_bits - exponent;  // amax * 2^shift = m * 2^B, exact
  if (std::ldexp(amax, shift) >= std::ldexp(1.0f, magnitude_bits) - 0.5f) --shift;
  return {std::ldexp(1.0f, -shift), std::ldexp(1.0f, shift)};
}

// The name of the activations this thread's matmul calls get, 0 for none (NamedActivations,
// kernels/matmul.hpp).
inline thread_local uint64_t activations_name = 0;

// n elements made from x by fill(elements), in a per-thread buffer that only grows: a kernel
// converts its activations once per call, and the buffer is theirs until the thread's next call
// of the same instantiation. Calls under one activations name (not 0) with the same x, shape and
// conversion (any pointer that names it) find them already made: one x multiplied by many row
// ranges is converted once per thread.
template <class Element, class Fill>
const Element* convert_tokens_once(const float* x, int64_t n_tokens, int64_t n_in, const void* conversion, size_t n,
                                   Fill&& fill) {
  struct Converted {
    uint64_t name = 0;
    const float* x = nullptr;
    int64_t n_tokens = 0, n_in = 0;
    const void* conversion = nullptr;
    bool operator==(const Converted&) const = default;
  };
  thread_local std::vector<Element> elements;
  thread_local Converted held;  // what elements hold
  const Converted wanted{activations_name, x, n_tokens, n_in, conversion};
  if (wanted.name != 0 && wanted == held) return elements.data();
  if (elements.size() < n) elements.resize(n);
  fill(elements.data());
  held = wanted;
  return elements.data();
}

// Every token's activation blocks (n_in / N per token, token t's first at t * (n_in / N)), each
// written by quantize_block(x + offset, block), once per activations name (convert_tokens_once).
template <class Block, int N>
const Block* quantize_tokens(const float* x, int64_t n_tokens, int64_t n_in, void (*quantize_block)(const float*, Block&)) {
  const int64_t n_blocks = n_in / N;
  return convert_tokens_once<Block>(x, n_tokens, n_in, reinterpret_cast<const void*>(quantize_block),
                                    static_cast<size_t>(n_tokens * n_blocks), [&](Block* blocks) {
                                      for (int64_t t = 0; t < n_tokens; ++t)
                                        for (int64_t b = 0; b < n_blocks; ++b)
                                          quantize_block(x + t * n_in + b * N, blocks[t * n_blocks + b]);
                                    });
}

// The activation block the integer kernels pair with a weight format: its own block.
inline int64_t activation_block_size(GgmlType weight_type) { return ggml_type_info(weight_type).block_size; }

}  // namespace slm::kernels
