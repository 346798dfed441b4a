// The interleaved layout's Q3_K and Q2_K (kernels/interleaved_blocks.hpp) for the AVX2 integer
// kernels, as interleaved_formats_avx2.hpp's formats (dot_block, decode_block): 16 sub-blocks
// of 16 weights, whose quants are decoded unsigned (Q3_K's q + 4) and multiplied by the
// activations in 16-bit lanes; the sub-block scales multiply the 8 rows' int32 sums. Every
// output follows the formula of matmul_int_avx2.hpp, one group of 256 weights per block, so
// the bits are those of the row kernels (Q3_KInts, Q2_KInts in matmul_int_avx2.cpp; tested).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/interleaved_formats_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

// A run of 32 weights (8 groups) keeps its quants' bit fields in planes of 32 bytes, slot j of
// every group in the byte that _mm256_unpacklo_epi8 (slots 0-15) or unpackhi_epi8 (16-31)
// widens to lane j % 16: a group's 32 slots are one shift and one mask of a plane.
// Group m's low 2 bits: bits 2 (m % 4) of plane m / 4, as bytes.
inline __m256i two_bits_of_group(const __m256i (&planes)[2], int m) {
  return _mm256_and_si256(_mm256_srli_epi16(planes[m / 4], 2 * (m % 4)), _mm256_set1_epi8(3));
}
// Bytes as 16-bit lanes: slots 0-15 in low, 16-31 in high.
inline void widen_slots(__m256i bytes, __m256i& low, __m256i& high) {
  low = _mm256_unpacklo_epi8(bytes, _mm256_setzero_si256());
  high = _mm256_unpackhi_epi8(bytes, _mm256_setzero_si256());
}

// The super-blocks of 16 sub-blocks of 16 (as Q6_K's): sub-block 2c + k is groups
// 4k .. 4k + 3 of the 32 weights c, which quants(m, low, high) gives as unsigned 16-bit quants
// (slots 0-15, 16-31). isum[t] lane r += row r's sub-block scale (lane r of `scales`) times its
// sum of (q - kZeroPoint) x over the sub-block: the sum of q x less kZeroPoint times the sum of
// x (sum16), so the zero point costs one subtraction per sub-block, not one per weight.
// Q6_K keeps its own loop (InterleavedQ6_K): through this one GCC's code for its one token
// was 1.1-1.25x slower. `quants` takes a decoded run by reference: by value, Q3_K's one token
// was 2x slower (bench_matmul tokens:1, AMD EPYC Zen 4, alternating runs).
template <int kZeroPoint, int kTokens, class Quants>
void add_sub_block_sums(Quants&& quants, int c, int k, __m256i scales, const ActivationBlock<kSuperBlockSize>* x,
                        int64_t x_stride, __m256i* isum) {
  __m256i sub[kTokens];
  for (__m256i& sum : sub) sum = _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int m = 4 * k; m < 4 * k + 4; ++m) {
    __m256i low, high;
    quants(m, low, high);
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
      const int16_t* q_x = x[t * x_stride].q + 32 * c + 4 * m;
      sub[t] = madd_add(sub[t], low, broadcast_pair(q_x));
      sub[t] = madd_add(sub[t], high, broadcast_pair(q_x + 2));
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < kTokens; ++t) {
    if constexpr (kZeroPoint != 0)
      sub[t] = _mm256_sub_epi32(sub[t], _mm256_set1_epi32(kZeroPoint * x[t * x_stride].sum16[2 * c + k]));
    isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(sub[t], scales));
  }
}

// The same sub-block decoded into block b of rows row0 .. row0 + 7 of a prompt tile: each
// weight (q - kZeroPoint) times its row's scale (lanes 2r, 2r + 1 of pair_scales).
template <int kZeroPoint, class Format, class Quants>
void decode_sub_block(Quants&& quants, int c, int k, __m256i pair_scales, RowTile<Format>& tile, int b, int row0) {
  const __m256i zero_point = _mm256_set1_epi16(kZeroPoint);
  for (int m = 4 * k; m < 4 * k + 4; ++m) {
    __m256i low, high;
    quants(m, low, high);
    const int pair = b * Format::kWeights / 2 + 16 * c + 2 * m;
    store_pair(tile, pair, row0, _mm256_mullo_epi16(_mm256_sub_epi16(low, zero_point), pair_scales));
    store_pair(tile, pair + 1, row0, _mm256_mullo_epi16(_mm256_sub_epi16(high, zero_point), pair_scales));
  }
}

// Q3_K: d[8], int8 scale[16][8], then per 32 weights c 96 bytes: the planes of the low 2 bits
// of groups 0-3 and 4-7, then the plane of the high bits (group m's at bit m). Groups 0-3 of c
// are sub-block 2c, groups 4-7 sub-block 2c + 1. Stored as q + 4 (0..7), whose zero point
// comes off each sub-block's sum (add_sub_block_sums), as Q6_K's does.
struct InterleavedQ3_K {
  static constexpr int kWeights = kSuperBlockSize, kGroupWeights = kSuperBlockSize;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q3_K);
  static constexpr bool kHasMin = false;
  static constexpr int kBlockBytes = kQ3KTileBlockBytes;
  static constexpr int kScalesOffset = 16, kQuantsOffset = 144, kRunBytes = 96, kZeroPoint = 4;

  struct Run {
    __m256i two_bits[2], high_bits;
  };
  static Run load_run(const uint8_t* block, int c) {
    const uint8_t* run = block + kQuantsOffset + c * kRunBytes;
    return {{load32(run), load32(run + 32)}, load32(run + 64)};
  }
  // Group m of a run as 16-bit quants q + 4 (0..7): slots 0-15 (low) and 16-31 (high). The
  // high bit moves from bit m to bit 2 within its byte (a 16-bit shift by at most 5 carries
  // other bytes' bits only into bits the mask clears).
  static void quants(const Run& run, int m, __m256i& low, __m256i& high) {
    const __m256i high_bit = m < 2 ? _mm256_slli_epi16(run.high_bits, 2 - m) : _mm256_srli_epi16(run.high_bits, m - 2);
    widen_slots(_mm256_or_si256(two_bits_of_group(run.two_bits, m), _mm256_and_si256(high_bit, _mm256_set1_epi8(4))), low, high);
  }
  // Lane r: row r's signed scale of sub-block i.
  static __m128i scales(const uint8_t* block, int i) { return load8(block + kScalesOffset + kInterleavedRows * i); }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const ActivationBlock<kWeights>* x, int64_t x_stride, __m256* acc) {
    __m256i isum[kTokens];
    for (__m256i& sum : isum) sum = _mm256_setzero_si256();
    for (int c = 0; c < 8; ++c) {
      const Run run = load_run(block, c);
      const auto group_quants = [&run](int m, __m256i& low, __m256i& high) { quants(run, m, low, high); };
      for (int k = 0; k < 2; ++k)  // sub-blocks 2c, 2c + 1: groups 0-3, then 4-7 of c
        add_sub_block_sums<kZeroPoint, kTokens>(group_quants, c, k, _mm256_cvtepi8_epi32(scales(block, 2 * c + k)), x,
                                                x_stride, isum);
    }
    const __m256 d = _mm256_cvtph_ps(load16(block));
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t)
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, _mm256_set1_ps(x[t * x_stride].d)), acc[t]);
  }

  static void decode_block(const uint8_t* block, RowTile<InterleavedQ3_K>& tile, int b, int row0) {
    _mm256_store_ps(tile.scale[b] + row0, _mm256_cvtph_ps(load16(block)));
    for (int c = 0; c < 8; ++c) {
      const Run run = load_run(block, c);
      const auto group_quants = [&run](int m, __m256i& low, __m256i& high) { quants(run, m, low, high); };
      for (int k = 0; k < 2; ++k)
        decode_sub_block<kZeroPoint>(group_quants, c, k, per_pair(_mm_cvtepi8_epi16(scales(block, 2 * c + k))), tile, b, row0);
    }
  }
};

// Q2_K: d[8], dmin[8], scale bytes [16][8] (scale_i | min_i << 4), then per 32 weights c 64
// bytes: the planes of q of groups 0-3 and 4-7 (sub-blocks 2c and 2c + 1). The mins' term
// follows the block's sums, as Q4_K's (over sum16: a min per 16 weights).
struct InterleavedQ2_K {
  static constexpr int kWeights = kSuperBlockSize, kGroupWeights = kSuperBlockSize;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q2_K);
  static constexpr bool kHasMin = true;
  static constexpr int kMinSubBlocks = 16;
  static constexpr int kBlockBytes = kQ2KTileBlockBytes;
  static constexpr int kScalesOffset = 32, kQuantsOffset = 160, kRunBytes = 64;

  static void load_run(const uint8_t* block, int c, __m256i (&planes)[2]) {
    const uint8_t* run = block + kQuantsOffset + c * kRunBytes;
    planes[0] = load32(run);
    planes[1] = load32(run + 32);
  }
  // Lane r: row r's scale byte of sub-block i (scale_i | min_i << 4).
  static __m128i scale_bytes(const uint8_t* block, int i) { return load8(block + kScalesOffset + kInterleavedRows * i); }
  static __m256i mins(const uint8_t* block, int i) { return _mm256_srli_epi32(_mm256_cvtepu8_epi32(scale_bytes(block, i)), 4); }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const ActivationBlock<kWeights>* x, int64_t x_stride, __m256* acc) {
    __m256i isum[kTokens];
    for (__m256i& sum : isum) sum = _mm256_setzero_si256();
    for (int c = 0; c < 8; ++c) {
      __m256i planes[2];
      load_run(block, c, planes);
      const auto group_quants = [&planes](int m, __m256i& low, __m256i& high) { widen_slots(two_bits_of_group(planes, m), low, high); };
      for (int k = 0; k < 2; ++k) {
        const __m256i scales = _mm256_and_si256(_mm256_cvtepu8_epi32(scale_bytes(block, 2 * c + k)), _mm256_set1_epi32(0x0f));
        add_sub_block_sums<0, kTokens>(group_quants, c, k, scales, x, x_stride, isum);
      }
    }
    const __m256 d = _mm256_cvtph_ps(load16(block));
    const __m256 dmin = _mm256_cvtph_ps(load16(block + 16));
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
      const ActivationBlock<kWeights>& x_t = x[t * x_stride];
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, _mm256_set1_ps(x_t.d)), acc[t]);
      __m256i products = _mm256_setzero_si256();
      for (int i = 0; i < kMinSubBlocks; ++i)
        products = _mm256_add_epi32(products, _mm256_mullo_epi32(mins(block, i), _mm256_set1_epi32(x_t.sum16[i])));
      const __m256 min_scale = _mm256_mul_ps(dmin, _mm256_xor_ps(_mm256_set1_ps(x_t.d), _mm256_set1_ps(-0.0f)));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), min_scale, acc[t]);
    }
  }

  static void decode_block(const uint8_t* block, RowTile<InterleavedQ2_K>& tile, int b, int row0) {
    _mm256_store_ps(tile.scale[b] + row0, _mm256_cvtph_ps(load16(block)));
    _mm256_store_ps(tile.min_scale[b] + row0, _mm256_xor_ps(_mm256_cvtph_ps(load16(block + 16)), _mm256_set1_ps(-0.0f)));
    for (int i = 0; i < kMinSubBlocks; ++i) _mm256_store_si256(reinterpret_cast<__m256i*>(tile.mins[b][i] + row0), mins(block, i));
    for (int c = 0; c < 8; ++c) {
      __m256i planes[2];
      load_run(block, c, planes);
      const auto group_quants = [&planes](int m, __m256i& low, __m256i& high) { widen_slots(two_bits_of_group(planes, m), low, high); };
      for (int k = 0; k < 2; ++k) {
        const __m128i scales = _mm_and_si128(_mm_cvtepu8_epi16(scale_bytes(block, 2 * c + k)), _mm_set1_epi16(0x0f));
        decode_sub_block<0>(group_quants, c, k, per_pair(scales), tile, b, row0);
      }
    }
  }
};

}  // namespace
}  // namespace slm::kernels::avx2
