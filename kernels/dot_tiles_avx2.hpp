// The few-token loop over the 8-row interleaved layout (kernels/interleaved_blocks.hpp) that the
// Int16 kernels (matmul_interleaved_avx2.cpp) and the Int8 ones (matmul_int8_avx2.cpp) share:
// each block of a tile decoded into registers once for every token (Format::dot_block), for one
// token and a decode step of a few streams, where a prompt tile would store every decoded weight
// to L1 and load it back for only a few tokens (bench_matmul tokens:8). Activation is the
// format's activation block (16-bit or 8-bit).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/matmul_tiling.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

// kTokens tokens (token t's blocks at x + t * x_stride), the 8 rows of one tile; the bytes
// `ahead` past each block (prefetch_distance) are prefetched where they are before `end` (the
// end of the tiles this call reads). Its own function: inlined into the callers' matmul_tiles,
// its loop's code moved with what else the file instantiates (Q6_K's one token 1.1-1.4x slower
// once Q2_K and Q3_K joined; bench_matmul, AMD EPYC Zen 4).
template <class Format, int kTokens, class Activation>
[[gnu::noinline]] void dot_tile(const uint8_t* tile, uint64_t ahead, const uint8_t* end, int64_t n_blocks,
                                const Activation* x, int64_t x_stride, float* y, int64_t y_stride) {
  __m256 acc[kTokens];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = tile + b * Format::kBlockBytes;
    if (uint64_t(end - block) >= ahead + Format::kBlockBytes) tiling::prefetch(block + ahead, Format::kBlockBytes);
    Format::template dot_block<kTokens>(block, x + b, x_stride, acc);
  }
  for (int t = 0; t < kTokens; ++t) _mm256_storeu_ps(y + t * y_stride, acc[t]);
}

// Tiles first_tile .. end_tile - 1 for n_tokens <= kTokens tokens (kTokens the most the caller's
// registers hold), each tile of n_blocks blocks, tile_bytes long.
template <class Format, int kTokens, class Activation>
void dot_tiles(const uint8_t* tiles, uint64_t tile_bytes, int64_t n_blocks, const Activation* xq, int64_t n_tokens,
               float* y, int64_t y_stride, int64_t first_tile, int64_t end_tile) {
  if constexpr (kTokens > 1) {
    if (n_tokens < kTokens)
      return dot_tiles<Format, kTokens - 1>(tiles, tile_bytes, n_blocks, xq, n_tokens, y, y_stride, first_tile, end_tile);
  }
  const uint8_t* end = tiles + uint64_t(end_tile) * tile_bytes;
  for (int64_t t = first_tile; t < end_tile; ++t)
    dot_tile<Format, kTokens>(tiles + uint64_t(t) * tile_bytes, prefetch_distance(tile_bytes), end, n_blocks, xq,
                              n_blocks, y + t * kInterleavedRows, y_stride);
}

}  // namespace
}  // namespace slm::kernels::avx2
