// AVX2 integer kernels: the formats whose weights are small integers times a scale (Q4_0,
// Q5_0, Q8_0, Q4_K, Q5_K, Q6_K) multiplied with activations quantized once per call to 16-bit
// blocks (kernels/activation_blocks.hpp). _mm256_madd_epi16 does 16 multiply-adds where an
// FMA does 8, and the weights never go through int -> float conversion.
//
// What each (row, token) output is, whatever the batch, the row range or the thread count:
//   for each weight block b (and its activation block, of the same length):
//     for each group g of the block (the whole block; 128 weights for K-quants):
//       isum = sum over the group of w_int[i] * q[i]     (int32 lanes; exact, so in any order)
//       acc  = fma(float(isum), group_scale * d_x, acc)   (8 float lanes, one rounding)
//     Q4_K/Q5_K's -dmin * min_i terms: lane i of min_isum = min_i * (sum of q over sub-block i),
//       acc  = fma(float(min_isum), -dmin * d_x, acc)
//   y = the lanes of acc summed as in matmul.hpp.
// w_int is the weight with its sub-block scale folded in (K-quants: scale_i * q), so
// group_scale is the block's fp16 d; d_x is a power of two, so group_scale * d_x is exact.
// Overflow: |q| <= 2^14 and |w_int| <= 4096 (Q6_K), 1953 (Q5_K), 945 (Q4_K), 128 (Q8_0); a
// lane adds 2 products per 16 weights, 16 products for a group of 128: < 2^31.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/activation_blocks.hpp"
#include "kernels/matmul_tiling.hpp"
#include "kernels/packed_scales.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

// ---------------------------------------------------------------------------
// Activation blocks
// ---------------------------------------------------------------------------

template <int N>
struct alignas(32) ActivationBlock {
  int16_t q[N];
  float d;
  int32_t sum32[N / 32];  // the sums of q over each 32: the K-quant min terms
};

int32_t sum_lanes(__m256i v) {
  const __m128i four = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i two = _mm_add_epi32(four, _mm_unpackhi_epi64(four, four));
  return _mm_cvtsi128_si32(_mm_add_epi32(two, _mm_shuffle_epi32(two, 1)));
}

template <int N>
void quantize_block(const float* x, ActivationBlock<N>& out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 amax8 = _mm256_setzero_ps();
  __m256 unordered = _mm256_setzero_ps();  // all ones in a lane that saw a NaN, which max_ps would drop
  for (int i = 0; i < N; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign, v));
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, amax8);
  float amax = *std::max_element(lanes, lanes + 8);
  if (!_mm256_testz_ps(unordered, unordered)) amax = std::numeric_limits<float>::quiet_NaN();
  const ActivationScale scale = activation_scale(amax);
  out.d = scale.d;
  const __m256 inverse = _mm256_set1_ps(scale.inverse);
  for (int i = 0; i < N; i += 16) {
    // x * inverse is exact (a power of two); cvtps rounds to nearest even, as the specification.
    const __m256i low = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), inverse));
    const __m256i high = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), inverse));
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(low, high), 0xd8);  // packs works per 128
    _mm256_store_si256(reinterpret_cast<__m256i*>(out.q + i), packed);
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (int j = 0; j < N / 32; ++j)
    out.sum32[j] = sum_lanes(_mm256_add_epi32(_mm256_madd_epi16(load32(out.q + 32 * j), ones),
                                              _mm256_madd_epi16(load32(out.q + 32 * j + 16), ones)));
}

// Every token's activations, in a per-thread buffer that only grows.
template <int N>
const ActivationBlock<N>* quantize_activations(const float* x, int64_t n_tokens, int64_t n_in) {
  thread_local std::vector<ActivationBlock<N>> blocks;
  const int64_t n_blocks = n_in / N;
  if (blocks.size() < static_cast<size_t>(n_tokens * n_blocks)) blocks.resize(static_cast<size_t>(n_tokens * n_blocks));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < n_blocks; ++b) quantize_block<N>(x + t * n_in + b * N, blocks[static_cast<size_t>(t * n_blocks + b)]);
  return blocks.data();
}

// ---------------------------------------------------------------------------
// Weight formats as 16-bit integers. Each has kWeights per block in kGroups groups of
// kGroupSteps * 16 weights; decode_group(block, scales, g, sink) calls sink(step, w16) with
// the 16 weights step*16 .. step*16+15 of group g as int16 (sub-block scale folded in).
// ---------------------------------------------------------------------------

struct NoScales {};

// Q4_0, Q5_0: weight j in the low nibble of qs[j], weight j+16 in the high one, Q5_0's 5th
// bit in bit j of qh; w = d * (q - zero_point).
template <class Block, bool kFifthBit>
struct LegacyNibbleInts {
  static constexpr int kWeights = kLegacyBlockSize, kBytes = sizeof(Block), kGroups = 1, kGroupSteps = 2;
  static constexpr bool kHasMin = false;
  using Scales = NoScales;
  static Scales unpack(const uint8_t*) { return {}; }
  static float group_scale(const uint8_t* bytes, const Scales&, int) {
    return half_to_float(reinterpret_cast<const Block*>(bytes)->d);
  }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales&, int, Sink&& sink) {
    __m128i first, second;
    legacy_quants<Block, kFifthBit>(*reinterpret_cast<const Block*>(bytes), first, second);
    const __m128i zero_point = _mm_set1_epi8(kFifthBit ? 16 : 8);
    sink(0, _mm256_cvtepi8_epi16(_mm_sub_epi8(first, zero_point)));
    sink(1, _mm256_cvtepi8_epi16(_mm_sub_epi8(second, zero_point)));
  }
};

struct Q8_0Ints {
  static constexpr int kWeights = kLegacyBlockSize, kBytes = sizeof(BlockQ8_0), kGroups = 1, kGroupSteps = 2;
  static constexpr bool kHasMin = false;
  using Scales = NoScales;
  static Scales unpack(const uint8_t*) { return {}; }
  static float group_scale(const uint8_t* bytes, const Scales&, int) {
    return half_to_float(reinterpret_cast<const BlockQ8_0*>(bytes)->d);
  }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales&, int, Sink&& sink) {
    const BlockQ8_0& block = *reinterpret_cast<const BlockQ8_0*>(bytes);
    sink(0, _mm256_cvtepi8_epi16(load16(block.qs)));
    sink(1, _mm256_cvtepi8_epi16(load16(block.qs + 16)));
  }
};

// Q4_K, Q5_K: 8 sub-blocks of 32, w = d * scale_i * q - dmin * min_i; group g is sub-blocks
// 4g .. 4g+3. Sub-blocks 2j and 2j+1 are the low and high nibbles of qs[32j .. 32j+31]; Q5_K's
// 5th bit of weight l of sub-block i is bit i of qh[l].
template <class Block>
struct KNibbleInts {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(Block), kGroups = 2, kGroupSteps = 8;
  static constexpr bool kHasMin = true;
  struct Scales {
    SixteenBytes scales_then_mins;  // bytes 0..7: scale_i, 8..15: min_i
  };
  static Scales unpack(const uint8_t* bytes) {
    return {k_quant_scales_and_mins(reinterpret_cast<const Block*>(bytes)->scales)};
  }
  static float group_scale(const uint8_t* bytes, const Scales&, int) {
    return half_to_float(reinterpret_cast<const Block*>(bytes)->d);
  }
  static float min_scale(const uint8_t* bytes) { return -half_to_float(reinterpret_cast<const Block*>(bytes)->dmin); }
  // min_i in lane i.
  static __m256i mins(const Scales& scales) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(
        reinterpret_cast<const __m128i*>(reinterpret_cast<const uint8_t*>(scales.scales_then_mins.words) + 8)));
  }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales& scales, int g, Sink&& sink) {
    const Block& block = *reinterpret_cast<const Block*>(bytes);
    const auto* scale_bytes = reinterpret_cast<const uint8_t*>(scales.scales_then_mins.words);
    for (int k = 0; k < 4; ++k) {
      const int sub = 4 * g + k;
      const __m256i q = k_nibble_quants(block, sub);
      const __m256i scale = _mm256_set1_epi16(scale_bytes[sub]);
      sink(2 * k, _mm256_mullo_epi16(_mm256_cvtepu8_epi16(low_half(q)), scale));
      sink(2 * k + 1, _mm256_mullo_epi16(_mm256_cvtepu8_epi16(high_half(q)), scale));
    }
  }
};

// Q6_K: 16 sub-blocks of 16, w = d * scales[i] * (q - 32); group g is half g of the block:
// weight 32k + l of a half has its low nibble in ql[64g + 32(k%2) + l] (shifted by 4(k/2))
// and its top 2 bits at bits 2k of qh[32g + l].
struct Q6_KInts {
  static constexpr int kWeights = kSuperBlockSize, kBytes = sizeof(BlockQ6_K), kGroups = 2, kGroupSteps = 8;
  static constexpr bool kHasMin = false;
  using Scales = NoScales;
  static Scales unpack(const uint8_t*) { return {}; }
  static float group_scale(const uint8_t* bytes, const Scales&, int) {
    return half_to_float(reinterpret_cast<const BlockQ6_K*>(bytes)->d);
  }
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales&, int g, Sink&& sink) {
    const BlockQ6_K& block = *reinterpret_cast<const BlockQ6_K*>(bytes);
    for (int k = 0; k < 4; ++k) {
      const __m256i q = q6_k_quants(block, g, k);
      const int sub = 8 * g + 2 * k;
      sink(2 * k, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(low_half(q)), _mm256_set1_epi16(block.scales[sub])));
      sink(2 * k + 1,
           _mm256_mullo_epi16(_mm256_cvtepi8_epi16(high_half(q)), _mm256_set1_epi16(block.scales[sub + 1])));
    }
  }
};

// ---------------------------------------------------------------------------
// The accumulation every path shares (the formula at the top of this file)
// ---------------------------------------------------------------------------

__m256 add_group(__m256 acc, __m256i isum, float group_scale, float d_x) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(group_scale * d_x), acc);
}


// Lane i: min_i * sum32[i], exact: |min_i * sum32[i]| <= 63 * 32 * 2^14.
__m256i min_products(__m256i mins, const int32_t* sum32) { return _mm256_mullo_epi32(mins, load32(sum32)); }

// ---------------------------------------------------------------------------
// One token: kRows rows at a time, each group decoded in registers.
// ---------------------------------------------------------------------------

template <class Format, int kRows>
void dot_rows(const uint8_t* first_row, uint64_t row_bytes, int n_next_rows, int64_t n_blocks,
              const ActivationBlock<Format::kWeights>* x, float* y) {
  __m256 acc[kRows];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = first_row + b * Format::kBytes;
    for (int r = 0; r < n_next_rows; ++r) tiling::prefetch(block + (kRows + r) * row_bytes, Format::kBytes);
    const ActivationBlock<Format::kWeights>& xb = x[b];
    typename Format::Scales scales[kRows];
    for (int r = 0; r < kRows; ++r) scales[r] = Format::unpack(block + r * row_bytes);
    for (int g = 0; g < Format::kGroups; ++g) {
      const int16_t* xq = xb.q + g * Format::kGroupSteps * 16;
#pragma GCC unroll 4
      for (int r = 0; r < kRows; ++r) {
        __m256i isum = _mm256_setzero_si256();
        Format::decode_group(block + r * row_bytes, scales[r], g, [&](int step, __m256i w) {
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(w, load32(xq + 16 * step)));
        });
        acc[r] = add_group(acc[r], isum, Format::group_scale(block + r * row_bytes, scales[r], g), xb.d);
      }
    }
    if constexpr (Format::kHasMin)
      for (int r = 0; r < kRows; ++r)
        acc[r] = add_group(acc[r], min_products(Format::mins(scales[r]), xb.sum32),
                           Format::min_scale(block + r * row_bytes), xb.d);
  }
  for (int r = 0; r < kRows; ++r) y[r] = Avx2Lanes::reduce(acc[r]);
}

// ---------------------------------------------------------------------------
// Several tokens: a group of kRowsPerGroup rows decoded a chunk of 256 weights at a time into
// int16 in L1, each chunk serving kTokensPerTile tokens in register tiles of 4 rows x 2 tokens.
// ---------------------------------------------------------------------------

constexpr int kRowsPerGroup = tiling::kRowsPerGroup;
constexpr int kTokensPerTile = tiling::kTokensPerTile;
constexpr int kChunkWeights = 256;

template <class Format>
struct ChunkScratch {
  static constexpr int kBlocks = kChunkWeights / Format::kWeights;
  static constexpr int kGroups = kBlocks * Format::kGroups;
  alignas(32) int16_t w[kRowsPerGroup][kChunkWeights] = {};
  float group_scale[kRowsPerGroup][kGroups] = {};
  float min_scale[kRowsPerGroup][kBlocks] = {};
  __m256i mins[kRowsPerGroup][kBlocks] = {};
  __m256 acc[kRowsPerGroup][kTokensPerTile];
};

template <class Format>
void decode_chunk(const uint8_t* row, int64_t first_block, int n_blocks, int r, ChunkScratch<Format>& s) {
  for (int b = 0; b < n_blocks; ++b) {
    const uint8_t* block = row + (first_block + b) * Format::kBytes;
    const typename Format::Scales scales = Format::unpack(block);
    if constexpr (Format::kHasMin) {
      s.mins[r][b] = Format::mins(scales);
      s.min_scale[r][b] = Format::min_scale(block);
    }
    for (int g = 0; g < Format::kGroups; ++g) {
      s.group_scale[r][b * Format::kGroups + g] = Format::group_scale(block, scales, g);
      int16_t* out = s.w[r] + b * Format::kWeights + g * Format::kGroupSteps * 16;
      Format::decode_group(block, scales, g, [out](int step, __m256i w) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(out + 16 * step), w);
      });
    }
  }
}

// acc[r][t0 + t] for the kTokens tokens of x_tokens (each pointing at the chunk's first block).
template <class Format, int kTokens>
void accumulate_chunk(const ChunkScratch<Format>& s, int n_blocks, const ActivationBlock<Format::kWeights>* const* x_tokens,
                      __m256 (*acc)[kTokensPerTile], int t0) {
  __m256 sum[kRowsPerGroup][kTokens];  // acc's pairs in registers for the whole chunk
#pragma GCC unroll 4
  for (int r = 0; r < kRowsPerGroup; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < kTokens; ++t) sum[r][t] = acc[r][t0 + t];
  for (int b = 0; b < n_blocks; ++b) {
    for (int g = 0; g < Format::kGroups; ++g) {
      const int offset = b * Format::kWeights + g * Format::kGroupSteps * 16;
      __m256i isum[kRowsPerGroup][kTokens];
#pragma GCC unroll 4
      for (int r = 0; r < kRowsPerGroup; ++r)
#pragma GCC unroll 4
        for (int t = 0; t < kTokens; ++t) isum[r][t] = _mm256_setzero_si256();
      const int16_t* x_group[kTokens];
      for (int t = 0; t < kTokens; ++t) x_group[t] = x_tokens[t][b].q + g * Format::kGroupSteps * 16;
      for (int step = 0; step < Format::kGroupSteps; ++step) {
        __m256i x[kTokens];
#pragma GCC unroll 4
        for (int t = 0; t < kTokens; ++t) x[t] = load32(x_group[t] + 16 * step);
#pragma GCC unroll 4
        for (int r = 0; r < kRowsPerGroup; ++r) {
          const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(s.w[r] + offset + 16 * step));
#pragma GCC unroll 4
          for (int t = 0; t < kTokens; ++t) isum[r][t] = _mm256_add_epi32(isum[r][t], _mm256_madd_epi16(w, x[t]));
        }
      }
#pragma GCC unroll 4
      for (int r = 0; r < kRowsPerGroup; ++r)
#pragma GCC unroll 4
        for (int t = 0; t < kTokens; ++t)
          sum[r][t] = add_group(sum[r][t], isum[r][t], s.group_scale[r][b * Format::kGroups + g], x_tokens[t][b].d);
    }
    if constexpr (Format::kHasMin)
#pragma GCC unroll 4
      for (int r = 0; r < kRowsPerGroup; ++r)
#pragma GCC unroll 4
        for (int t = 0; t < kTokens; ++t)
          sum[r][t] = add_group(sum[r][t], min_products(s.mins[r][b], x_tokens[t][b].sum32), s.min_scale[r][b],
                                x_tokens[t][b].d);
  }
#pragma GCC unroll 4
  for (int r = 0; r < kRowsPerGroup; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < kTokens; ++t) acc[r][t0 + t] = sum[r][t];
}

template <class Format>
void matmul_row_group(const uint8_t* first_row, uint64_t row_bytes, int n_rows, int n_next_rows, int64_t n_blocks,
                      const ActivationBlock<Format::kWeights>* x, int64_t n_tokens, float* y, int64_t y_stride,
                      ChunkScratch<Format>& s) {
  constexpr int kChunkBlocks = ChunkScratch<Format>::kBlocks;
  const ActivationBlock<Format::kWeights>* x_tokens[kTokensPerTile];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokensPerTile) {
    const int tile_tokens = static_cast<int>(std::min<int64_t>(kTokensPerTile, n_tokens - t0));
    for (int r = 0; r < kRowsPerGroup; ++r)
      for (int t = 0; t < kTokensPerTile; ++t) s.acc[r][t] = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
      const int chunk_blocks = static_cast<int>(std::min<int64_t>(kChunkBlocks, n_blocks - b0));
      for (int r = 0; r < n_next_rows; ++r)
        tiling::prefetch(first_row + (kRowsPerGroup + r) * row_bytes + b0 * Format::kBytes, chunk_blocks * Format::kBytes);
      for (int r = 0; r < n_rows; ++r) decode_chunk<Format>(first_row + r * row_bytes, b0, chunk_blocks, r, s);
      for (int t = 0; t < tile_tokens; ++t) x_tokens[t] = x + (t0 + t) * n_blocks + b0;
      int t = 0;
      for (; t + 2 <= tile_tokens; t += 2) accumulate_chunk<Format, 2>(s, chunk_blocks, x_tokens + t, s.acc, t);
      if (t < tile_tokens) accumulate_chunk<Format, 1>(s, chunk_blocks, x_tokens + t, s.acc, t);
    }
    for (int u = 0; u < tile_tokens; ++u)
      for (int r = 0; r < n_rows; ++r) y[(t0 + u) * y_stride + r] = Avx2Lanes::reduce(s.acc[r][u]);
  }
}

template <class Format>
void matmul_rows_int(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x, int64_t n_tokens,
                     float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const ActivationBlock<Format::kWeights>* xq = quantize_activations<Format::kWeights>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / Format::kWeights;
  const auto rows_from = [row_end](int64_t o) {
    return static_cast<int>(std::clamp<int64_t>(row_end - o, 0, kRowsPerGroup));
  };
  int64_t o = row_begin;
  if (n_tokens == 1) {
    for (; o + kRowsPerGroup <= row_end; o += kRowsPerGroup)
      dot_rows<Format, kRowsPerGroup>(weights + o * row_bytes, row_bytes, rows_from(o + kRowsPerGroup), n_blocks, xq,
                                      y + o);
    for (; o < row_end; ++o) dot_rows<Format, 1>(weights + o * row_bytes, row_bytes, 0, n_blocks, xq, y + o);
    return;
  }
  thread_local ChunkScratch<Format> scratch;
  for (; o < row_end; o += kRowsPerGroup)
    matmul_row_group<Format>(weights + o * row_bytes, row_bytes, rows_from(o), rows_from(o + kRowsPerGroup), n_blocks,
                             xq, n_tokens, y + o, y_stride, scratch);
}

}  // namespace

tiling::FormatKernel integer_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return matmul_rows_int<LegacyNibbleInts<BlockQ4_0, false>>;
    case GgmlType::Q5_0: return matmul_rows_int<LegacyNibbleInts<BlockQ5_0, true>>;
    case GgmlType::Q8_0: return matmul_rows_int<Q8_0Ints>;
    case GgmlType::Q4_K: return matmul_rows_int<KNibbleInts<BlockQ4_K>>;
    case GgmlType::Q5_K: return matmul_rows_int<KNibbleInts<BlockQ5_K>>;
    case GgmlType::Q6_K: return matmul_rows_int<Q6_KInts>;
    default: return nullptr;
  }
}

}  // namespace slm::kernels::avx2
