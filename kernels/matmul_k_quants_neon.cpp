// NEON kernels of the K-quants: super-blocks of 256 weights whose sub-blocks of 16 or 32
// share a scale (and a min). Layouts in kernels/quant_blocks.hpp. The same decoders as
// matmul_k_quants_avx2.cpp, 16 bytes of quants at a time instead of 32.
#include <arm_neon.h>

#include "kernels/matmul_tiling.hpp"
#include "kernels/packed_scales.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_neon.hpp"

namespace slm::kernels::neon {
namespace {

float32x4_t broadcast(const float& value) { return vld1q_dup_f32(&value); }

// out[i] = float(q[i]) * factor for the 16 int8 in q (sub-block scales: exact products).
void store_times(uint8x16_t q_bytes, float32x4_t factor, float* out) {
  const int8x16_t q = vreinterpretq_s8_u8(q_bytes);
  const NeonLanes::Vec first = to_float(vmovl_s8(vget_low_s8(q))), second = to_float(vmovl_high_s8(q));
  NeonLanes::store(out, {vmulq_f32(first.low, factor), vmulq_f32(first.high, factor)});
  NeonLanes::store(out + 8, {vmulq_f32(second.low, factor), vmulq_f32(second.high, factor)});
}

// The decoders emit piece p (0..7): weights 32p .. 32p+31, 16 bytes of quants at a time,
// with the block's sub-block scales unpacked to floats once (unpack_scales) for all 8 pieces.
constexpr int kPieceWeights = 32;

// Q2_K: 16 sub-blocks of 16, w = d * scale_i * q - dmin * min_i, q in 0..3, scales[i] holding
// scale_i (low nibble) and min_i (high). In each half of 128 weights, weight 32*k + l sits at
// bits 2k..2k+1 of byte l of the half's 32 bytes; so piece p is half p / 4, k = p % 4, and
// holds sub-blocks 2p and 2p+1.
struct Q2_KFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(BlockQ2_K);
  static constexpr int kPieces = kWeights / kPieceWeights;
  struct Scales {
    float scale[16];      // d * scale_i
    float minus_min[16];  // -dmin * min_i
  };
  static Scales unpack_scales(const uint8_t* bytes) {
    const BlockQ2_K& block = *reinterpret_cast<const BlockQ2_K*>(bytes);
    const uint8x16_t packed = vld1q_u8(block.scales);
    Scales scales;
    store_times(vandq_u8(packed, vdupq_n_u8(0x0f)), broadcast_half(block.d), scales.scale);
    store_times(vshrq_n_u8(packed, 4), vdupq_n_f32(-half_to_float(block.dmin)), scales.minus_min);
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int piece, Sink&& sink) {
    const BlockQ2_K& block = *reinterpret_cast<const BlockQ2_K*>(bytes);
    for (int i = 0; i < 2; ++i) {
      const int sub = 2 * piece + i;
      const uint8x16_t q = shift_mask(vld1q_u8(block.qs + 32 * (piece / 4) + 16 * i), 2 * (piece % 4), 0x03);
      emit16(q, broadcast(scales.scale[sub]), broadcast(scales.minus_min[sub]), 16 * sub, sink);
    }
  }
};

// Q3_K: 16 sub-blocks of 16, w = d * scale_i * q with q = low2 - (high bit ? 0 : 4); the
// low 2 bits as in Q2_K, the high bit of weight 32*k + l of half h at bit 4h + k of hmask[l]
// (bit p for piece p).
struct Q3_KFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(BlockQ3_K);
  static constexpr int kPieces = kWeights / kPieceWeights;
  struct Scales {
    float scale[16];  // d * scale_i
  };
  static Scales unpack_scales(const uint8_t* bytes) {
    const BlockQ3_K& block = *reinterpret_cast<const BlockQ3_K*>(bytes);
    const SixteenBytes plus_32 = q3_k_scales_plus_32(block.scales);
    Scales scales;
    store_times(vsubq_u8(vld1q_u8(reinterpret_cast<const uint8_t*>(plus_32.words)), vdupq_n_u8(32)),
                broadcast_half(block.d), scales.scale);
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int piece, Sink&& sink) {
    const BlockQ3_K& block = *reinterpret_cast<const BlockQ3_K*>(bytes);
    for (int i = 0; i < 2; ++i) {
      const int sub = 2 * piece + i;
      const uint8x16_t low2 = shift_mask(vld1q_u8(block.qs + 32 * (piece / 4) + 16 * i), 2 * (piece % 4), 0x03);
      const uint8x16_t high_bit_as_4 = vshlq_n_u8(shift_mask(vld1q_u8(block.hmask + 16 * i), piece, 0x01), 2);
      const uint8x16_t q = vsubq_u8(vorrq_u8(low2, high_bit_as_4), vdupq_n_u8(4));
      emit16(q, broadcast(scales.scale[sub]), 16 * sub, sink);
    }
  }
};

// Q4_K and Q5_K: 8 sub-blocks of 32 (piece p is sub-block p), w = d * scale_p * q - dmin * min_p.
// Sub-blocks 2j and 2j+1 are the low and high nibbles of qs[32j .. 32j+31]; Q5_K adds bit p
// of qh[l] as the 5th bit of weight l of sub-block p.
template <class Block>
struct KNibbleFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(Block);
  static constexpr int kPieces = kWeights / kPieceWeights;
  struct Scales {
    float scale[8];      // d * scale_i
    float minus_min[8];  // -dmin * min_i
  };
  static Scales unpack_scales(const uint8_t* bytes) {
    const Block& block = *reinterpret_cast<const Block*>(bytes);
    const SixteenBytes scales_then_mins = k_quant_scales_and_mins(block.scales);
    const int8x16_t packed = vld1q_s8(reinterpret_cast<const int8_t*>(scales_then_mins.words));
    const NeonLanes::Vec scale = to_float(vmovl_s8(vget_low_s8(packed))), min = to_float(vmovl_high_s8(packed));
    const float32x4_t d = broadcast_half(block.d), minus_dmin = vdupq_n_f32(-half_to_float(block.dmin));
    Scales scales;
    NeonLanes::store(scales.scale, {vmulq_f32(scale.low, d), vmulq_f32(scale.high, d)});
    NeonLanes::store(scales.minus_min, {vmulq_f32(min.low, minus_dmin), vmulq_f32(min.high, minus_dmin)});
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int sub, Sink&& sink) {
    const Block& block = *reinterpret_cast<const Block*>(bytes);
    const float32x4_t scale = broadcast(scales.scale[sub]);
    const float32x4_t minus_min = broadcast(scales.minus_min[sub]);
    for (int i = 0; i < 2; ++i) {
      emit16(k_nibble_quants16(block, sub, i), scale, minus_min, 32 * sub + 16 * i, sink);
    }
  }
};

using Q4_KFormat = KNibbleFormat<BlockQ4_K>;
using Q5_KFormat = KNibbleFormat<BlockQ5_K>;

// Q6_K: 16 sub-blocks of 16, w = d * scales[i] * (q - 32). Per half h (64 bytes of ql, 32 of
// qh), weight 32*k + l has its low nibble in ql[32*(k%2) + l] (low nibble for k < 2, high
// for k >= 2) and its top 2 bits at bits 2k..2k+1 of qh[l]; piece p is h = p / 4, k = p % 4.
struct Q6_KFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(BlockQ6_K);
  static constexpr int kPieces = kWeights / kPieceWeights;
  struct Scales {
    float scale[16];  // d * scales[i]
  };
  static Scales unpack_scales(const uint8_t* bytes) {
    const BlockQ6_K& block = *reinterpret_cast<const BlockQ6_K*>(bytes);
    Scales scales;
    store_times(vreinterpretq_u8_s8(vld1q_s8(block.scales)), broadcast_half(block.d), scales.scale);
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int piece, Sink&& sink) {
    const BlockQ6_K& block = *reinterpret_cast<const BlockQ6_K*>(bytes);
    for (int i = 0; i < 2; ++i) {
      const int sub = 2 * piece + i;
      emit16(q6_k_quants16(block, piece, i), broadcast(scales.scale[sub]), 16 * sub, sink);
    }
  }
};

// IQ4_XS: 8 sub-blocks of 32 (piece p is sub-block p), w = d * (ls_p - 32) * kIq4NlValues[q],
// the nibbles of qs[16p .. 16p+15] in IQ4_NL's order; d * (ls_p - 32) and its products with the
// values are exact, as in the scalar dequantizer.
struct IQ4_XSFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(BlockIQ4_XS);
  static constexpr int kPieces = kWeights / kPieceWeights;
  struct Scales {
    float scale[8];  // d * (ls_i - 32)
  };
  static Scales unpack_scales(const uint8_t* bytes) {
    const BlockIQ4_XS& block = *reinterpret_cast<const BlockIQ4_XS*>(bytes);
    const float d = half_to_float(block.d);
    Scales scales;
    for (int i = 0; i < kPieces; ++i) scales.scale[i] = d * float(iq4_xs_scale(block, i) - 32);
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int sub, Sink&& sink) {
    const BlockIQ4_XS& block = *reinterpret_cast<const BlockIQ4_XS*>(bytes);
    uint8x16_t first, second;
    iq4_values(block.qs + 16 * sub, first, second);
    const float32x4_t scale = broadcast(scales.scale[sub]);
    emit16(first, scale, 32 * sub, sink);
    emit16(second, scale, 32 * sub + 16, sink);
  }
};

}  // namespace

tiling::FormatKernel k_quant_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q2_K: return tiling::matmul_rows<NeonLanes, Q2_KFormat>;
    case GgmlType::Q3_K: return tiling::matmul_rows<NeonLanes, Q3_KFormat>;
    case GgmlType::Q4_K: return tiling::matmul_rows<NeonLanes, Q4_KFormat>;
    case GgmlType::Q5_K: return tiling::matmul_rows<NeonLanes, Q5_KFormat>;
    case GgmlType::Q6_K: return tiling::matmul_rows<NeonLanes, Q6_KFormat>;
    case GgmlType::IQ4_XS: return tiling::matmul_rows<NeonLanes, IQ4_XSFormat>;
    default: return nullptr;
  }
}

}  // namespace slm::kernels::neon
