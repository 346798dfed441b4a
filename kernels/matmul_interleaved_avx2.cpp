// AVX2 integer kernels over Q4_0, Q5_0, Q8_0, Q4_K and Q6_K weights repacked into the 8-row
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

// The 32 nibbles of 16 bytes, one per byte: byte j the low nibble of byte j (j < 16), or the
// high one of byte j - 16.
__m256i nibbles(const uint8_t* bytes) {
  const __m128i packed = load16(bytes);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
}

// The 8 bytes at p: one per row.
__m128i load8(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }

// Row r's 16-bit value in lanes 2r and 2r + 1, beside its pair of weights.
__m256i per_pair(__m128i rows) { return _mm256_set_m128i(_mm_unpackhi_epi16(rows, rows), _mm_unpacklo_epi16(rows, rows)); }

template <class Format>
void store_pair(RowTile<Format>& tile, int pair, int row0, __m256i w) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(tile.w[pair][row0]), w);
}

// Each interleaved format gives, for one block of a tile (8 rows):
//   dot_block(block, x, acc): acc lane r += row r's part of one token's dot product, by the
//     formula of matmul_int_avx2.hpp (one fma per group, then the min term);
//   decode_block(block, tile, b, row0): the block as block b of rows row0 .. row0 + 7 of a
//     prompt tile (weights with their
//     sub-block scales, scales, mins).

// Q4_0, Q5_0, Q8_0: d[8], then 8 groups of kGroupBytes; slots(group) gives the group's 32
// weights as signed bytes, zero point removed.
template <GgmlType kType, class Block>
struct InterleavedLegacy {
  static constexpr int kWeights = kLegacyBlockSize, kGroupWeights = kLegacyBlockSize;
  static constexpr int kActivationBits = activation_magnitude_bits(kType);
  static constexpr bool kHasMin = false;
  static constexpr int kScaleBytes = kInterleavedRows * sizeof(Fp16Bits);
  static constexpr int kGroupBytes = sizeof(Block) - sizeof(Fp16Bits);
  static constexpr int kBlockBytes = kInterleavedRows * sizeof(Block);

  static __m256i slots(const uint8_t* group) {
    if constexpr (kType == GgmlType::Q8_0) {
      return load32(group);
    } else if constexpr (kType == GgmlType::Q5_0) {
      uint32_t high_bits;
      std::memcpy(&high_bits, group, sizeof(high_bits));
      return q5_0_signed_quants(group + sizeof(high_bits), high_bits);
    } else {
      return _mm256_sub_epi8(nibbles(group), _mm256_set1_epi8(8));
    }
  }

  static void dot_block(const uint8_t* block, const ActivationBlock<kWeights>& x, __m256& acc) {
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(load16(block)), _mm256_set1_ps(x.d));
    // Two sums, for two chains of additions; integer addition is exact, so the order is free.
    __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 8
    for (int m = 0; m < kLegacyBlockSize / 4; ++m) {
      const __m256i q = slots(block + kScaleBytes + m * kGroupBytes);
      isum[0] = madd_add(isum[0], _mm256_cvtepi8_epi16(low_half(q)), broadcast_pair(x.q + 4 * m));
      isum[1] = madd_add(isum[1], _mm256_cvtepi8_epi16(high_half(q)), broadcast_pair(x.q + 4 * m + 2));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(isum[0], isum[1])), scale, acc);
  }

  static void decode_block(const uint8_t* block, RowTile<InterleavedLegacy>& tile, int b, int row0) {
    _mm256_store_ps(tile.scale[b] + row0, _mm256_cvtph_ps(load16(block)));
#pragma GCC unroll 8
    for (int m = 0; m < kLegacyBlockSize / 4; ++m) {
      const __m256i q = slots(block + kScaleBytes + m * kGroupBytes);
      store_pair(tile, b * kWeights / 2 + 2 * m, row0, _mm256_cvtepi8_epi16(low_half(q)));
      store_pair(tile, b * kWeights / 2 + 2 * m + 1, row0, _mm256_cvtepi8_epi16(high_half(q)));
    }
  }
};

// Q4_K: d[8], dmin[8], scale[8][8], min[8][8] ([sub-block][row]), then per sub-block 8
// groups of 16 nibble bytes. The sub-block scale multiplies the 8 rows' int32 sums of each
// sub-block (one _mm256_mullo_epi32 per 32 x 8 weights) instead of every weight.
struct InterleavedQ4_K {
  static constexpr int kWeights = kSuperBlockSize, kGroupWeights = 128;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q4_K);
  static constexpr bool kHasMin = true;
  static constexpr int kBlockBytes = kQ4KTileBlockBytes;
  static constexpr int kSubBlocks = 8, kScalesOffset = 32, kMinsOffset = 96, kQuantsOffset = 160;

  // Lane r: row r's scale (or min) of sub-block i.
  static __m256i sub_block_bytes(const uint8_t* block, int offset, int i) {
    return _mm256_cvtepu8_epi32(load8(block + offset + kInterleavedRows * i));
  }
  // Group m of sub-block i as two vectors of 16-bit weights (slots 0-15, then 16-31): the 16
  // bytes widened once, then masked and shifted, with no cross-lane step.
  static void quants(const uint8_t* block, int i, int m, __m256i& low, __m256i& high) {
    const __m256i bytes = _mm256_cvtepu8_epi16(load16(block + kQuantsOffset + (i * 8 + m) * 16));
    low = _mm256_and_si256(bytes, _mm256_set1_epi16(0x0f));
    high = _mm256_srli_epi16(bytes, 4);
  }

  static void dot_block(const uint8_t* block, const ActivationBlock<kWeights>& x, __m256& acc) {
    const __m256 d_x = _mm256_set1_ps(x.d);
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(load16(block)), d_x);
    for (int g = 0; g < kWeights / kGroupWeights; ++g) {
      __m256i isum = _mm256_setzero_si256();
      for (int i = g * 4; i < g * 4 + 4; ++i) {
        __m256i sub[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 8
        for (int m = 0; m < 8; ++m) {
          __m256i low, high;
          quants(block, i, m, low, high);
          sub[0] = madd_add(sub[0], low, broadcast_pair(x.q + 32 * i + 4 * m));
          sub[1] = madd_add(sub[1], high, broadcast_pair(x.q + 32 * i + 4 * m + 2));
        }
        isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(_mm256_add_epi32(sub[0], sub[1]), sub_block_bytes(block, kScalesOffset, i)));
      }
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc);
    }
    __m256i products = _mm256_setzero_si256();
    for (int i = 0; i < kSubBlocks; ++i)
      products = _mm256_add_epi32(products, _mm256_mullo_epi32(sub_block_bytes(block, kMinsOffset, i), _mm256_set1_epi32(x.sum32[i])));
    const __m256 min_scale = _mm256_mul_ps(_mm256_cvtph_ps(load16(block + 16)), _mm256_xor_ps(d_x, _mm256_set1_ps(-0.0f)));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), min_scale, acc);
  }

  static void decode_block(const uint8_t* block, RowTile<InterleavedQ4_K>& tile, int b, int row0) {
    _mm256_store_ps(tile.scale[b] + row0, _mm256_cvtph_ps(load16(block)));
    _mm256_store_ps(tile.min_scale[b] + row0, _mm256_xor_ps(_mm256_cvtph_ps(load16(block + 16)), _mm256_set1_ps(-0.0f)));
    for (int i = 0; i < kSubBlocks; ++i) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(tile.mins[b][i] + row0), sub_block_bytes(block, kMinsOffset, i));
      const __m256i pair_scales = per_pair(_mm_cvtepu8_epi16(load8(block + kScalesOffset + kInterleavedRows * i)));
      for (int m = 0; m < 8; ++m) {
        __m256i low, high;
        quants(block, i, m, low, high);
        const int pair = b * kWeights / 2 + 16 * i + 2 * m;
        store_pair(tile, pair, row0, _mm256_mullo_epi16(low, pair_scales));
        store_pair(tile, pair + 1, row0, _mm256_mullo_epi16(high, pair_scales));
      }
    }
  }
};

// Q6_K: d[8], scale[16][8] (int8, [sub-block][row]), then per 32 weights c 8 groups of 24
// bytes: 16 of low nibbles, 8 of top 2 bits (byte k: slots k, k + 8, k + 16, k + 24). Groups
// 0-3 of c are sub-block 2c, groups 4-7 sub-block 2c + 1, whose scales multiply int32 sums.
struct InterleavedQ6_K {
  static constexpr int kWeights = kSuperBlockSize, kGroupWeights = 64;
  static constexpr int kActivationBits = activation_magnitude_bits(GgmlType::Q6_K);
  static constexpr bool kHasMin = false;
  static constexpr int kBlockBytes = kQ6KTileBlockBytes;
  static constexpr int kScalesOffset = 16, kQuantsOffset = 144, kGroupBytes = 24;

  // The group's 32 weights as signed bytes q - 32.
  static __m256i quants(const uint8_t* block, int c, int m) {
    const uint8_t* group = block + kQuantsOffset + (c * 8 + m) * kGroupBytes;
    int64_t top_bits;
    std::memcpy(&top_bits, group + 16, sizeof(top_bits));
    // 64-bit lane L: byte k's bits 2L, 2L + 1 moved to bits 0, 1: the top bits of slot 8L + k.
    const __m256i high = _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x(top_bits), _mm256_set_epi64x(6, 4, 2, 0)),
                                          _mm256_set1_epi8(3));
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(group), _mm256_slli_epi16(high, 4)), _mm256_set1_epi8(32));
  }
  static const uint8_t* sub_block_scales(const uint8_t* block, int i) { return block + kScalesOffset + kInterleavedRows * i; }

  static void dot_block(const uint8_t* block, const ActivationBlock<kWeights>& x, __m256& acc) {
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(load16(block)), _mm256_set1_ps(x.d));
    for (int g = 0; g < kWeights / kGroupWeights; ++g) {
      __m256i isum = _mm256_setzero_si256();
      for (int c = 2 * g; c < 2 * g + 2; ++c) {
        __m256i sub[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};  // sub-blocks 2c, 2c + 1
#pragma GCC unroll 8
        for (int m = 0; m < 8; ++m) {
          const __m256i q = quants(block, c, m);
          sub[m / 4] = madd_add(sub[m / 4], _mm256_cvtepi8_epi16(low_half(q)), broadcast_pair(x.q + 32 * c + 4 * m));
          sub[m / 4] = madd_add(sub[m / 4], _mm256_cvtepi8_epi16(high_half(q)), broadcast_pair(x.q + 32 * c + 4 * m + 2));
        }
        for (int k = 0; k < 2; ++k) {
          const __m256i scales = _mm256_cvtepi8_epi32(load8(sub_block_scales(block, 2 * c + k)));
          isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(sub[k], scales));
        }
      }
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc);
    }
  }

  static void decode_block(const uint8_t* block, RowTile<InterleavedQ6_K>& tile, int b, int row0) {
    _mm256_store_ps(tile.scale[b] + row0, _mm256_cvtph_ps(load16(block)));
    for (int c = 0; c < 8; ++c)
      for (int k = 0; k < 2; ++k) {
        const __m256i pair_scales = per_pair(_mm_cvtepi8_epi16(load8(sub_block_scales(block, 2 * c + k))));
        for (int m = 4 * k; m < 4 * k + 4; ++m) {
          const __m256i q = quants(block, c, m);
          const int pair = b * kWeights / 2 + 16 * c + 2 * m;
          store_pair(tile, pair, row0, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(low_half(q)), pair_scales));
          store_pair(tile, pair + 1, row0, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(high_half(q)), pair_scales));
        }
      }
  }
};

// One token, the 8 rows of one tile; next_tile (or nullptr) is prefetched.
template <class Format>
void dot_tile(const uint8_t* tile, const uint8_t* next_tile, int64_t n_blocks, const ActivationBlock<Format::kWeights>* x,
              float* y) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    if (next_tile) tiling::prefetch(next_tile + b * Format::kBlockBytes, Format::kBlockBytes);
    Format::dot_block(tile + b * Format::kBlockBytes, x[b], acc);
  }
  _mm256_storeu_ps(y, acc);
}

// Rows row_begin .. row_end - 1 (whole tiles) of the interleaved matrix at tiles.
template <class Format>
void matmul_tiles(const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                  int64_t row_begin, int64_t row_end) {
  const ActivationBlock<Format::kWeights>* xq = quantize_activations<Format::kWeights, Format::kActivationBits>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / Format::kWeights;
  const uint64_t tile_bytes = uint64_t(n_blocks) * Format::kBlockBytes;
  const int64_t first_tile = row_begin / kInterleavedRows, end_tile = row_end / kInterleavedRows;
  if (n_tokens == 1) {
    for (int64_t t = first_tile; t < end_tile; ++t) {
      const uint8_t* tile = tiles + uint64_t(t) * tile_bytes;
      dot_tile<Format>(tile, t + 1 < end_tile ? tile + tile_bytes : nullptr, n_blocks, xq, y + t * kInterleavedRows);
    }
    return;
  }
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

void matmul_interleaved(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  switch (type) {
    case GgmlType::Q4_0: return matmul_tiles<InterleavedLegacy<GgmlType::Q4_0, BlockQ4_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_0: return matmul_tiles<InterleavedLegacy<GgmlType::Q5_0, BlockQ5_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q8_0: return matmul_tiles<InterleavedLegacy<GgmlType::Q8_0, BlockQ8_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q4_K: return matmul_tiles<InterleavedQ4_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q6_K: return matmul_tiles<InterleavedQ6_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
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
