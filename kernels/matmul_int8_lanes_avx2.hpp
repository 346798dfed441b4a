// Row lanes, the order in which the Int8 formats (Q4_K, Q5_K, IQ4_XS: matmul_int8_q4_k_avx2.hpp; Q6_K:
// matmul_int8_q6_k_avx2.hpp; Q4_0, Q5_0, Q8_0, IQ4_NL: matmul_int8_legacy_avx2.hpp) multiply a layout tile's groups
// (kernels/interleaved_blocks.hpp): one 32-bit lane per row, holding that row's 4 weights
// 4m .. 4m + 3 of group m (lane r: slots 2r, 2r + 1, 16 + 2r, 17 + 2r). _mm256_maddubs_epi16
// of the group's (unsigned) bytes with the 4 activation bytes broadcast (_mm256_set1_epi32)
// then gives each row's two pair sums in its own lane, and no sum needs a horizontal step.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

// The 4 activation bytes q[0..3] in every 32-bit lane.
inline __m256i broadcast_quad(const int8_t* q) {
  int32_t quad;
  std::memcpy(&quad, q, sizeof(quad));
  return _mm256_set1_epi32(quad);
}

// The 32 nibbles of a group's 16 bytes (slot j in the low nibble of byte j, slot 16 + j in
// the high one), in row lanes: lane r widened from bytes 2r, 2r + 1 (b0, b1), whose low
// nibbles are its bytes 0 and 1 and whose high nibbles, shifted up 12 bits, its bytes 2, 3.
inline __m256i lane_nibbles(const uint8_t* qs) {
  const __m256i pair = _mm256_cvtepu16_epi32(load16(qs));
  return _mm256_and_si256(_mm256_or_si256(pair, _mm256_slli_epi32(pair, 12)), _mm256_set1_epi8(0x0f));
}

// The 32 unsigned 5-bit quants of a group laid out as Q5_0's (uint32 qh, slot j's 5th bit in
// bit j, then the 16 nibble bytes as lane_nibbles takes them), in row lanes. Byte p of lane r is
// slot s = 2r + p % 2 + 16 (p / 2), whose 5th bit is bit s % 8 of qh's byte s / 8 = (r >= 4) +
// 2 (p / 2): gather that byte, test the bit, add 16.
inline __m256i lane_five_bit_quants(const uint8_t* group) {
  int32_t high_bits;
  std::memcpy(&high_bits, group, sizeof(high_bits));
  const __m256i byte_of_slot = _mm256_setr_epi8(0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2,  //
                                                1, 1, 3, 3, 1, 1, 3, 3, 1, 1, 3, 3, 1, 1, 3, 3);
  const __m256i bit_of_slot = _mm256_setr_epi8(1, 2, 1, 2, 4, 8, 4, 8, 16, 32, 16, 32, 64, -128, 64, -128,  //
                                               1, 2, 1, 2, 4, 8, 4, 8, 16, 32, 16, 32, 64, -128, 64, -128);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(high_bits), byte_of_slot);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit_of_slot), bit_of_slot);
  return _mm256_or_si256(lane_nibbles(group + sizeof(high_bits)), _mm256_and_si256(set, _mm256_set1_epi8(16)));
}

// The 32 bytes of a group in slot order (slot j in byte j), in row lanes: 64-bit quarters
// 0, 2 | 1, 3 put slots 0-7 beside 16-23 and 8-15 beside 24-31, then each 128-bit half
// interleaves its two quarters 16 bits at a time.
inline __m256i lane_bytes(__m256i slots) {
  const __m256i pairs = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,  //
                                         0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  return _mm256_shuffle_epi8(_mm256_permute4x64_epi64(slots, 0xd8), pairs);
}

// The 16-bit pair sums of `sums` added into 32-bit lanes, times `scales` (16-bit, both of a
// lane's halves the same row's) or 1.
inline __m256i widen_add(__m256i acc, __m256i sums, __m256i scales) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(sums, scales));
}

// Whether this build multiplies bytes into 32-bit sums in one instruction, vpdpbusd: VEX with
// AVX-VNNI (matmul_int8_avxvnni.cpp), EVEX on ymm with AVX-512 VNNI + VL (matmul_int8_avx512.cpp).
// It adds each lane's 4 products of unsigned by signed bytes to the lane's int32, exactly (no
// 16-bit pair sums to saturate), so the formats add a sub-block's groups straight into 32 bits
// where the AVX2 build adds maddubs' 16-bit pair sums and widens them with a madd.
#if defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__))
inline constexpr bool kByteDotProducts = true;
#else
inline constexpr bool kByteDotProducts = false;
#endif

// The tokens a prompt pass of the vpdpbusd builds serves at a time: each keeps a running sum,
// a sub-block's fresh sum and its float accumulator in registers, 32 ymm with AVX-512 (12 against
// 6 or 8 in bench_matmul tokens:64 on a Zen 4, one run each: Q8_0 1.40x, Q4_1 1.43x, Q4_K 1.09x,
// Q5_0 0.90x). The
// formats' loops over tokens say `unroll 16`: a 12-token loop left rolled keeps its sums in
// memory (2-3x slower).
#if defined(__AVX512F__)
inline constexpr int kByteDotPassTokens = 12;
#else
inline constexpr int kByteDotPassTokens = 6;
#endif

// acc + each 32-bit lane's 4 products of the unsigned bytes u by the signed bytes s. The AVX2
// build's stand-in (maddubs + madd) is never called there (kByteDotProducts is false): it would
// saturate where a pair of products passes 32767.
inline __m256i dot_bytes_add(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(acc, u, s);
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// Word pairs, the one-token order of the vpdpbusd builds (kByteDotProducts) for the formats
// whose groups are 16 nibble bytes (Q4_0, Q4_1, Q4_K): a group's 16-bit word r (bytes 2r,
// 2r + 1) is row r's. Of the loads [group m | m + 1] and [m + 2 | m + 3], each with its 64-bit
// quarters reordered 0, 2 | 1, 3 (rows 0-3 of both groups, then rows 4-7),
// _mm256_unpacklo_epi16 puts word r of groups m and m + 2 side by side in 32-bit lane r, and
// _mm256_unpackhi_epi16 those of groups m + 1 and m + 3: 4 instructions for 64 bytes where
// lane_nibbles took 4 per 16. Their low nibbles and their high nibbles are 4 byte vectors in
// row lanes, each meeting one broadcast of 4 activation bytes: weights 4m + 2n, + 1 and
// 4m + 8 + 2n, + 1 (vector n = 0, 1), 4m + 4 + 2n, + 1 and 4m + 12 + 2n, + 1 (n = 2, 3), which
// word_pair_activations puts in that order.
inline void nibble_word_pairs(const uint8_t* groups, __m256i (&quants)[4]) {
  const __m256i a = _mm256_permute4x64_epi64(load32(groups), 0xd8);
  const __m256i b = _mm256_permute4x64_epi64(load32(groups + 32), 0xd8);
  const __m256i first = _mm256_unpacklo_epi16(a, b), second = _mm256_unpackhi_epi16(a, b);
  const __m256i mask = _mm256_set1_epi8(0x0f);
  quants[0] = _mm256_and_si256(first, mask);
  quants[1] = _mm256_and_si256(_mm256_srli_epi16(first, 4), mask);
  quants[2] = _mm256_and_si256(second, mask);
  quants[3] = _mm256_and_si256(_mm256_srli_epi16(second, 4), mask);
}

// n activations (n / 32 nibble-format blocks of 8 groups) in the order nibble_word_pairs
// multiplies them: in each 16, the 16-bit words 0, 4, 1, 5, 2, 6, 3, 7, so that the 4 bytes at
// 16k + 4n meet vector n of groups 4k .. 4k + 3.
inline void word_pair_activations(const int8_t* q, int8_t* out, int n) {
  const __m256i order = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,  //
                                         0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  for (int i = 0; i < n; i += 32)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_shuffle_epi8(load32(q + i), order));
}

// Pins a running sum to a register here: without it GCC regroups the (associative) sums of
// an unrolled loop over tokens into trees whose partial sums spill to the stack.
inline void pin_register(__m256i& v) { __asm__("" : "+x"(v)); }

// sums[t], lane r: row r's sum of q * x over the 32 weights of a nibble format's 8 groups at
// `groups` (Q4_0's block, Q4_K's sub-block) for token t, x_of(t) its 32 activations in
// word_pair_activations' order; vpdpbusd builds only. One token adds its products in two chains
// of 4 vpdpbusd, not one of 8: Q4_K 1.15x with the matrix in the caches (bench_matmul, AMD EPYC
// Zen 4; 4 chains: no faster). More tokens are chains of their own. kIq4Values (IQ4_XS): each
// nibble's kIq4NlValues + 128 (iq4_values) in its place.
template <int kTokens, bool kIq4Values = false, class XOf>
void nibble_word_pair_sums(const uint8_t* groups, XOf&& x_of, __m256i* sums) {
  ChainedSums<kTokens, 2> chains;
#pragma GCC unroll 2
  for (int k = 0; k < 2; ++k) {
    __m256i quants[4];
    nibble_word_pairs(groups + 64 * k, quants);
    if constexpr (kIq4Values)
      for (__m256i& q : quants) q = iq4_values<true>(q);
#pragma GCC unroll 4
    for (int n = 0; n < 4; ++n)
#pragma GCC unroll 16
      for (int t = 0; t < kTokens; ++t)
        chains.at(t, n) = dot_bytes_add(chains.at(t, n), quants[n], broadcast_quad(x_of(t) + 16 * k + 4 * n));
  }
#pragma GCC unroll 16
  for (int t = 0; t < kTokens; ++t) sums[t] = chains.total(t);
}

}  // namespace
}  // namespace slm::kernels::avx2
