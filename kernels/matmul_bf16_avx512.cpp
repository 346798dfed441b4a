// BF16 weights times bf16-rounded activations with vdpbf16ps (AVX-512 BF16): 32 products per
// instruction, twice the multiply-adds of float32 FMAs, and no widening of the weights. Bit for
// bit matmul_rows_bf16_dot_reference (the order: kernels/matmul_bf16.hpp).
//
// A register tile of 8 rows x 3 tokens keeps 24 zmm sums (with 3 activation vectors and a
// weight vector: 28 of the 32 registers); each step loads 8 weight vectors and 3 activation
// vectors for 24 vdpbf16ps. zmm rather than ymm: Zen 4 runs a zmm vdpbf16ps as its two ymm
// halves, so the multiply-adds per cycle are the same, and zmm halves the instructions. Rows are
// walked in chunks of 2 KB each (8 rows: 16 KB, in L1), which every token of a tile of 24 reuses
// before the next chunk; the sums wait in a small buffer between chunks, so that the order of
// each lane's multiply-adds does not depend on the chunk, the tile or the number of tokens.
// The weights are read from the rows as the file stores them (a bf16 row is already what
// vdpbf16ps takes); a row's last partial step is a masked load, zeros past its end. With several
// tokens, the first pass over a chunk, which reads it from memory, prefetches the same chunk of
// the next 8 rows. One token takes one row at a time and no software prefetch: one sequential
// stream per thread, which Zen 4's prefetchers follow best (slm-bench tg128 on Qwen2.5-0.5B BF16,
// 2 threads, alternating: 19.72 -> 26.67, 21.79 -> 27.41, 19.86 -> 37.72 t/s against 8 rows
// with the prefetch; 4 rows without it, 24.76; bench_matmul tokens:8 one row at a time 0.45x).
#include <immintrin.h>

#include <algorithm>

#include "kernels/matmul_bf16.hpp"
#include "kernels/matmul_isa.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels {
namespace {

constexpr int kRowsPerGroup = 8;
constexpr int kTokensPerPass = 3;
constexpr int kTokensPerTile = 24;
constexpr int64_t kChunkSteps = 32;              // steps of 32 values: 1 KB of each row

using TileSums = __m512[kRowsPerGroup][kTokensPerTile];

// sums[r][first_token + t] over steps [first_step, first_step + n_steps) of rows r < kRows and
// tokens t < kTokens; kMasked: the one step holding a row's end, `mask` its values in the row.
template <int kRows, int kTokens, bool kMasked>
void accumulate_register_tile(const uint8_t* first_row, uint64_t row_bytes, const Bf16Bits* x, int64_t x_stride,
                              int64_t first_step, int64_t n_steps, __mmask32 mask, bool prefetch, TileSums& sums,
                              int first_token) {
  __m512 sum[kRows][kTokens];
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < kTokens; ++t) sum[r][t] = sums[r][first_token + t];
  for (int64_t s = first_step; s < first_step + n_steps; ++s) {
    __m512i activations[kTokens];
    for (int t = 0; t < kTokens; ++t) activations[t] = _mm512_loadu_si512(x + t * x_stride + s * kBf16DotStep);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const auto* w = reinterpret_cast<const Bf16Bits*>(first_row + r * row_bytes) + s * kBf16DotStep;
      if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(w) + kRowsPerGroup * row_bytes, _MM_HINT_T0);
      const __m512i weights = kMasked ? _mm512_maskz_loadu_epi16(mask, w) : _mm512_loadu_si512(w);
      for (int t = 0; t < kTokens; ++t)
        sum[r][t] = _mm512_dpbf16_ps(sum[r][t], reinterpret_cast<const __m512bh&>(weights),
                                     reinterpret_cast<const __m512bh&>(activations[t]));
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < kTokens; ++t) sums[r][first_token + t] = sum[r][t];
}

// The passes of kTokensPerPass tokens (then 2 or 1) over n_tokens <= kTokensPerTile tokens.
template <int kRows, bool kMasked>
void accumulate_token_tile(const uint8_t* first_row, uint64_t row_bytes, const Bf16Bits* x, int64_t x_stride,
                           int n_tokens, int64_t first_step, int64_t n_steps, __mmask32 mask, bool prefetch,
                           TileSums& sums) {
  static_assert(kTokensPerPass == 3);
  int t = 0;
  for (; t + 3 <= n_tokens; t += 3, prefetch = false)
    accumulate_register_tile<kRows, 3, kMasked>(first_row, row_bytes, x + t * x_stride, x_stride, first_step, n_steps,
                                                mask, prefetch, sums, t);
  if (n_tokens - t == 2)
    accumulate_register_tile<kRows, 2, kMasked>(first_row, row_bytes, x + t * x_stride, x_stride, first_step, n_steps,
                                                mask, prefetch, sums, t);
  if (n_tokens - t == 1)
    accumulate_register_tile<kRows, 1, kMasked>(first_row, row_bytes, x + t * x_stride, x_stride, first_step, n_steps,
                                                mask, prefetch, sums, t);
}

// The 16 lanes summed in the order of kernels/matmul_bf16.hpp: j + j+8, then Avx2Lanes::reduce.
float reduce_lanes(__m512 v) {
  const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  return avx2::Avx2Lanes::reduce(_mm256_add_ps(_mm512_castps512_ps256(v), high));
}

// Rows [0, kRows) from first_row, every token.
template <int kRows>
void matmul_row_group(const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, const Bf16Bits* x, int64_t n_tokens,
                      float* y, int64_t y_stride) {
  const int64_t x_stride = bf16_token_stride(n_in), n_full_steps = n_in / kBf16DotStep;
  const int tail = int(n_in % kBf16DotStep);
  const __mmask32 tail_mask = tail ? __mmask32((1u << tail) - 1u) : 0;
  alignas(64) TileSums sums;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokensPerTile) {
    const int tile_tokens = int(std::min<int64_t>(kTokensPerTile, n_tokens - t0));
    const Bf16Bits* x_tile = x + t0 * x_stride;
    for (int r = 0; r < kRows; ++r)
      for (int t = 0; t < tile_tokens; ++t) sums[r][t] = _mm512_setzero_ps();
    const bool prefetch = kRows > 1 && t0 == 0;  // the weights' first read, from memory
    for (int64_t s0 = 0; s0 < n_full_steps; s0 += kChunkSteps)
      accumulate_token_tile<kRows, false>(first_row, row_bytes, x_tile, x_stride, tile_tokens, s0,
                                          std::min(kChunkSteps, n_full_steps - s0), 0, prefetch, sums);
    if (tail)
      accumulate_token_tile<kRows, true>(first_row, row_bytes, x_tile, x_stride, tile_tokens, n_full_steps, 1,
                                         tail_mask, false, sums);
    for (int t = 0; t < tile_tokens; ++t)
      for (int r = 0; r < kRows; ++r) y[(t0 + t) * y_stride + r] = reduce_lanes(sums[r][t]);
  }
}

}  // namespace

void matmul_rows_bf16_dot(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x, int64_t n_tokens,
                          float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const Bf16Bits* rounded = bf16_rounded_tokens(x, n_tokens, n_in);
  int64_t o = row_begin;
  for (; n_tokens > 1 && o + kRowsPerGroup <= row_end; o += kRowsPerGroup)
    matmul_row_group<kRowsPerGroup>(weights + uint64_t(o) * row_bytes, row_bytes, n_in, rounded, n_tokens, y + o,
                                    y_stride);
  for (; o < row_end; ++o)
    matmul_row_group<1>(weights + uint64_t(o) * row_bytes, row_bytes, n_in, rounded, n_tokens, y + o, y_stride);
}

namespace avx512 {

void matmul_rows_bf16_activations(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                  int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  static const bool dot = bf16_dot_available();
  (dot ? matmul_rows_bf16_dot : avx2::matmul_rows_bf16_activations)(weights, row_bytes, n_in, x, n_tokens, y, y_stride,
                                                                     row_begin, row_end);
}

}  // namespace avx512
}  // namespace slm::kernels
