// The AVX2 integer kernels' shared parts (matmul_int_avx2.cpp: weights in their rows;
// matmul_interleaved_avx2.cpp: weights in the 8-row interleaved layout): the activation
// blocks, and the 8-row tile that serves a prompt. Include it from those two files only.
//
// The formats whose weights are small integers times a scale (Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, and IQ4_NL, IQ4_XS, whose integers are table values) multiplied with activations quantized once per call to 16-bit
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
//     Q4_K/Q5_K/Q2_K's -dmin * min_i terms, after the groups:
//       min_isum = sum over sub-blocks i of min_i * (sum of q over sub-block i)   (exact)
//       acc  = fma(float(min_isum), -dmin * d_x, acc)
//     Q4_1/Q5_1's + m term (kBlockMin), after the block's one group:
//       acc  = fma(float(sum of q over the block), m * d_x, acc)
//   y = acc.
// w_int is the weight with its sub-block scale folded in (K-quants: scale_i * q); d_x is a
// power of two, so d * d_x is exact. One token computes 4 rows in the lanes of a 128-bit
// vector; a prompt computes 8 rows in the lanes of a 256-bit vector (16 in a 512-bit one with
// AVX-512), from weights decoded into an interleaved layout (see RowTile): the per-lane
// arithmetic is the same.
// Overflow: |w_int| <= 4096 (Q6_K), 4064 (IQ4_XS), 1953 (Q5_K), 945 (Q4_K), 128 (Q8_0, Q3_K,
// IQ4_NL), 45 (Q2_K) and |q| <= 2^B - 1 with B = activation_magnitude_bits (13, 13, 13, 14, 15,
// 15), so a group sum stays below 2^31 with groups of 64 (Q6_K, IQ4_XS), 128 (Q4_K, Q5_K), 32
// (legacy, IQ4_NL) and 256 (Q3_K, Q2_K):
// 64 * 4096 * 8191 = 2147221504 < 2^31 - 1, 256 * 128 * 32767 < 2^30.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/activation_blocks.hpp"
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
  int32_t sum16[N / 16];  // over each 16: Q6_K's zero point, taken out of its sub-block sums
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
  for (int j = 0; j < N / 16; ++j) out.sum16[j] = sum_lanes(_mm256_madd_epi16(load32(out.q + 16 * j), ones));
  for (int j = 0; j < N / 32; ++j) out.sum32[j] = out.sum16[2 * j] + out.sum16[2 * j + 1];
}

// Every token's activations (quantize_tokens: a per-thread buffer that only grows).
template <int N, int kBits>
const ActivationBlock<N>* quantize_activations(const float* x, int64_t n_tokens, int64_t n_in) {
  return quantize_tokens<ActivationBlock<N>, N>(x, n_tokens, n_in, quantize_block<N, kBits>);
}

// acc + _mm256_madd_epi16(w, x): the products of 16-bit pairs summed into acc's 32-bit lanes,
// in one vpdpwssd where the file is built with AVX-VNNI (matmul_int_avxvnni.cpp) or AVX-512
// VNNI + VL (matmul_int_avx512.cpp). They wrap around alike, and no sum here comes near
// 2^31, so all give the same bits. The one-token paths use it; the 8-row ymm prompt tile keeps
// madd + add, because its chains of sums, one per token, would wait on vpdpwssd's latency (7%
// slower in bench_matmul, tokens:64). The 16-row zmm tile of the AVX-512 build takes the
// vpdpwssd: one uop where madd + add are two (Q5_0, Q8_0, Q6_K tokens:64 on 2 threads of a
// Xeon with AVX-512: 1.21-1.28x faster, bench_matmul, old and new binaries alternated).
inline __m256i madd_add(__m256i acc, __m256i w, __m256i x) {
#if defined(__AVXVNNI__)
  return _mm256_dpwssd_avx_epi32(acc, w, x);
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpwssd_epi32(acc, w, x);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(w, x));
#endif
}

// Pins a running sum to a register at this point. Without it GCC regroups the (associative)
// integer sums of an unrolled group into a tree whose partial sums spill to the stack. Where it
// pays was measured (benchmarks/bench_matmul, alternating runs): the 128-weight groups of one
// token (K-quants 6-11% faster) and the 32-weight groups of a prompt tile (legacy 1.4x); in
// the other two cases GCC's own schedule is faster.
inline void keep_in_register(__m256i& v) { __asm__("" : "+x"(v)); }
#if defined(__AVX512F__)
inline void keep_in_register(__m512i& v) { __asm__("" : "+v"(v)); }
#endif

// The 32 quants of a Q5_0 block (or interleaved group) as signed bytes q - 16, in one register:
// where the 5th bit is clear, q - 16 = low nibble | 0xF0 (two's complement), and where it is
// set, the low nibble itself. An andnot and an or replace spreading the bit twice and
// subtracting: one token is 1.24x faster (bench_matmul, alternating runs). Byte j: the low
// nibble of qs[j] (j < 16) or the high one of qs[j - 16], with bit j of high_bits.
inline __m256i q5_0_signed_quants(const uint8_t* qs, uint32_t high_bits) {
  const __m128i packed = load16(qs);
  const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
  // Byte j <- byte j / 8 of the bits, then 0xFF where bit j is set.
  const __m256i byte_of_bit = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i bit_of_byte = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(high_bits)), byte_of_bit);
  const __m256i fifth_bit_set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit_of_byte), bit_of_byte);
  return _mm256_or_si256(q, _mm256_andnot_si256(fifth_bit_set, _mm256_set1_epi8(static_cast<char>(0xf0))));
}

// The 32 nibbles of 16 bytes, one per byte: byte j the low nibble of byte j (j < 16), or the
// high one of byte j - 16.
inline __m256i nibbles(const uint8_t* bytes) {
  const __m128i packed = load16(bytes);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
}

// The 32 slots of a group of the interleaved layout of Q4_0, Q5_0 or Q8_0
// (kernels/interleaved_blocks.hpp) as signed bytes, zero point removed.
template <GgmlType kType>
__m256i legacy_group_slots(const uint8_t* group) {
  if constexpr (kType == GgmlType::Q8_0) {
    return load32(group);
  } else if constexpr (kType == GgmlType::Q5_0) {
    uint32_t high_bits;
    std::memcpy(&high_bits, group, sizeof(high_bits));
    return q5_0_signed_quants(group + sizeof(high_bits), high_bits);
  } else {
    static_assert(kType == GgmlType::Q4_0);
    return _mm256_sub_epi8(nibbles(group), _mm256_set1_epi8(8));
  }
}

// ---------------------------------------------------------------------------
// Several tokens: a tile of kTileRows rows is decoded a chunk of 256 weights at a time into
// L1, interleaved so that one 32-bit lane holds a pair of weights of one row:
//   w[k][r] = the weights 2k, 2k+1 of row r.
// A madd of 16-bit pairs with a broadcast pair of activations then gives each row's partial
// sum in its own lane, so a group's sums need no horizontal addition. Each chunk serves
// kTileTokens tokens, kPassTokens at a time in registers.
// The tile is one vector of rows: 8 in a ymm register, or 16 in a zmm register where the file
// is built with AVX-512 (matmul_int_avx512.cpp). Each lane does the same arithmetic, so the
// width changes which rows share an instruction, never a bit of the result.
// ---------------------------------------------------------------------------

#if defined(__AVX512F__)
struct TileLanes {
  static constexpr int kRows = 16;
  using Ints = __m512i;
  using Floats = __m512;
  static Ints zero_ints() { return _mm512_setzero_si512(); }
  static Floats zero() { return _mm512_setzero_ps(); }
  static Ints load_ints(const void* p) { return _mm512_load_si512(p); }
  static Floats load(const float* p) { return _mm512_load_ps(p); }
  static void store(float* p, Floats v) { _mm512_storeu_ps(p, v); }
  static Ints broadcast(int32_t v) { return _mm512_set1_epi32(v); }
  static Floats broadcast(float v) { return _mm512_set1_ps(v); }
  static Ints madd_add(Ints acc, Ints w, Ints x) { return _mm512_dpwssd_epi32(acc, w, x); }
  static Ints add(Ints a, Ints b) { return _mm512_add_epi32(a, b); }
  static Ints mullo(Ints a, Ints b) { return _mm512_mullo_epi32(a, b); }
  static Floats mul(Floats a, Floats b) { return _mm512_mul_ps(a, b); }
  static Floats fma(Floats a, Floats b, Floats c) { return _mm512_fmadd_ps(a, b, c); }
  static Floats to_floats(Ints v) { return _mm512_cvtepi32_ps(v); }
};
#else
struct TileLanes {
  static constexpr int kRows = 8;
  using Ints = __m256i;
  using Floats = __m256;
  static Ints zero_ints() { return _mm256_setzero_si256(); }
  static Floats zero() { return _mm256_setzero_ps(); }
  static Ints load_ints(const void* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static Floats load(const float* p) { return _mm256_load_ps(p); }
  static void store(float* p, Floats v) { _mm256_storeu_ps(p, v); }
  static Ints broadcast(int32_t v) { return _mm256_set1_epi32(v); }
  static Floats broadcast(float v) { return _mm256_set1_ps(v); }
  static Ints madd_add(Ints acc, Ints w, Ints x) { return _mm256_add_epi32(acc, _mm256_madd_epi16(w, x)); }
  static Ints add(Ints a, Ints b) { return _mm256_add_epi32(a, b); }
  static Ints mullo(Ints a, Ints b) { return _mm256_mullo_epi32(a, b); }
  static Floats mul(Floats a, Floats b) { return _mm256_mul_ps(a, b); }
  static Floats fma(Floats a, Floats b, Floats c) { return _mm256_fmadd_ps(a, b, c); }
  static Floats to_floats(Ints v) { return _mm256_cvtepi32_ps(v); }
};
#endif

template <class Format>
constexpr int kGroupsPerBlock = Format::kWeights / Format::kGroupWeights;

// Q4_1, Q5_1: a min per block of 32 weights (w = d * q + m), whose term is m * d_x times the
// block's sum of q; a prompt tile's min_scale holds m, where the K-quants' holds -dmin.
template <class Format>
constexpr bool kBlockMin = Format::kHasMin && Format::kWeights == 32;

// The sub-blocks with a min: 8 of 32 (Q4_K, Q5_K: their sums of q are sum32), or 16 of 16
// (Q2_K: sum16), as a format with a min says in kMinSubBlocks.
template <class Format>
constexpr int min_sub_blocks() {
  if constexpr (requires { Format::kMinSubBlocks; }) return Format::kMinSubBlocks;
  else return 8;
}
template <class Format, int N>
const int32_t* min_sums(const ActivationBlock<N>& x) {
  return min_sub_blocks<Format>() == 16 ? x.sum16 : x.sum32;
}

constexpr int kTileRows = TileLanes::kRows;
constexpr int kChunkWeights = 256;
constexpr int kTileTokens = 144;
constexpr int kPassTokens = 6;

template <class Format>
struct RowTile {
  static constexpr int kBlocks = kChunkWeights / Format::kWeights;
  alignas(64) int16_t w[kChunkWeights / 2][kTileRows][2];      // interleaved
  alignas(64) float scale[kBlocks][kTileRows];                 // [b][r]: row r's d
  alignas(64) float min_scale[kBlocks][kTileRows];             // [b][r]: row r's -dmin
  alignas(64) int32_t mins[kBlocks][min_sub_blocks<Format>()][kTileRows];  // [b][i][r]: row r's min_i
  TileLanes::Floats acc[kTileTokens];
};

int32_t load_pair(const int16_t* q) {
  int32_t pair;
  std::memcpy(&pair, q, sizeof(pair));
  return pair;
}
[[maybe_unused]] __m256i broadcast_pair(const int16_t* q) { return _mm256_set1_epi32(load_pair(q)); }

// tile.acc[t0 + t] for the kTokens tokens of x_tokens (each pointing at the chunk's first block).
template <class Format, int kTokens>
void accumulate_chunk(RowTile<Format>& tile, int n_blocks, const ActivationBlock<Format::kWeights>* const* x_tokens,
                      int t0) {
  using L = TileLanes;
  L::Floats acc[kTokens];
#pragma GCC unroll 8
  for (int t = 0; t < kTokens; ++t) acc[t] = tile.acc[t0 + t];
  for (int b = 0; b < n_blocks; ++b) {
    L::Floats scale[kTokens];
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) scale[t] = L::mul(L::load(tile.scale[b]), L::broadcast(x_tokens[t][b].d));
    for (int g = 0; g < kGroupsPerBlock<Format>; ++g) {
      const int first_weight = g * Format::kGroupWeights;
      const int16_t(*w)[kTileRows][2] = tile.w + (b * Format::kWeights + first_weight) / 2;
      L::Ints isum[kTokens];
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t) isum[t] = L::zero_ints();
#pragma GCC unroll 16
      for (int k = 0; k < Format::kGroupWeights / 2; ++k) {
        const L::Ints wk = L::load_ints(w[k]);
#pragma GCC unroll 8
        for (int t = 0; t < kTokens; ++t) {
          isum[t] = L::madd_add(isum[t], wk, L::broadcast(load_pair(x_tokens[t][b].q + first_weight + 2 * k)));
          if constexpr (Format::kGroupWeights == 32) keep_in_register(isum[t]);
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t) acc[t] = L::fma(L::to_floats(isum[t]), scale[t], acc[t]);
    }
    if constexpr (Format::kHasMin) {
#pragma GCC unroll 8
      for (int t = 0; t < kTokens; ++t) {
        L::Ints products = L::zero_ints();
        if constexpr (kBlockMin<Format>) {
          products = L::broadcast(x_tokens[t][b].sum32[0]);
        } else {
          const int32_t* sums = min_sums<Format>(x_tokens[t][b]);
          for (int i = 0; i < min_sub_blocks<Format>(); ++i)
            products = L::add(products, L::mullo(L::load_ints(tile.mins[b][i]), L::broadcast(sums[i])));
        }
        acc[t] = L::fma(L::to_floats(products), L::mul(L::load(tile.min_scale[b]), L::broadcast(x_tokens[t][b].d)),
                        acc[t]);
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

// The tile's passes over n_tokens tokens: tiles of kTileTokens tokens, each over the row's
// chunks of kChunkBlocks blocks, each chunk decoded into the tile once by
// decode(b0, chunk_blocks, last_pass) (last_pass: the last tile of tokens over these rows,
// the time to prefetch the next) and served kPassTokens tokens at a time.
template <class Format, class DecodeChunk>
void multiply_row_tile(DecodeChunk&& decode, int n_rows, int64_t n_blocks, const ActivationBlock<Format::kWeights>* x,
                       int64_t n_tokens, float* y, int64_t y_stride, RowTile<Format>& tile) {
  constexpr int kChunkBlocks = RowTile<Format>::kBlocks;
  const ActivationBlock<Format::kWeights>* x_tokens[kTileTokens];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTileTokens) {
    const int tile_tokens = static_cast<int>(std::min<int64_t>(kTileTokens, n_tokens - t0));
    for (int t = 0; t < tile_tokens; ++t) tile.acc[t] = TileLanes::zero();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
      const int chunk_blocks = static_cast<int>(std::min<int64_t>(kChunkBlocks, n_blocks - b0));
      decode(b0, chunk_blocks, t0 + kTileTokens >= n_tokens);
      for (int t = 0; t < tile_tokens; ++t) x_tokens[t] = x + (t0 + t) * n_blocks + b0;
      int t = 0;
      for (; t + kPassTokens <= tile_tokens; t += kPassTokens)
        accumulate_chunk<Format, kPassTokens>(tile, chunk_blocks, x_tokens + t, t);
      accumulate_remainder<Format, kPassTokens - 1>(tile, chunk_blocks, x_tokens + t, t, tile_tokens - t);
    }
    for (int t = 0; t < tile_tokens; ++t) {
      float lanes[kTileRows];
      TileLanes::store(lanes, tile.acc[t]);
      std::memcpy(y + (t0 + t) * y_stride, lanes, size_t(n_rows) * sizeof(float));
    }
  }
}

}  // namespace
}  // namespace slm::kernels::avx2
