// Q6_K with Int8 activations (the interface: kernels/matmul_int8_avx2.hpp; the formula:
// kernels/matmul_int8.hpp, w_int = scale_i * (q - 32)). A layout tile's pair of groups (48
// bytes, kernels/interleaved_blocks.hpp) decodes to their 6-bit quants q (0..63) in row lanes
// (matmul_int8_lanes_avx2.hpp), unsigned bytes for _mm256_maddubs_epi16 with the signed
// activations: a pair of products is at most 2 * 63 * 127 = 16002, so two maddubs (the 4
// groups of a 16-weight sub-block in two adds) still fit in 16 bits, and _mm256_madd_epi16
// with the sub-block's scale (16-bit, in both halves of each row's lane) widens them to the
// row's int32 sum. The zero points come off once per block and token: 32 * sum over i of
// scale_i * sum16[i], by 8 madds of the scales' pairs with the activation sums' pairs.
// Where vpdpbusd adds the products into 32 bits (kByteDotProducts), a sub-block's 4 groups are 4
// of them per token into a fresh int32 sum, which one vpmulld by the row's scale (int32 there)
// adds to isum.
// All in int32, exact (|isum| < 2^28), then one fma per block: the reference's bits.
#pragma once

#include <immintrin.h>

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

template <>
struct Int8Format<GgmlType::Q6_K> {
  static constexpr bool kReady = true;
  static constexpr GgmlType kType = GgmlType::Q6_K;
  static constexpr int kWeights = kSuperBlockSize;
  static constexpr int kBlockBytes = kQ6KTileBlockBytes;
  static constexpr int kPassTokens = kByteDotProducts ? kByteDotPassTokens : 8;
  static constexpr int kSubBlocks = 16, kGroups = 64, kScalesOffset = 16, kQuantsOffset = 144, kPairBytes = 48;
  using X = Int8Block<kWeights>;

  // Groups 2k and 2k + 1 (weights 8 (k % 4) .. of the 32 weights k / 4) as unsigned q in row
  // lanes: q6_k_pair_halves' 16-bit slots of each group packed to bytes, per 128-bit half
  // rows 4h .. 4h + 3's slots 2r, 2r + 1 (bytes 0-7), then 16 + 2r, 17 + 2r (8-15), which one
  // shuffle puts beside each other. Always inlined: GCC's inliner, at the edge of its budget for
  // this file, had left it a call in the one-token loop (Int8 Q6_K tokens:1 1.6x slower, with
  // the matrix in the caches: bench_matmul, AMD EPYC Zen 4).
  [[gnu::always_inline]] static void pair_quants(const uint8_t* block, int k, __m256i (&groups)[2]) {
    __m256i halves[4];
    q6_k_pair_halves(block + kQuantsOffset + k * kPairBytes, halves);
    const __m256i row_bytes = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,  //
                                               0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
    for (int g = 0; g < 2; ++g)
      groups[g] = _mm256_shuffle_epi8(_mm256_packus_epi16(halves[2 * g], halves[2 * g + 1]), row_bytes);
  }
  // Sub-block i's scales: lane r row r's, as int32 for vpmulld (kByteDotProducts), else as
  // 16-bit in both halves of the lane, each byte spread to 4, then shifted down 8 with its sign.
  static __m256i sub_block_scales(const uint8_t* block, int i) {
    int64_t scales;
    std::memcpy(&scales, block + kScalesOffset + kInterleavedRows * i, sizeof(scales));
    if constexpr (kByteDotProducts) return _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(scales));
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,  //
                                            4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
    return _mm256_srai_epi16(_mm256_shuffle_epi8(_mm256_set1_epi64x(scales), spread), 8);
  }
  // Lane r: row r's scales of sub-blocks 2k and 2k + 1, 16-bit.
  static __m256i scale_pairs(const uint8_t* block, int k) {
    const uint8_t* scales = block + kScalesOffset + 2 * kInterleavedRows * k;
    const __m128i first = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales));
    const __m128i second = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales + kInterleavedRows));
    return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(first, second));
  }

  // isum[t] += each row's sum over the block of scale_i * q * x (zero points left in), token
  // t's activations x_of(t), groups 2k and 2k + 1's quants pair(k, groups) and sub-block i's
  // scales scales(i).
  template <int kTokens, class Pair, class Scales, class XOf>
  static void block_products(Pair&& pair, Scales&& scales, XOf&& x_of, __m256i* isum) {
#pragma GCC unroll 2
    for (int i = 0; i < kSubBlocks; ++i) {
      const __m256i scale = scales(i);
      __m256i groups[2][2];  // the sub-block's 4 groups, as 2 pairs
      pair(2 * i, groups[0]);
      pair(2 * i + 1, groups[1]);
      if constexpr (kByteDotProducts) {
        __m256i sums[kTokens];
        for (__m256i& sum : sums) sum = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int m = 0; m < 4; ++m) {
          const __m256i w = groups[m / 2][m % 2];
#pragma GCC unroll 16
          for (int t = 0; t < kTokens; ++t) sums[t] = dot_bytes_add(sums[t], w, broadcast_quad(x_of(t).q + 16 * i + 4 * m));
        }
#pragma GCC unroll 16
        for (int t = 0; t < kTokens; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(sums[t], scale));
        continue;
      }
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {  // groups 4i + 2h, + 1: weights 16i + 8h .. + 7
        const __m256i first = groups[h][0], second = groups[h][1];
#pragma GCC unroll 16
        for (int t = 0; t < kTokens; ++t) {
          const int8_t* q = x_of(t).q + 16 * i + 8 * h;
          const __m256i sums = _mm256_add_epi16(_mm256_maddubs_epi16(first, broadcast_quad(q)),
                                                _mm256_maddubs_epi16(second, broadcast_quad(q + 4)));
          isum[t] = widen_add(isum[t], sums, scale);
          pin_register(isum[t]);
        }
      }
    }
  }

  // acc += the block's term, isum less its zero points; pairs(k) as scale_pairs.
  template <class Pairs>
  static __m256 finish(__m256i isum, Pairs&& pairs, const X& x, __m256 d, __m256 acc) {
    __m256i zero_points = _mm256_setzero_si256();
#pragma GCC unroll 16
    for (int k = 0; k < kSubBlocks / 2; ++k) {
      int32_t sum_pair;  // the activations' sum16[2k], sum16[2k + 1]
      std::memcpy(&sum_pair, x.sum16 + 2 * k, sizeof(sum_pair));
      zero_points = widen_add(zero_points, _mm256_set1_epi32(sum_pair), pairs(k));
    }
    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(zero_points, 5));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, _mm256_set1_ps(x.d)), acc);
  }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const X* x, int64_t x_stride, __m256* acc) {
    __m256i isum[kTokens];
    for (__m256i& sum : isum) sum = _mm256_setzero_si256();
    const auto x_of = [&](int t) -> const X& { return x[t * x_stride]; };
    block_products<kTokens>([&](int k, __m256i(&groups)[2]) { pair_quants(block, k, groups); },
                            [&](int i) { return sub_block_scales(block, i); }, x_of, isum);
    __m256i pairs[kSubBlocks / 2];
    for (int k = 0; k < kSubBlocks / 2; ++k) pairs[k] = scale_pairs(block, k);
    const __m256 d = _mm256_cvtph_ps(load16(block));
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) acc[t] = finish(isum[t], [&](int k) { return pairs[k]; }, x_of(t), d, acc[t]);
  }

  // One block (the chunk of 256 weights), decoded as the loops above read it.
  struct Tile {
    alignas(32) uint8_t q[kGroups][32];
    alignas(32) int16_t scales[kSubBlocks][16];  // sub_block_scales: 16 int16 or 8 int32
    alignas(32) int16_t pairs[kSubBlocks / 2][16];
    alignas(32) float d[kInterleavedRows];
  };
  static __m256i load(const void* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }

  static void decode_block(const uint8_t* block, Tile& tile, [[maybe_unused]] int b) {
    for (int k = 0; k < kGroups / 2; ++k) {
      __m256i groups[2];
      pair_quants(block, k, groups);
      for (int g = 0; g < 2; ++g) _mm256_store_si256(reinterpret_cast<__m256i*>(tile.q[2 * k + g]), groups[g]);
    }
    for (int i = 0; i < kSubBlocks; ++i)
      _mm256_store_si256(reinterpret_cast<__m256i*>(tile.scales[i]), sub_block_scales(block, i));
    for (int k = 0; k < kSubBlocks / 2; ++k)
      _mm256_store_si256(reinterpret_cast<__m256i*>(tile.pairs[k]), scale_pairs(block, k));
    _mm256_store_ps(tile.d, _mm256_cvtph_ps(load16(block)));
  }

  template <int kTokens>
  static void accumulate(const Tile& tile, [[maybe_unused]] int n_blocks, const X* const* x_tokens, __m256* acc) {
    __m256i isum[kTokens];
    for (__m256i& sum : isum) sum = _mm256_setzero_si256();
    const auto x_of = [&](int t) -> const X& { return *x_tokens[t]; };
    block_products<kTokens>(
        [&](int k, __m256i(&groups)[2]) {
          for (int g = 0; g < 2; ++g) groups[g] = load(tile.q[2 * k + g]);
        },
        [&](int i) { return load(tile.scales[i]); }, x_of, isum);
    const __m256 d = _mm256_load_ps(tile.d);
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t)
      acc[t] = finish(isum[t], [&](int k) { return load(tile.pairs[k]); }, x_of(t), d, acc[t]);
  }
};

}  // namespace
}  // namespace slm::kernels::avx2
