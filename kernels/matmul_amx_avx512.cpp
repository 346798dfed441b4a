// A prompt's matmul with AMX-INT8 tiles (Intel since Sapphire Rapids) over Q4_0, Q5_0 and Q8_0
// weights in the interleaved layout, for the AVX-512 build's interleaved kernels
// (matmul_interleaved_avx2.cpp in namespace avx512), with the bits of the formula in
// matmul_int_avx2.hpp. Their weights are signed bytes once the zero point is taken off. On 2
// threads of a Xeon with AMX, 512 prompt tokens: Qwen2.5-0.5B Q4_K_M (Q5_0 wherever a row of 896
// is no multiple of 256) 1.26x faster, its Q8_0 file 1.27x (slm-bench, old and new builds
// alternating; bench_matmul's Q8_0 tokens:64 on one thread 1.45x).
//
// AMX multiplies bytes only, and slm's activations are 16-bit (kernels/activation_blocks.hpp).
// Each activation q splits exactly into q = 256 * hi + lo, hi = q >> 8 (signed byte) and
// lo = q & 255 (unsigned byte), so a block's integer sum over 32 weights w is
//   sum w * q = 256 * sum w * hi + sum w * lo,
// two tile products (tdpbssd: signed x signed; tdpbusd: unsigned x signed) of exact int32
// sums: |sum w * hi| <= 32 * 128 * 128 = 2^19. The sum is the one the AVX-512 tile computes
// with vpmaddwd, and the float steps after it are the same: the same bits, tested against the
// row kernels (tests/support/kernel_checks.hpp). One tile product does 16 tokens x 16 rows x
// 32 weights; vpmaddwd on a zmm register does 32 multiply-adds.
//
// Tiles: C_hi, C_lo (16 tokens x 16 rows of int32), A_hi, A_lo (16 tokens x 32 activation
// bytes of one block) and B (the block's 32 weights of 16 rows, 4 consecutive weights of a row
// per 32-bit column: AMX's layout for the right-hand side).
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
#include "kernels/matmul_int_avx2.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels::avx512 {
namespace {

using avx2::ActivationBlock;

constexpr int kTileTokens = 16, kTileRows = 16, kBlockWeights = kLegacyBlockSize;

// A format's layout: d[8], then 8 groups of the block's bytes without d.
template <class Block>
struct LegacyLayout {
  static constexpr int kBlockBytes = kInterleavedRows * sizeof(Block);
  static constexpr int kGroupBytes = sizeof(Block) - sizeof(Fp16Bits);
};
// Activation bytes of a chunk of tokens kept together (in L2) while every row tile passes over them.
constexpr int64_t kChunkActivationBytes = 512 * 1024;

// One block of 16 rows in AMX's B layout, with the rows' fp16 scales as floats.
struct RowTileBlock {
  alignas(64) int8_t w[kBlockWeights / 4][kTileRows * 4];  // [k][4r + j]: weight 4k + j of row r
  alignas(64) float d[kTileRows];
};

struct TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};
// The tile registers (the intrinsics take them as literal numbers).
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

void configure_tiles() {
  TileConfig config;
  for (int t : {SLM_TILE_SUM_HIGH, SLM_TILE_SUM_LOW, SLM_TILE_SUM_HIGH_2, SLM_TILE_SUM_LOW_2})
    config.rows[t] = kTileTokens, config.bytes_per_row[t] = kTileRows * 4;
  for (int t : {SLM_TILE_ACT_HIGH, SLM_TILE_ACT_LOW}) config.rows[t] = kTileTokens, config.bytes_per_row[t] = kBlockWeights;
  for (int t : {SLM_TILE_WEIGHTS, SLM_TILE_WEIGHTS_2}) config.rows[t] = kBlockWeights / 4, config.bytes_per_row[t] = kTileRows * 4;
  // GCC 12's _tile_loadconfig tells the compiler it reads 8 bytes, which let it drop the
  // stores above: the instruction is written out here with the whole configuration as input.
  __asm__ volatile("ldtilecfg %0" ::"m"(config));
}

// Layout tile `part` (rows 8 part .. 8 part + 7) of a block into out; a missing part is zeros.
template <GgmlType kType, class Block>
void to_tile_layout(const uint8_t* layout_block, int part, RowTileBlock& out) {
  if (!layout_block) {
    for (int k = 0; k < kBlockWeights / 4; ++k) std::memset(out.w[k] + 32 * part, 0, 32);
    std::memset(out.d + 8 * part, 0, 8 * sizeof(float));
    return;
  }
  _mm256_store_ps(out.d + 8 * part, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(layout_block))));
  for (int k = 0; k < kBlockWeights / 4; ++k) {
    // Group k: 16-bit unit r of its first 16 bytes holds weights 4k, 4k + 1 of row r, of its
    // last 16 bytes weights 4k + 2, 4k + 3: interleaving the units gives 4 weights per row.
    const __m256i slots = avx2::legacy_group_slots<kType>(layout_block + 8 * sizeof(Fp16Bits) + k * LegacyLayout<Block>::kGroupBytes);
    const __m128i first = _mm256_castsi256_si128(slots), second = _mm256_extracti128_si256(slots, 1);
    _mm_store_si128(reinterpret_cast<__m128i*>(out.w[k] + 32 * part), _mm_unpacklo_epi16(first, second));
    _mm_store_si128(reinterpret_cast<__m128i*>(out.w[k] + 32 * part + 16), _mm_unpackhi_epi16(first, second));
  }
}

// Every token's activations as high and low bytes and scales, block by block: block b of
// token t at b * padded_tokens + t, so that a tile of 16 tokens is 512 contiguous bytes. Tokens
// past n_tokens, up to a multiple of 16, are zeros.
struct ActivationBytes {
  int64_t padded_tokens = 0;
  std::vector<int8_t> high;
  std::vector<uint8_t> low;
  std::vector<float> d;
};

void split_activations(const ActivationBlock<kBlockWeights>* x, int64_t n_tokens, int64_t n_blocks, ActivationBytes& out) {
  const int64_t padded = (n_tokens + kTileTokens - 1) / kTileTokens * kTileTokens;
  out.padded_tokens = padded;
  out.high.assign(size_t(n_blocks * padded * kBlockWeights), 0);
  out.low.assign(size_t(n_blocks * padded * kBlockWeights), 0);
  out.d.assign(size_t(n_blocks * padded), 0.0f);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const ActivationBlock<kBlockWeights>& block = x[t * n_blocks + b];
      const __m512i q = _mm512_loadu_si512(block.q);
      const size_t at = size_t(b * padded + t);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.high.data() + at * kBlockWeights), _mm512_cvtepi16_epi8(_mm512_srai_epi16(q, 8)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.low.data() + at * kBlockWeights), _mm512_cvtepi16_epi8(q));
      out.d[at] = block.d;
    }
}

// acc[t] += (256 * high[t] + low[t]) * (d * d_x[t]) for the 16 tokens: the formula's step for a block.
inline void add_block(const int32_t (&high)[kTileTokens][kTileRows], const int32_t (&low)[kTileTokens][kTileRows],
                      __m512 d, const float* d_x, float (&acc)[kTileTokens][kTileRows]) {
#pragma GCC unroll 16
  for (int t = 0; t < kTileTokens; ++t) {
    const __m512i isum = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(high[t]), 8), _mm512_load_si512(low[t]));
    const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(d_x[t]));
    _mm512_store_ps(acc[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, _mm512_load_ps(acc[t])));
  }
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
      const size_t at = size_t(b * x.padded_tokens + t0);
      const int slot = int(b % 2);
      _tile_loadd(SLM_TILE_ACT_HIGH, x.high.data() + at * kBlockWeights, kBlockWeights);
      _tile_loadd(SLM_TILE_ACT_LOW, x.low.data() + at * kBlockWeights, kBlockWeights);
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
      add_block(high[slot][0], low[slot][0], _mm512_load_ps(first[previous].d), d_x, acc[0]);
      add_block(high[slot][1], low[slot][1], _mm512_load_ps(second[previous].d), d_x, acc[1]);
    }
  }
}

// Rows row0 .. row0 + n_rows - 1 of y for the n_valid first tokens of the tile.
void store_rows(const float (&acc)[kTileTokens][kTileRows], int n_valid, int n_rows, float* y, int64_t y_stride) {
  const __mmask16 rows = n_rows >= kTileRows ? __mmask16(0xffff) : __mmask16((1u << n_rows) - 1);
  for (int t = 0; t < n_valid; ++t) _mm512_mask_storeu_ps(y + t * y_stride, rows, _mm512_load_ps(acc[t]));
}

template <GgmlType kType, class Block>
void matmul_tiles_amx(const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                      int64_t row_begin, int64_t row_end) {
  const ActivationBlock<kBlockWeights>* xq =
      avx2::quantize_activations<kBlockWeights, activation_magnitude_bits(kType)>(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / kBlockWeights;
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
  split_activations(xq, n_tokens, n_blocks, bytes);
  // GCC 12's _tile_loadd does not tell the compiler that it reads memory: the stores above
  // must be done before the first one.
  __asm__ volatile("" ::: "memory");

  configure_tiles();
  alignas(64) float acc[2][kTileTokens][kTileRows];
  const int64_t chunk_tokens = std::max<int64_t>(kTileTokens, kChunkActivationBytes / (2 * n_in) / kTileTokens * kTileTokens);
  for (int64_t c0 = 0; c0 < n_tokens; c0 += chunk_tokens)
    for (int64_t r = 0; r < n_row_tiles; r += 2)
      for (int64_t t0 = c0; t0 < std::min(n_tokens, c0 + chunk_tokens); t0 += kTileTokens) {
        multiply_tile_pair(blocks.data() + r * n_blocks, blocks.data() + (r + 1) * n_blocks, n_blocks, bytes, t0, acc);
        const int n_valid = static_cast<int>(std::min<int64_t>(kTileTokens, n_tokens - t0));
        for (int part = 0; part < 2; ++part) {
          const int64_t row0 = (first_layout_tile + 2 * (r + part)) * kInterleavedRows;
          const int64_t n_rows = end_layout_tile * kInterleavedRows - row0;
          if (n_rows > 0) store_rows(acc[part], n_valid, int(std::min<int64_t>(kTileRows, n_rows)), y + t0 * y_stride + row0, y_stride);
        }
      }
  _tile_release();
}

}  // namespace

bool amx_int8_available() {
  static const bool available = request_amx_state();
  return available && amx_allowed().load(std::memory_order_relaxed);
}

bool amx_multiplies(GgmlType type) { return type == GgmlType::Q4_0 || type == GgmlType::Q5_0 || type == GgmlType::Q8_0; }

void matmul_tiles_amx(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y,
                      int64_t y_stride, int64_t row_begin, int64_t row_end) {
  switch (type) {
    case GgmlType::Q4_0: return matmul_tiles_amx<GgmlType::Q4_0, BlockQ4_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_0: return matmul_tiles_amx<GgmlType::Q5_0, BlockQ5_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q8_0: return matmul_tiles_amx<GgmlType::Q8_0, BlockQ8_0>(tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
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
