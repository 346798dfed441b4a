// AVX2 kernels of the K-quants: super-blocks of 256 weights whose sub-blocks of 16 or 32
// share a scale (and a min). Each decoder walks the weights in order, 32 at a time, as
// 32 bytes of quants; layouts in kernels/quant_blocks.hpp.
#include <immintrin.h>

#include "kernels/matmul_tiling.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

__m256i load32(const uint8_t* bytes) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes)); }

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
      const __m256i packed = load32(block.qs + 32 * half);
      for (int k = 0; k < 4; ++k) {
        const __m256i q = shift_mask(packed, 2 * k, 0x03);
        for (int i = 0; i < 2; ++i) {
          const int sub = 8 * half + 2 * k + i;
          const __m256 scale = _mm256_set1_ps(d * float(block.scales[sub] & 0x0f));
          const __m256 minus_min = _mm256_set1_ps(-(dmin * float(block.scales[sub] >> 4)));
          emit16(i == 0 ? low_half(q) : high_half(q), scale, minus_min, 16 * sub, sink);
        }
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
    const __m256i high_bits = load32(block.hmask);
    for (int half = 0; half < 2; ++half) {
      const __m256i packed = load32(block.qs + 32 * half);
      for (int k = 0; k < 4; ++k) {
        const __m256i high_bit_as_4 = _mm256_slli_epi16(shift_mask(high_bits, 4 * half + k, 0x01), 2);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(shift_mask(packed, 2 * k, 0x03), high_bit_as_4),
                                          _mm256_set1_epi8(4));
        for (int i = 0; i < 2; ++i) {
          const int sub = 8 * half + 2 * k + i;
          const __m256 scale = _mm256_set1_ps(d * float(q3_k_scale(block.scales, sub)));
          emit16(i == 0 ? low_half(q) : high_half(q), scale, 16 * sub, sink);
        }
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
    __m256i fifth_bits = _mm256_setzero_si256();
    if constexpr (kFifthBit) fifth_bits = load32(block.qh);
    for (int sub = 0; sub < 8; ++sub) {
      __m256i q = shift_mask(load32(block.qs + 32 * (sub / 2)), 4 * (sub % 2), 0x0f);
      if constexpr (kFifthBit) q = _mm256_or_si256(q, _mm256_slli_epi16(shift_mask(fifth_bits, sub, 0x01), 4));
      const ScaleAndMin packed = k_quant_scale_min(block.scales, sub);
      const __m256 scale = _mm256_set1_ps(d * float(packed.scale));
      const __m256 minus_min = _mm256_set1_ps(-(dmin * float(packed.min)));
      emit16(low_half(q), scale, minus_min, 32 * sub, sink);
      emit16(high_half(q), scale, minus_min, 32 * sub + 16, sink);
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
      const __m256i high_bits = load32(block.qh + 32 * half);
      for (int k = 0; k < 4; ++k) {
        const __m256i low = shift_mask(load32(block.ql + 64 * half + 32 * (k % 2)), 4 * (k / 2), 0x0f);
        const __m256i high = _mm256_slli_epi16(shift_mask(high_bits, 2 * k, 0x03), 4);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low, high), _mm256_set1_epi8(32));
        for (int i = 0; i < 2; ++i) {
          const int sub = 8 * half + 2 * k + i;
          const __m256 scale = _mm256_set1_ps(d * float(block.scales[sub]));
          emit16(i == 0 ? low_half(q) : high_half(q), scale, 16 * sub, sink);
        }
      }
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
