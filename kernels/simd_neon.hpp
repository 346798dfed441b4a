// NEON (AArch64 Advanced SIMD) building blocks of the *_neon.cpp files. Include it
// from those files only: they alone are compiled with -march=armv8.2-a+..., so every inline
// function here exists only in that code (an inline function of a shared header compiled with
// these flags could be the copy the linker keeps for everyone, and fault on older CPUs).
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul_tiling.hpp"
#include "kernels/quant_blocks.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels::neon {

// The Simd of matmul_tiling.hpp: 8 float lanes in two q registers (lanes 0..3, 4..7), so that
// the lanes and their reduction order are the AVX2 kernels' and dot_f32's.
struct NeonLanes {
  struct Vec {
    float32x4_t low, high;
  };
  static Vec zero() { return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
  static Vec load(const float* p) { return {vld1q_f32(p), vld1q_f32(p + 4)}; }
  static void store(float* p, Vec v) {
    vst1q_f32(p, v.low);
    vst1q_f32(p + 4, v.high);
  }
  static Vec fma(Vec w, Vec x, Vec acc) {
    return {vfmaq_f32(acc.low, w.low, x.low), vfmaq_f32(acc.high, w.high, x.high)};
  }
  static Vec mul(Vec a, Vec b) { return {vmulq_f32(a.low, b.low), vmulq_f32(a.high, b.high)}; }
  static Vec broadcast(float v) { return {vdupq_n_f32(v), vdupq_n_f32(v)}; }
  static float reduce(Vec v) {
    const float32x4_t four = vaddq_f32(v.low, v.high);                       // 0+4 .. 3+7
    const float32x2_t two = vadd_f32(vget_low_f32(four), vget_high_f32(four));  // 0+2, 1+3
    return vget_lane_f32(two, 0) + vget_lane_f32(two, 1);                     // 0+1
  }
};

// An fp16 field of a block (exact: every binary16 is a float).
inline float half_to_float(uint16_t half) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(half))), 0);
}
inline float32x4_t broadcast_half(uint16_t half) { return vdupq_n_f32(half_to_float(half)); }

// Byte i (0..15) of the result is `value` where bit i of `bits` is set, else 0.
inline uint8x16_t spread_bits(uint32_t bits, uint8_t value) {
  const uint8x16_t bytes = vcombine_u8(vdup_n_u8(uint8_t(bits)), vdup_n_u8(uint8_t(bits >> 8)));
  const uint8x16_t bit_of_byte = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull));
  return vandq_u8(vtstq_u8(bytes, bit_of_byte), vdupq_n_u8(value));
}

// The quants of a Q4_0/Q4_1/Q5_0/Q5_1 block (0..15, or 0..31 with the 5th bit): weights 0..15
// in `first` (low nibbles of qs), 16..31 in `second` (high nibbles); bit j of qh is weight j's
// 5th bit.
template <class Block, bool kFifthBit>
void legacy_quants(const Block& block, uint8x16_t& first, uint8x16_t& second) {
  const uint8x16_t packed = vld1q_u8(block.qs);
  first = vandq_u8(packed, vdupq_n_u8(0x0f));
  second = vshrq_n_u8(packed, 4);
  if constexpr (kFifthBit) {
    uint32_t high_bits;
    std::memcpy(&high_bits, block.qh, sizeof(high_bits));
    first = vorrq_u8(first, spread_bits(high_bits & 0xffffu, 0x10));
    second = vorrq_u8(second, spread_bits(high_bits >> 16, 0x10));
  }
}

// (v >> shift) & mask in every byte.
inline uint8x16_t shift_mask(uint8x16_t v, int shift, uint8_t mask) {
  return vandq_u8(vshlq_u8(v, vdupq_n_s8(int8_t(-shift))), vdupq_n_u8(mask));
}

// The 8 int16 of q as floats.
inline NeonLanes::Vec to_float(int16x8_t q) {
  return {vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), vcvtq_f32_s32(vmovl_high_s16(q))};
}

// Sends the 16 weights q[i] * scale (q: 16 quants, as int8) to sink at offset, offset + 8.
// Every weight format's products d * q are exact in float, so this is the float the scalar
// dequantizer computes.
template <class Sink>
void emit16(uint8x16_t q_bytes, float32x4_t scale, int offset, Sink& sink) {
  const int8x16_t q = vreinterpretq_s8_u8(q_bytes);
  const NeonLanes::Vec first = to_float(vmovl_s8(vget_low_s8(q))), second = to_float(vmovl_high_s8(q));
  sink(offset, NeonLanes::Vec{vmulq_f32(first.low, scale), vmulq_f32(first.high, scale)});
  sink(offset + 8, NeonLanes::Vec{vmulq_f32(second.low, scale), vmulq_f32(second.high, scale)});
}

// As emit16, for q[i] * scale + bias: one rounding after the exact product, as in the
// scalar `q * d + m` (Q4_1, Q5_1) and `scale * q - min` (K-quants, bias = -min).
template <class Sink>
void emit16(uint8x16_t q_bytes, float32x4_t scale, float32x4_t bias, int offset, Sink& sink) {
  const int8x16_t q = vreinterpretq_s8_u8(q_bytes);
  const NeonLanes::Vec first = to_float(vmovl_s8(vget_low_s8(q))), second = to_float(vmovl_high_s8(q));
  sink(offset, NeonLanes::Vec{vfmaq_f32(bias, first.low, scale), vfmaq_f32(bias, first.high, scale)});
  sink(offset + 8, NeonLanes::Vec{vfmaq_f32(bias, second.low, scale), vfmaq_f32(bias, second.high, scale)});
}

// Weights 32 sub + 16 i .. + 15 (i = 0, 1) of a Q4_K/Q5_K block as quants 0..15 (0..31 for
// Q5_K): the low or high nibbles of qs[32 (sub/2) + 16 i ..]; Q5_K's 5th bit of weight l of
// sub-block sub is bit sub of qh[l].
template <class Block>
uint8x16_t k_nibble_quants16(const Block& block, int sub, int i) {
  uint8x16_t q = shift_mask(vld1q_u8(block.qs + 32 * (sub / 2) + 16 * i), 4 * (sub % 2), 0x0f);
  if constexpr (requires { block.qh; }) q = vorrq_u8(q, vshlq_n_u8(shift_mask(vld1q_u8(block.qh + 16 * i), sub, 0x01), 4));
  return q;
}

// Weights 32 piece + 16 i .. + 15 of a Q6_K block as q - 32 (-32..31, in wrapped bytes). Per
// half h (64 bytes of ql, 32 of qh), weight 32 k + l has its low nibble in ql[32 (k%2) + l]
// (low nibble for k < 2, high for k >= 2) and its top 2 bits at bits 2k of qh[l]; piece p is
// h = p / 4, k = p % 4.
template <class Block>
uint8x16_t q6_k_quants16(const Block& block, int piece, int i) {
  const int half = piece / 4, k = piece % 4;
  const uint8x16_t low = shift_mask(vld1q_u8(block.ql + 64 * half + 32 * (k % 2) + 16 * i), 4 * (k / 2), 0x0f);
  const uint8x16_t high = vshlq_n_u8(shift_mask(vld1q_u8(block.qh + 32 * half + 16 * i), 2 * k, 0x03), 4);
  return vsubq_u8(vorrq_u8(low, high), vdupq_n_u8(32));
}

// IQ4_NL's and each IQ4_XS sub-block's 32 values kIq4NlValues[q] (-127..113, as int8 bytes),
// the nibbles of qs[0..15] looked up with vqtbl1q: weights 0..15 (low nibbles) in `first`,
// 16..31 (high nibbles) in `second`.
inline void iq4_values(const uint8_t* qs, uint8x16_t& first, uint8x16_t& second) {
  const uint8x16_t table = vreinterpretq_u8_s8(vld1q_s8(kIq4NlValues));
  const uint8x16_t packed = vld1q_u8(qs);
  first = vqtbl1q_u8(table, vandq_u8(packed, vdupq_n_u8(0x0f)));
  second = vqtbl1q_u8(table, vshrq_n_u8(packed, 4));
}

// The K-quant kernels (matmul_k_quants_neon.cpp); nullptr for any other type.
tiling::FormatKernel k_quant_kernel(GgmlType type);

// The integer kernels (matmul_int_neon.cpp): Q4_0, Q5_0, Q8_0, Q4_K, Q5_K and Q6_K where the
// CPU has the dot product instructions (with smmla for prompts where it has i8mm, the same bits);
// nullptr for other types and CPUs.
tiling::FormatKernel integer_kernel(GgmlType type);

}  // namespace slm::kernels::neon
