// Int8 activations (ActivationPrecision::Int8, a model's load option): the integer matmul with
// activations rounded to 8-bit blocks, as llama.cpp rounds them, where the default keeps 13 to
// 15 bits (kernels/activation_blocks.hpp). Bytes let a multiply instruction take twice the
// products (_mm256_maddubs_epi16 does 32 where _mm256_madd_epi16 does 16), for prompts twice
// as fast at best, at the price of llama.cpp's rounding of the activations.
//
// This header is the specification, and the scalar functions here are the reference every
// SIMD path is held to, bit for bit.
//
// Activation blocks. A block of N activations (N = the weight format's block: 32, or 256 for
// K-quants), with amax its largest |x|:
//   amax NaN or infinite:  d = NaN, every q = 0 (so NaN reaches the outputs, as in float math);
//   amax < kSmallestQuantizedMagnitude:  d = 0, every q = 0;
//   otherwise:  d = amax / 127, q[i] = round_to_nearest_even(x[i] * (127 / amax)), |q[i]| <= 127
//   (both quotients rounded to float; x[i] * (127 / amax) can exceed 127 only by its rounding,
//   and then still rounds to 127).
//   sum32[j] = the sum of q over weights 32j .. 32j + 31; sum16[j] over 16j .. 16j + 15.
//
// Each (row, token) output, whatever the path, the batch, the row range or the thread count:
//   acc = 0 (one float)
//   for each weight block b, with d_w its fp16 scale and d_x its activation block's d:
//     isum = sum over the block of w_int[i] * q[i]     (int32, exact, so in any order)
//     acc  = fma(float(isum), d_w * d_x, acc)
//     Q4_K and Q5_K, then: min_isum = sum over sub-blocks i of min_i * sum32[i]  (exact)
//                      acc = fma(float(min_isum), dmin * -d_x, acc)
//     Q4_1, Q5_1 only, then (m: the block's fp16 min):
//                      acc = fma(float(sum32[0]), m * d_x, acc)
//   y = acc
// where w_int is the weight without its block scale (and min):
//   Q4_0: q - 8;  Q5_0: q - 16;  Q4_1, Q5_1: q;  Q8_0: q;  IQ4_NL: kIq4NlValues[q];
//   Q4_K, Q5_K: scale_i * q;  Q6_K: scale_i * (q - 32);  IQ4_XS: (ls_i - 32) * kIq4NlValues[q].
// Bounds: |w_int| <= 128 (legacy, IQ4_NL), 945 (Q4_K), 1953 (Q5_K), 4064 (IQ4_XS: 32 * 127),
// 4096 (Q6_K), |q| <= 127, so |isum| <= 256 * 4096 * 127 < 2^28: no int32 sum overflows, in any
// order of addition. float(isum) rounds to nearest even where |isum| > 2^24, the same in every path.
#pragma once

#include <cstdint>

#include "slm/ggml_type.hpp"

namespace slm::kernels {

inline constexpr int kInt8ActivationMax = 127;

// The formats with an Int8 formula above.
constexpr bool has_int8_formula(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::IQ4_NL:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_XS: return true;
    default: return false;
  }
}

// One activation block (n = 32 or 256), as the specification rounds it.
struct Int8ActivationBlockRef {
  float d = 0.0f;
  int8_t q[256] = {};
  int32_t sum32[8] = {};
  int32_t sum16[16] = {};
};
Int8ActivationBlockRef quantize_int8_block_reference(const float* x, int n);

// The reference: y[t * y_stride + o] for o in [row_begin, row_end) and t in [0, n_tokens),
// from rows as the file stores them (row o at weights + o * row_bytes), by the formula above.
// Throws std::invalid_argument unless has_int8_formula(type) and n_in is a multiple of the
// type's block size.
void matmul_rows_int8_reference(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace slm::kernels
