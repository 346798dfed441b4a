// A prompt's matmul with AMX-INT8 tiles (Intel since Sapphire Rapids) over Q4_0, Q5_0, Q8_0,
// Q4_K and Q6_K weights in the interleaved layout, for the AVX-512 build's interleaved kernels
// (matmul_interleaved_avx2.cpp in namespace avx512), with the bits of the formula in
// matmul_int_avx2.hpp. On 2 threads of a Xeon with AMX, 512 prompt tokens: Qwen2.5-0.5B Q4_K_M
// (Q5_0 wherever a row of 896 is no multiple of 256) 1.26x faster with Q4_0/Q5_0, its Q8_0
// file 1.27x, Llama-3.2-1B Q4_K_M (Q4_K, Q6_K) 1.71x (slm-bench, old and new builds alternating).
//
// AMX multiplies bytes only, and slm's activations are 16-bit (kernels/activation_blocks.hpp).
// Each activation q splits exactly into q = 256 * hi + lo, hi = q >> 8 (signed byte) and
// lo = q & 255 (unsigned byte), so a block's integer sum over 32 weights w is
//   sum w * q = 256 * sum w * hi + sum w * lo,
// two tile products (tdpbssd: signed x signed; tdpbusd: unsigned x signed) of exact int32
// sums: |sum w * hi| <= 32 * 128 * 128 = 2^19. The sum is the one the AVX-512 tile computes
// with vpdpwssd, and the float steps after it are the same: the same bits, tested against the
// row kernels (tests/support/kernel_checks.hpp). One tile product does 16 tokens x 16 rows x
// 32 weights (64 for the K-quants, below); vpdpwssd on a zmm register does 32 multiply-adds.
//
// Tiles: sums (16 tokens x 16 rows of int32), activations (16 tokens x 32 or 64 bytes, high or
// low) and weights (32 or 64 weights of 16 rows, 4 consecutive weights of a row per 32-bit
// column: AMX's layout for the right-hand side). The tile products of a group are stored and
// scaled in zmm registers, one group per step of the formula.
#include "kernels/matmul_amx.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace slm::kernels::avx512 {
namespace {
std::atomic<bool>& amx_allowed() {
  static std::atomic<bool> allowed{[] {
    const char* setting = std::getenv("SLM_AMX");
    return !(setting && (std::strcmp(setting, "off") == 0 || std::strcmp(setting, "0") == 0));
  }()};
  return allowed;
}
}  // namespace

void set_amx_allowed(bool allowed) { amx_allowed().store(allowed, std::memory_order_relaxed); }
}  // namespace slm::kernels::avx512

#if defined(__AMX_INT8__) && defined(__AMX_TILE__)

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cpuid.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/interleaved_formats_avx2.hpp"
#include "kernels/matmul_int_avx2.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels::avx512 {
namespace {

using avx2::ActivationBlock;

constexpr int kTileTokens = 16, kTileRows = 16;
// Activation bytes of a chunk of tokens kept together (in L2) while every row tile passes over them.
constexpr int64_t kChunkActivationBytes = 512 * 1024;

struct TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};
// The tile registers (the intrinsics take them as literal numbers): four of sums, two of
// activations (high and low bytes of 16 tokens), two of weights. The legacy formats multiply
// two row tiles at once (SUM_HIGH, SUM_LOW for the first, _2 for the second); the K-quants one,
// whose weights are split in two too (WEIGHTS: high bytes, WEIGHTS_2: low bytes).
#define SLM_TILE_SUM_HIGH 0
#define SLM_TILE_SUM_LOW 1
#define SLM_TILE_ACT_HIGH 2
#define SLM_TILE_ACT_LOW 3
#define SLM_TILE_WEIGHTS 4
#define SLM_TILE_WEIGHTS_2 5
#define SLM_TILE_SUM_HIGH_2 6
#define SLM_TILE_SUM_LOW_2 7

// The process asks Linux for the AMX tile state once (arch_prctl ARCH_REQ_XCOMP_PERM): without
// it the first tile instruction raises SIGILL.
bool request_amx_state() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool tile = edx & (1u << 24), int8 = edx & (1u << 25);
  if (!(tile && int8)) return false;
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  if ((xcr0_low & (3u << 17)) != (3u << 17)) return false;  // XTILECFG, XTILEDATA
  constexpr long kArchRequestXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchRequestXcompPerm, kXfeatureXtiledata) == 0;
}

// Tile products of step_weights weights (32 or 64) per activation row.
void configure_tiles(int step_weights) {
  TileConfig config;
  for (int t : {SLM_TILE_SUM_HIGH, SLM_TILE_SUM_LOW, SLM_TILE_SUM_HIGH_2, SLM_TILE_SUM_LOW_2})
    config.rows[t] = kTileTokens, config.bytes_per_row[t] = kTileRows * 4;
  for (int t : {SLM_TILE_ACT_HIGH, SLM_TILE_ACT_LOW}) config.rows[t] = kTileTokens, config.bytes_per_row[t] = uint16_t(step_weights);
  for (int t : {SLM_TILE_WEIGHTS, SLM_TILE_WEIGHTS_2}) config.rows[t] = uint8_t(step_weights / 4), config.bytes_per_row[t] = kTileRows * 4;
  // GCC 12's _tile_loadconfig tells the compiler it reads 8 bytes, which let it drop the
  // stores above: the instruction is written out here with the whole configuration as input.
  __asm__ volatile("ldtilecfg %0" ::"m"(config));
}

// Every token's activations as high and low bytes, scales (and for the K-quant mins, the
// sums of each 32), for each tile of 16 tokens step after step (step_weights weights), so that
// a tile product's activations are contiguous and the steps of a row pass follow each other in
// memory (the prefetchers keep up; steps a whole prompt apart left the tile loads waiting);
// block b's scale of token t at b * padded_tokens + t. Tokens past n_tokens, up to a multiple
// of 16, are zeros.
struct ActivationBytes {
  int64_t padded_tokens = 0, n_steps = 0;
  int step_weights = 0;
  // Where step `step` of the 16 tokens at t0 (a multiple of 16) begins in high and low.
  size_t at(int64_t step, int64_t t0) const { return size_t((t0 / kTileTokens * n_steps + step) * kTileTokens * step_weights); }
  std::vector<int8_t> high;
  std::vector<uint8_t> low;
  std::vector<float> d;
  std::vector<int32_t> sum32;  // [b * padded_tokens + t][i]: blocks of 256 only
};

template <int N>
void split_activations(const ActivationBlock<N>* x, int64_t n_tokens, int64_t n_blocks, int step_weights,
                       ActivationBytes& out) {
  constexpr int kSums = N / 32;
  const int64_t padded = (n_tokens + kTileTokens - 1) / kTileTokens * kTileTokens;
  out.padded_tokens = padded;
  out.step_weights = step_weights;
  out.n_steps = n_blocks * (N / step_weights);
  out.high.assign(size_t(n_blocks * padded * N), 0);
  out.low.assign(size_t(n_blocks * padded * N), 0);
  out.d.assign(size_t(n_blocks * padded), 0.0f);
  out.sum32.assign(kSums > 1 ? size_t(n_blocks * padded * kSums) : 0, 0);
  const int steps_per_block = N / step_weights;
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const ActivationBlock<N>& block = x[t * n_blocks + b];
      for (int k = 0; k < N; k += 32) {
        const __m512i q = _mm512_loadu_si512(block.q + k);
        const int64_t step = b * steps_per_block + k / step_weights;
        const size_t at = out.at(step, t / kTileTokens * kTileTokens) + size_t(t % kTileTokens * step_weights + k % step_weights);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.high.data() + at), _mm512_cvtepi16_epi8(_mm512_srai_epi16(q, 8)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.low.data() + at), _mm512_cvtepi16_epi8(q));
      }
      out.d[size_t(b * padded + t)] = block.d;
      if constexpr (kSums > 1) std::memcpy(&out.sum32[size_t((b * padded + t) * kSums)], block.sum32, sizeof(block.sum32));
    }
}

// acc[t] = fma(float(isum[t]), d * d_x[t], acc[t]) for the 16 tokens: the formula's step for a group.
inline void add_group(const __m512i (&isum)[kTileTokens], __m512 d, const float* d_x, float (&acc)[kTileTokens][kTileRows]) {
#pragma GCC unroll 16
  for (int t = 0; t < kTileTokens; ++t) {
    const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(d_x[t]));
    _mm512_store_ps(acc[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), scale, _mm512_load_ps(acc[t])));
  }
}

// Rows row0 .. row0 + n_rows - 1 of y for the n_valid first tokens of the tile.
void store_rows(const float (&acc)[kTileTokens][kTileRows], int n_valid, int n_rows, float* y, int64_t y_stride) {
  const __mmask16 rows = n_rows >= kTileRows ? __mmask16(0xffff) : __mmask16((1u << n_rows) - 1);
  for (int t = 0; t < n_valid; ++t) _mm512_mask_storeu_ps(y + t * y_stride, rows, _mm512_load_ps(acc[t]));
}

// The tiles' loop for the rows of layout tiles [first_layout_tile, end_layout_tile): tokens in
// chunks whose activation bytes stay in L2, each chunk under every pass of kPassRows rows (16 or
// 32) in turn, 16 tokens at a time. multiply(pass, t0, acc) gives the pass's sums.
template <int kPassRows, class Multiply>
void for_each_tile(int64_t n_in, int64_t n_tokens, int64_t first_layout_tile, int64_t end_layout_tile, float* y,
                   int64_t y_stride, Multiply&& multiply) {
  constexpr int kParts = kPassRows / kTileRows;
  constexpr int kLayoutTilesPerPass = kPassRows / kInterleavedRows;
  const int64_t n_passes = (end_layout_tile - first_layout_tile + kLayoutTilesPerPass - 1) / kLayoutTilesPerPass;
  alignas(64) float acc[kParts][kTileTokens][kTileRows];
  const int64_t chunk_tokens = std::max<int64_t>(kTileTokens, kChunkActivationBytes / (2 * n_in) / kTileTokens * kTileTokens);
  for (int64_t c0 = 0; c0 < n_tokens; c0 += chunk_tokens)
    for (int64_t pass = 0; pass < n_passes; ++pass)
      for (int64_t t0 = c0; t0 < std::min(n_tokens, c0 + chunk_tokens); t0 += kTileTokens) {
        multiply(pass, t0, acc);
        const int n_valid = static_cast<int>(std::min<int64_t>(kTileTokens, n_tokens - t0));
        for (int part = 0; part < kParts; ++part) {
          const int64_t row0 = (first_layout_tile + pass * kLayoutTilesPerPass) * kInterleavedRows + part * kTileRows;
          const int64_t n_rows = end_layout_tile * kInterleavedRows - row0;
          if (n_rows > 0) store_rows(acc[part], n_valid, int(std::min<int64_t>(kTileRows, n_rows)), y + t0 * y_stride + row0, y_stride);
        }
      }
}

// ---------------------------------------------------------------------------
// Q4_0, Q5_0, Q8_0: blocks of 32 signed weights, one scale each; one tile product per block.
// ---------------------------------------------------------------------------

constexpr int kLegacyWeights = kLegacyBlockSize;

// A format's layout: d[8], then 8 groups of the block's bytes without d.
template <class Block>
struct LegacyLayout {
  static constexpr int kBlockBytes = kInterleavedRows * sizeof(Block);
  static constexpr int kGroupBytes = sizeof(Block) - sizeof(Fp16Bits);
};

// One block of 16 rows in AMX's B layout, with the rows' fp16 scales as floats.
struct RowTileBlock {
  alignas(64) int8_t w[kLegacyWeights / 4][kTileRows * 4];  // [k][4r + j]: weight 4k + j of row r
  alignas(64) float d[kTileRows];
};

// Layout tile `part` (rows 8 part .. 8 part + 7) of a block into out; a missing part is zeros.
template <GgmlType kType, class Block>
void to_tile_layout(const uint8_t* layout_block, int part, RowTileBlock& out) {
  if (!layout_block) {
    for (int k = 0; k < kLegacyWeights / 4; ++k) std::memset(out.w[k] + 32 * part, 0, 32);
    std::memset(out.d + 8 * part, 0, 8 * sizeof(float));
    return;
  }
  _mm256_store_ps(out.d + 8 * part, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(layout_block))));
  for (int k = 0; k < kLegacyWeights / 4; ++k) {
    // Group k: 16-bit unit r of its first 16 bytes holds weights 4k, 4k + 1 of row r, of its
    // last 16 bytes weights 4k + 2, 4k + 3: interleaving the units gives 4 weights per row.
    const __m256i slots = avx2::legacy_group_slots<kType>(layout_block + 8 * sizeof(Fp16Bits) + k * LegacyLayout<Block>::kGroupBytes);
    const __m128i first = _mm256_castsi256_si128(slots), second = _mm256_extracti128_si256(slots, 1);
    _mm_store_si128(reinterpret_cast<__m128i*>(out.w[k] + 32 * part), _mm_unpacklo_epi16(first, second));
    _mm_store_si128(reinterpret_cast<__m128i*>(out.w[k] + 32 * part + 16), _mm_unpackhi_epi16(first, second));
  }
}

// isum[t] = 256 * high[t] + low[t]: a block's sums from its two tile products.
inline void combine_bytes(const int32_t (&high)[kTileTokens][kTileRows], const int32_t (&low)[kTileTokens][kTileRows],
                          __m512i (&isum)[kTileTokens]) {
#pragma GCC unroll 16
  for (int t = 0; t < kTileTokens; ++t)
    isum[t] = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(high[t]), 8), _mm512_load_si512(low[t]));
}

// Two row tiles (first, second: n_blocks blocks each) times the 16 tokens at t0. The tile
// products of block b are stored while the sums of block b - 1, stored one step earlier, are
// scaled: read back at once, they would wait for the tile stores to reach the cache.
void multiply_tile_pair(const RowTileBlock* first, const RowTileBlock* second, int64_t n_blocks,
                        const ActivationBytes& x, int64_t t0, float (&acc)[2][kTileTokens][kTileRows]) {
  alignas(64) int32_t high[2][2][kTileTokens][kTileRows], low[2][2][kTileTokens][kTileRows];  // [b % 2][part]
  std::memset(acc, 0, sizeof(acc));
  for (int64_t b = 0; b <= n_blocks; ++b) {
    if (b < n_blocks) {
      const size_t at = x.at(b, t0);
      const int slot = int(b % 2);
      _tile_loadd(SLM_TILE_ACT_HIGH, x.high.data() + at, kLegacyWeights);
      _tile_loadd(SLM_TILE_ACT_LOW, x.low.data() + at, kLegacyWeights);
      _tile_loadd(SLM_TILE_WEIGHTS, first[b].w, kTileRows * 4);
      _tile_loadd(SLM_TILE_WEIGHTS_2, second[b].w, kTileRows * 4);
      _tile_zero(SLM_TILE_SUM_HIGH);
      _tile_zero(SLM_TILE_SUM_LOW);
      _tile_zero(SLM_TILE_SUM_HIGH_2);
      _tile_zero(SLM_TILE_SUM_LOW_2);
      _tile_dpbssd(SLM_TILE_SUM_HIGH, SLM_TILE_ACT_HIGH, SLM_TILE_WEIGHTS);
      _tile_dpbusd(SLM_TILE_SUM_LOW, SLM_TILE_ACT_LOW, SLM_TILE_WEIGHTS);
      _tile_dpbssd(SLM_TILE_SUM_HIGH_2, SLM_TILE_ACT_HIGH, SLM_TILE_WEIGHTS_2);
      _tile_dpbusd(SLM_TILE_SUM_LOW_2, SLM_TILE_ACT_LOW, SLM_TILE_WEIGHTS_2);
      _tile_stored(SLM_TILE_SUM_HIGH, high[slot][0], kTileRows * 4);
      _tile_stored(SLM_TILE_SUM_LOW, low[slot][0], kTileRows * 4);
      _tile_stored(SLM_TILE_SUM_HIGH_2, high[slot][1], kTileRows * 4);
      _tile_stored(SLM_TILE_SUM_LOW_2, low[slot][1], kTileRows * 4);
    }
    if (b > 0) {
      const int64_t previous = b - 1;
      const int slot = int(previous % 2);
      const float* d_x = x.d.data() + previous * x.padded_tokens + t0;
      __m512i isum[kTileTokens];
      combine_bytes(high[slot][0], low[slot][0], isum);
      add_group(isum, _mm512_load_ps(first[previous].d), d_x, acc[0]);
      combine_bytes(high[slot][1], low[slot][1], isum);
      add_group(isum, _mm512_load_ps(second[previous].d), d_x, acc[1]);
    }
  }
}

template <GgmlType kType, class Block>
void matmul_legacy_amx(const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y,
                       int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const ActivationBlock<kLegacyWeights>* xq =
      avx2::quantize_activations<kLegacyWeights, activation_magnitude_bits(kType)>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / kLegacyWeights;
  constexpr int kLayoutBlockBytes = LegacyLayout<Block>::kBlockBytes;
  const uint64_t layout_tile_bytes = uint64_t(n_blocks) * kLayoutBlockBytes;
  const int64_t first_layout_tile = row_begin / kInterleavedRows, end_layout_tile = row_end / kInterleavedRows;
  // Row tiles of 16 rows, in pairs: a last odd one is paired with zeros.
  const int64_t n_row_tiles = (end_layout_tile - first_layout_tile + 3) / 4 * 2;

  // The rows once in the B layout, and the activations as bytes, for the whole call.
  thread_local std::vector<RowTileBlock> blocks;
  thread_local ActivationBytes bytes;
  blocks.resize(size_t(n_row_tiles * n_blocks));
  for (int64_t r = 0; r < n_row_tiles; ++r)
    for (int part = 0; part < 2; ++part) {
      const int64_t layout_tile = first_layout_tile + 2 * r + part;
      const uint8_t* rows = layout_tile < end_layout_tile ? tiles + uint64_t(layout_tile) * layout_tile_bytes : nullptr;
      for (int64_t b = 0; b < n_blocks; ++b)
        to_tile_layout<kType, Block>(rows ? rows + b * kLayoutBlockBytes : nullptr, part, blocks[size_t(r * n_blocks + b)]);
    }
  split_activations(xq, n_tokens, n_blocks, kLegacyWeights, bytes);
  // GCC 12's _tile_loadd does not tell the compiler that it reads memory: the stores above
  // must be done before the first one.
  __asm__ volatile("" ::: "memory");

  configure_tiles(kLegacyWeights);
  for_each_tile<2 * kTileRows>(n_in, n_tokens, first_layout_tile, end_layout_tile, y, y_stride,
                               [&](int64_t pass, int64_t t0, float (&acc)[2][kTileTokens][kTileRows]) {
                                 const RowTileBlock* pair = blocks.data() + 2 * pass * n_blocks;
                                 multiply_tile_pair(pair, pair + n_blocks, n_blocks, bytes, t0, acc);
                               });
  _tile_release();
}

// ---------------------------------------------------------------------------
// Q4_K, Q6_K: super-blocks of 256 whose sub-block scales vary by row. Their weights with the
// scale folded in (w = scale * q, what the AVX-512 tile multiplies: |w| <= 945 for Q4_K, 4096
// for Q6_K) split exactly too, w = 256 * wh + wl (wh signed, wl unsigned), so a group's sum
//   sum w * q = 65536 * sum wh * hi + 256 * (sum wh * lo + sum wl * hi) + sum wl * lo
// is four tile products of 64 weights, accumulated over the group (128 or 64 weights) in the
// tiles. The int32 arithmetic wraps, and the sum it gives is the exact one, below 2^31
// (matmul_int_avx2.hpp). Q4_K's min term stays in zmm registers, as in the AVX-512 tile.
// ---------------------------------------------------------------------------

constexpr int kSplitStepWeights = 64;
constexpr int kSuperBlockSteps = kSuperBlockSize / kSplitStepWeights;

// One super-block of 16 rows: its weights' high and low bytes in AMX's B layout, per row d,
// and for Q4_K -dmin and the sub-blocks' mins.
struct SuperBlockTiles {
  alignas(64) int8_t high[kSuperBlockSize / 4][kTileRows * 4];  // [k][4r + j]: weight 4k + j of row r
  alignas(64) uint8_t low[kSuperBlockSize / 4][kTileRows * 4];
  alignas(64) float d[kTileRows];
  alignas(64) float min_scale[kTileRows];
  alignas(64) int32_t mins[8][kTileRows];
};

// The super-block decoded by the AVX-512 tile's decode_block (weights times their scales, as
// pairs of 16-bit weights per row) into its B layout: weights 4k .. 4k + 3 of a row are pairs
// 2k and 2k + 1.
template <class Format>
void to_super_block_tiles(const avx2::RowTile<Format>& decoded, SuperBlockTiles& out) {
  static_assert(avx2::kTileRows == kTileRows && avx2::kChunkWeights == kSuperBlockSize);
  __m512i first_rows, last_rows;  // element 4r + j of rows 0-7 (8-15): pair 2k + j / 2, element j % 2 of row r
  alignas(64) int16_t index[2][32];
  for (int r = 0; r < 8; ++r)
    for (int j = 0; j < 4; ++j)
      for (int half = 0; half < 2; ++half) index[half][4 * r + j] = int16_t((j < 2 ? 0 : 32) + 2 * (r + 8 * half) + j % 2);
  first_rows = _mm512_load_si512(index[0]);
  last_rows = _mm512_load_si512(index[1]);
  for (int k = 0; k < kSuperBlockSize / 4; ++k) {
    const __m512i a = _mm512_load_si512(decoded.w[2 * k]), b = _mm512_load_si512(decoded.w[2 * k + 1]);
    const __m512i rows[2] = {_mm512_permutex2var_epi16(a, first_rows, b), _mm512_permutex2var_epi16(a, last_rows, b)};
    for (int half = 0; half < 2; ++half) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(out.high[k] + 32 * half), _mm512_cvtepi16_epi8(_mm512_srai_epi16(rows[half], 8)));
      _mm256_store_si256(reinterpret_cast<__m256i*>(out.low[k] + 32 * half), _mm512_cvtepi16_epi8(rows[half]));
    }
  }
  std::memcpy(out.d, decoded.scale[0], sizeof(out.d));
  if constexpr (Format::kHasMin) {
    std::memcpy(out.min_scale, decoded.min_scale[0], sizeof(out.min_scale));
    std::memcpy(out.mins, decoded.mins[0], sizeof(out.mins));
  }
}

// isum[t] = 65536 * hh[t] + 256 * (hl[t] + lh[t]) + ll[t]: a group's sums from its four tile products.
inline void combine_split(const int32_t (&sums)[4][kTileTokens][kTileRows], __m512i (&isum)[kTileTokens]) {
#pragma GCC unroll 16
  for (int t = 0; t < kTileTokens; ++t) {
    const __m512i middle = _mm512_add_epi32(_mm512_load_si512(sums[1][t]), _mm512_load_si512(sums[2][t]));
    isum[t] = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(sums[0][t]), 16), _mm512_slli_epi32(middle, 8)),
                               _mm512_load_si512(sums[3][t]));
  }
}

// Q4_K's min term of a super-block: acc[t] = fma(float(sum_i min_i * sum32_i), -dmin * d_x, acc[t]).
inline void add_mins(const SuperBlockTiles& tiles, const int32_t* sum32, const float* d_x, float (&acc)[kTileTokens][kTileRows]) {
  for (int t = 0; t < kTileTokens; ++t) {
    __m512i products = _mm512_setzero_si512();
    for (int i = 0; i < 8; ++i)
      products = _mm512_add_epi32(products, _mm512_mullo_epi32(_mm512_load_si512(tiles.mins[i]), _mm512_set1_epi32(sum32[8 * t + i])));
    const __m512 scale = _mm512_mul_ps(_mm512_load_ps(tiles.min_scale), _mm512_set1_ps(d_x[t]));
    _mm512_store_ps(acc[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(products), scale, _mm512_load_ps(acc[t])));
  }
}

// One row tile (n_blocks super-blocks) times the 16 tokens at t0, group by group, the sums of
// a group scaled while the next one's tile products run (as multiply_tile_pair).
template <class Format>
void multiply_super_blocks(const SuperBlockTiles* tiles, int64_t n_blocks, const ActivationBytes& x, int64_t t0,
                           float (&acc)[1][kTileTokens][kTileRows]) {
  constexpr int kGroups = kSuperBlockSize / Format::kGroupWeights, kGroupSteps = Format::kGroupWeights / kSplitStepWeights;
  alignas(64) int32_t sums[2][4][kTileTokens][kTileRows];  // [group % 2][hh, hl, lh, ll]
  std::memset(acc, 0, sizeof(acc));
  const int64_t n_groups = n_blocks * kGroups;
  for (int64_t group = 0; group <= n_groups; ++group) {
    if (group < n_groups) {
      const int64_t b = group / kGroups;
      _tile_zero(SLM_TILE_SUM_HIGH);
      _tile_zero(SLM_TILE_SUM_LOW);
      _tile_zero(SLM_TILE_SUM_HIGH_2);
      _tile_zero(SLM_TILE_SUM_LOW_2);
      for (int s = 0; s < kGroupSteps; ++s) {
        const int step_in_block = int(group % kGroups) * kGroupSteps + s;
        const size_t at = x.at(b * kSuperBlockSteps + step_in_block, t0);
        _tile_loadd(SLM_TILE_ACT_HIGH, x.high.data() + at, kSplitStepWeights);
        _tile_loadd(SLM_TILE_ACT_LOW, x.low.data() + at, kSplitStepWeights);
        _tile_loadd(SLM_TILE_WEIGHTS, tiles[b].high[step_in_block * kSplitStepWeights / 4], kTileRows * 4);
        _tile_loadd(SLM_TILE_WEIGHTS_2, tiles[b].low[step_in_block * kSplitStepWeights / 4], kTileRows * 4);
        _tile_dpbssd(SLM_TILE_SUM_HIGH, SLM_TILE_ACT_HIGH, SLM_TILE_WEIGHTS);
        _tile_dpbsud(SLM_TILE_SUM_LOW, SLM_TILE_ACT_HIGH, SLM_TILE_WEIGHTS_2);
        _tile_dpbusd(SLM_TILE_SUM_HIGH_2, SLM_TILE_ACT_LOW, SLM_TILE_WEIGHTS);
        _tile_dpbuud(SLM_TILE_SUM_LOW_2, SLM_TILE_ACT_LOW, SLM_TILE_WEIGHTS_2);
      }
      int32_t(&slot)[4][kTileTokens][kTileRows] = sums[group % 2];
      _tile_stored(SLM_TILE_SUM_HIGH, slot[0], kTileRows * 4);
      _tile_stored(SLM_TILE_SUM_LOW, slot[1], kTileRows * 4);
      _tile_stored(SLM_TILE_SUM_HIGH_2, slot[2], kTileRows * 4);
      _tile_stored(SLM_TILE_SUM_LOW_2, slot[3], kTileRows * 4);
    }
    if (group > 0) {
      const int64_t previous = group - 1, b = previous / kGroups;
      const float* d_x = x.d.data() + b * x.padded_tokens + t0;
      __m512i isum[kTileTokens];
      combine_split(sums[previous % 2], isum);
      add_group(isum, _mm512_load_ps(tiles[b].d), d_x, acc[0]);
      if constexpr (Format::kHasMin)
        if (previous % kGroups == kGroups - 1) add_mins(tiles[b], x.sum32.data() + (b * x.padded_tokens + t0) * 8, d_x, acc[0]);
    }
  }
}

template <class Format>
void matmul_k_quant_amx(const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y,
                        int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const ActivationBlock<kSuperBlockSize>* xq =
      avx2::quantize_activations<kSuperBlockSize, Format::kActivationBits>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / kSuperBlockSize;
  const uint64_t layout_tile_bytes = uint64_t(n_blocks) * Format::kBlockBytes;
  const int64_t first_layout_tile = row_begin / kInterleavedRows, end_layout_tile = row_end / kInterleavedRows;
  const int64_t n_row_tiles = (end_layout_tile - first_layout_tile + 1) / 2;

  // The rows once decoded and in the B layout, and the activations as bytes, for the whole call.
  thread_local std::vector<SuperBlockTiles> blocks;
  thread_local avx2::RowTile<Format> decoded;
  thread_local ActivationBytes bytes;
  blocks.resize(size_t(n_row_tiles * n_blocks));
  for (int64_t r = 0; r < n_row_tiles; ++r) {
    const uint8_t* rows = tiles + uint64_t(first_layout_tile + 2 * r) * layout_tile_bytes;
    const bool second_part = first_layout_tile + 2 * r + 1 < end_layout_tile;  // else its rows are zeros
    if (!second_part) std::memset(static_cast<void*>(&decoded), 0, sizeof(decoded));
    for (int64_t b = 0; b < n_blocks; ++b) {
      Format::decode_block(rows + b * Format::kBlockBytes, decoded, 0, 0);
      if (second_part) Format::decode_block(rows + layout_tile_bytes + b * Format::kBlockBytes, decoded, 0, kInterleavedRows);
      to_super_block_tiles(decoded, blocks[size_t(r * n_blocks + b)]);
    }
  }
  split_activations(xq, n_tokens, n_blocks, kSplitStepWeights, bytes);
  __asm__ volatile("" ::: "memory");  // as in matmul_legacy_amx

  configure_tiles(kSplitStepWeights);
  for_each_tile<kTileRows>(n_in, n_tokens, first_layout_tile, end_layout_tile, y, y_stride,
                           [&](int64_t pass, int64_t t0, float (&acc)[1][kTileTokens][kTileRows]) {
                             multiply_super_blocks<Format>(blocks.data() + pass * n_blocks, n_blocks, bytes, t0, acc);
                           });
  _tile_release();
}

}  // namespace

bool amx_int8_available() {
  static const bool available = request_amx_state();
  return available && amx_allowed().load(std::memory_order_relaxed);
}

bool amx_multiplies(GgmlType type) {
  return type == GgmlType::Q4_0 || type == GgmlType::Q5_0 || type == GgmlType::Q8_0 || type == GgmlType::Q4_K ||
         type == GgmlType::Q6_K;
}

void matmul_tiles_amx(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y,
                      int64_t y_stride, int64_t row_begin, int64_t row_end) {
  switch (type) {
    case GgmlType::Q4_0: return matmul_legacy_amx<GgmlType::Q4_0, BlockQ4_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_0: return matmul_legacy_amx<GgmlType::Q5_0, BlockQ5_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q8_0: return matmul_legacy_amx<GgmlType::Q8_0, BlockQ8_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q4_K: return matmul_k_quant_amx<avx2::InterleavedQ4_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q6_K: return matmul_k_quant_amx<avx2::InterleavedQ6_K>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    default: throw std::invalid_argument("matmul_tiles_amx: not a format AMX multiplies");
  }
}

}  // namespace slm::kernels::avx512

#else

namespace slm::kernels::avx512 {
bool amx_int8_available() { return false; }
bool amx_multiplies(GgmlType) { return false; }
void matmul_tiles_amx(GgmlType, const uint8_t*, int64_t, const float*, int64_t, float*, int64_t, int64_t, int64_t) {}
}  // namespace slm::kernels::avx512

#endif
