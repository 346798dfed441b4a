// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL with Int8 activations (the interface:
// kernels/matmul_int8_avx2.hpp; the formula: kernels/matmul_int8.hpp, w_int = q - 8, q, q - 16,
// q, q, kIq4NlValues[q]). A layout tile's block (d[8], Q4_1/Q5_1's m[8], then 8 groups of 4 weights x 8 rows,
// kernels/interleaved_blocks.hpp) decodes each group to one byte vector in row lanes
// (matmul_int8_lanes_avx2.hpp) for _mm256_maddubs_epi16 with a broadcast of 4 activation bytes:
//   Q4_0, Q4_1, Q5_0, Q5_1: the unsigned quants q (0..15, 0..31), Q4_0/Q5_0's zero point off
//     the block's sum as 8 or 16 times the activations' sum32 (Q4_1/Q5_1: the min's term, m *
//     d_x times sum32, after the block's fma); a pair of products is at most 2 * 15 * 127 = 3810
//     or 2 * 31 * 127 = 7874, so 8 or 4 groups add in 16 bits before a madd widens them;
//   Q8_0: the signed quants, multiplied as |w| (<= 128, unsigned) by x with w's sign
//     (_mm256_sign_epi8): a pair is at most 2 * 128 * 127 = 32512, widened at once;
//   IQ4_NL: Q4_0's nibbles looked up in kIq4NlValues (one vpshufb), then as Q8_0's signed bytes.
// Where vpdpbusd adds the products into 32 bits (kByteDotProducts), a block's 8 groups are 8 of
// them per token, and Q8_0 and IQ4_NL multiply w + 128 (0..255, the sign bit flipped), its zero
// point 128 taken off as Q4_0's 8 is: no sign instruction per token.
// Each block's sum is exact int32, then one fma: the reference's bits.
#pragma once

#include <immintrin.h>

#include <bit>
#include <cstdint>
#include <cstring>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/matmul_int8_avx2.hpp"
#include "kernels/matmul_int8_formats_avx2.hpp"
#include "kernels/matmul_int8_lanes_avx2.hpp"
#include "kernels/quant_blocks.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels::avx2 {
namespace {

template <GgmlType kLegacyType, class Block>
struct Int8Legacy {
  static constexpr bool kReady = true;
  static constexpr GgmlType kType = kLegacyType;
  static constexpr int kWeights = kLegacyBlockSize;
  static constexpr int kBlockBytes = kInterleavedRows * sizeof(Block);
  static constexpr bool kHasMin = kType == GgmlType::Q4_1 || kType == GgmlType::Q5_1;
  static constexpr bool kFourBits = kType == GgmlType::Q4_0 || kType == GgmlType::Q4_1;
  static constexpr bool kFiveBits = kType == GgmlType::Q5_0 || kType == GgmlType::Q5_1;
  static constexpr int kHeaderBytes = (kHasMin ? 2 : 1) * sizeof(Fp16Bits);  // d (and m)
  static constexpr int kGroups = 8, kScaleBytes = kInterleavedRows * kHeaderBytes;
  static constexpr int kGroupBytes = sizeof(Block) - kHeaderBytes;
  static constexpr bool kSignedBytes = kType == GgmlType::Q8_0 || kType == GgmlType::IQ4_NL;  // w_int in -128..127
  static constexpr bool kOffsetQ8 = kSignedBytes && kByteDotProducts;  // as w + 128
  static constexpr bool kSigned = kSignedBytes && !kByteDotProducts;  // as |w| and sign
  static constexpr int kPassTokens = kByteDotProducts ? kByteDotPassTokens : kSigned ? 6 : 8;
  static constexpr int32_t kZeroPoint = kType == GgmlType::Q4_0 ? 8 : kType == GgmlType::Q5_0 ? 16 : kOffsetQ8 ? 128 : 0;
  // Groups whose maddubs add in 16 bits before widening (see above).
  static constexpr int kGroupsPerSum = kFourBits ? 8 : kFiveBits ? 4 : 1;
  static constexpr int kChunkBlocks = kInt8ChunkWeights / kWeights;
  using X = Int8Block<kWeights>;

  // Group m's quants in row lanes: unsigned q for Q4_0, Q4_1, Q5_0 and Q5_1; for Q8_0 signed q,
  // and for IQ4_NL its table value, or either + 128 where kOffsetQ8.
  static __m256i group_quants(const uint8_t* block, int m) {
    const uint8_t* group = block + kScaleBytes + m * kGroupBytes;
    if constexpr (kType == GgmlType::IQ4_NL) {
      return iq4_values<kOffsetQ8>(lane_nibbles(group));
    } else if constexpr (kOffsetQ8) {
      return _mm256_xor_si256(lane_bytes(load32(group)), _mm256_set1_epi8(static_cast<char>(0x80)));
    } else if constexpr (kType == GgmlType::Q8_0) {
      return lane_bytes(load32(group));
    } else if constexpr (kFiveBits) {
      return lane_five_bit_quants(group);
    } else {
      static_assert(kFourBits);
      return lane_nibbles(group);
    }
  }

  // Each row's sum over the block of q * x (zero point left in), for the kTokens tokens
  // x_of(t), group m's quants quants(m) and, for Q8_0, |q| magnitudes(m).
  template <int kTokens, class Quants, class Magnitudes, class XOf>
  static void block_sums(Quants&& quants, Magnitudes&& magnitudes, XOf&& x_of, __m256i* isum) {
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) isum[t] = _mm256_setzero_si256();
    if constexpr (kByteDotProducts && kTokens == 1) {
      // One token adds its products in two chains of 4 vpdpbusd, not one of 8 (ChainedSums):
      // with the matrix in the caches Q4_0 1.10x, Q5_0 1.09x (bench_matmul, AMD EPYC Zen 4).
      // More tokens are chains of their own (below: their sums straight in isum, which the
      // prompt loop's inlining depends on).
      ChainedSums<1, 2> chains;
#pragma GCC unroll 16
      for (int m = 0; m < kGroups; ++m) chains.at(0, m) = dot_bytes_add(chains.at(0, m), quants(m), broadcast_quad(x_of(0).q + 4 * m));
      isum[0] = chains.total(0);
      return;
    } else if constexpr (kByteDotProducts) {
#pragma GCC unroll 16
      for (int m = 0; m < kGroups; ++m) {
        const __m256i q = quants(m);
#pragma GCC unroll 16
        for (int t = 0; t < kTokens; ++t) isum[t] = dot_bytes_add(isum[t], q, broadcast_quad(x_of(t).q + 4 * m));
      }
      return;
    }
#pragma GCC unroll 16
    for (int m0 = 0; m0 < kGroups; m0 += kGroupsPerSum) {
      __m256i sums[kTokens];  // 16-bit
#pragma GCC unroll 16
      for (int m = m0; m < m0 + kGroupsPerSum; ++m) {
        const __m256i q = quants(m);
        if constexpr (kSigned) {
          const __m256i magnitude = magnitudes(m, q);
#pragma GCC unroll 16
          for (int t = 0; t < kTokens; ++t)
            sums[t] = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(broadcast_quad(x_of(t).q + 4 * m), q));
        } else {
#pragma GCC unroll 16
          for (int t = 0; t < kTokens; ++t) {
            const __m256i products = _mm256_maddubs_epi16(q, broadcast_quad(x_of(t).q + 4 * m));
            sums[t] = m == m0 ? products : _mm256_add_epi16(sums[t], products);
            pin_register(sums[t]);
          }
        }
      }
#pragma GCC unroll 16
      for (int t = 0; t < kTokens; ++t) {
        isum[t] = widen_add(isum[t], sums[t], ones);
        pin_register(isum[t]);
      }
    }
  }

  // acc + the block's term, isum its sum of q * x; min: Q4_1/Q5_1's 8 rows' m.
  static __m256 finish(__m256i isum, const X& x, __m256 d, __m256 min, __m256 acc) {
    // The zero point (a power of two) times sum32, shifted in a vector: a scalar product would
    // cross to the vector registers once per block and token.
    if constexpr (kZeroPoint != 0)
      isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_set1_epi32(x.sum32[0]), std::countr_zero(uint32_t(kZeroPoint))));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, _mm256_set1_ps(x.d)), acc);
    if constexpr (kHasMin)
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_set1_epi32(x.sum32[0])), _mm256_mul_ps(min, _mm256_set1_ps(x.d)), acc);
    return acc;
  }
  // The 8 rows' m (zeros where the format has none).
  static __m256 block_mins(const uint8_t* block) {
    if constexpr (kHasMin) return _mm256_cvtph_ps(load16(block + kInterleavedRows * sizeof(Fp16Bits)));
    return _mm256_setzero_ps();
  }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const X* x, int64_t x_stride, __m256* acc) {
    __m256i isum[kTokens];
    const auto x_of = [&](int t) -> const X& { return x[t * x_stride]; };
    block_sums<kTokens>([&](int m) { return group_quants(block, m); }, [](int, __m256i q) { return _mm256_abs_epi8(q); },
                        x_of, isum);
    const __m256 d = _mm256_cvtph_ps(load16(block)), min = block_mins(block);
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) acc[t] = finish(isum[t], x_of(t), d, min, acc[t]);
  }

  // A chunk of kChunkBlocks blocks, decoded as the loops above read it.
  struct Tile {
    alignas(32) uint8_t q[kChunkBlocks][kGroups][32];
    alignas(32) uint8_t magnitude[kSigned ? kChunkBlocks : 1][kGroups][32];  // Q8_0's |q|
    alignas(32) float d[kChunkBlocks][kInterleavedRows];
    alignas(32) float min[kHasMin ? kChunkBlocks : 1][kInterleavedRows];  // Q4_1/Q5_1's m
  };
  static __m256i load(const void* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }

  static void decode_block(const uint8_t* block, Tile& tile, int b) {
    for (int m = 0; m < kGroups; ++m) {
      const __m256i q = group_quants(block, m);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tile.q[b][m]), q);
      if constexpr (kSigned) _mm256_store_si256(reinterpret_cast<__m256i*>(tile.magnitude[b][m]), _mm256_abs_epi8(q));
    }
    _mm256_store_ps(tile.d[b], _mm256_cvtph_ps(load16(block)));
    if constexpr (kHasMin) _mm256_store_ps(tile.min[b], block_mins(block));
  }

  template <int kTokens>
  static void accumulate(const Tile& tile, int n_blocks, const X* const* x_tokens, __m256* acc) {
    __m256 sums[kTokens];
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) sums[t] = acc[t];
    for (int b = 0; b < n_blocks; ++b) {
      __m256i isum[kTokens];
      const auto x_of = [&](int t) -> const X& { return x_tokens[t][b]; };
      block_sums<kTokens>([&](int m) { return load(tile.q[b][m]); },
                          [&](int m, __m256i) { return load(tile.magnitude[kSigned ? b : 0][m]); }, x_of, isum);
      const __m256 d = _mm256_load_ps(tile.d[b]), min = _mm256_load_ps(tile.min[kHasMin ? b : 0]);
#pragma GCC unroll 16
      for (int t = 0; t < kTokens; ++t) sums[t] = finish(isum[t], x_of(t), d, min, sums[t]);
    }
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) acc[t] = sums[t];
  }
};

template <>
struct Int8Format<GgmlType::Q4_0> : Int8Legacy<GgmlType::Q4_0, BlockQ4_0> {};
template <>
struct Int8Format<GgmlType::Q5_0> : Int8Legacy<GgmlType::Q5_0, BlockQ5_0> {};
template <>
struct Int8Format<GgmlType::Q4_1> : Int8Legacy<GgmlType::Q4_1, BlockQ4_1> {};
template <>
struct Int8Format<GgmlType::Q5_1> : Int8Legacy<GgmlType::Q5_1, BlockQ5_1> {};
template <>
struct Int8Format<GgmlType::Q8_0> : Int8Legacy<GgmlType::Q8_0, BlockQ8_0> {};
template <>
struct Int8Format<GgmlType::IQ4_NL> : Int8Legacy<GgmlType::IQ4_NL, BlockIQ4_NL> {};

}  // namespace
}  // namespace slm::kernels::avx2
