// AVX2 kernels of the K-quants: super-blocks of 256 weights whose sub-blocks of 16 or 32
// share a scale (and a min). Layouts in kernels/quant_blocks.hpp.
#include <immintrin.h>

#include "kernels/matmul_tiling.hpp"
#include "kernels/packed_scales.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

__m256 broadcast(const float& value) { return _mm256_broadcast_ss(&value); }

// out[i] = float(q[i]) * factor for the 16 int8 in q (sub-block scales: exact products).
void store_times(__m128i q, __m256 factor, float* out) {
  _mm256_storeu_ps(out, _mm256_mul_ps(low8_to_float(q), factor));
  _mm256_storeu_ps(out + 8, _mm256_mul_ps(low8_to_float(_mm_unpackhi_epi64(q, q)), factor));
}

// The decoders emit piece p (0..7): weights 32p .. 32p+31, from 32 bytes of quants, with
// the block's sub-block scales unpacked to floats once (unpack_scales) for all 8 pieces.
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
    const __m128i packed = load16(block.scales);
    Scales scales;
    store_times(_mm_and_si128(packed, _mm_set1_epi8(0x0f)), broadcast_half(block.d), scales.scale);
    store_times(shift_mask(packed, 4, 0x0f), _mm256_set1_ps(-half_to_float(block.dmin)), scales.minus_min);
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int piece, Sink&& sink) {
    const __m256i q = q2_k_quants(*reinterpret_cast<const BlockQ2_K*>(bytes), piece);
    for (int i = 0; i < 2; ++i) {
      const int sub = 2 * piece + i;
      emit16(i == 0 ? low_half(q) : high_half(q), broadcast(scales.scale[sub]), broadcast(scales.minus_min[sub]),
             16 * sub, sink);
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
    const __m128i plus_32 = load16(q3_k_scales_plus_32(block.scales).words);
    Scales scales;
    store_times(_mm_sub_epi8(plus_32, _mm_set1_epi8(32)), broadcast_half(block.d), scales.scale);
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int piece, Sink&& sink) {
    const __m256i q = q3_k_quants(*reinterpret_cast<const BlockQ3_K*>(bytes), piece);
    for (int i = 0; i < 2; ++i) {
      const int sub = 2 * piece + i;
      emit16(i == 0 ? low_half(q) : high_half(q), broadcast(scales.scale[sub]), 16 * sub, sink);
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
    const __m128i scales_then_mins = load16(k_quant_scales_and_mins(block.scales).words);
    const __m128i mins = _mm_unpackhi_epi64(scales_then_mins, scales_then_mins);
    Scales scales;
    _mm256_storeu_ps(scales.scale, _mm256_mul_ps(low8_to_float(scales_then_mins), broadcast_half(block.d)));
    _mm256_storeu_ps(scales.minus_min, _mm256_mul_ps(low8_to_float(mins), _mm256_set1_ps(-half_to_float(block.dmin))));
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int sub, Sink&& sink) {
    const __m256i q = k_nibble_quants(*reinterpret_cast<const Block*>(bytes), sub);
    const __m256 scale = broadcast(scales.scale[sub]);
    const __m256 minus_min = broadcast(scales.minus_min[sub]);
    emit16(low_half(q), scale, minus_min, 32 * sub, sink);
    emit16(high_half(q), scale, minus_min, 32 * sub + 16, sink);
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
    store_times(load16(block.scales), broadcast_half(block.d), scales.scale);
    return scales;
  }
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales& scales, int piece, Sink&& sink) {
    const BlockQ6_K& block = *reinterpret_cast<const BlockQ6_K*>(bytes);
    const __m256i q = q6_k_quants(block, piece / 4, piece % 4);
    for (int i = 0; i < 2; ++i) {
      const int sub = 2 * piece + i;
      emit16(i == 0 ? low_half(q) : high_half(q), broadcast(scales.scale[sub]), 16 * sub, sink);
    }
  }
};

}  // namespace

tiling::FormatKernel k_quant_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q2_K: return tiling::matmul_rows<Avx2Lanes, Q2_KFormat>;
    case GgmlType::Q3_K: return tiling::matmul_rows<Avx2Lanes, Q3_KFormat>;
    case GgmlType::Q4_K: return tiling::matmul_rows<Avx2Lanes, Q4_KFormat>;
    case GgmlType::Q5_K: return tiling::matmul_rows<Avx2Lanes, Q5_KFormat>;
    case GgmlType::Q6_K: return tiling::matmul_rows<Avx2Lanes, Q6_KFormat>;
    default: return nullptr;
  }
}

}  // namespace slm::kernels::avx2
