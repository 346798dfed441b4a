// AVX2 integer kernels over Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS and Q2_K .. Q6_K weights repacked into the 8-row
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

#include "kernels/dot_tiles_avx2.hpp"
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

// The most tokens dot_tiles serves: its sums and a block's decoded weights stay in registers
// (32 with AVX-512, 16 without).
constexpr int kRegisterTokens = kTileRows == 16 ? 8 : 4;

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
    case GgmlType::IQ4_NL: return matmul_tiles<InterleavedLegacy<GgmlType::IQ4_NL, BlockIQ4_NL>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q4_K: return matmul_tiles<InterleavedQ4_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_K: return matmul_tiles<InterleavedQ5_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::IQ4_XS: return matmul_tiles<InterleavedIQ4_XS>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
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
