// The dotprod integer kernels' parts (matmul_int_neon.cpp), shared with the i8mm prompt kernel
// (matmul_int_i8mm_neon.cpp) so that both round the activations and sum the blocks alike. Include
// it from those two files only; internal linkage, so each keeps the copy built with its own flags.
//
// The activations are rounded once per call to blocks of the weight block's length (32, or
// 256 for K-quants) with a power-of-two scale and kNeonActivationBits (14) bits of magnitude
// (kernels/activation_blocks.hpp), then split into two signed bytes, q = 256 * high + low, so
// that sdot and smmla, which multiply bytes, keep all 14 bits: high in [-64, 64], low in [-128, 127].
//
// What each (row, token) output is, whatever the batch, the row range, the thread count or the
// instructions (sdot or smmla) that sum the bytes:
//   acc = 0 (one float)
//   for each block b, with d the block's fp16 scale and d_x the activation block's:
//     for each group g of kGroupPieces pieces of 16 weights, in order:
//       isum = sum over pieces p of scale_p * (256 * dot(q_p, high_p) + dot(q_p, low_p))
//       acc  = fma(float(isum), d * d_x, acc)              (isum exact in int32, below)
//     Q4_K/Q5_K: acc = fma(float(sum over sub-blocks i of min_i * sum32_i), -dmin * d_x, acc)
//   y = acc
// scale_p is 1 for the legacy formats and the sub-block scale of the K-quants. Group sums
// stay below 2^31: 32 * 128 * 2^14 (legacy), 128 weights * 945 * 2^14 (Q4_K), 64 * 1953 * 2^14
// (Q5_K), 32 * 4096 * 16383 (Q6_K); being integers, they are the same in any order.
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "kernels/activation_blocks.hpp"
#include "kernels/packed_scales.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_neon.hpp"

namespace slm::kernels::neon {
namespace {

// What the kernel reports of the CPU (AT_HWCAP, AT_HWCAP2): sdot, and smmla (FEAT_I8MM).
inline bool cpu_has_dotprod() {
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}
inline bool cpu_has_i8mm() {
#if defined(__linux__) && defined(HWCAP2_I8MM)
  return (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#else
  return false;
#endif
}

template <int N>
struct SplitActivations {
  int8_t high[N];
  int8_t low[N];
  float d;
  int32_t sum32[N / 32];  // the sums of q over each 32: the K-quant min terms
};

template <int N>
void quantize_block(const float* x, SplitActivations<N>& out) {
  float32x4_t amax4 = vdupq_n_f32(0.0f);
  bool unordered = false;
  for (int i = 0; i < N; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    amax4 = vmaxq_f32(amax4, vabsq_f32(v));
    unordered |= vminvq_u32(vceqq_f32(v, v)) == 0;
  }
  const float amax = unordered ? std::numeric_limits<float>::quiet_NaN() : vmaxvq_f32(amax4);
  const ActivationScale scale = activation_scale(amax, kNeonActivationBits);
  out.d = scale.d;
  const float32x4_t inverse = vdupq_n_f32(scale.inverse);
  int32x4_t sum = vdupq_n_s32(0);
  for (int i = 0; i < N; i += 4) {
    // x * inverse is exact (a power of two); vcvtnq rounds to nearest even, as the specification.
    const int32x4_t q = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i), inverse));
    const int32x4_t high = vshrq_n_s32(vaddq_s32(q, vdupq_n_s32(128)), 8);
    const int32x4_t low = vsubq_s32(q, vshlq_n_s32(high, 8));
    int32_t high_lanes[4], low_lanes[4];
    vst1q_s32(high_lanes, high);
    vst1q_s32(low_lanes, low);
    for (int k = 0; k < 4; ++k) {
      out.high[i + k] = static_cast<int8_t>(high_lanes[k]);
      out.low[i + k] = static_cast<int8_t>(low_lanes[k]);
    }
    sum = vaddq_s32(sum, q);
    if ((i + 4) % 32 == 0) {
      out.sum32[i / 32] = vaddvq_s32(sum);
      sum = vdupq_n_s32(0);
    }
  }
}

// Every token's activations (quantize_tokens: a per-thread buffer that only grows).
template <int N>
const SplitActivations<N>* quantize_activations(const float* x, int64_t n_tokens, int64_t n_in) {
  return quantize_tokens<SplitActivations<N>, N>(x, n_tokens, n_in, quantize_block<N>);
}

// ---------------------------------------------------------------------------
// Weight formats as signed bytes. Each has kWeights per block; quants(block, unpacked, j)
// gives weights 16j .. 16j+15 and piece_scale(block, unpacked, j) their integer scale; groups
// of kGroupPieces pieces; scale(block) is d's bits; with kHasMin, min_scale_half(block) is
// dmin's bits and unpacked.scales_then_mins[8 + i] the sub-block mins.
// ---------------------------------------------------------------------------

struct NoScales {};

// Q4_0, Q5_0: q - zero_point; Q8_0: q.
template <class Block, bool kFifthBit>
struct LegacyNibbleBytes {
  static constexpr int kWeights = kLegacyBlockSize, kBytes = sizeof(Block), kGroupPieces = 2;
  static constexpr bool kHasMin = false;
  struct Unpacked {
    int8x16_t pieces[2];  // the block's 32 quants, decoded once
  };
  static Unpacked unpack(const uint8_t* bytes) {
    uint8x16_t first, second;
    legacy_quants<Block, kFifthBit>(*reinterpret_cast<const Block*>(bytes), first, second);
    const uint8x16_t zero_point = vdupq_n_u8(kFifthBit ? 16 : 8);  // wraps to the signed q - zero_point
    return {{vreinterpretq_s8_u8(vsubq_u8(first, zero_point)), vreinterpretq_s8_u8(vsubq_u8(second, zero_point))}};
  }
  static int8x16_t quants(const uint8_t*, const Unpacked& unpacked, int j) { return unpacked.pieces[j]; }
  static int32_t piece_scale(const uint8_t*, const Unpacked&, int) { return 1; }
  static uint16_t scale(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->d; }
};

struct Q8_0Bytes {
  static constexpr int kWeights = kLegacyBlockSize, kBytes = sizeof(BlockQ8_0), kGroupPieces = 2;
  static constexpr bool kHasMin = false;
  using Unpacked = NoScales;
  static Unpacked unpack(const uint8_t*) { return {}; }
  static int8x16_t quants(const uint8_t* bytes, const Unpacked&, int j) {
    return vld1q_s8(reinterpret_cast<const BlockQ8_0*>(bytes)->qs + 16 * j);
  }
  static int32_t piece_scale(const uint8_t*, const Unpacked&, int) { return 1; }
  static uint16_t scale(const uint8_t* bytes) { return reinterpret_cast<const BlockQ8_0*>(bytes)->d; }
};

// Q4_K, Q5_K: sub-block i (32 weights, pieces 2i and 2i+1) has scale_i and min_i;
// w = d * scale_i * q - dmin * min_i.
template <class Block, int kGroupWeights>
struct KNibbleBytes {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(Block), kGroupPieces = kGroupWeights / 16;
  static constexpr bool kHasMin = true;
  struct Unpacked {
    uint8_t scales_then_mins[16];  // 0..7: scale_i, 8..15: min_i
  };
  static Unpacked unpack(const uint8_t* bytes) {
    const SixteenBytes packed = k_quant_scales_and_mins(reinterpret_cast<const Block*>(bytes)->scales);
    Unpacked unpacked;
    std::memcpy(unpacked.scales_then_mins, packed.words, sizeof(unpacked.scales_then_mins));
    return unpacked;
  }
  static int8x16_t quants(const uint8_t* bytes, const Unpacked&, int j) {
    return vreinterpretq_s8_u8(k_nibble_quants16(*reinterpret_cast<const Block*>(bytes), j / 2, j % 2));
  }
  static int32_t piece_scale(const uint8_t*, const Unpacked& u, int j) { return u.scales_then_mins[j / 2]; }
  static uint16_t scale(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->d; }
  static uint16_t min_scale_half(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->dmin; }
};

// Q6_K: piece j is sub-block j (16 weights), w = d * scales[j] * (q - 32).
struct Q6_KBytes {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(BlockQ6_K), kGroupPieces = 2;
  static constexpr bool kHasMin = false;
  using Unpacked = NoScales;
  static Unpacked unpack(const uint8_t*) { return {}; }
  static int8x16_t quants(const uint8_t* bytes, const Unpacked&, int j) {
    return vreinterpretq_s8_u8(q6_k_quants16(*reinterpret_cast<const BlockQ6_K*>(bytes), j / 2, j % 2));
  }
  static int32_t piece_scale(const uint8_t* bytes, const Unpacked&, int j) {
    return reinterpret_cast<const BlockQ6_K*>(bytes)->scales[j];
  }
  static uint16_t scale(const uint8_t* bytes) { return reinterpret_cast<const BlockQ6_K*>(bytes)->d; }
};

// Lane r: the sum of the lanes of v[r].
int32x4_t sum_lanes4(const int32x4_t (&v)[4]) { return vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3])); }

float32x4_t halves_to_floats(const uint16_t (&halves)[4]) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(halves))); }


// Block b of the 4 rows first_row + r * row_stride: where each starts, its unpacked scales, and
// the float factors of a group's and the mins' integer sums for activations of scale x_d.
template <class Format>
struct FourBlocks {
  const uint8_t* blocks[4];
  typename Format::Unpacked unpacked[4];
  uint16_t d_halves[4];

  FourBlocks(const uint8_t* first_row, uint64_t row_stride, int64_t b) {
    for (int r = 0; r < 4; ++r) {
      blocks[r] = first_row + r * row_stride + b * Format::kBytes;
      unpacked[r] = Format::unpack(blocks[r]);
      d_halves[r] = Format::scale(blocks[r]);
    }
  }
  int8x16_t quants(int r, int j) const { return Format::quants(blocks[r], unpacked[r], j); }
  int32_t piece_scale(int r, int j) const { return Format::piece_scale(blocks[r], unpacked[r], j); }
  float32x4_t group_scale(float x_d) const { return vmulq_n_f32(halves_to_floats(d_halves), x_d); }

  // acc + (lane r: sum over sub-blocks i of min_i * sum32[i]) * -dmin * x_d, for the K-quants
  // with mins; acc unchanged for the others.
  float32x4_t add_mins(float32x4_t acc, const int32_t* sum32, float x_d) const {
    if constexpr (Format::kHasMin) {
      int32x4_t mins[4];
      uint16_t dmin_halves[4];
      for (int r = 0; r < 4; ++r) {
        // Lane i: min_i * sum32[i] + min_{i+4} * sum32[i+4], exact (63 * 32 * 2^14 each).
        const uint16x8_t min_values = vmovl_u8(vld1_u8(unpacked[r].scales_then_mins + 8));
        mins[r] = vmlaq_s32(vmulq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(min_values))), vld1q_s32(sum32)),
                            vreinterpretq_s32_u32(vmovl_high_u16(min_values)), vld1q_s32(sum32 + 4));
        dmin_halves[r] = Format::min_scale_half(blocks[r]);
      }
      const float32x4_t min_scale = vmulq_n_f32(vnegq_f32(halves_to_floats(dmin_halves)), x_d);
      return vfmaq_f32(acc, vcvtq_f32_s32(sum_lanes4(mins)), min_scale);
    }
    return acc;
  }
};

// y[r] for the 4 rows first_row + r * row_stride and one token's activations, with sdot.
template <class Format>
float32x4_t dot_rows(const uint8_t* first_row, uint64_t row_stride, int64_t n_blocks,
                     const SplitActivations<Format::kWeights>* x) {
  constexpr int kPieces = Format::kWeights / 16;
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const SplitActivations<Format::kWeights>& xb = x[b];
    const FourBlocks<Format> rows(first_row, row_stride, b);
    const float32x4_t scale = rows.group_scale(xb.d);
    for (int first_piece = 0; first_piece < kPieces; first_piece += Format::kGroupPieces) {
      int32x4_t group[4];
      for (int r = 0; r < 4; ++r) {
        group[r] = vdupq_n_s32(0);
        for (int j = first_piece; j < first_piece + Format::kGroupPieces; ++j) {
          const int8x16_t w = rows.quants(r, j);
          const int32x4_t high = vdotq_s32(vdupq_n_s32(0), w, vld1q_s8(xb.high + 16 * j));
          const int32x4_t low = vdotq_s32(vdupq_n_s32(0), w, vld1q_s8(xb.low + 16 * j));
          group[r] = vmlaq_n_s32(group[r], vaddq_s32(vshlq_n_s32(high, 8), low), rows.piece_scale(r, j));
        }
      }
      acc = vfmaq_f32(acc, vcvtq_f32_s32(sum_lanes4(group)), scale);
    }
    acc = rows.add_mins(acc, xb.sum32, xb.d);
  }
  return acc;
}

// The rows [row_begin, row_end) of y, 4 at a time: visit(first_row, row_stride, store), where
// store(t, v) writes lane r of v to row r of the group for token t. A short last group computes
// each of its rows 4 times (a stride of 0) and keeps lane 0.
template <class Visit>
void for_each_four_rows(const uint8_t* weights, uint64_t row_bytes, float* y, int64_t y_stride, int64_t row_begin,
                        int64_t row_end, Visit visit) {
  for (int64_t o = row_begin; o < row_end; o += 4) {
    const int n_rows = static_cast<int>(std::min<int64_t>(4, row_end - o));
    const uint64_t stride = n_rows == 4 ? row_bytes : 0;
    for (int64_t r = 0; r < (n_rows == 4 ? 1 : n_rows); ++r) {
      const auto store = [&](int64_t t, float32x4_t v) {
        float out[4];
        vst1q_f32(out, v);
        if (n_rows == 4) std::memcpy(y + t * y_stride + o, out, sizeof(out));
        else y[t * y_stride + o + r] = out[0];
      };
      visit(weights + uint64_t(o + r) * row_bytes, stride, store);
    }
  }
}

// The kernel of each format, as a function of Format (matmul_rows_int and matmul_rows_i8mm).
template <template <class> class Kernel>
auto integer_kernel_of(GgmlType type) -> decltype(&Kernel<Q8_0Bytes>::run) {
  switch (type) {
    case GgmlType::Q4_0: return Kernel<LegacyNibbleBytes<BlockQ4_0, false>>::run;
    case GgmlType::Q5_0: return Kernel<LegacyNibbleBytes<BlockQ5_0, true>>::run;
    case GgmlType::Q8_0: return Kernel<Q8_0Bytes>::run;
    case GgmlType::Q4_K: return Kernel<KNibbleBytes<BlockQ4_K, 128>>::run;
    case GgmlType::Q5_K: return Kernel<KNibbleBytes<BlockQ5_K, 64>>::run;
    case GgmlType::Q6_K: return Kernel<Q6_KBytes>::run;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace slm::kernels::neon
