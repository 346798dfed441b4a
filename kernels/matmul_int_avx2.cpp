// AVX2 integer kernels: the formats whose weights are small integers times a scale (Q4_0,
// Q5_0, Q8_0, Q4_K, Q5_K, Q6_K) multiplied with activations quantized once per call to 16-bit
// blocks (kernels/activation_blocks.hpp). _mm256_madd_epi16 does 16 multiply-adds where an
// FMA does 8, and the weights never go through int -> float conversion.
//
// What each (row, token) output is, whatever the batch, the row range or the thread count:
//   acc = 0 (one float)
//   for each weight block b (and its activation block, of the same length), with d = the
//   block's fp16 scale and d_x the activation block's:
//     for each group g of kGroupWeights weights of the block, in order:
//       isum = sum over the group of w_int[i] * q[i]        (int32, exact, so in any order)
//       acc  = fma(float(isum), d * d_x, acc)
//     Q4_K/Q5_K's -dmin * min_i terms, after the groups:
//       min_isum = sum over sub-blocks i of min_i * (sum of q over sub-block i)   (exact)
//       acc  = fma(float(min_isum), -dmin * d_x, acc)
//   y = acc.
// w_int is the weight with its sub-block scale folded in (K-quants: scale_i * q); d_x is a
// power of two, so d * d_x is exact. One token computes 4 rows in the lanes of a 128-bit
// vector; a prompt computes 8 rows in the lanes of a 256-bit vector, from weights decoded
// into an interleaved layout (see RowTile): the per-lane arithmetic is the same.
// Overflow: |w_int| <= 4096 (Q6_K), 1953 (Q5_K), 945 (Q4_K), 128 (Q8_0) and |q| <= 2^B - 1
// with B = activation_magnitude_bits (13, 13, 14, 15), so a group sum stays below 2^31 with
// groups of 64 (Q6_K), 128 (Q4_K, Q5_K) and 32 (legacy): 64 * 4096 * 8191 = 2147221504 < 2^31 - 1.
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

template <int N, int kBits>
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
  const ActivationScale scale = activation_scale(amax, kBits);
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
template <int N, int kBits>
const ActivationBlock<N>* quantize_activations(const float* x, int64_t n_tokens, int64_t n_in) {
  thread_local std::vector<ActivationBlock<N>> blocks;
  const int64_t n_blocks = n_in / N;
  if (blocks.size() < static_cast<size_t>(n_tokens * n_blocks)) blocks.resize(static_cast<size_t>(n_tokens * n_blocks));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < n_blocks; ++b) quantize_block<N, kBits>(x + t * n_in + b * N, blocks[static_cast<size_t>(t * n_blocks + b)]);
  return blocks.data();
}

// ---------------------------------------------------------------------------
// Weight formats as 16-bit integers. Each has kWeights per block in groups of kGroupWeights;
// decode_group(block, scales, g, sink) calls sink(step, w16) with the 16 weights
// step*16 .. step*16+15 of group g as int16 (sub-block scale folded in). d_bits(block) is the
// block's fp16 d; the K-quants with a min add dmin_bits (dmin) and mins (min_i in lane i).
// ---------------------------------------------------------------------------

struct NoScales {};

// Q4_0, Q5_0: weight j in the low nibble of qs[j], weight j+16 in the high one, Q5_0's 5th
// bit in bit j of qh; w = d * (q - zero_point).
template <class Block, bool kFifthBit>
struct LegacyNibbleInts {
  static constexpr int kWeights = kLegacyBlockSize, kBytes = sizeof(Block), kGroupWeights = 32;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q4_0);
  static constexpr bool kHasMin = false;
  using Scales = NoScales;
  static Scales unpack(const uint8_t*) { return {}; }
  static uint16_t d_bits(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->d; }
  // Q5_0 has all 32 weights in one register, as signed bytes q - 16: where the 5th bit is
  // clear, q - 16 = low nibble | 0xF0 (two's complement), and where it is set, the low nibble
  // itself. An andnot and an or replace spreading the bit twice and subtracting: one token
  // is 1.24x faster (bench_matmul, alternating runs). Q4_0 measured faster as two halves.
  template <class Sink>
  static void decode_group(const uint8_t* bytes, const Scales&, int, Sink&& sink) {
    const Block& block = *reinterpret_cast<const Block*>(bytes);
    if constexpr (!kFifthBit) {
      __m128i first, second;
      legacy_quants<Block, false>(block, first, second);
      sink(0, _mm256_cvtepi8_epi16(_mm_sub_epi8(first, _mm_set1_epi8(8))));
      sink(1, _mm256_cvtepi8_epi16(_mm_sub_epi8(second, _mm_set1_epi8(8))));
    } else {
      const __m128i packed = load16(block.qs);
      __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
      uint32_t high_bits;
      std::memcpy(&high_bits, block.qh, sizeof(high_bits));
      // Byte j <- byte j / 8 of the bits, then 0xFF where bit j is set.
      const __m256i byte_of_bit = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
      const __m256i bit_of_byte = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
      const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(high_bits)), byte_of_bit);
      const __m256i fifth_bit_set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit_of_byte), bit_of_byte);
      q = _mm256_or_si256(q, _mm256_andnot_si256(fifth_bit_set, _mm256_set1_epi8(static_cast<char>(0xf0))));
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

template <class Format>
constexpr int kGroupsPerBlock = Format::kWeights / Format::kGroupWeights;

// Pins a running sum to a register at this point. Without it GCC regroups the (associative)
// integer sums of an unrolled group into a tree whose partial sums spill to the stack. Where it
// pays was measured (benchmarks/bench_matmul, alternating runs): the 128-weight groups of one
// token (K-quants 6-11% faster) and the 32-weight groups of a prompt tile (legacy 1.4x); in
// the other two cases GCC's own schedule is faster.
inline void keep_in_register(__m256i& v) { __asm__("" : "+x"(v)); }

// Lane i: min_i * sum32[i], exact: |min_i * sum32[i]| <= 63 * 32 * 2^14.
__m256i min_products(__m256i mins, const int32_t* sum32) { return _mm256_mullo_epi32(mins, load32(sum32)); }

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
          isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(w, load32(xq + 16 * step)));
          if constexpr (Format::kGroupWeights != 32) keep_in_register(isum[r]);
        });
      }
      acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sum_lanes4(isum)), scale, acc);
    }
    if constexpr (Format::kHasMin) {
      __m256i products[4];
      for (int r = 0; r < 4; ++r) products[r] = min_products(Format::mins(scales[r]), xb.sum32);
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
// Several tokens: a tile of 8 rows is decoded a chunk of 256 weights at a time into L1,
// interleaved so that one 32-bit lane holds a pair of weights of one row:
//   w[k][r] = the weights 2k, 2k+1 of row r.
// _mm256_madd_epi16 with a broadcast pair of activations then gives each row's partial sum in
// its own lane, so a group's sums need no horizontal addition. Each chunk serves
// kTileTokens tokens, kPassTokens at a time in registers.
// ---------------------------------------------------------------------------

constexpr int kTileRows = 8;
constexpr int kChunkWeights = 256;
constexpr int kTileTokens = 144;
constexpr int kPassTokens = 6;

template <class Format>
struct RowTile {
  static constexpr int kBlocks = kChunkWeights / Format::kWeights;
  alignas(32) int16_t rows[kTileRows][kChunkWeights];          // decoded, one row after another
  alignas(32) int16_t w[kChunkWeights / 2][kTileRows][2];      // interleaved
  alignas(32) float scale[kBlocks][kTileRows];                 // [b][r]: row r's d
  alignas(32) float min_scale[kBlocks][kTileRows];             // [b][r]: row r's -dmin
  alignas(32) int32_t mins[kBlocks][8][kTileRows];             // [b][i][r]: row r's min_i
  __m256 acc[kTileTokens];
};

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
  for (int r = 0; r < kTileRows; ++r) {
    for (int b = 0; b < n_blocks; ++b) {
      int16_t* out = tile.rows[r] + b * Format::kWeights;
      if (r >= n_rows) {
        std::memset(out, 0, Format::kWeights * sizeof(int16_t));
        tile.scale[b][r] = tile.min_scale[b][r] = 0.0f;
        for (int i = 0; i < 8; ++i) tile.mins[b][i][r] = 0;
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
      if constexpr (Format::kHasMin) {
        tile.min_scale[b][r] = -half_to_float(Format::dmin_bits(block));
        alignas(32) int32_t row_mins[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(row_mins), Format::mins(scales));
        for (int i = 0; i < 8; ++i) tile.mins[b][i][r] = row_mins[i];
      }
    }
  }
  for (int step = 0; step < n_blocks * Format::kWeights / 16; ++step) {
    __m256i v[8];
    for (int r = 0; r < kTileRows; ++r) v[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.rows[r] + 16 * step));
    transpose8x8(v);
    for (int j = 0; j < 8; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(tile.w[8 * step + j]), v[j]);
  }
}

__m256i broadcast_pair(const int16_t* q) {
  int32_t pair;
  std::memcpy(&pair, q, sizeof(pair));
  return _mm256_set1_epi32(pair);
}

// tile.acc[t0 + t] for the kTokens tokens of x_tokens (each pointing at the chunk's first block).
template <class Format, int kTokens>
void accumulate_chunk(RowTile<Format>& tile, int n_blocks, const ActivationBlock<Format::kWeights>* const* x_tokens,
                      int t0) {
  __m256 acc[kTokens];
#pragma GCC unroll 8
  for (int t = 0; t < kTokens; ++t) acc[t] = tile.acc[t0 + t];
  for (int b = 0; b < n_blocks; ++b) {
    __m256 scale[kTokens];
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t)
      scale[t] = _mm256_mul_ps(_mm256_load_ps(tile.scale[b]), _mm256_set1_ps(x_tokens[t][b].d));
    for (int g = 0; g < kGroupsPerBlock<Format>; ++g) {
      const int first_weight = g * Format::kGroupWeights;
      const int16_t(*w)[kTileRows][2] = tile.w + (b * Format::kWeights + first_weight) / 2;
      __m256i isum[kTokens];
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 16
      for (int k = 0; k < Format::kGroupWeights / 2; ++k) {
        const __m256i wk = _mm256_load_si256(reinterpret_cast<const __m256i*>(w[k]));
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) {
          isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(wk, broadcast_pair(x_tokens[t][b].q + first_weight + 2 * k)));
          if constexpr (Format::kGroupWeights == 32) keep_in_register(isum[t]);
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t) acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), scale[t], acc[t]);
    }
    if constexpr (Format::kHasMin) {
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t) {
        __m256i products = _mm256_setzero_si256();
        for (int i = 0; i < 8; ++i) {
          const __m256i min_i = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.mins[b][i]));
          products = _mm256_add_epi32(products, _mm256_mullo_epi32(min_i, _mm256_set1_epi32(x_tokens[t][b].sum32[i])));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products),
                                 _mm256_mul_ps(_mm256_load_ps(tile.min_scale[b]), _mm256_set1_ps(x_tokens[t][b].d)), acc[t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < kTokens; ++t) tile.acc[t0 + t] = acc[t];
}

// accumulate_chunk for n < kPassTokens tokens.
template <class Format, int kTokens>
void accumulate_remainder(RowTile<Format>& tile, int n_blocks, const ActivationBlock<Format::kWeights>* const* x_tokens,
                          int t0, int n) {
  if constexpr (kTokens > 0) {
    if (n == kTokens) return accumulate_chunk<Format, kTokens>(tile, n_blocks, x_tokens, t0);
    accumulate_remainder<Format, kTokens - 1>(tile, n_blocks, x_tokens, t0, n);
  }
}

template <class Format>
void matmul_row_tile(const uint8_t* first_row, uint64_t row_bytes, int n_rows, int n_next_rows, int64_t n_blocks,
                     const ActivationBlock<Format::kWeights>* x, int64_t n_tokens, float* y, int64_t y_stride,
                     RowTile<Format>& tile) {
  constexpr int kChunkBlocks = RowTile<Format>::kBlocks;
  const uint8_t* rows[kTileRows];  // a short tile repeats its last row; those lanes are dropped
  for (int r = 0; r < kTileRows; ++r) rows[r] = first_row + uint64_t(std::min(r, n_rows - 1)) * row_bytes;
  const ActivationBlock<Format::kWeights>* x_tokens[kTileTokens];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTileTokens) {
    const int tile_tokens = static_cast<int>(std::min<int64_t>(kTileTokens, n_tokens - t0));
    for (int t = 0; t < tile_tokens; ++t) tile.acc[t] = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
      const int chunk_blocks = static_cast<int>(std::min<int64_t>(kChunkBlocks, n_blocks - b0));
      if (t0 + kTileTokens >= n_tokens)  // the last pass over these rows: bring in the next ones
        for (int r = 0; r < n_next_rows; ++r)
          tiling::prefetch(first_row + (kTileRows + r) * row_bytes + b0 * Format::kBytes, chunk_blocks * Format::kBytes);
      decode_chunk<Format>(rows, n_rows, b0, chunk_blocks, tile);
      for (int t = 0; t < tile_tokens; ++t) x_tokens[t] = x + (t0 + t) * n_blocks + b0;
      int t = 0;
      for (; t + kPassTokens <= tile_tokens; t += kPassTokens)
        accumulate_chunk<Format, kPassTokens>(tile, chunk_blocks, x_tokens + t, t);
      accumulate_remainder<Format, kPassTokens - 1>(tile, chunk_blocks, x_tokens + t, t, tile_tokens - t);
    }
    for (int t = 0; t < tile_tokens; ++t) {
      float lanes[kTileRows];
      _mm256_storeu_ps(lanes, tile.acc[t]);
      std::memcpy(y + (t0 + t) * y_stride, lanes, size_t(n_rows) * sizeof(float));
    }
  }
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
    case GgmlType::Q8_0: return matmul_rows_int<Q8_0Ints>;
    case GgmlType::Q4_K: return matmul_rows_int<KNibbleInts<BlockQ4_K, GgmlType::Q4_K>>;
    case GgmlType::Q5_K: return matmul_rows_int<KNibbleInts<BlockQ5_K, GgmlType::Q5_K>>;
    case GgmlType::Q6_K: return matmul_rows_int<Q6_KInts>;
    default: return nullptr;
  }
}

}  // namespace slm::kernels::avx2
