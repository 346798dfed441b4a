// The AVX2 Int8 kernels' shared parts (kernels/matmul_int8.hpp is their specification): the
// activation blocks and their quantizer, and the interface each weight format implements
// (kernels/matmul_int8_formats_avx2.hpp) for the driver in matmul_int8_avx2.cpp.
//
// A format (Format) over the 8-row interleaved layout (kernels/interleaved_blocks.hpp) gives:
//   kType; kWeights (its block: 32 or 256); kBlockBytes (a layout tile's block);
//   dot_block<kTokens>(block, x, x_stride, acc): acc[t] lane r gets row r's part of token t's
//     output for this block (by the formula: an fma per block, then Q4_K's min term), token
//     t's activation block at x[t * x_stride]; one token and a decode step of a few streams;
//   Tile: the 8 rows of a chunk of kInt8ChunkWeights weights decoded for a prompt, and
//   decode_block(block, tile, b): block b of the chunk into it;
//   kPassTokens, and accumulate<kTokens>(tile, n_blocks, x_tokens, acc) for kTokens <=
//     kPassTokens: acc[t] gets the chunk's n_blocks blocks for token t, x_tokens[t] pointing
//     at its activation block of the chunk's first block.
// Every path computes each (row, token) by the formula, so all give the bits of
// matmul_rows_int8_reference (tested).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/activation_blocks.hpp"
#include "kernels/matmul_int8.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

inline constexpr int kInt8ChunkWeights = 256;

template <int N>
struct alignas(32) Int8Block {
  int8_t q[N];
  float d;
  int32_t sum32[N / 32];  // the sums of q over each 32: Q4_K's min terms, the legacy zero points
  int16_t sum16[N / 16];  // over each 16 (|sum| <= 16 * 127): Q6_K's zero point, which madd takes in pairs
  int16_t sum32_16[N / 32];  // sum32 as 16-bit (|sum| <= 32 * 127), which _mm256_madd_epi16 takes in pairs
};

inline int32_t sum_int32_lanes(__m256i v) {
  const __m128i four = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i two = _mm_add_epi32(four, _mm_unpackhi_epi64(four, four));
  return _mm_cvtsi128_si32(_mm_add_epi32(two, _mm_shuffle_epi32(two, 1)));
}

template <int N>
void quantize_int8_block(const float* x, Int8Block<N>& out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 amax8 = _mm256_setzero_ps();
  __m256 non_finite = _mm256_setzero_ps();  // all ones in a lane that saw a NaN or an infinity
  const __m256 largest = _mm256_set1_ps(std::numeric_limits<float>::max());
  for (int i = 0; i < N; i += 8) {
    const __m256 magnitude = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
    amax8 = _mm256_max_ps(amax8, magnitude);
    non_finite = _mm256_or_ps(non_finite, _mm256_cmp_ps(magnitude, largest, _CMP_NLE_UQ));
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, amax8);
  const float amax = *std::max_element(lanes, lanes + 8);
  const bool finite = _mm256_testz_ps(non_finite, non_finite);
  if (!finite || amax < kSmallestQuantizedMagnitude) {
    std::fill(out.q, out.q + N, int8_t{0});
    std::fill(out.sum32, out.sum32 + N / 32, 0);
    std::fill(out.sum16, out.sum16 + N / 16, int16_t{0});
    std::fill(out.sum32_16, out.sum32_16 + N / 32, int16_t{0});
    out.d = finite ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    return;
  }
  out.d = amax / float(kInt8ActivationMax);
  const __m256 inverse = _mm256_set1_ps(float(kInt8ActivationMax) / amax);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < N; i += 32) {
    // cvtps rounds to nearest even, as the specification; every value is within +-127.
    __m256i q32[4];
    for (int k = 0; k < 4; ++k) q32[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), inverse));
    const __m256i q16_low = _mm256_packs_epi32(q32[0], q32[1]), q16_high = _mm256_packs_epi32(q32[2], q32[3]);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16_low, q16_high), order);  // packs work per 128
    _mm256_store_si256(reinterpret_cast<__m256i*>(out.q + i), q8);
    const int32_t first = sum_int32_lanes(_mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(q8)), ones));
    const int32_t second = sum_int32_lanes(_mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(q8, 1)), ones));
    out.sum16[i / 16] = static_cast<int16_t>(first);
    out.sum16[i / 16 + 1] = static_cast<int16_t>(second);
    out.sum32[i / 32] = first + second;
    out.sum32_16[i / 32] = static_cast<int16_t>(first + second);
  }
}

// Every token's activation blocks (quantize_tokens: a per-thread buffer that only grows).
template <int N>
const Int8Block<N>* quantize_int8_activations(const float* x, int64_t n_tokens, int64_t n_in) {
  return quantize_tokens<Int8Block<N>, N>(x, n_tokens, n_in, quantize_int8_block<N>);
}

}  // namespace
}  // namespace slm::kernels::avx2
