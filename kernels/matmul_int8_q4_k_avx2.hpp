// Q4_K's, Q5_K's and IQ4_XS's AVX2 Int8 kernels (the formula: kernels/matmul_int8.hpp; the interface:
// kernels/matmul_int8_avx2.hpp) over the 8-row interleaved layout (kernels/interleaved_blocks.hpp:
// per block d[8], dmin[8], scale[8][8], min[8][8] as [sub-block][row], then per sub-block 8
// groups of 16 nibble bytes, or for Q5_K of 20 bytes laid out as Q5_0's; IQ4_XS: d[8], its
// signed scale[8][8], then Q4_K's groups).
//
// A group m of sub-block i is decoded to one vector whose 32-bit lane r holds row r's
// weights 4m .. 4m + 3 as bytes (row lanes: kernels/matmul_int8_lanes_avx2.hpp), so a
// broadcast of the token's 4 activations (one int32) meets them in _mm256_maddubs_epi16 (unsigned nibbles 0..15 times signed bytes): 16-bit
// lanes 2r, 2r + 1 get row r's two pair sums, each <= 2 * 15 * 127 = 3810. The 8 groups of a
// sub-block add in 16 bits (<= 30480, no overflow), and one _mm256_madd_epi16 with the rows'
// sub-block scales (each row's scale in both 16-bit halves of its lane) gives each row's
// scale_i * sum in its 32-bit lane: the block's isum, exact, then the formula's two fmas.
// Q5_K's quants (0..31) make a pair sum up to 2 * 31 * 127 = 7874: 4 groups add in 16 bits
// (31496), then a madd with the scales widens them, twice per sub-block.
// IQ4_XS's weights are the nibbles' kIq4NlValues (-127..113, one vpshufb: iq4_values), multiplied
// as |w| by x with w's sign (_mm256_sign_epi8): a pair is at most 2 * 127 * 127 = 32258, so each
// group's madd with the scales widens it at once; w_int = scale_i * value, |w_int| <= 32 * 127 =
// 4064, within the formula's bounds, and no min term.
// Where vpdpbusd adds the products into 32 bits (kByteDotProducts), a sub-block's 8 groups are 8
// of them per token into a fresh int32 sum (|sum| <= 32 * 31 * 127 = 125984; IQ4_XS's values +
// 128, at most 241: 979424), which one vpmulld by the row's scale adds to isum. IQ4_XS's zero
// point 128 then comes off the block's isum as 128 times the sum over i of scale_i * sum32[i],
// taken as Q4_K's min term is (two sub-blocks per _mm256_madd_epi16), all exact in int32.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/matmul_int8_avx2.hpp"
#include "kernels/matmul_int8_formats_avx2.hpp"
#include "kernels/matmul_int8_lanes_avx2.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

template <GgmlType kKType>
struct Int8KNibbles {
  static constexpr bool kReady = true;
  static constexpr GgmlType kType = kKType;
  static constexpr bool kFifthBit = kType == GgmlType::Q5_K;
  static constexpr bool kTableValues = kType == GgmlType::IQ4_XS;  // signed scales, no mins
  static constexpr bool kHasMin = !kTableValues;
  static constexpr bool kZeroPoint128 = kTableValues && kByteDotProducts;  // IQ4_XS's values + 128
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBlockBytes = kFifthBit ? kQ5KTileBlockBytes : kTableValues ? kIQ4XSTileBlockBytes : kQ4KTileBlockBytes;
  static constexpr int kSubBlocks = 8, kGroups = 8;  // groups of 4 weights x 8 rows per sub-block
  static constexpr int kScalesOffset = kHasMin ? 32 : 16, kMinsOffset = 96, kQuantsOffset = kHasMin ? 160 : 80;
  static constexpr int kGroupBytes = kFifthBit ? 20 : 16;
  static constexpr int kGroupsPerSum = kFifthBit ? 4 : kTableValues ? 1 : 8;  // groups whose maddubs add in 16 bits
  static constexpr int kPassTokens = kByteDotProducts ? kByteDotPassTokens : 6;
  static_assert(kInt8ChunkWeights == kWeights, "a prompt chunk is one K-quant block");
  using XBlock = Int8Block<kWeights>;

  // Group m of sub-block i in row lanes (lane r: row r's weights 4m .. 4m + 3); IQ4_XS's
  // values, + 128 where vpdpbusd multiplies them.
  static __m256i group_weights(const uint8_t* block, int i, int m) {
    const uint8_t* group = block + kQuantsOffset + (i * kGroups + m) * kGroupBytes;
    if constexpr (kFifthBit)
      return lane_five_bit_quants(group);
    else if constexpr (kTableValues)
      return iq4_values<kByteDotProducts>(lane_nibbles(group));
    else
      return lane_nibbles(group);
  }
  // Lane r: row r's scale of sub-block i, as int32 for vpmulld (kByteDotProducts), else in both
  // 16-bit halves for _mm256_madd_epi16.
  static __m256i scale_pairs(const uint8_t* block, int i) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + kScalesOffset + 8 * i));
    const __m256i scales = kTableValues ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes);
    if constexpr (kByteDotProducts) return scales;
    if constexpr (kTableValues) return _mm256_blend_epi16(scales, _mm256_slli_epi32(scales, 16), 0xaa);  // signed
    return _mm256_or_si256(scales, _mm256_slli_epi32(scales, 16));
  }
  // Vector k, lane r: row r's mins (IQ4_XS: its scales) of sub-blocks 2k and 2k + 1, as 16-bit.
  static __m256i min_pairs(const uint8_t* block, int k) {
    const uint8_t* mins = block + (kHasMin ? kMinsOffset : kScalesOffset) + 16 * k;
    const __m128i first = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mins));
    const __m128i second = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mins + 8));
    const __m128i pairs = _mm_unpacklo_epi8(first, second);
    return kHasMin ? _mm256_cvtepu8_epi16(pairs) : _mm256_cvtepi8_epi16(pairs);
  }

  // The block's isum for each token (lane r: row r), weights(i, m) giving group m of sub-block
  // i and scales(i) its scale pairs.
  template <int kTokens, class Weights, class Scales>
  static void block_sums(Weights&& weights, Scales&& scales, const XBlock* const* x, __m256i* isum) {
    for (int t = 0; t < kTokens; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int i = 0; i < kSubBlocks; ++i) {
      const __m256i scale = scales(i);
      if constexpr (kByteDotProducts) {
        __m256i sums[kTokens];
        for (__m256i& sum : sums) sum = _mm256_setzero_si256();
#pragma GCC unroll 16
        for (int m = 0; m < kGroups; ++m) {
          const __m256i w = weights(i, m);
#pragma GCC unroll 16
          for (int t = 0; t < kTokens; ++t) sums[t] = dot_bytes_add(sums[t], w, broadcast_quad(x[t]->q + 32 * i + 4 * m));
        }
#pragma GCC unroll 16
        for (int t = 0; t < kTokens; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(sums[t], scale));
        continue;
      }
#pragma GCC unroll 8
      for (int m0 = 0; m0 < kGroups; m0 += kGroupsPerSum) {
        __m256i sums[kTokens];  // 16-bit
        for (__m256i& sum : sums) sum = _mm256_setzero_si256();
#pragma GCC unroll 16
        for (int m = m0; m < m0 + kGroupsPerSum; ++m) {
          const __m256i w = weights(i, m);
          const __m256i magnitude = kTableValues ? _mm256_abs_epi8(w) : w;  // IQ4_XS: |w|, x with w's sign
#pragma GCC unroll 16
          for (int t = 0; t < kTokens; ++t) {
            __m256i x_quad = broadcast_quad(x[t]->q + 32 * i + 4 * m);
            if constexpr (kTableValues) x_quad = _mm256_sign_epi8(x_quad, w);
            sums[t] = _mm256_add_epi16(sums[t], _mm256_maddubs_epi16(magnitude, x_quad));
            pin_register(sums[t]);
          }
        }
#pragma GCC unroll 16
        for (int t = 0; t < kTokens; ++t) isum[t] = widen_add(isum[t], sums[t], scale);
      }
    }
  }

  // Sum over sub-blocks i of pair_i * sum32[i], pairs[k] holding sub-blocks 2k and 2k + 1
  // (min_pairs): two terms per _mm256_madd_epi16, the token's 16-bit sums (sum32_16) paired as
  // the mins are, pair k broadcast straight from memory.
  static __m256i pair_products(const __m256i* pairs, const XBlock& x) {
    const int8_t* sum_pairs = reinterpret_cast<const int8_t*>(x.sum32_16);
    __m256i products = _mm256_madd_epi16(pairs[0], broadcast_quad(sum_pairs));
    for (int k = 1; k < 4; ++k) products = widen_add(products, broadcast_quad(sum_pairs + 4 * k), pairs[k]);
    return products;
  }

  // The formula's fmas: acc += isum * (d * d_x), then (Q4_K, Q5_K) acc += min_isum * (-dmin *
  // d_x), min_isum = sum over i of min_i * sum32[i]. IQ4_XS's values + 128 (kZeroPoint128)
  // leave isum 128 times the sum over i of scale_i * sum32[i] too large.
  static __m256 finish(__m256 acc, __m256i isum, __m256 d, __m256 min_scale, const __m256i* mins, const XBlock& x) {
    const __m256 d_x = _mm256_set1_ps(x.d);
    if constexpr (kZeroPoint128) isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(pair_products(mins, x), 7));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, d_x), acc);
    if constexpr (!kHasMin) return acc;
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_products(mins, x)), _mm256_mul_ps(min_scale, d_x), acc);
  }

  static __m256 negated_dmin(const uint8_t* block) {
    if constexpr (!kHasMin) return _mm256_setzero_ps();
    return _mm256_xor_ps(_mm256_cvtph_ps(load16(block + 16)), _mm256_set1_ps(-0.0f));
  }

  // acc[t] + the block's term for token t, isum[t] its sum (finish).
  template <int kTokens>
  static void finish_block(const uint8_t* block, const __m256i* isum, const XBlock* const* tokens, __m256* acc) {
    const __m256i mins[4] = {min_pairs(block, 0), min_pairs(block, 1), min_pairs(block, 2), min_pairs(block, 3)};
    const __m256 d = _mm256_cvtph_ps(load16(block)), min_scale = negated_dmin(block);
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) acc[t] = finish(acc[t], isum[t], d, min_scale, mins, *tokens[t]);
  }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const XBlock* x, int64_t x_stride, __m256* acc) {
    const XBlock* tokens[kTokens];
    for (int t = 0; t < kTokens; ++t) tokens[t] = x + t * x_stride;
    __m256i isum[kTokens];
    block_sums<kTokens>([&](int i, int m) { return group_weights(block, i, m); },
                        [&](int i) { return scale_pairs(block, i); }, tokens, isum);
    finish_block<kTokens>(block, isum, tokens, acc);
  }

  // One token (and up to kInt8RegisterTokens) in the vpdpbusd builds, Q4_K and IQ4_XS
  // (kLaneActivations): each sub-block's groups 4 at a time as nibble_word_pairs
  // (matmul_int8_lanes_avx2.hpp), 10 instructions per 4 groups where lane_nibbles took 16 (IQ4_XS:
  // 4 vpshufb more), against the token's activations in word_pair_activations' order (LaneX: an
  // Int8Block with its q reordered, once per call).
  static constexpr bool kLaneActivations = kByteDotProducts && !kFifthBit;
  struct LaneX : XBlock {};
  static void expand(const XBlock& x, LaneX& out) {
    static_cast<XBlock&>(out) = x;
    word_pair_activations(x.q, out.q, kWeights);
  }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const LaneX* x, int64_t x_stride, __m256* acc) {
    const XBlock* tokens[kTokens];
    for (int t = 0; t < kTokens; ++t) tokens[t] = x + t * x_stride;
    __m256i isum[kTokens];
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int i = 0; i < kSubBlocks; ++i) {
      __m256i sums[kTokens];
      nibble_word_pair_sums<kTokens, kTableValues>(block + kQuantsOffset + i * kGroups * kGroupBytes,
                                                   [&](int t) { return tokens[t]->q + 32 * i; }, sums);
      const __m256i scale = scale_pairs(block, i);
#pragma GCC unroll 16
      for (int t = 0; t < kTokens; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(sums[t], scale));
    }
    finish_block<kTokens>(block, isum, tokens, acc);
  }

  struct Tile {
    __m256i w[kSubBlocks][kGroups];
    __m256i scales[kSubBlocks];
    __m256i mins[4];  // min_pairs
    __m256 d, min_scale;
  };

  static void decode_block(const uint8_t* block, Tile& tile, int /*b: always 0, a chunk is one block*/) {
    for (int i = 0; i < kSubBlocks; ++i) {
      for (int m = 0; m < kGroups; ++m) tile.w[i][m] = group_weights(block, i, m);
      tile.scales[i] = scale_pairs(block, i);
    }
    for (int k = 0; k < 4; ++k) tile.mins[k] = min_pairs(block, k);
    tile.d = _mm256_cvtph_ps(load16(block));
    tile.min_scale = negated_dmin(block);
  }

  template <int kTokens>
  static void accumulate(const Tile& tile, int /*n_blocks: 1*/, const XBlock* const* x_tokens, __m256* acc) {
    __m256i isum[kTokens];
    block_sums<kTokens>([&](int i, int m) { return tile.w[i][m]; }, [&](int i) { return tile.scales[i]; }, x_tokens, isum);
    for (int t = 0; t < kTokens; ++t) acc[t] = finish(acc[t], isum[t], tile.d, tile.min_scale, tile.mins, *x_tokens[t]);
  }
};

template <>
struct Int8Format<GgmlType::Q4_K> : Int8KNibbles<GgmlType::Q4_K> {};
template <>
struct Int8Format<GgmlType::Q5_K> : Int8KNibbles<GgmlType::Q5_K> {};
template <>
struct Int8Format<GgmlType::IQ4_XS> : Int8KNibbles<GgmlType::IQ4_XS> {};

}  // namespace
}  // namespace slm::kernels::avx2
