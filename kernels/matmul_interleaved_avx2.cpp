// AVX2 integer kernels over Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K .. Q6_K weights repacked into the 8-row
// interleaved layout (kernels/interleaved_blocks.hpp). Each group of 32 slots decodes to
// 8 rows x 4 weights, as two vectors of 8 rows x one pair of 16-bit weights: one
// _mm256_madd_epi16 with a broadcast pair of activations leaves each row's sum in its own
// lane. One token then needs no horizontal additions, and a prompt fills its tile without a
// transpose. Every output is computed by the formula of matmul_int_avx2.hpp, so the bits are
// those of the row-layout kernels (tested).
// matmul_int_avxvnni.cpp compiles this file again with AVX-VNNI, in namespace avxvnni, and
// matmul_int_avx512.cpp with AVX-512, in namespace avx512 (a prompt tile of two layout tiles).
#ifndef SLM_INTEGER_KERNELS
#define SLM_INTEGER_KERNELS avx2
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/interleaved_formats_avx2.hpp"
#include "kernels/interleaved_low_bit_k_quants_avx2.hpp"
#include "kernels/matmul_amx.hpp"
#include "kernels/matmul_int_avx2.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::SLM_INTEGER_KERNELS {
using namespace slm::kernels::avx2;

tiling::FormatKernel integer_kernel(GgmlType type);  // matmul_int_avx2.cpp

namespace {

// A prompt tile (kTileRows rows: 8, or 16 with AVX-512) is filled from consecutive tiles of the
// layout; row0 is where a layout tile's 8 rows go in it.
static_assert(kTileRows % kInterleavedRows == 0);
constexpr int kLayoutTilesPerRowTile = kTileRows / kInterleavedRows;

// kTokens tokens (token t's blocks at x + t * x_stride), the 8 rows of one tile, each block
// decoded into registers once for all of them; the bytes `ahead` past each block are prefetched
// where they are before `end` (the end of the tiles this call reads). This serves one token, and
// a decode step of a few streams: the prompt tile would store every decoded weight to L1 and
// load it back for only a few tokens (bench_matmul tokens:8). Its own function: inlined into
// matmul_tiles, its loop's code moved with what else this file instantiates (Q6_K's one token
// 1.1-1.4x slower once Q2_K and Q3_K joined; bench_matmul, AMD EPYC Zen 4).
template <class Format, int kTokens>
[[gnu::noinline]] void dot_tile(const uint8_t* tile, uint64_t ahead, const uint8_t* end, int64_t n_blocks,
                                const ActivationBlock<Format::kWeights>* x, int64_t x_stride, float* y, int64_t y_stride) {
  __m256 acc[kTokens];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = tile + b * Format::kBlockBytes;
    if (uint64_t(end - block) >= ahead + Format::kBlockBytes) tiling::prefetch(block + ahead, Format::kBlockBytes);
    Format::template dot_block<kTokens>(block, x + b, x_stride, acc);
  }
  for (int t = 0; t < kTokens; ++t) _mm256_storeu_ps(y + t * y_stride, acc[t]);
}

// The most tokens dot_tile serves: its sums and a block's decoded weights stay in registers
// (32 with AVX-512, 16 without).
constexpr int kRegisterTokens = kTileRows == 16 ? 8 : 4;

// Tiles first_tile .. end_tile - 1 for n_tokens = kTokens (<= kRegisterTokens) tokens.
template <class Format, int kTokens>
void dot_tiles(const uint8_t* tiles, uint64_t tile_bytes, int64_t n_blocks, const ActivationBlock<Format::kWeights>* xq,
               int64_t n_tokens, float* y, int64_t y_stride, int64_t first_tile, int64_t end_tile) {
  if constexpr (kTokens > 1) {
    if (n_tokens < kTokens) return dot_tiles<Format, kTokens - 1>(tiles, tile_bytes, n_blocks, xq, n_tokens, y, y_stride,
                                                                  first_tile, end_tile);
  }
  const uint8_t* end = tiles + uint64_t(end_tile) * tile_bytes;
  for (int64_t t = first_tile; t < end_tile; ++t)
    dot_tile<Format, kTokens>(tiles + uint64_t(t) * tile_bytes, prefetch_distance(tile_bytes), end, n_blocks, xq,
                              n_blocks, y + t * kInterleavedRows, y_stride);
}

// Rows row_begin .. row_end - 1 (whole tiles) of the interleaved matrix at tiles.
template <class Format>
void matmul_tiles(const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                  int64_t row_begin, int64_t row_end) {
  const ActivationBlock<Format::kWeights>* xq = quantize_activations<Format::kWeights, Format::kActivationBits>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / Format::kWeights;
  const uint64_t tile_bytes = uint64_t(n_blocks) * Format::kBlockBytes;
  const int64_t first_tile = row_begin / kInterleavedRows, end_tile = row_end / kInterleavedRows;
  if (n_tokens <= kRegisterTokens)
    return dot_tiles<Format, kRegisterTokens>(tiles, tile_bytes, n_blocks, xq, n_tokens, y, y_stride, first_tile, end_tile);
  // A prompt tile takes kLayoutTilesPerRowTile layout tiles; a last one short of them leaves
  // the other rows' lanes holding earlier values, computed and dropped.
  thread_local RowTile<Format> row_tile;
  for (int64_t t = first_tile; t < end_tile; t += kLayoutTilesPerRowTile) {
    const uint8_t* tile = tiles + uint64_t(t) * tile_bytes;
    const int n_tiles = static_cast<int>(std::min<int64_t>(kLayoutTilesPerRowTile, end_tile - t));
    const int n_next_tiles = static_cast<int>(std::clamp<int64_t>(end_tile - t - n_tiles, 0, kLayoutTilesPerRowTile));
    const auto decode = [&](int64_t b0, int chunk_blocks, bool last_pass) {
      if (last_pass)
        for (int next = 0; next < n_next_tiles; ++next)
          tiling::prefetch(tile + (n_tiles + next) * tile_bytes + b0 * Format::kBlockBytes, chunk_blocks * Format::kBlockBytes);
      for (int part = 0; part < n_tiles; ++part)
        for (int b = 0; b < chunk_blocks; ++b)
          Format::decode_block(tile + part * tile_bytes + (b0 + b) * Format::kBlockBytes, row_tile, b, part * kInterleavedRows);
    };
    multiply_row_tile<Format>(decode, n_tiles * kInterleavedRows, n_blocks, xq, n_tokens, y + t * kInterleavedRows,
                              y_stride, row_tile);
  }
}

}  // namespace

bool interleaves(GgmlType type) { return has_interleaved_layout(type); }

#if defined(__AVX512F__)
constexpr int64_t kAmxMinTokens = 16;
#endif

void matmul_interleaved(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
#if defined(__AVX512F__)
  // A tile product serves 16 tokens: fewer would leave most of it idle.
  if (n_tokens >= kAmxMinTokens && amx_multiplies(type) && amx_int8_available())
    return matmul_tiles_amx(type, tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
#endif
  switch (type) {
    case GgmlType::Q4_0: return matmul_tiles<InterleavedLegacy<GgmlType::Q4_0, BlockQ4_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_0: return matmul_tiles<InterleavedLegacy<GgmlType::Q5_0, BlockQ5_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q4_1: return matmul_tiles<InterleavedLegacy<GgmlType::Q4_1, BlockQ4_1>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_1: return matmul_tiles<InterleavedLegacy<GgmlType::Q5_1, BlockQ5_1>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q8_0: return matmul_tiles<InterleavedLegacy<GgmlType::Q8_0, BlockQ8_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q4_K: return matmul_tiles<InterleavedQ4_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_K: return matmul_tiles<InterleavedQ5_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q6_K: return matmul_tiles<InterleavedQ6_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q3_K: return matmul_tiles<InterleavedQ3_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q2_K: return matmul_tiles<InterleavedQ2_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    default: throw std::invalid_argument("matmul_interleaved: no interleaved layout for this type");
  }
}

}  // namespace slm::kernels::SLM_INTEGER_KERNELS

namespace slm::kernels {
#if defined(__AVX512F__)
const IntegerKernelSet kAvx512IntegerKernels = {
#elif defined(__AVXVNNI__)
const IntegerKernelSet kAvxVnniIntegerKernels = {
#else
const IntegerKernelSet kAvx2IntegerKernels = {
#endif
    SLM_INTEGER_KERNELS::integer_kernel, SLM_INTEGER_KERNELS::interleaves, SLM_INTEGER_KERNELS::matmul_interleaved};
}  // namespace slm::kernels
