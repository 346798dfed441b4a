// AVX2 integer kernels over weights in their rows, as the file stores them (the formula
// every output follows, the activation blocks and the prompt tile: matmul_int_avx2.hpp).
// One token computes 4 rows in the lanes of a 128-bit vector; a prompt decodes 8 rows into
// the tile's interleaved layout, an 8 x 8 transpose at a time.
// matmul_int_avxvnni.cpp compiles this file again with AVX-VNNI, in namespace avxvnni, and
// matmul_int_avx512.cpp with AVX-512, in namespace avx512 (a prompt tile of 16 rows).
#ifndef SLM_INTEGER_KERNELS
#define SLM_INTEGER_KERNELS avx2
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/matmul_int_avx2.hpp"
#include "kernels/matmul_tiling.hpp"
#include "kernels/packed_scales.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::SLM_INTEGER_KERNELS {
using namespace slm::kernels::avx2;
namespace {

// ---------------------------------------------------------------------------
// Weight formats as 16-bit integers. Each has kWeights per block in groups of kGroupWeights;
// decode_group(block, scales, g, sink) calls sink(step, w16) with the 16 weights
// step*16 .. step*16+15 of group g as int16 (sub-block scale folded in). d_bits(block) is the
// block's fp16 d; the K-quants with a min add dmin_bits (dmin) and mins (min_i in lane i;
// Q2_K's 16 as mins(scales, half), with kMinSubBlocks = 16).
// ---------------------------------------------------------------------------

struct NoScales {};

// Q4_0, Q4_1, Q5_0, Q5_1: weight j in the low nibble of qs[j], weight j+16 in the high one,
// the 5th bit in bit j of qh; w = d * (q - zero_point), or d * q + m for Q4_1 and Q5_1 (the
// block min of matmul_int_avx2.hpp: dmin_bits is m, added, where the K-quants' is subtracted).
template <class Block, bool kFifthBit>
struct LegacyNibbleInts {
  static constexpr int kWeights = kLegacyBlockSize, kBytes = sizeof(Block), kGroupWeights = 32;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q4_0);
  static constexpr bool kHasMin = requires(const Block& b) { b.m; };
  using Scales = NoScales;
  static Scales unpack(const uint8_t*) { return {}; }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->d; }
  static uint16_t dmin_bits(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->m; }
  // Q5_0 decodes its 32 weights in one register (q5_0_signed_quants); Q4_0 measured faster as
  // two halves.
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales&, int, Sink&& sink) {
    const Block& block = *reinterpret_cast<const Block*>(bytes);
    if constexpr (kHasMin) {  // q as it is: 0..15, or 0..31
      __m128i first, second;
      legacy_quants<Block, kFifthBit>(block, first, second);
      sink(0, _mm256_cvtepu8_epi16(first));
      sink(1, _mm256_cvtepu8_epi16(second));
    } else if constexpr (!kFifthBit) {
      __m128i first, second;
      legacy_quants<Block, false>(block, first, second);
      sink(0, _mm256_cvtepi8_epi16(_mm_sub_epi8(first, _mm_set1_epi8(8))));
      sink(1, _mm256_cvtepi8_epi16(_mm_sub_epi8(second, _mm_set1_epi8(8))));
    } else {
      uint32_t high_bits;
      std::memcpy(&high_bits, block.qh, sizeof(high_bits));
      const __m256i q = q5_0_signed_quants(block.qs, high_bits);
      sink(0, _mm256_cvtepi8_epi16(low_half(q)));
      sink(1, _mm256_cvtepi8_epi16(high_half(q)));
    }
  }
};

struct Q8_0Ints {
  static constexpr int kWeights = kLegacyBlockSize, kBytes = sizeof(BlockQ8_0), kGroupWeights = 32;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q8_0);
  static constexpr bool kHasMin = false;
  using Scales = NoScales;
  static Scales unpack(const uint8_t*) { return {}; }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const BlockQ8_0*>(bytes)->d; }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales&, int, Sink&& sink) {
    const BlockQ8_0& block = *reinterpret_cast<const BlockQ8_0*>(bytes);
    sink(0, _mm256_cvtepi8_epi16(load16(block.qs)));
    sink(1, _mm256_cvtepi8_epi16(load16(block.qs + 16)));
  }
};

// IQ4_NL: w = d * kIq4NlValues[q], |w / d| <= 127 as Q8_0's, so one group of 32 as the legacy formats.
// Its 16 bytes of nibbles (byte j: weight j in the low nibble, weight j + 16 in the high one),
// and each sub-block's of IQ4_XS, are looked up in one vpshufb for 32 weights (iq4_values).
struct IQ4_NLInts {
  static constexpr int kWeights = kLegacyBlockSize, kBytes = sizeof(BlockIQ4_NL), kGroupWeights = 32;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::IQ4_NL);
  static constexpr bool kHasMin = false;
  using Scales = NoScales;
  static Scales unpack(const uint8_t*) { return {}; }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const BlockIQ4_NL*>(bytes)->d; }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales&, int, Sink&& sink) {
    const __m256i values = iq4_values(nibbles(reinterpret_cast<const BlockIQ4_NL*>(bytes)->qs));
    sink(0, _mm256_cvtepi8_epi16(low_half(values)));
    sink(1, _mm256_cvtepi8_epi16(high_half(values)));
  }
};

// IQ4_XS: 8 sub-blocks of 32, w = d * (ls_i - 32) * kIq4NlValues[q]; the sub-block scale folded
// in, |w / d| <= 32 * 127 = 4064 (Q6_K's 4096 or less), so groups of 64 as Q6_K's.
struct IQ4_XSInts {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(BlockIQ4_XS), kGroupWeights = 64;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::IQ4_XS);
  static constexpr bool kHasMin = false;
  struct Scales {
    int32_t sub_block[kSuperBlockSize / 32];  // ls_i - 32
  };
  // All 8 at once (iq4_xs_scale, lane by lane): lane i takes nibble i of scales_l (read as a
  // little-endian uint32) and bits 2i..2i+1 of scales_h. With iq4_xs_scale called 8 times one
  // token took 1.33x Q4_K's time, with this 1.01x (bench_matmul rows tokens:1, Zen 4, one run each).
  static Scales unpack(const uint8_t* bytes) {
    const BlockIQ4_XS& block = *reinterpret_cast<const BlockIQ4_XS*>(bytes);
    uint32_t low_bits;
    std::memcpy(&low_bits, block.scales_l, sizeof(low_bits));
    const __m256i low = _mm256_srlv_epi32(_mm256_set1_epi32(int(low_bits)), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
    const __m256i high = _mm256_srlv_epi32(_mm256_set1_epi32(block.scales_h), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    const __m256i ls = _mm256_or_si256(_mm256_and_si256(low, _mm256_set1_epi32(0x0f)),
                                       _mm256_slli_epi32(_mm256_and_si256(high, _mm256_set1_epi32(3)), 4));
    Scales scales;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(scales.sub_block), _mm256_sub_epi32(ls, _mm256_set1_epi32(32)));
    return scales;
  }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const BlockIQ4_XS*>(bytes)->d; }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales& scales, int g, Sink&& sink) {
    const BlockIQ4_XS& block = *reinterpret_cast<const BlockIQ4_XS*>(bytes);
    for (int k = 0; k < kGroupWeights / 32; ++k) {
      const int sub = g * (kGroupWeights / 32) + k;
      const __m256i values = iq4_values(nibbles(block.qs + 16 * sub));
      const __m256i sub_scale = _mm256_set1_epi16(int16_t(scales.sub_block[sub]));
      sink(2 * k, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(low_half(values)), sub_scale));
      sink(2 * k + 1, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(high_half(values)), sub_scale));
    }
  }
};

// Q4_K, Q5_K: 8 sub-blocks of 32, w = d * scale_i * q - dmin * min_i. Sub-blocks 2j and 2j+1
// are the low and high nibbles of qs[32j .. 32j+31]; Q5_K's 5th bit of weight l of
// sub-block i is bit i of qh[l].
template <class Block, GgmlType kType>
struct KNibbleInts {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(Block), kGroupWeights = 128;
  static constexpr int kActivationBits = activation_magnitude_bits(kType);
  static constexpr bool kHasMin = true;
  struct Scales {
    SixteenBytes scales_then_mins;  // bytes 0..7: scale_i, 8..15: min_i
  };
  static Scales unpack(const uint8_t* bytes) {
    return {k_quant_scales_and_mins(reinterpret_cast<const Block*>(bytes)->scales)};
  }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->d; }
  static uint16_t dmin_bits(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->dmin; }
  static __m256i mins(const Scales& scales) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(
        reinterpret_cast<const __m128i*>(reinterpret_cast<const uint8_t*>(scales.scales_then_mins.words) + 8)));
  }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales& scales, int g, Sink&& sink) {
    const Block& block = *reinterpret_cast<const Block*>(bytes);
    const auto* scale_bytes = reinterpret_cast<const uint8_t*>(scales.scales_then_mins.words);
    for (int k = 0; k < kGroupWeights / 32; ++k) {
      const int sub = g * (kGroupWeights / 32) + k;
      const __m256i q = k_nibble_quants(block, sub);
      const __m256i sub_scale = _mm256_set1_epi16(scale_bytes[sub]);
      sink(2 * k, _mm256_mullo_epi16(_mm256_cvtepu8_epi16(low_half(q)), sub_scale));
      sink(2 * k + 1, _mm256_mullo_epi16(_mm256_cvtepu8_epi16(high_half(q)), sub_scale));
    }
  }
};

// Q6_K: 16 sub-blocks of 16, w = d * scales[i] * (q - 32); group g is weights 64g .. 64g+63:
// weight 32k + l of half h has its low nibble in ql[64h + 32(k%2) + l] (shifted by 4(k/2))
// and its top 2 bits at bits 2k of qh[32h + l].
struct Q6_KInts {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(BlockQ6_K), kGroupWeights = 64;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q6_K);
  static constexpr bool kHasMin = false;
  using Scales = NoScales;
  static Scales unpack(const uint8_t*) { return {}; }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const BlockQ6_K*>(bytes)->d; }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales&, int g, Sink&& sink) {
    const BlockQ6_K& block = *reinterpret_cast<const BlockQ6_K*>(bytes);
    for (int i = 0; i < kGroupWeights / 32; ++i) {
      const int piece = g * (kGroupWeights / 32) + i, half = piece / 4, k = piece % 4;  // weights 32 piece ..
      const __m256i q = q6_k_quants(block, half, k);
      const int sub = 8 * half + 2 * k;
      sink(2 * i, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(low_half(q)), _mm256_set1_epi16(block.scales[sub])));
      sink(2 * i + 1,
           _mm256_mullo_epi16(_mm256_cvtepi8_epi16(high_half(q)), _mm256_set1_epi16(block.scales[sub + 1])));
    }
  }
};

// Q3_K: 16 sub-blocks of 16, w = d * (scale_i - 32) * q, q in -4..3 (q3_k_quants), so
// |scale_i q| <= 128 as Q8_0's weights: one group of 256 keeps its sum below 2^30 with 15-bit
// activations (activation_magnitude_bits).
struct Q3_KInts {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(BlockQ3_K), kGroupWeights = kSuperBlockSize;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q3_K);
  static constexpr bool kHasMin = false;
  struct Scales {
    SixteenBytes plus_32;  // byte i: scale_i + 32
  };
  static Scales unpack(const uint8_t* bytes) { return {q3_k_scales_plus_32(reinterpret_cast<const BlockQ3_K*>(bytes)->scales)}; }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const BlockQ3_K*>(bytes)->d; }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales& scales, int, Sink&& sink) {
    const BlockQ3_K& block = *reinterpret_cast<const BlockQ3_K*>(bytes);
    const auto* plus_32 = reinterpret_cast<const uint8_t*>(scales.plus_32.words);
#pragma GCC unroll 8
    for (int piece = 0; piece < kSuperBlockSize / 32; ++piece) {
      const __m256i q = q3_k_quants(block, piece);
      for (int i = 0; i < 2; ++i) {
        const __m256i scale = _mm256_set1_epi16(int16_t(plus_32[2 * piece + i] - 32));
        sink(2 * piece + i, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(i == 0 ? low_half(q) : high_half(q)), scale));
      }
    }
  }
};

// Q2_K: 16 sub-blocks of 16, w = d * scale_i * q - dmin * min_i, q in 0..3 (q2_k_quants), the
// file's scales[i] holding scale_i (low nibble) and min_i (high): |scale_i q| <= 45, one group.
struct Q2_KInts {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(BlockQ2_K), kGroupWeights = kSuperBlockSize;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q2_K);
  static constexpr bool kHasMin = true;
  static constexpr int kMinSubBlocks = 16;
  struct Scales {
    uint8_t bytes[16];  // the block's scales[]
  };
  static Scales unpack(const uint8_t* bytes) {
    Scales scales;
    std::memcpy(scales.bytes, reinterpret_cast<const BlockQ2_K*>(bytes)->scales, sizeof(scales.bytes));
    return scales;
  }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const BlockQ2_K*>(bytes)->d; }
  static uint16_t dmin_bits(const uint8_t* bytes) { return reinterpret_cast<const BlockQ2_K*>(bytes)->dmin; }
  // Lane i: min_{8 half + i}.
  static __m256i mins(const Scales& scales, int half) {
    return _mm256_srli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales.bytes + 8 * half))), 4);
  }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales& scales, int, Sink&& sink) {
    const BlockQ2_K& block = *reinterpret_cast<const BlockQ2_K*>(bytes);
#pragma GCC unroll 8
    for (int piece = 0; piece < kSuperBlockSize / 32; ++piece) {
      const __m256i q = q2_k_quants(block, piece);
      for (int i = 0; i < 2; ++i) {
        const __m256i scale = _mm256_set1_epi16(int16_t(scales.bytes[2 * piece + i] & 0x0f));
        sink(2 * piece + i, _mm256_mullo_epi16(_mm256_cvtepu8_epi16(i == 0 ? low_half(q) : high_half(q)), scale));
      }
    }
  }
};

// Lane i: min_i * sum32[i], exact: |min_i * sum32[i]| <= 63 * 32 * 2^14.
__m256i min_products(__m256i mins, const int32_t* sum32) { return _mm256_mullo_epi32(mins, load32(sum32)); }

// The lanes' products of a block's mins with the activations' sums, whose lanes add to the
// block's min_isum (Q2_K: 16 sub-blocks in two vectors, |min_i * sum16[i]| <= 15 * 16 * 2^15).
template <class Format>
__m256i block_min_products(const typename Format::Scales& scales, const ActivationBlock<Format::kWeights>& x) {
  if constexpr (min_sub_blocks<Format>() == 16)
    return _mm256_add_epi32(min_products(Format::mins(scales, 0), x.sum16), min_products(Format::mins(scales, 1), x.sum16 + 8));
  else
    return min_products(Format::mins(scales), x.sum32);
}

// The block's mins to out[0 .. min_sub_blocks).
template <class Format>
void store_mins(const typename Format::Scales& scales, int32_t* out) {
  if constexpr (min_sub_blocks<Format>() == 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), Format::mins(scales, 0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), Format::mins(scales, 1));
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), Format::mins(scales));
  }
}

// ---------------------------------------------------------------------------
// One token: 4 rows, each group decoded in registers; the 4 group sums meet in one vector.
// ---------------------------------------------------------------------------

// The 4 fp16 values as floats, lane by lane.
__m128 halves_to_floats(uint16_t h0, uint16_t h1, uint16_t h2, uint16_t h3) {
  __m128i halves = _mm_cvtsi32_si128(h0);
  halves = _mm_insert_epi16(halves, h1, 1);
  halves = _mm_insert_epi16(halves, h2, 2);
  halves = _mm_insert_epi16(halves, h3, 3);
  return _mm_cvtph_ps(halves);
}

// Lane r: the sum of the lanes of v[r].
__m128i sum_lanes4(const __m256i (&v)[4]) {
  const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]), _mm256_unpackhi_epi32(v[0], v[1]));
  const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]), _mm256_unpackhi_epi32(v[2], v[3]));
  const __m256i abcd = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
  return _mm_add_epi32(low_half(abcd), high_half(abcd));
}

// y[r] for the 4 rows first_row + r * row_stride (a stride of 0 computes one row 4 times).
template <class Format>
void dot_rows(const uint8_t* first_row, uint64_t row_stride, int n_next_rows, int64_t n_blocks,
              const ActivationBlock<Format::kWeights>* x, float (&y)[4]) {
  constexpr int kBytes = Format::kBytes;
  __m128 acc = _mm_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = first_row + b * kBytes;
    for (int r = 0; r < n_next_rows; ++r) tiling::prefetch(block + (4 + r) * row_stride, kBytes);
    const ActivationBlock<Format::kWeights>& xb = x[b];
    const __m128 d_x = _mm_set1_ps(xb.d);
    typename Format::Scales scales[4];
    for (int r = 0; r < 4; ++r) scales[r] = Format::unpack(block + r * row_stride);
    const __m128 scale = _mm_mul_ps(halves_to_floats(Format::d_bits(block), Format::d_bits(block + row_stride),
                                                     Format::d_bits(block + 2 * row_stride), Format::d_bits(block + 3 * row_stride)),
                                    d_x);
#pragma GCC unroll 8
    for (int g = 0; g < kGroupsPerBlock<Format>; ++g) {
      const int16_t* xq = xb.q + g * Format::kGroupWeights;
      __m256i isum[4];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        isum[r] = _mm256_setzero_si256();
        Format::decode_group(block + r * row_stride, scales[r], g, [&](int step, __m256i w) {
          isum[r] = madd_add(isum[r], w, load32(xq + 16 * step));
          if constexpr (Format::kGroupWeights != 32) keep_in_register(isum[r]);
        });
      }
      acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sum_lanes4(isum)), scale, acc);
    }
    if constexpr (kBlockMin<Format>) {
      const __m128 min_scale = _mm_mul_ps(halves_to_floats(Format::dmin_bits(block), Format::dmin_bits(block + row_stride),
                                                           Format::dmin_bits(block + 2 * row_stride),
                                                           Format::dmin_bits(block + 3 * row_stride)),
                                          d_x);  // m * d_x
      acc = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_set1_epi32(xb.sum32[0])), min_scale, acc);
    } else if constexpr (Format::kHasMin) {
      __m256i products[4];
      for (int r = 0; r < 4; ++r) products[r] = block_min_products<Format>(scales[r], xb);
      const __m128 min_scale =
          _mm_mul_ps(halves_to_floats(Format::dmin_bits(block), Format::dmin_bits(block + row_stride),
                                      Format::dmin_bits(block + 2 * row_stride), Format::dmin_bits(block + 3 * row_stride)),
                     _mm_xor_ps(d_x, _mm_set1_ps(-0.0f)));  // -dmin * d_x
      acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sum_lanes4(products)), min_scale, acc);
    }
  }
  _mm_storeu_ps(y, acc);
}

// ---------------------------------------------------------------------------
// Several tokens: the prompt tile of matmul_int_avx2.hpp, filled from kTileRows rows an 8 x 8
// transpose at a time.
// ---------------------------------------------------------------------------

// The 8 x 8 transpose of 32-bit elements: v[i] lane j <- v[j] lane i.
void transpose8x8(__m256i (&v)[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
    v[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
  }
}

// Decodes blocks first_block .. first_block + n_blocks - 1 of the n_rows rows at rows[r];
// the other rows of the tile are zero.
template <class Format>
void decode_chunk(const uint8_t* const (&rows)[kTileRows], int n_rows, int64_t first_block, int n_blocks,
                  RowTile<Format>& tile) {
  alignas(32) int16_t decoded[kTileRows][kChunkWeights];  // one row after another
  for (int r = 0; r < kTileRows; ++r) {
    for (int b = 0; b < n_blocks; ++b) {
      int16_t* out = decoded[r] + b * Format::kWeights;
      if (r >= n_rows) {
        std::memset(out, 0, Format::kWeights * sizeof(int16_t));
        tile.scale[b][r] = tile.min_scale[b][r] = 0.0f;
        for (int i = 0; i < min_sub_blocks<Format>(); ++i) tile.mins[b][i][r] = 0;
        continue;
      }
      const uint8_t* block = rows[r] + (first_block + b) * Format::kBytes;
      const typename Format::Scales scales = Format::unpack(block);
#pragma GCC unroll 8
      for (int g = 0; g < kGroupsPerBlock<Format>; ++g)
        Format::decode_group(block, scales, g, [&](int step, __m256i w) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(out + g * Format::kGroupWeights + 16 * step), w);
        });
      tile.scale[b][r] = half_to_float(Format::d_bits(block));
      if constexpr (kBlockMin<Format>) {
        tile.min_scale[b][r] = half_to_float(Format::dmin_bits(block));
      } else if constexpr (Format::kHasMin) {
        tile.min_scale[b][r] = -half_to_float(Format::dmin_bits(block));
        int32_t row_mins[min_sub_blocks<Format>()];
        store_mins<Format>(scales, row_mins);
        for (int i = 0; i < min_sub_blocks<Format>(); ++i) tile.mins[b][i][r] = row_mins[i];
      }
    }
  }
  for (int step = 0; step < n_blocks * Format::kWeights / 16; ++step)
    for (int r0 = 0; r0 < kTileRows; r0 += 8) {  // rows r0 .. r0 + 7 into lanes r0 .. r0 + 7
      __m256i v[8];
      for (int r = 0; r < 8; ++r) v[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(decoded[r0 + r] + 16 * step));
      transpose8x8(v);
      for (int j = 0; j < 8; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(tile.w[8 * step + j][r0]), v[j]);
    }
}

// Not inlined into matmul_rows_int: with it there, GCC compiled the one-token loop of the same
// function 1.34x slower for Q4_K (bench_matmul, alternating runs).
template <class Format>
__attribute__((noinline)) void matmul_row_tile(const uint8_t* first_row, uint64_t row_bytes, int n_rows, int n_next_rows, int64_t n_blocks,
                     const ActivationBlock<Format::kWeights>* x, int64_t n_tokens, float* y, int64_t y_stride,
                     RowTile<Format>& tile) {
  const uint8_t* rows[kTileRows];  // a short tile repeats its last row; those lanes are dropped
  for (int r = 0; r < kTileRows; ++r) rows[r] = first_row + uint64_t(std::min(r, n_rows - 1)) * row_bytes;
  const auto decode = [&](int64_t b0, int chunk_blocks, bool last_pass) {
    if (last_pass)  // bring in the next rows
      for (int r = 0; r < n_next_rows; ++r)
        tiling::prefetch(first_row + (kTileRows + r) * row_bytes + b0 * Format::kBytes, chunk_blocks * Format::kBytes);
    decode_chunk<Format>(rows, n_rows, b0, chunk_blocks, tile);
  };
  multiply_row_tile<Format>(decode, n_rows, n_blocks, x, n_tokens, y, y_stride, tile);
}

template <class Format>
void matmul_rows_int(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x, int64_t n_tokens,
                     float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const ActivationBlock<Format::kWeights>* xq = quantize_activations<Format::kWeights, Format::kActivationBits>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / Format::kWeights;
  if (n_tokens == 1) {
    float out[4];
    int64_t o = row_begin;
    for (; o + 4 <= row_end; o += 4) {
      const int n_next_rows = static_cast<int>(std::clamp<int64_t>(row_end - o - 4, 0, 4));
      dot_rows<Format>(weights + uint64_t(o) * row_bytes, row_bytes, n_next_rows, n_blocks, xq, out);
      std::memcpy(y + o, out, sizeof(out));
    }
    for (; o < row_end; ++o) {
      dot_rows<Format>(weights + uint64_t(o) * row_bytes, 0, 0, n_blocks, xq, out);
      y[o] = out[0];
    }
    return;
  }
  thread_local RowTile<Format> tile;
  for (int64_t o = row_begin; o < row_end; o += kTileRows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kTileRows, row_end - o));
    const int n_next_rows = static_cast<int>(std::clamp<int64_t>(row_end - o - kTileRows, 0, kTileRows));
    matmul_row_tile<Format>(weights + uint64_t(o) * row_bytes, row_bytes, n_rows, n_next_rows, n_blocks, xq, n_tokens,
                            y + o, y_stride, tile);
  }
}

}  // namespace

tiling::FormatKernel integer_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return matmul_rows_int<LegacyNibbleInts<BlockQ4_0, false>>;
    case GgmlType::Q5_0: return matmul_rows_int<LegacyNibbleInts<BlockQ5_0, true>>;
    case GgmlType::Q4_1: return matmul_rows_int<LegacyNibbleInts<BlockQ4_1, false>>;
    case GgmlType::Q5_1: return matmul_rows_int<LegacyNibbleInts<BlockQ5_1, true>>;
    case GgmlType::Q8_0: return matmul_rows_int<Q8_0Ints>;
    case GgmlType::Q4_K: return matmul_rows_int<KNibbleInts<BlockQ4_K, GgmlType::Q4_K>>;
    case GgmlType::Q5_K: return matmul_rows_int<KNibbleInts<BlockQ5_K, GgmlType::Q5_K>>;
    case GgmlType::Q6_K: return matmul_rows_int<Q6_KInts>;
    case GgmlType::Q3_K: return matmul_rows_int<Q3_KInts>;
    case GgmlType::Q2_K: return matmul_rows_int<Q2_KInts>;
    case GgmlType::IQ4_NL: return matmul_rows_int<IQ4_NLInts>;
    case GgmlType::IQ4_XS: return matmul_rows_int<IQ4_XSInts>;
    default: return nullptr;
  }
}

}  // namespace slm::kernels::SLM_INTEGER_KERNELS
