// AVX2 + FMA + F16C building blocks of the *_avx2.cpp (and *_avxvnni.cpp, *_avx512.cpp) files.
// Include it from those files only: they alone are compiled with AVX2 flags. The helpers have internal
// linkage, so each file keeps its own copy, compiled with its own flags: an inline function
// with external linkage could be one copy the linker keeps for every file, and one compiled
// with -mavxvnni would fault on a CPU without AVX-VNNI.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul.hpp"
#include "kernels/matmul_tiling.hpp"
#include "kernels/quant_blocks.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels::avx2 {
namespace {

// The Simd of matmul_tiling.hpp: 8 float lanes in one ymm register.
struct Avx2Lanes {
  using Vec = __m256;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec fma(Vec w, Vec x, Vec acc) { return _mm256_fmadd_ps(w, x, acc); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec broadcast(float v) { return _mm256_set1_ps(v); }
  static float reduce(Vec v) {
    const __m128 four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // 0+4 .. 3+7
    const __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));                         // 0+2, 1+3
    return _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)));                            // 0+1
  }
};

// An fp16 field of a block (exact: every binary16 is a float).
inline float half_to_float(uint16_t half) { return _cvtsh_ss(half); }
inline __m256 broadcast_half(uint16_t half) { return _mm256_set1_ps(half_to_float(half)); }

inline __m128i low_half(__m256i v) { return _mm256_castsi256_si128(v); }
inline __m128i high_half(__m256i v) { return _mm256_extracti128_si256(v, 1); }

// Byte i (0..15) of the result is `value` where bit i of `bits` is set, else 0.
inline __m128i spread_bits(uint32_t bits, uint8_t value) {
  const __m128i byte_per_half = _mm_set_epi64x(0x0101010101010101, 0);  // bytes 0..7 <- bits 0..7, 8..15 <- 8..15
  const __m128i bytes = _mm_shuffle_epi8(_mm_cvtsi32_si128(static_cast<int>(bits)), byte_per_half);
  const __m128i bit_of_byte = _mm_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(bytes, bit_of_byte), bit_of_byte),
                       _mm_set1_epi8(static_cast<char>(value)));
}

// (v >> shift) & mask in every byte (shift < 8; bits moved in from the neighbouring byte are masked off).
inline __m128i shift_mask(__m128i v, int shift, uint8_t mask) {
  return _mm_and_si128(_mm_srli_epi16(v, shift), _mm_set1_epi8(static_cast<char>(mask)));
}
inline __m256i shift_mask(__m256i v, int shift, uint8_t mask) {
  return _mm256_and_si256(_mm256_srli_epi16(v, shift), _mm256_set1_epi8(static_cast<char>(mask)));
}

inline __m128i load16(const void* bytes) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes)); }
inline __m256i load32(const void* bytes) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes)); }

// IQ4_NL's and IQ4_XS's nibbles (one per byte, 0..15) as their values kIq4NlValues[q] (signed
// bytes, -127..113): the 16-entry table in a register (in both 128-bit lanes of a ymm) and one
// vpshufb for 16 or 32 nibbles. kPlus128: the values + 128 (1..241, the sign bit flipped), the
// unsigned bytes vpdpbusd multiplies, whose zero point 128 the Int8 kernels take off.
template <bool kPlus128 = false>
__m128i iq4_values(__m128i nibbles) {
  __m128i table = load16(kIq4NlValues);
  if constexpr (kPlus128) table = _mm_xor_si128(table, _mm_set1_epi8(static_cast<char>(0x80)));
  return _mm_shuffle_epi8(table, nibbles);
}
template <bool kPlus128 = false>
__m256i iq4_values(__m256i nibbles) {
  __m256i table = _mm256_broadcastsi128_si256(load16(kIq4NlValues));
  if constexpr (kPlus128) table = _mm256_xor_si256(table, _mm256_set1_epi8(static_cast<char>(0x80)));
  return _mm256_shuffle_epi8(table, nibbles);
}

// The quants of a Q4_0/Q4_1/Q5_0/Q5_1 block (0..15, or 0..31 with the 5th bit): weights 0..15
// in `first` (low nibbles of qs), 16..31 in `second` (high nibbles); bit j of qh is weight j's 5th bit.
template <class Block, bool kFifthBit>
void legacy_quants(const Block& block, __m128i& first, __m128i& second) {
  const __m128i packed = load16(block.qs);
  first = _mm_and_si128(packed, _mm_set1_epi8(0x0f));
  second = shift_mask(packed, 4, 0x0f);
  if constexpr (kFifthBit) {
    uint32_t high_bits;
    std::memcpy(&high_bits, block.qh, sizeof(high_bits));
    first = _mm_or_si128(first, spread_bits(high_bits & 0xffffu, 0x10));
    second = _mm_or_si128(second, spread_bits(high_bits >> 16, 0x10));
  }
}

// The 32 quants (0..15, or 0..31 for Q5_K) of sub-block `sub` of a Q4_K/Q5_K block: the low or
// high nibbles of qs[32 (sub/2) ..], Q5_K's 5th bit of weight l being bit `sub` of qh[l].
template <class Block>
__m256i k_nibble_quants(const Block& block, int sub) {
  __m256i q = shift_mask(load32(block.qs + 32 * (sub / 2)), 4 * (sub % 2), 0x0f);
  if constexpr (requires { block.qh; }) q = _mm256_or_si256(q, _mm256_slli_epi16(shift_mask(load32(block.qh), sub, 0x01), 4));
  return q;
}

// The 32 quants (-32..31) of weights 32k .. 32k+31 of half `half` of a Q6_K block: low nibble
// in ql[64 half + 32 (k%2) + l] (shifted by 4 (k/2)), top 2 bits at bits 2k of qh[32 half + l].
template <class Block>
__m256i q6_k_quants(const Block& block, int half, int k) {
  const __m256i low = shift_mask(load32(block.ql + 64 * half + 32 * (k % 2)), 4 * (k / 2), 0x0f);
  const __m256i high = _mm256_slli_epi16(shift_mask(load32(block.qh + 32 * half), 2 * k, 0x03), 4);
  return _mm256_sub_epi8(_mm256_or_si256(low, high), _mm256_set1_epi8(32));
}

// A pair of groups a, b of the Q6_K tile layout (kernels/interleaved_blocks.hpp: 16 words
// a[j] | (b[16 + j] >> 2) << 6 | a[16 + j] << 10, then 16 bytes b[j] | (b[16 + j] & 3) << 6) as
// 16-bit quants (0..63), slot j in lane j: halves[0] a's slots 0-15, [1] its 16-31, [2] and [3]
// b's. The words give a's two halves in one and or one shift each, b's low half is the bytes
// widened once and masked: 7 instructions for 64 weights where a group's 8 top-bit bytes
// decoded alone took 5 for 32.
inline void q6_k_pair_halves(const uint8_t* pair, __m256i (&halves)[4]) {
  const __m256i words = load32(pair);
  const __m256i bytes = _mm256_cvtepu8_epi16(load16(pair + 32));
  const __m256i six_bits = _mm256_set1_epi16(0x3f);
  halves[0] = _mm256_and_si256(words, six_bits);
  halves[1] = _mm256_srli_epi16(words, 10);
  halves[2] = _mm256_and_si256(bytes, six_bits);
  halves[3] = _mm256_or_si256(_mm256_srli_epi16(bytes, 6), _mm256_and_si256(_mm256_srli_epi16(words, 4), _mm256_set1_epi16(0x3c)));
}

// The 32 quants (0..3) of piece p (weights 32p .. 32p+31) of a Q2_K block: bits 2 (p%4) of
// qs[32 (p/4) + l]; Q3_K keeps its low 2 bits there too.
template <class Block>
__m256i q2_k_quants(const Block& block, int piece) {
  return shift_mask(load32(block.qs + 32 * (piece / 4)), 2 * (piece % 4), 0x03);
}

// The 32 quants (-4..3) of piece p of a Q3_K block: the low 2 bits as Q2_K's, the high bit at
// bit p of hmask[l], q = low2 - (high ? 0 : 4).
template <class Block>
__m256i q3_k_quants(const Block& block, int piece) {
  const __m256i low2 = q2_k_quants(block, piece);
  const __m256i high_bit_as_4 = _mm256_slli_epi16(shift_mask(load32(block.hmask), piece, 0x01), 2);
  return _mm256_sub_epi8(_mm256_or_si256(low2, high_bit_as_4), _mm256_set1_epi8(4));
}

// Integer sums of kTokens tokens, each token's in kChains independent chains of adds (steps go
// round them: step s into chain s % kChains). One token spreads its steps over kOneTokenChains,
// so that an add need not wait for the previous one's latency (a vpdpwssd or vpdpbusd waits ~4
// cycles for its last while two can start each cycle); several tokens are chains enough by
// themselves. Integer addition is exact, so the split leaves the sums' bits as they are.
template <int kTokens, int kOneTokenChains>
struct ChainedSums {
  static constexpr int kChains = kTokens == 1 ? kOneTokenChains : 1;
  __m256i chain[kTokens][kChains];
  ChainedSums() {
    for (auto& sums : chain)
      for (__m256i& sum : sums) sum = _mm256_setzero_si256();
  }
  __m256i& at(int t, int step) { return chain[t][step % kChains]; }
  __m256i total(int t) const {
    __m256i sum = chain[t][0];
    for (int c = 1; c < kChains; ++c) sum = _mm256_add_epi32(sum, chain[t][c]);
    return sum;
  }
};

// The 8 int8 in the low 8 bytes of q, as floats.
inline __m256 low8_to_float(__m128i q) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)); }

// Sends the 16 weights q[i] * scale (q: 16 int8 quants) to sink at offset, offset + 8.
// Every weight format's products d * q are exact in float, so this is the float the scalar
// dequantizer computes.
template <class Sink>
void emit16(__m128i q, __m256 scale, int offset, Sink& sink) {
  sink(offset, _mm256_mul_ps(low8_to_float(q), scale));
  sink(offset + 8, _mm256_mul_ps(low8_to_float(_mm_unpackhi_epi64(q, q)), scale));
}

// As emit16, for q[i] * scale + bias: one rounding after the exact product, as in the
// scalar `q * d + m` (Q4_1, Q5_1) and `scale * q - min` (K-quants, bias = -min).
template <class Sink>
void emit16(__m128i q, __m256 scale, __m256 bias, int offset, Sink& sink) {
  sink(offset, _mm256_fmadd_ps(low8_to_float(q), scale, bias));
  sink(offset + 8, _mm256_fmadd_ps(low8_to_float(_mm_unpackhi_epi64(q, q)), scale, bias));
}

// How far ahead of the block it multiplies a one-token kernel's dot_tile (kernels/dot_tiles_avx2.hpp) prefetches (the Int16
// kernels': matmul_interleaved_avx2.cpp; the Int8 ones': matmul_int8_avx2.cpp), in bytes of the tiles it reads
// (consecutive in memory). The AVX2 build takes the next tile's same block (measured on Zen 3).
// The AVX-512 build takes a fixed 3 KB: on AMD EPYC Zen 4 one tile ahead (22 KB for a row of
// 4864 Q4_K weights, 38 KB at 8192) arrived too early, and one token of Q6_K ran 1.2x faster at
// 3 KB (bench_matmul matmul_interleaved/avx512/Q6_K/tokens:1/threads:1, alternating binaries).
#if defined(__AVX512F__)
constexpr uint64_t prefetch_distance(uint64_t /*tile_bytes*/) { return 3072; }
#else
constexpr uint64_t prefetch_distance(uint64_t tile_bytes) { return tile_bytes; }
#endif

}  // namespace

// The K-quant kernels (matmul_k_quants_avx2.cpp); nullptr for any other type.
tiling::FormatKernel k_quant_kernel(GgmlType type);

}  // namespace slm::kernels::avx2

namespace slm::kernels {

// The integer kernels, built three times from the same source: for AVX2 (matmul_int_avx2.cpp,
// matmul_interleaved_avx2.cpp), again with AVX-VNNI (matmul_int_avxvnni.cpp) and again with
// AVX-512 (matmul_int_avx512.cpp), for the CPUs that have them. All give the same bits.
struct IntegerKernelSet {
  // 16-bit activations (matmul_int_avx2.cpp); nullptr for a type that has none (float
  // formats).
  tiling::FormatKernel (*row_kernel)(GgmlType type);
  // Over the 8-row interleaved layout (matmul_interleaved_avx2.cpp).
  bool (*interleaves)(GgmlType type);
  MatmulInterleavedFn matmul_interleaved;
};
extern const IntegerKernelSet kAvx2IntegerKernels;
extern const IntegerKernelSet kAvxVnniIntegerKernels;
extern const IntegerKernelSet kAvx512IntegerKernels;

}  // namespace slm::kernels
