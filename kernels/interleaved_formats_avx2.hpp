// The interleaved layout's formats (kernels/interleaved_blocks.hpp) for the AVX2 integer
// kernels: how a block of a layout tile (8 rows) is multiplied in registers (dot_block) or
// decoded into a prompt tile (decode_block). Included by matmul_interleaved_avx2.cpp and by the
// AMX kernels (matmul_amx_avx512.cpp), which lay the decoded K-quant weights out for tiles.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/matmul_int_avx2.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

// The 8 bytes at p: one per row.
__m128i load8(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }

// Row r's 16-bit value in lanes 2r and 2r + 1, beside its pair of weights.
__m256i per_pair(__m128i rows) { return _mm256_set_m128i(_mm_unpackhi_epi16(rows, rows), _mm_unpacklo_epi16(rows, rows)); }

template <class Format>
void store_pair(RowTile<Format>& tile, int pair, int row0, __m256i w) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(tile.w[pair][row0]), w);
}

// A group of Q5_0's layout (uint32 qh, then 16 nibble bytes; slot j's 5th bit is bit j of
// qh) as 16-bit slots 0-15 (low) and 16-31 (high): q - 16 where kMinusSixteen (Q5_0's weights),
// else q (Q5_1's and Q5_K's quants, 0..31). Lane j of `low` tests bit j of qh's first 16 bits, lane j of
// `high` bit j of the next 16. Where it is clear, q - 16 is the nibble with bits 4-15 set (two's
// complement) and q the nibble; where it is set, q - 16 is the nibble and q has bit 4 set.
template <bool kMinusSixteen>
void five_bit_halves(const uint8_t* group, __m256i& low, __m256i& high) {
  const __m256i bytes = _mm256_cvtepu8_epi16(load16(group + sizeof(uint32_t)));
  const __m256i bit_of_lane = _mm256_set_epi16(-32768, 0x4000, 0x2000, 0x1000, 0x800, 0x400, 0x200, 0x100, 0x80, 0x40,
                                               0x20, 0x10, 8, 4, 2, 1);
  uint16_t first_bits, second_bits;
  std::memcpy(&first_bits, group, sizeof(first_bits));
  std::memcpy(&second_bits, group + sizeof(first_bits), sizeof(second_bits));
  const auto with_fifth_bit = [&](__m256i nibble, uint16_t bits) {
    const __m256i clear = _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16(static_cast<int16_t>(bits)), bit_of_lane),
                                             _mm256_setzero_si256());
    if constexpr (kMinusSixteen)
      return _mm256_or_si256(nibble, _mm256_and_si256(clear, _mm256_set1_epi16(static_cast<int16_t>(0xfff0))));
    else
      return _mm256_or_si256(nibble, _mm256_andnot_si256(clear, _mm256_set1_epi16(0x10)));
  };
  low = with_fifth_bit(_mm256_and_si256(bytes, _mm256_set1_epi16(0x0f)), first_bits);
  high = with_fifth_bit(_mm256_srli_epi16(bytes, 4), second_bits);
}

// A group of 16 nibble bytes (Q4_0's) of IQ4_NL or IQ4_XS as 16-bit slots 0-15 (low) and
// 16-31 (high): each nibble looked up in kIq4NlValues (signed bytes) in place of Q4_0's q - 8,
// one 128-bit vpshufb per half, within a lane, then widened with its sign.
void iq4_halves(const uint8_t* group, __m256i& low, __m256i& high) {
  const __m128i packed = load16(group), mask = _mm_set1_epi8(0x0f);
  low = _mm256_cvtepi8_epi16(iq4_values(_mm_and_si128(packed, mask)));
  high = _mm256_cvtepi8_epi16(iq4_values(_mm_and_si128(_mm_srli_epi16(packed, 4), mask)));
}

// How many chains one token's madd_add steps take (ChainedSums). Where madd_add is one vpdpwssd (AVX-512 VNNI, AVX-VNNI), a chain waits 4 cycles for its last
// while two can start each cycle (AMD EPYC Zen 4, a loop of each), and Q4_K's and Q5_K's two
// chains of eight per sub-block held the one-token kernel to their latency: four chains,
// bench_matmul matmul_interleaved/avx512/{Q4_K,Q5_K}/tokens:1/threads:1, three alternating
// rounds of 5: 1.09x and 1.06x; Q4_0, Q5_0 and Q8_0 (a block of 8 groups) gained nothing
// (1.00x, 0.99x, 0.94x) and keep two, as the AVX2 build (madd_add ends in a 1-cycle vpaddd).
#if defined(__AVX512VNNI__) || defined(__AVXVNNI__)
inline constexpr int kFusedMaddChains = 4;
#else
inline constexpr int kFusedMaddChains = 2;
#endif
// A token's integer sums over a block (or sub-block) of groups (ChainedSums, simd_avx2.hpp):
// group m's two products are steps 2m and 2m + 1.
template <int kTokens, int kOneTokenChains>
struct GroupSums : ChainedSums<kTokens, kOneTokenChains> {
  // Group m's two vectors (slots 0-15, 16-31) times token t's activations q_x[0..3].
  void add(int t, int m, __m256i low, __m256i high, const int16_t* q_x) {
    this->at(t, 2 * m) = madd_add(this->at(t, 2 * m), low, broadcast_pair(q_x));
    this->at(t, 2 * m + 1) = madd_add(this->at(t, 2 * m + 1), high, broadcast_pair(q_x + 2));
  }
};

// Each interleaved format gives, for one block of a tile (8 rows):
//   dot_block<kTokens>(block, x, x_stride, acc): acc[t] lane r += row r's part of token t's dot
//     product (token t's activation block at x[t * x_stride]), by the formula of
//     matmul_int_avx2.hpp (one fma per group, then the min term), the block decoded once;
//   decode_block(block, tile, b, row0): the block as block b of rows row0 .. row0 + 7 of a
//     prompt tile (weights with their
//     sub-block scales, scales, mins).

// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL: d[8] (Q4_1, Q5_1: then m[8]), then 8 groups of kGroupBytes;
// halves(group, low, high) gives the group's 32 weights as 16-bit integers, zero point removed
// (Q4_1, Q5_1: q as it is, the min's term added after the block: kBlockMin; IQ4_NL: the table
// value of q).
template <GgmlType kType, class Block>
struct InterleavedLegacy {
  static constexpr int kWeights = kLegacyBlockSize, kGroupWeights = kLegacyBlockSize;
  static constexpr int kActivationBits = activation_magnitude_bits(kType);
  static constexpr bool kHasMin = kType == GgmlType::Q4_1 || kType == GgmlType::Q5_1;
  static constexpr int kHeaderBytes = (kHasMin ? 2 : 1) * sizeof(Fp16Bits);
  static constexpr int kScaleBytes = kInterleavedRows * kHeaderBytes;  // d[8] (and m[8])
  static constexpr int kGroupBytes = sizeof(Block) - kHeaderBytes;
  static constexpr int kBlockBytes = kInterleavedRows * sizeof(Block);

  // The group's slots 0-15 (low) and 16-31 (high) as 16-bit weights, zero point removed,
  // decoded in 16-bit lanes: the bytes are widened straight from memory, and no byte vector
  // has its halves split and widened again (Zen 3's shuffle pipes bounded that).
  static void halves(const uint8_t* group, __m256i& low, __m256i& high) {
    if constexpr (kType == GgmlType::Q8_0) {
      low = _mm256_cvtepi8_epi16(load16(group));
      high = _mm256_cvtepi8_epi16(load16(group + 16));
    } else if constexpr (kType == GgmlType::Q5_0 || kType == GgmlType::Q5_1) {
      five_bit_halves<!kHasMin>(group, low, high);  // Q5_0: q - 16; Q5_1: q, its min term after the block
    } else if constexpr (kType == GgmlType::IQ4_NL) {
      iq4_halves(group, low, high);
    } else {
      static_assert(kType == GgmlType::Q4_0 || kType == GgmlType::Q4_1);
      const __m256i bytes = _mm256_cvtepu8_epi16(load16(group));
      const __m256i zero_point = _mm256_set1_epi16(kHasMin ? 0 : 8);
      low = _mm256_sub_epi16(_mm256_and_si256(bytes, _mm256_set1_epi16(0x0f)), zero_point);
      high = _mm256_sub_epi16(_mm256_srli_epi16(bytes, 4), zero_point);
    }
  }

  // Q4_1, Q5_1: acc[t] += m * d_x times token t's sum of q over the block.
  template <int kTokens>
  static void add_min_terms(const uint8_t* block, const ActivationBlock<kWeights>* x, int64_t x_stride, __m256* acc) {
    const __m256 m = _mm256_cvtph_ps(load16(block + kInterleavedRows * sizeof(Fp16Bits)));
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
      const __m256 sum_q = _mm256_cvtepi32_ps(_mm256_set1_epi32(x[t * x_stride].sum32[0]));
      acc[t] = _mm256_fmadd_ps(sum_q, _mm256_mul_ps(m, _mm256_set1_ps(x[t * x_stride].d)), acc[t]);
    }
  }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const ActivationBlock<kWeights>* x, int64_t x_stride, __m256* acc) {
    GroupSums<kTokens, 2> isum;
#pragma GCC unroll 8
    for (int m = 0; m < kLegacyBlockSize / 4; ++m) {
      __m256i low, high;
      halves(block + kScaleBytes + m * kGroupBytes, low, high);
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t) isum.add(t, m, low, high, x[t * x_stride].q + 4 * m);
    }
    const __m256 d = _mm256_cvtph_ps(load16(block));
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
      const __m256i sum = isum.total(t);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(d, _mm256_set1_ps(x[t * x_stride].d)), acc[t]);
    }
    if constexpr (kHasMin) add_min_terms<kTokens>(block, x, x_stride, acc);
  }

  static void decode_block(const uint8_t* block, RowTile<InterleavedLegacy>& tile, int b, int row0) {
    _mm256_store_ps(tile.scale[b] + row0, _mm256_cvtph_ps(load16(block)));
    if constexpr (kHasMin)
      _mm256_store_ps(tile.min_scale[b] + row0, _mm256_cvtph_ps(load16(block + kInterleavedRows * sizeof(Fp16Bits))));
#pragma GCC unroll 8
    for (int m = 0; m < kLegacyBlockSize / 4; ++m) {
      __m256i low, high;
      halves(block + kScaleBytes + m * kGroupBytes, low, high);
      store_pair(tile, b * kWeights / 2 + 2 * m, row0, low);
      store_pair(tile, b * kWeights / 2 + 2 * m + 1, row0, high);
    }
  }
};

// Q4_K, Q5_K: d[8], dmin[8], scale[8][8], min[8][8] ([sub-block][row]), then per sub-block 8
// groups: 16 nibble bytes (Q4_K), or Q5_0's 20 bytes (Q5_K). The sub-block scale multiplies the
// 8 rows' int32 sums of each sub-block (one _mm256_mullo_epi32 per 32 x 8 weights) instead of
// every weight: the integer sums are exact, so these are the row formula's bits.
// IQ4_XS: d[8], its signed scale[8][8] (ls_i - 32), then Q4_K's groups, each nibble looked up in
// kIq4NlValues; no min, so no min term (at compile time), and groups of 64 weights, its row
// kernel's (|scale_i * value| <= 4064: matmul_int_avx2.hpp).
template <GgmlType kType>
struct InterleavedKNibbles {
  static constexpr bool kFifthBit = kType == GgmlType::Q5_K;
  static constexpr bool kTableValues = kType == GgmlType::IQ4_XS;
  static constexpr int kWeights = kSuperBlockSize, kGroupWeights = kTableValues ? 64 : 128;
  static constexpr int kActivationBits = activation_magnitude_bits(kType);
  static constexpr bool kHasMin = !kTableValues;
  static constexpr int kBlockBytes = kFifthBit ? kQ5KTileBlockBytes : kTableValues ? kIQ4XSTileBlockBytes : kQ4KTileBlockBytes;
  static constexpr int kSubBlocks = 8, kGroupSubBlocks = kGroupWeights / 32;
  static constexpr int kScalesOffset = kHasMin ? 32 : 16, kMinsOffset = 96, kQuantsOffset = kHasMin ? 160 : 80;
  static constexpr int kGroupBytes = kFifthBit ? 20 : 16;

  // Lane r: row r's min of sub-block i.
  static __m256i sub_block_bytes(const uint8_t* block, int offset, int i) {
    return _mm256_cvtepu8_epi32(load8(block + offset + kInterleavedRows * i));
  }
  // Lane r: row r's scale of sub-block i (IQ4_XS's signed).
  static __m256i sub_block_scales(const uint8_t* block, int i) {
    if constexpr (kTableValues) return _mm256_cvtepi8_epi32(load8(block + kScalesOffset + kInterleavedRows * i));
    return sub_block_bytes(block, kScalesOffset, i);
  }
  // 16-bit lanes 2r and 2r + 1: row r's scale of sub-block i.
  static __m256i pair_scales(const uint8_t* block, int i) {
    const __m128i scales = load8(block + kScalesOffset + kInterleavedRows * i);
    return per_pair(kTableValues ? _mm_cvtepi8_epi16(scales) : _mm_cvtepu8_epi16(scales));
  }
  // Group m of sub-block i as two vectors of 16-bit weights (slots 0-15, then 16-31): the 16
  // bytes widened once, then masked and shifted, with no cross-lane step.
  static void quants(const uint8_t* block, int i, int m, __m256i& low, __m256i& high) {
    const uint8_t* group = block + kQuantsOffset + (i * 8 + m) * kGroupBytes;
    if constexpr (kFifthBit) {
      five_bit_halves<false>(group, low, high);
    } else if constexpr (kTableValues) {
      iq4_halves(group, low, high);
    } else {
      const __m256i bytes = _mm256_cvtepu8_epi16(load16(group));
      low = _mm256_and_si256(bytes, _mm256_set1_epi16(0x0f));
      high = _mm256_srli_epi16(bytes, 4);
    }
  }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const ActivationBlock<kWeights>* x, int64_t x_stride, __m256* acc) {
    const __m256 d = _mm256_cvtph_ps(load16(block));
    for (int g = 0; g < kWeights / kGroupWeights; ++g) {
      __m256i isum[kTokens];
      for (__m256i& sum : isum) sum = _mm256_setzero_si256();
      for (int i = g * kGroupSubBlocks; i < (g + 1) * kGroupSubBlocks; ++i) {
        GroupSums<kTokens, kFusedMaddChains> sub;
#pragma GCC unroll 8
        for (int m = 0; m < 8; ++m) {
          __m256i low, high;
          quants(block, i, m, low, high);
#pragma GCC unroll 8
          for (int t = 0; t < kTokens; ++t) sub.add(t, m, low, high, x[t * x_stride].q + 32 * i + 4 * m);
        }
        const __m256i scales = sub_block_scales(block, i);
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) {
          const __m256i sum = sub.total(t);
          isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(sum, scales));
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t)
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, _mm256_set1_ps(x[t * x_stride].d)), acc[t]);
    }
    if constexpr (kHasMin) {
      const __m256 dmin = _mm256_cvtph_ps(load16(block + 16));
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t) {
        const ActivationBlock<kWeights>& x_t = x[t * x_stride];
        __m256i products = _mm256_setzero_si256();
        for (int i = 0; i < kSubBlocks; ++i)
          products = _mm256_add_epi32(products, _mm256_mullo_epi32(sub_block_bytes(block, kMinsOffset, i), _mm256_set1_epi32(x_t.sum32[i])));
        const __m256 min_scale = _mm256_mul_ps(dmin, _mm256_xor_ps(_mm256_set1_ps(x_t.d), _mm256_set1_ps(-0.0f)));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), min_scale, acc[t]);
      }
    }
  }

  static void decode_block(const uint8_t* block, RowTile<InterleavedKNibbles>& tile, int b, int row0) {
    _mm256_store_ps(tile.scale[b] + row0, _mm256_cvtph_ps(load16(block)));
    if constexpr (kHasMin)
      _mm256_store_ps(tile.min_scale[b] + row0, _mm256_xor_ps(_mm256_cvtph_ps(load16(block + 16)), _mm256_set1_ps(-0.0f)));
    for (int i = 0; i < kSubBlocks; ++i) {
      if constexpr (kHasMin)
        _mm256_store_si256(reinterpret_cast<__m256i*>(tile.mins[b][i] + row0), sub_block_bytes(block, kMinsOffset, i));
      const __m256i scales = pair_scales(block, i);
      for (int m = 0; m < 8; ++m) {
        __m256i low, high;
        quants(block, i, m, low, high);
        const int pair = b * kWeights / 2 + 16 * i + 2 * m;
        store_pair(tile, pair, row0, _mm256_mullo_epi16(low, scales));
        store_pair(tile, pair + 1, row0, _mm256_mullo_epi16(high, scales));
      }
    }
  }
};

using InterleavedQ4_K = InterleavedKNibbles<GgmlType::Q4_K>;
using InterleavedQ5_K = InterleavedKNibbles<GgmlType::Q5_K>;
using InterleavedIQ4_XS = InterleavedKNibbles<GgmlType::IQ4_XS>;

// Q6_K: d[8], scale[16][8] (int8, [sub-block][row]), then per 32 weights c 4 pairs of groups
// (48 bytes: q6_k_pair_halves). Groups 0-3 of c (pairs 0, 1) are sub-block 2c, groups 4-7
// (pairs 2, 3) sub-block 2c + 1, whose scales multiply int32 sums.
struct InterleavedQ6_K {
  static constexpr int kWeights = kSuperBlockSize, kGroupWeights = 64;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q6_K);
  static constexpr bool kHasMin = false;
  static constexpr int kBlockBytes = kQ6KTileBlockBytes;
  static constexpr int kScalesOffset = 16, kQuantsOffset = 144, kPairBytes = 48;

  // Groups 2p and 2p + 1 of the 32 weights c as 16-bit quants q (0..63), slots 0-15 then 16-31 of each.
  static void quants(const uint8_t* block, int c, int p, __m256i (&halves)[4]) {
    q6_k_pair_halves(block + kQuantsOffset + (c * 4 + p) * kPairBytes, halves);
  }
  static const uint8_t* sub_block_scales(const uint8_t* block, int i) { return block + kScalesOffset + kInterleavedRows * i; }

  template <int kTokens>
  static void dot_block(const uint8_t* block, const ActivationBlock<kWeights>* x, int64_t x_stride, __m256* acc) {
    const __m256 d = _mm256_cvtph_ps(load16(block));
    for (int g = 0; g < kWeights / kGroupWeights; ++g) {
      __m256i isum[kTokens];
      for (__m256i& sum : isum) sum = _mm256_setzero_si256();
      for (int c = 2 * g; c < 2 * g + 2; ++c)
        for (int k = 0; k < 2; ++k) {  // sub-blocks 2c, 2c + 1: groups 0-3, then 4-7 of c
          __m256i sub[kTokens];
          for (__m256i& sum : sub) sum = _mm256_setzero_si256();
#pragma GCC unroll 2
          for (int p = 2 * k; p < 2 * k + 2; ++p) {
            __m256i halves[4];
            quants(block, c, p, halves);
#pragma GCC unroll 8
            for (int t = 0; t < kTokens; ++t) {
              const int16_t* q_x = x[t * x_stride].q + 32 * c + 8 * p;  // groups 2p, 2p + 1: weights 8p ..
#pragma GCC unroll 4
              for (int h = 0; h < 4; ++h) sub[t] = madd_add(sub[t], halves[h], broadcast_pair(q_x + 2 * h));
            }
          }
          // The sub-block's sum of (q - 32) x is its sum of q x less 32 times its sum of x.
          const __m256i scales = _mm256_cvtepi8_epi32(load8(sub_block_scales(block, 2 * c + k)));
#pragma GCC unroll 8
          for (int t = 0; t < kTokens; ++t) {
            const __m256i zero_point_products = _mm256_set1_epi32(32 * x[t * x_stride].sum16[2 * c + k]);
            isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(_mm256_sub_epi32(sub[t], zero_point_products), scales));
          }
        }
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t)
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, _mm256_set1_ps(x[t * x_stride].d)), acc[t]);
    }
  }

  static void decode_block(const uint8_t* block, RowTile<InterleavedQ6_K>& tile, int b, int row0) {
    _mm256_store_ps(tile.scale[b] + row0, _mm256_cvtph_ps(load16(block)));
    for (int c = 0; c < 8; ++c)
      for (int k = 0; k < 2; ++k) {
        const __m256i pair_scales = per_pair(_mm_cvtepi8_epi16(load8(sub_block_scales(block, 2 * c + k))));
        for (int p = 2 * k; p < 2 * k + 2; ++p) {
          __m256i halves[4];
          quants(block, c, p, halves);
          const int first_pair = b * kWeights / 2 + 16 * c + 4 * p;  // tile.w's pairs of weights
          const __m256i zero_point = _mm256_set1_epi16(32);
          for (int h = 0; h < 4; ++h)
            store_pair(tile, first_pair + h, row0, _mm256_mullo_epi16(_mm256_sub_epi16(halves[h], zero_point), pair_scales));
        }
      }
  }
};

}  // namespace
}  // namespace slm::kernels::avx2
