// The AVX2 Int8 matmul over the 8-row interleaved layout (kernels/matmul_int8.hpp): the
// activations quantized once per call, then a few tokens multiplied with each block in
// registers, or a prompt's tokens with each chunk of 8 layout tiles decoded once into L1
// tiles.
// matmul_int8_avx512.cpp compiles this file again with AVX-512 VNNI + VL, in namespace avx512,
// and matmul_int8_avxvnni.cpp with AVX-VNNI, in namespace avxvnni: there the formats multiply
// bytes with vpdpbusd (kByteDotProducts, matmul_int8_lanes_avx2.hpp).
#ifndef SLM_INTEGER_KERNELS
#define SLM_INTEGER_KERNELS avx2
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/dot_tiles_avx2.hpp"
#include "kernels/interleaved_blocks.hpp"
#include "kernels/matmul_int8_avx2.hpp"
#include "kernels/matmul_int8_formats_avx2.hpp"
#include "kernels/matmul_isa.hpp"
#include "kernels/matmul_tiling.hpp"

namespace slm::kernels::SLM_INTEGER_KERNELS {
using namespace slm::kernels::avx2;
namespace {

// The most tokens the register path serves: their sums and a block's decoded weights stay in
// the 16 ymm registers.
constexpr int kInt8RegisterTokens = 4;
constexpr int kInt8TileTokens = 144;  // tokens that reuse one decoded chunk
constexpr int kInt8GroupTiles = 8;  // layout tiles that reuse one pass's activation blocks in L1

// The activation blocks a format's dot_block reads: its LaneX where it has its own one-token
// order (kLaneActivations), expanded from the Int8Blocks once per call, else the Int8Blocks.
template <class Format>
concept HasLaneActivations = Format::kLaneActivations;
template <class Format>
struct DotActivationsOf {
  using type = Int8Block<Format::kWeights>;
};
template <HasLaneActivations Format>
struct DotActivationsOf<Format> {
  using type = typename Format::LaneX;
};
template <class Format>
using DotActivations = typename DotActivationsOf<Format>::type;

// The n blocks xq (made from x) as dot_block reads them: the format's LaneX expanded once per
// activations name, as xq itself (convert_tokens_once), else xq.
template <class Format>
const DotActivations<Format>* dot_activations(const Int8Block<Format::kWeights>* xq, const float* x, int64_t n_tokens,
                                              int64_t n_in) {
  if constexpr (HasLaneActivations<Format>) {
    static constexpr char kConversion = 0;  // names this expansion for convert_tokens_once
    const int64_t n = n_tokens * (n_in / Format::kWeights);
    return convert_tokens_once<typename Format::LaneX>(x, n_tokens, n_in, &kConversion, size_t(n),
                                                        [&](typename Format::LaneX* lanes) {
                                                          for (int64_t i = 0; i < n; ++i) Format::expand(xq[i], lanes[i]);
                                                        });
  } else {
    return xq;
  }
}

// accumulate<kTokens> for n < kPassTokens tokens.
template <class Format, int kTokens>
void accumulate_remainder(const typename Format::Tile& tile, int n_blocks, const Int8Block<Format::kWeights>* const* x_tokens,
                          __m256* acc, int n) {
  if constexpr (kTokens > 0) {
    if (n == kTokens) return Format::template accumulate<kTokens>(tile, n_blocks, x_tokens, acc);
    accumulate_remainder<Format, kTokens - 1>(tile, n_blocks, x_tokens, acc, n);
  }
}

// A pass's last n < kPassTokens tokens (accumulate_remainder), out of line: GCC inlined the
// chain into Q5_1's multiply_tiles of the AVX-512 build once IQ4_XS joined this file, and 8 tokens
// of Q5_1 ran 1.2x slower (bench_matmul matmul_interleaved_int8/avx512/Q5_1/tokens:8, Zen 4).
template <class Format>
[[gnu::noinline]] void accumulate_last_tokens(const typename Format::Tile& tile, int n_blocks,
                                              const Int8Block<Format::kWeights>* const* x_tokens, __m256* acc, int n) {
  accumulate_remainder<Format, Format::kPassTokens - 1>(tile, n_blocks, x_tokens, acc, n);
}

// kR consecutive layout tiles (8 rows each) for every token: tiles of kInt8TileTokens tokens,
// each over the rows' chunks, each chunk decoded once per layout tile and served kPassTokens
// tokens at a time to the kR tiles in turn, so that the first tile brings the pass's
// activation blocks to L1 and the others find them there (the activations, not the weights,
// were the prompt loop's bottleneck). Each (row, token) is still one accumulate chain.
// n_next (<= kR) layout tiles follow at next_tiles; they are prefetched.
template <class Format, int kR>
void multiply_tiles(const uint8_t* first_tile, uint64_t tile_bytes, const uint8_t* next_tiles, int n_next,
                    int64_t n_blocks, const Int8Block<Format::kWeights>* xq, int64_t n_tokens, float* y,
                    int64_t y_stride) {
  constexpr int kChunkBlocks = kInt8ChunkWeights / Format::kWeights;
  // On the stack: a thread_local tile cost a __tls_get_addr call, and the spills of every ymm
  // register around it, per pass of kPassTokens tokens (PIC code).
  alignas(64) typename Format::Tile tile[kR];
  alignas(32) __m256 acc[kR][kInt8TileTokens];
  const Int8Block<Format::kWeights>* x_tokens[kInt8TileTokens];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kInt8TileTokens) {
    const int tile_tokens = static_cast<int>(std::min<int64_t>(kInt8TileTokens, n_tokens - t0));
    const bool last_pass = t0 + kInt8TileTokens >= n_tokens;
    for (int r = 0; r < kR; ++r)
      for (int t = 0; t < tile_tokens; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
      const int chunk_blocks = static_cast<int>(std::min<int64_t>(kChunkBlocks, n_blocks - b0));
      if (last_pass)
        for (int r = 0; r < n_next; ++r)
          tiling::prefetch(next_tiles + r * tile_bytes + b0 * Format::kBlockBytes, chunk_blocks * Format::kBlockBytes);
      for (int r = 0; r < kR; ++r)
        for (int b = 0; b < chunk_blocks; ++b)
          Format::decode_block(first_tile + r * tile_bytes + (b0 + b) * Format::kBlockBytes, tile[r], b);
      for (int t = 0; t < tile_tokens; ++t) x_tokens[t] = xq + (t0 + t) * n_blocks + b0;
      int t = 0;
      for (; t + Format::kPassTokens <= tile_tokens; t += Format::kPassTokens)
        for (int r = 0; r < kR; ++r)
          Format::template accumulate<Format::kPassTokens>(tile[r], chunk_blocks, x_tokens + t, acc[r] + t);
      for (int r = 0; r < kR; ++r)
        accumulate_last_tokens<Format>(tile[r], chunk_blocks, x_tokens + t, acc[r] + t, tile_tokens - t);
    }
    for (int r = 0; r < kR; ++r)
      for (int t = 0; t < tile_tokens; ++t)
        _mm256_storeu_ps(y + (t0 + t) * y_stride + r * kInterleavedRows, acc[r][t]);
  }
}

// Layout tiles in groups of kInt8GroupTiles; the remainder (fewer) through multiply_tiles<kR - 1>.
template <class Format, int kR>
void multiply_tile_group(const uint8_t* tiles, uint64_t tile_bytes, int64_t first_tile, int64_t end_tile,
                         int64_t n_blocks, const Int8Block<Format::kWeights>* xq, int64_t n_tokens, float* y,
                         int64_t y_stride) {
  int64_t t = first_tile;
  for (; t + kR <= end_tile; t += kR) {
    const int n_next = static_cast<int>(std::min<int64_t>(kR, end_tile - t - kR));
    const uint8_t* tile = tiles + uint64_t(t) * tile_bytes;
    multiply_tiles<Format, kR>(tile, tile_bytes, tile + kR * tile_bytes, n_next, n_blocks, xq, n_tokens,
                               y + t * kInterleavedRows, y_stride);
  }
  if constexpr (kR > 1) {
    if (t < end_tile)
      multiply_tile_group<Format, kR - 1>(tiles, tile_bytes, t, end_tile, n_blocks, xq, n_tokens, y, y_stride);
  }
}

template <class Format>
void matmul_tiles(const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                  int64_t row_begin, int64_t row_end) {
  const Int8Block<Format::kWeights>* xq = quantize_int8_activations<Format::kWeights>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / Format::kWeights;
  const uint64_t tile_bytes = uint64_t(n_blocks) * Format::kBlockBytes;
  const int64_t first_tile = row_begin / kInterleavedRows, end_tile = row_end / kInterleavedRows;
  if (n_tokens <= kInt8RegisterTokens)
    return dot_tiles<Format, kInt8RegisterTokens>(tiles, tile_bytes, n_blocks,
                                                  dot_activations<Format>(xq, x, n_tokens, n_in), n_tokens, y,
                                                  y_stride, first_tile, end_tile);
  multiply_tile_group<Format, kInt8GroupTiles>(tiles, tile_bytes, first_tile, end_tile, n_blocks, xq, n_tokens, y,
                                               y_stride);
}

template <GgmlType kType>
bool run_if_ready(const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                  int64_t row_begin, int64_t row_end) {
  if constexpr (Int8Format<kType>::kReady) {
    matmul_tiles<Int8Format<kType>>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    return true;
  } else {
    return false;
  }
}

}  // namespace

bool int8_activations(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return Int8Format<GgmlType::Q4_0>::kReady;
    case GgmlType::Q5_0: return Int8Format<GgmlType::Q5_0>::kReady;
    case GgmlType::Q4_1: return Int8Format<GgmlType::Q4_1>::kReady;
    case GgmlType::Q5_1: return Int8Format<GgmlType::Q5_1>::kReady;
    case GgmlType::Q8_0: return Int8Format<GgmlType::Q8_0>::kReady;
    case GgmlType::IQ4_NL: return Int8Format<GgmlType::IQ4_NL>::kReady;
    case GgmlType::Q4_K: return Int8Format<GgmlType::Q4_K>::kReady;
    case GgmlType::Q5_K: return Int8Format<GgmlType::Q5_K>::kReady;
    case GgmlType::IQ4_XS: return Int8Format<GgmlType::IQ4_XS>::kReady;
    case GgmlType::Q6_K: return Int8Format<GgmlType::Q6_K>::kReady;
    default: return false;
  }
}

void matmul_interleaved_int8(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  bool ran = false;
  switch (type) {
    case GgmlType::Q4_0: ran = run_if_ready<GgmlType::Q4_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::Q5_0: ran = run_if_ready<GgmlType::Q5_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::Q4_1: ran = run_if_ready<GgmlType::Q4_1>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::Q5_1: ran = run_if_ready<GgmlType::Q5_1>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::Q8_0: ran = run_if_ready<GgmlType::Q8_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::IQ4_NL: ran = run_if_ready<GgmlType::IQ4_NL>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::Q4_K: ran = run_if_ready<GgmlType::Q4_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::Q5_K: ran = run_if_ready<GgmlType::Q5_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::IQ4_XS: ran = run_if_ready<GgmlType::IQ4_XS>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    case GgmlType::Q6_K: ran = run_if_ready<GgmlType::Q6_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end); break;
    default: break;
  }
  if (!ran)
    throw std::invalid_argument(std::string("matmul_interleaved_int8: no Int8 kernel for ") +
                                std::string(ggml_type_name(type)));
}

}  // namespace slm::kernels::SLM_INTEGER_KERNELS
