// AVX2 integer kernels over Q4_0, Q5_0 and Q8_0 weights repacked into the 8-row interleaved
// layout (kernels/interleaved_blocks.hpp). Each group of 32 slots decodes in one register to
// 8 rows x 4 weights, whose halves widen to two vectors of 8 rows x one pair: one
// _mm256_madd_epi16 with a broadcast pair of activations leaves each row's sum in its own
// lane. One token then needs no horizontal additions, and a prompt fills its tile without a
// transpose. Every output is computed by the formula of matmul_int_avx2.hpp, so the bits are
// those of the row-layout kernels (tested).
// matmul_int_avxvnni.cpp compiles this file again with AVX-VNNI, in namespace avxvnni.
#ifndef SLM_INTEGER_KERNELS
#define SLM_INTEGER_KERNELS avx2
#endif

#include <immintrin.h>

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

static_assert(kInterleavedRows == kTileRows);

// One interleaved format: a tile's block is d[8] then 8 groups of kGroupBytes, and
// slots(group) gives the group's 32 weights as signed bytes, zero point removed.
template <GgmlType kType, class Block>
struct Interleaved {
  static constexpr int kWeights = kLegacyBlockSize, kGroupWeights = kLegacyBlockSize;
  static constexpr int kActivationBits = activation_magnitude_bits(kType);
  static constexpr bool kHasMin = false;
  static constexpr int kScaleBytes = kTileRows * sizeof(Fp16Bits);
  static constexpr int kGroupBytes = sizeof(Block) - sizeof(Fp16Bits);
  static constexpr int kBlockBytes = kTileRows * sizeof(Block);

  static __m256i slots(const uint8_t* group) {
    if constexpr (kType == GgmlType::Q8_0) {
      return load32(group);
    } else if constexpr (kType == GgmlType::Q5_0) {
      uint32_t high_bits;
      std::memcpy(&high_bits, group, sizeof(high_bits));
      return q5_0_signed_quants(group + sizeof(high_bits), high_bits);
    } else {
      const __m128i packed = load16(group);
      const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
      return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
    }
  }
  // The 8 rows' d as floats.
  static __m256 scales(const uint8_t* block) { return _mm256_cvtph_ps(load16(block)); }
  // sink(pair, w16) for the 16 pairs of the block: w16 lane r = the pair's two weights of row r.
  template <class Sink>
  static void decode_pairs(const uint8_t* block, Sink&& sink) {
#pragma GCC unroll 8
    for (int m = 0; m < kLegacyBlockSize / 4; ++m) {
      const __m256i q = slots(block + kScaleBytes + m * kGroupBytes);
      sink(2 * m, _mm256_cvtepi8_epi16(low_half(q)));
      sink(2 * m + 1, _mm256_cvtepi8_epi16(high_half(q)));
    }
  }
};

// One token, the 8 rows of one tile; next_tile (or nullptr) is prefetched.
template <class Format>
void dot_tile(const uint8_t* tile, const uint8_t* next_tile, int64_t n_blocks, const ActivationBlock<Format::kWeights>* x,
              float* y) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = tile + b * Format::kBlockBytes;
    if (next_tile) tiling::prefetch(next_tile + b * Format::kBlockBytes, Format::kBlockBytes);
    const __m256 scale = _mm256_mul_ps(Format::scales(block), _mm256_set1_ps(x[b].d));
    // Two sums, for two chains of additions; integer addition is exact, so the order is free.
    __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    Format::decode_pairs(block, [&](int pair, __m256i w) {
      isum[pair % 2] = madd_add(isum[pair % 2], w, broadcast_pair(x[b].q + 2 * pair));
    });
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(isum[0], isum[1])), scale, acc);
  }
  _mm256_storeu_ps(y, acc);
}

template <class Format>
void decode_interleaved_chunk(const uint8_t* tile, int64_t first_block, int n_blocks, RowTile<Format>& row_tile) {
  for (int b = 0; b < n_blocks; ++b) {
    const uint8_t* block = tile + (first_block + b) * Format::kBlockBytes;
    _mm256_store_ps(row_tile.scale[b], Format::scales(block));
    Format::decode_pairs(block, [&](int pair, __m256i w) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(row_tile.w[b * Format::kWeights / 2 + pair]), w);
    });
  }
}

// Rows row_begin .. row_end - 1 (whole tiles) of the interleaved matrix at tiles.
template <class Format>
void matmul_tiles(const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                  int64_t row_begin, int64_t row_end) {
  const ActivationBlock<Format::kWeights>* xq = quantize_activations<Format::kWeights, Format::kActivationBits>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / Format::kWeights;
  const uint64_t tile_bytes = uint64_t(n_blocks) * Format::kBlockBytes;
  const int64_t first_tile = row_begin / kTileRows, end_tile = row_end / kTileRows;
  if (n_tokens == 1) {
    for (int64_t t = first_tile; t < end_tile; ++t) {
      const uint8_t* tile = tiles + uint64_t(t) * tile_bytes;
      dot_tile<Format>(tile, t + 1 < end_tile ? tile + tile_bytes : nullptr, n_blocks, xq, y + t * kTileRows);
    }
    return;
  }
  thread_local RowTile<Format> row_tile;
  for (int64_t t = first_tile; t < end_tile; ++t) {
    const uint8_t* tile = tiles + uint64_t(t) * tile_bytes;
    const bool has_next = t + 1 < end_tile;
    const auto decode = [&](int64_t b0, int chunk_blocks, bool last_pass) {
      if (last_pass && has_next) tiling::prefetch(tile + tile_bytes + b0 * Format::kBlockBytes, chunk_blocks * Format::kBlockBytes);
      decode_interleaved_chunk<Format>(tile, b0, chunk_blocks, row_tile);
    };
    multiply_row_tile<Format>(decode, kTileRows, n_blocks, xq, n_tokens, y + t * kTileRows, y_stride, row_tile);
  }
}

}  // namespace

bool interleaves(GgmlType type) { return has_interleaved_layout(type); }

void matmul_interleaved(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  switch (type) {
    case GgmlType::Q4_0: return matmul_tiles<Interleaved<GgmlType::Q4_0, BlockQ4_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_0: return matmul_tiles<Interleaved<GgmlType::Q5_0, BlockQ5_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q8_0: return matmul_tiles<Interleaved<GgmlType::Q8_0, BlockQ8_0>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    default: throw std::invalid_argument("matmul_interleaved: no interleaved layout for this type");
  }
}

}  // namespace slm::kernels::SLM_INTEGER_KERNELS

namespace slm::kernels {
#if defined(__AVXVNNI__)
const IntegerKernelSet kAvxVnniIntegerKernels = {
#else
const IntegerKernelSet kAvx2IntegerKernels = {
#endif
    SLM_INTEGER_KERNELS::integer_kernel, SLM_INTEGER_KERNELS::interleaves, SLM_INTEGER_KERNELS::matmul_interleaved};
}  // namespace slm::kernels
