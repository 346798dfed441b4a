// NEON kernels of the K-quants: super-blocks of 256 weights whose sub-blocks of 16 or 32
// share a scale (and a min). Each decoder walks the weights in order, 16 at a time, as
// 16 bytes of quants; layouts in kernels/quant_blocks.hpp. The same decoders as
// matmul_k_quants_avx2.cpp, which works 32 bytes at a time.
#include <arm_neon.h>

#include "kernels/matmul_tiling.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_neon.hpp"

namespace slm::kernels::neon {
namespace {

// Q2_K: 16 sub-blocks of 16, w = d * scale_i * q - dmin * min_i, q in 0..3. In each half of
// 128 weights, weight 32*k + l sits at bits 2k..2k+1 of byte l of the half's 32 bytes.
struct Q2_KFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(BlockQ2_K);
  template <class Sink>
  static void decode(const uint8_t* bytes, Sink&& sink) {
    const BlockQ2_K& block = *reinterpret_cast<const BlockQ2_K*>(bytes);
    const float d = half_to_float(block.d);
    const float dmin = half_to_float(block.dmin);
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t packed[2] = {vld1q_u8(block.qs + 32 * half), vld1q_u8(block.qs + 32 * half + 16)};
      for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 2; ++i) {
          const int sub = 8 * half + 2 * k + i;
          const float32x4_t scale = vdupq_n_f32(d * float(block.scales[sub] & 0x0f));
          const float32x4_t minus_min = vdupq_n_f32(-(dmin * float(block.scales[sub] >> 4)));
          emit16(shift_mask(packed[i], 2 * k, 0x03), scale, minus_min, 16 * sub, sink);
        }
    }
  }
};

// Q3_K: 16 sub-blocks of 16, w = d * scale_i * q with q = low2 - (high bit ? 0 : 4); the
// low 2 bits as in Q2_K, the high bit of weight 32*k + l of half h at bit 4h + k of hmask[l].
struct Q3_KFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(BlockQ3_K);
  template <class Sink>
  static void decode(const uint8_t* bytes, Sink&& sink) {
    const BlockQ3_K& block = *reinterpret_cast<const BlockQ3_K*>(bytes);
    const float d = half_to_float(block.d);
    const uint8x16_t high_bits[2] = {vld1q_u8(block.hmask), vld1q_u8(block.hmask + 16)};
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t packed[2] = {vld1q_u8(block.qs + 32 * half), vld1q_u8(block.qs + 32 * half + 16)};
      for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 2; ++i) {
          const int sub = 8 * half + 2 * k + i;
          const uint8x16_t high_bit_as_4 = vshlq_n_u8(shift_mask(high_bits[i], 4 * half + k, 0x01), 2);
          const uint8x16_t q = vsubq_u8(vorrq_u8(shift_mask(packed[i], 2 * k, 0x03), high_bit_as_4), vdupq_n_u8(4));
          emit16(q, vdupq_n_f32(d * float(q3_k_scale(block.scales, sub))), 16 * sub, sink);
        }
    }
  }
};

// Q4_K and Q5_K: 8 sub-blocks of 32, w = d * scale_i * q - dmin * min_i. Sub-blocks 2p and
// 2p+1 are the low and high nibbles of qs[32p .. 32p+31]; Q5_K adds bit i of qh[l] as the
// 5th bit of weight l of sub-block i.
template <class Block>
struct KNibbleFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(Block);
  static constexpr bool kFifthBit = requires(const Block& b) { b.qh; };

  template <class Sink>
  static void decode(const uint8_t* bytes, Sink&& sink) {
    const Block& block = *reinterpret_cast<const Block*>(bytes);
    const float d = half_to_float(block.d);
    const float dmin = half_to_float(block.dmin);
    uint8x16_t fifth_bits[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
    if constexpr (kFifthBit) {
      fifth_bits[0] = vld1q_u8(block.qh);
      fifth_bits[1] = vld1q_u8(block.qh + 16);
    }
    for (int sub = 0; sub < 8; ++sub) {
      const ScaleAndMin packed = k_quant_scale_min(block.scales, sub);
      const float32x4_t scale = vdupq_n_f32(d * float(packed.scale));
      const float32x4_t minus_min = vdupq_n_f32(-(dmin * float(packed.min)));
      for (int i = 0; i < 2; ++i) {
        uint8x16_t q = shift_mask(vld1q_u8(block.qs + 32 * (sub / 2) + 16 * i), 4 * (sub % 2), 0x0f);
        if constexpr (kFifthBit) q = vorrq_u8(q, vshlq_n_u8(shift_mask(fifth_bits[i], sub, 0x01), 4));
        emit16(q, scale, minus_min, 32 * sub + 16 * i, sink);
      }
    }
  }
};

using Q4_KFormat = KNibbleFormat<BlockQ4_K>;
using Q5_KFormat = KNibbleFormat<BlockQ5_K>;

// Q6_K: 16 sub-blocks of 16, w = d * scales[i] * (q - 32). Per half h (64 bytes of ql, 32 of
// qh), weight 32*k + l has its low nibble in ql[32*(k%2) + l] (low nibble for k < 2, high
// for k >= 2) and its top 2 bits at bits 2k..2k+1 of qh[l].
struct Q6_KFormat {
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBytes = sizeof(BlockQ6_K);
  template <class Sink>
  static void decode(const uint8_t* bytes, Sink&& sink) {
    const BlockQ6_K& block = *reinterpret_cast<const BlockQ6_K*>(bytes);
    const float d = half_to_float(block.d);
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t high_bits[2] = {vld1q_u8(block.qh + 32 * half), vld1q_u8(block.qh + 32 * half + 16)};
      for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 2; ++i) {
          const int sub = 8 * half + 2 * k + i;
          const uint8x16_t low = shift_mask(vld1q_u8(block.ql + 64 * half + 32 * (k % 2) + 16 * i), 4 * (k / 2), 0x0f);
          const uint8x16_t high = vshlq_n_u8(shift_mask(high_bits[i], 2 * k, 0x03), 4);
          const uint8x16_t q = vsubq_u8(vorrq_u8(low, high), vdupq_n_u8(32));
          emit16(q, vdupq_n_f32(d * float(block.scales[sub])), 16 * sub, sink);
        }
    }
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
    default: return nullptr;
  }
}

}  // namespace slm::kernels::neon
