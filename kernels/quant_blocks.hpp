// The on-disk block layouts of the GGML weight formats, and the fp16/bf16
// conversions they are built on. These structs are byte-for-byte the blocks
// ggml writes; every size is checked against the type table in ggml_type.hpp.
//
// Notation in the comments: a "block" is the unit the type table counts
// (32 weights for the legacy formats, 256 for the K-quants); a "sub-block" is a
// group inside a K-quant block that shares one scale (and one min).
// All multi-byte fields are little-endian, like the hosts slm runs on.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "slm/ggml_type.hpp"

namespace slm::kernels {

static_assert(std::endian::native == std::endian::little, "GGUF blocks are little-endian");

// ---------------------------------------------------------------------------
// fp16 (IEEE 754 binary16) and bf16 (the top half of an IEEE binary32)
// ---------------------------------------------------------------------------

using Fp16Bits = uint16_t;  // IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits
using Bf16Bits = uint16_t;  // bfloat16: 1 sign, 8 exponent (bias 127), 7 mantissa bits

// Exact: every binary16 value, subnormals, infinities and NaN payloads included, is a float.
inline float fp16_to_fp32(Fp16Bits h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float (mantissa < 2^10).
    const float magnitude = float(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
  return std::bit_cast<float>(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));
}

// Round to nearest, ties to even. Values from 65520 up become infinity (65520 lies halfway
// between 65504, the largest binary16, and 2^16, and the tie goes to the even side: 2^16).
// Results below 2^-14 are binary16 subnormals; below 2^-25 they round to zero.
// NaN stays NaN (quiet, with the top mantissa bits of its payload).
inline Fp16Bits fp32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;

  if (magnitude > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));  // NaN
  if (magnitude >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520: infinity
  if (magnitude >= 0x38800000u) {
    // Normal binary16 (>= 2^-14). Rebias the exponent (127 -> 15) and drop 13 mantissa
    // bits, rounding to nearest even; a carry out of the mantissa correctly bumps the exponent.
    const uint32_t rebiased = magnitude - ((127u - 15u) << 23);
    const uint32_t lowest_kept_bit = (rebiased >> 13) & 1u;
    return uint16_t(sign | ((rebiased + 0xfffu + lowest_kept_bit) >> 13));
  }
  // Subnormal binary16: the result is round(value / 2^-24). value = significand * 2^(exponent - 150)
  // so the result is significand >> (126 - exponent), rounded to nearest even.
  const uint32_t exponent = magnitude >> 23;
  if (exponent < 102) return sign;  // below 2^-25: rounds to zero (float subnormals included)
  const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - exponent;  // 14 .. 24
  uint32_t result = significand >> shift;
  const uint32_t remainder = significand & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  if (remainder > half || (remainder == half && (result & 1u))) ++result;  // may become 0x400, the smallest normal
  return uint16_t(sign | result);
}

// Exact: bf16 is the high 16 bits of a float.
inline float bf16_to_fp32(Bf16Bits b) { return std::bit_cast<float>(uint32_t(b) << 16); }

// Round to nearest, ties to even; overflow rounds to infinity; NaN stays NaN (made quiet).
inline Bf16Bits fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x0040u);
  const uint32_t lowest_kept_bit = (bits >> 16) & 1u;
  return uint16_t((bits + 0x7fffu + lowest_kept_bit) >> 16);
}

// ---------------------------------------------------------------------------
// Legacy formats: blocks of 32 weights, one fp16 scale (and min) per block.
// Nibble order: byte j holds weight j in its low nibble and weight j+16 in its high nibble.
// ---------------------------------------------------------------------------

inline constexpr int kLegacyBlockSize = 32;

// Q4_0: w = d * (q - 8), q in 0..15.
struct BlockQ4_0 {
  Fp16Bits d;
  uint8_t qs[kLegacyBlockSize / 2];
};

// Q4_1: w = d * q + m, q in 0..15.
struct BlockQ4_1 {
  Fp16Bits d;
  Fp16Bits m;
  uint8_t qs[kLegacyBlockSize / 2];
};

// Q5_0: w = d * (q - 16), q in 0..31. The 4 low bits are nibbles in qs (order as Q4_0);
// bit j of qh (read as a little-endian uint32) is the 5th bit of weight j.
struct BlockQ5_0 {
  Fp16Bits d;
  uint8_t qh[4];
  uint8_t qs[kLegacyBlockSize / 2];
};

// Q5_1: w = d * q + m, q in 0..31, bits stored as in Q5_0.
struct BlockQ5_1 {
  Fp16Bits d;
  Fp16Bits m;
  uint8_t qh[4];
  uint8_t qs[kLegacyBlockSize / 2];
};

// Q8_0: w = d * q, q a signed byte.
struct BlockQ8_0 {
  Fp16Bits d;
  int8_t qs[kLegacyBlockSize];
};

// Q8_1: w = d * q as Q8_0, plus s = d * sum(q), which dot products with Q4_1/Q5_1 use for the min term.
struct BlockQ8_1 {
  Fp16Bits d;
  Fp16Bits s;
  int8_t qs[kLegacyBlockSize];
};

// ---------------------------------------------------------------------------
// K-quants: super-blocks of 256 weights in sub-blocks of 16 or 32, whose scales
// (and mins) are themselves quantized against one fp16 super-block scale.
// ---------------------------------------------------------------------------

inline constexpr int kSuperBlockSize = 256;

// Q2_K: 16 sub-blocks of 16. w = d * scale_i * q - dmin * min_i, q in 0..3.
// scales[i]: low nibble scale_i, high nibble min_i (4 bits each).
// qs: 2-bit weights; in each half of 128 weights, byte l (0..31) of that half's 32 bytes
// holds weight 32*k + l at bits 2k..2k+1 (k = 0..3).
struct BlockQ2_K {
  uint8_t scales[kSuperBlockSize / 16];
  uint8_t qs[kSuperBlockSize / 4];
  Fp16Bits d;
  Fp16Bits dmin;
};

// Q3_K: 16 sub-blocks of 16. w = d * (scale_i - 32) * q, q in -4..3, 6-bit scales packed in 12 bytes
// (see q3_k_scale). The low 2 bits of q+4 lie in qs as in Q2_K; hmask bit k of byte l (0..31) is the
// high bit for weight 32*k + l, and q = low2 - (high bit ? 0 : 4).
struct BlockQ3_K {
  uint8_t hmask[kSuperBlockSize / 8];
  uint8_t qs[kSuperBlockSize / 4];
  uint8_t scales[12];
  Fp16Bits d;
};

// Q4_K: 8 sub-blocks of 32, 6-bit scales and mins packed in 12 bytes (see k_quant_scale_min).
// w = d * scale_i * q - dmin * min_i, q in 0..15. In each 64 weights, 32 bytes of qs hold
// sub-block 2p in their low nibbles and sub-block 2p+1 in their high nibbles.
struct BlockQ4_K {
  Fp16Bits d;
  Fp16Bits dmin;
  uint8_t scales[12];
  uint8_t qs[kSuperBlockSize / 2];
};

// Q5_K: as Q4_K with q in 0..31; bit i of qh[l] (l = 0..31) is the 5th bit of weight l of sub-block i.
struct BlockQ5_K {
  Fp16Bits d;
  Fp16Bits dmin;
  uint8_t scales[12];
  uint8_t qh[kSuperBlockSize / 8];
  uint8_t qs[kSuperBlockSize / 2];
};

// Q6_K: 16 sub-blocks of 16. w = d * scales[i] * q, q in -32..31 stored as q+32 in 6 bits, scales int8.
// Per half of 128 weights (64 bytes of ql, 32 of qh): weight 32*k + l (k = 0..3, l = 0..31) has its
// low nibble in ql[l + 32*(k&1)] (low nibble for k < 2, high nibble for k >= 2) and its
// top 2 bits at bits 2k..2k+1 of qh[l].
struct BlockQ6_K {
  uint8_t ql[kSuperBlockSize / 2];
  uint8_t qh[kSuperBlockSize / 4];
  int8_t scales[kSuperBlockSize / 16];
  Fp16Bits d;
};

// Q8_K: the activation format the K-quant dot products pair with. w = d * q, d a float;
// bsums[g] = the sum of the 16 q of group g, which dot products use for the min terms.
struct BlockQ8_K {
  float d;
  int8_t qs[kSuperBlockSize];
  int16_t bsums[kSuperBlockSize / 16];
};

// ---------------------------------------------------------------------------
// Non-linear 4-bit formats: each nibble indexes kIq4NlValues, a 16-entry table
// denser near zero (where most weights are) than Q4_0's evenly spaced q - 8.
// ---------------------------------------------------------------------------

// ggml's kvalues_iq4nl (ggml-common.h): the value of each nibble, before the scale.
inline constexpr int8_t kIq4NlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// IQ4_NL: 32 weights, w = d * kIq4NlValues[q]; nibble order as Q4_0 (byte j: weight j in the
// low nibble, weight j+16 in the high one).
struct BlockIQ4_NL {
  Fp16Bits d;
  uint8_t qs[kLegacyBlockSize / 2];
};

// IQ4_XS: 8 sub-blocks of 32, w = d * (ls_i - 32) * kIq4NlValues[q], ls_i a 6-bit scale (see
// iq4_xs_scale). Sub-block i's 32 weights are nibbles in qs[16 i .. 16 i + 15] in IQ4_NL's order.
struct BlockIQ4_XS {
  Fp16Bits d;
  uint16_t scales_h;                       // bits 2i..2i+1: the top 2 bits of ls_i
  uint8_t scales_l[kSuperBlockSize / 64];  // nibble i % 2 of byte i / 2: the low 4 bits of ls_i
  uint8_t qs[kSuperBlockSize / 2];
};

// The block geometry must match both ggml's on-disk layout and slm's type table.
template <typename Block>
constexpr bool matches_type_table(GgmlType type, uint32_t expected_bytes) {
  const auto info = ggml_type_info(type);
  const bool super_block = (type >= GgmlType::Q2_K && type <= GgmlType::Q8_K) || type == GgmlType::IQ4_XS;
  return sizeof(Block) == expected_bytes && info.block_bytes == expected_bytes &&
         info.block_size == (super_block ? uint32_t(kSuperBlockSize) : uint32_t(kLegacyBlockSize));
}
static_assert(sizeof(BlockQ4_0) == 18 && matches_type_table<BlockQ4_0>(GgmlType::Q4_0, 18));
static_assert(sizeof(BlockQ4_1) == 20 && matches_type_table<BlockQ4_1>(GgmlType::Q4_1, 20));
static_assert(sizeof(BlockQ5_0) == 22 && matches_type_table<BlockQ5_0>(GgmlType::Q5_0, 22));
static_assert(sizeof(BlockQ5_1) == 24 && matches_type_table<BlockQ5_1>(GgmlType::Q5_1, 24));
static_assert(sizeof(BlockQ8_0) == 34 && matches_type_table<BlockQ8_0>(GgmlType::Q8_0, 34));
static_assert(sizeof(BlockQ8_1) == 36 && matches_type_table<BlockQ8_1>(GgmlType::Q8_1, 36));
static_assert(sizeof(BlockQ2_K) == 84 && matches_type_table<BlockQ2_K>(GgmlType::Q2_K, 84));
static_assert(sizeof(BlockQ3_K) == 110 && matches_type_table<BlockQ3_K>(GgmlType::Q3_K, 110));
static_assert(sizeof(BlockQ4_K) == 144 && matches_type_table<BlockQ4_K>(GgmlType::Q4_K, 144));
static_assert(sizeof(BlockQ5_K) == 176 && matches_type_table<BlockQ5_K>(GgmlType::Q5_K, 176));
static_assert(sizeof(BlockQ6_K) == 210 && matches_type_table<BlockQ6_K>(GgmlType::Q6_K, 210));
static_assert(sizeof(BlockQ8_K) == 292 && matches_type_table<BlockQ8_K>(GgmlType::Q8_K, 292));
static_assert(sizeof(BlockIQ4_NL) == 18 && matches_type_table<BlockIQ4_NL>(GgmlType::IQ4_NL, 18));
static_assert(sizeof(BlockIQ4_XS) == 136 && matches_type_table<BlockIQ4_XS>(GgmlType::IQ4_XS, 136));

// ---------------------------------------------------------------------------
// Packed sub-block scales, shared by the quantizers and dequantizers.
// ---------------------------------------------------------------------------

struct ScaleAndMin {
  uint8_t scale;  // 0..63
  uint8_t min;    // 0..63
};

// Q4_K / Q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes.
// Sub-blocks 0..3: scale = bytes[i] & 63, min = bytes[i+4] & 63.
// Sub-blocks 4..7: the low 4 bits are the nibbles of bytes[i+4] (scale low, min high);
// the top 2 bits are the top bits of bytes[i-4] (scale) and bytes[i] (min).
inline ScaleAndMin k_quant_scale_min(const uint8_t* packed, int sub_block) {
  const int i = sub_block;
  if (i < 4) return {uint8_t(packed[i] & 63), uint8_t(packed[i + 4] & 63)};
  return {uint8_t((packed[i + 4] & 0x0f) | ((packed[i - 4] >> 6) << 4)),
          uint8_t((packed[i + 4] >> 4) | ((packed[i] >> 6) << 4))};
}

inline void pack_k_quant_scales_mins(const uint8_t scales[8], const uint8_t mins[8], uint8_t packed[12]) {
  for (int i = 0; i < 4; ++i) {
    packed[i] = uint8_t((scales[i] & 63) | ((scales[i + 4] >> 4) << 6));
    packed[i + 4] = uint8_t((mins[i] & 63) | ((mins[i + 4] >> 4) << 6));
    packed[i + 8] = uint8_t((scales[i + 4] & 0x0f) | ((mins[i + 4] & 0x0f) << 4));
  }
}

// Q3_K: 16 six-bit scales (stored as scale + 32) in 12 bytes. Scale i has its low 4 bits in
// the nibble i/8 of bytes[i % 8] and its top 2 bits at bits 2*(i/4) of bytes[8 + i % 4].
inline int q3_k_scale(const uint8_t packed[12], int sub_block) {
  const int i = sub_block;
  const int low = (packed[i % 8] >> (4 * (i / 8))) & 0x0f;
  const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 0x03;
  return (low | (high << 4)) - 32;
}

// `scales` in -32..31.
inline void pack_q3_k_scales(const int8_t scales[16], uint8_t packed[12]) {
  std::memset(packed, 0, 12);
  for (int i = 0; i < 16; ++i) {
    const int stored = scales[i] + 32;
    packed[i % 8] |= uint8_t((stored & 0x0f) << (4 * (i / 8)));
    packed[8 + i % 4] |= uint8_t((stored >> 4) << (2 * (i / 4)));
  }
}

// IQ4_XS: the 6-bit scale ls_i of sub-block i (0..63; the weights use ls_i - 32).
inline int iq4_xs_scale(const BlockIQ4_XS& block, int sub_block) {
  const int i = sub_block;
  return ((block.scales_l[i / 2] >> (4 * (i % 2))) & 0x0f) | (((block.scales_h >> (2 * i)) & 3) << 4);
}

}  // namespace slm::kernels
