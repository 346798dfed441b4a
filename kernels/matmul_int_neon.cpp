// NEON integer kernels with the ARMv8.2 dot product instructions (sdot), for the formats
// whose weights are signed bytes times a block scale: Q4_0, Q5_0 and Q8_0. Used only where the
// CPU reports dotprod (HWCAP_ASIMDDP); elsewhere the float32 kernels serve these formats.
//
// The activations are rounded once per call to blocks of 32 with a power-of-two scale and
// kNeonActivationBits (14) bits of magnitude (kernels/activation_blocks.hpp), then split into
// two signed bytes, q = 256 * high + low, so that sdot, which multiplies bytes, keeps all 14
// bits: high in [-64, 64], low in [-128, 127].
//
// What each (row, token) output is, whatever the batch, the row range or the thread count:
//   acc = 0 (one float)
//   for each block b, in order:
//     isum = 256 * sdot(w, high) + sdot(w, low)       (int32, exact: |isum| < 32 * 128 * 2^14)
//     acc  = fma(float(isum), d * d_x, acc)
//   y = acc
// computed for 4 rows at a time in the lanes of a vector, one token at a time: a prompt reads
// each group of 4 rows once from memory and then from cache for every token.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "kernels/activation_blocks.hpp"
#include "kernels/matmul_isa.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_neon.hpp"

namespace slm::kernels::neon {
namespace {

bool cpu_has_dotprod() {
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}

struct SplitActivations {
  int8_t high[kLegacyBlockSize];
  int8_t low[kLegacyBlockSize];
  float d;
};

void quantize_block(const float* x, SplitActivations& out) {
  float32x4_t amax4 = vdupq_n_f32(0.0f);
  bool unordered = false;
  for (int i = 0; i < kLegacyBlockSize; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    amax4 = vmaxq_f32(amax4, vabsq_f32(v));  // NaN propagates through vmaxq
    unordered |= vminvq_u32(vceqq_f32(v, v)) == 0;
  }
  const float amax = unordered ? std::numeric_limits<float>::quiet_NaN() : vmaxvq_f32(amax4);
  const ActivationScale scale = activation_scale(amax, kNeonActivationBits);
  out.d = scale.d;
  const float32x4_t inverse = vdupq_n_f32(scale.inverse);
  for (int i = 0; i < kLegacyBlockSize; i += 4) {
    // x * inverse is exact (a power of two); vcvtnq rounds to nearest even, as the specification.
    const int32x4_t q = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i), inverse));
    const int32x4_t high = vshrq_n_s32(vaddq_s32(q, vdupq_n_s32(128)), 8);
    const int32x4_t low = vsubq_s32(q, vshlq_n_s32(high, 8));
    int32_t high_lanes[4], low_lanes[4];
    vst1q_s32(high_lanes, high);
    vst1q_s32(low_lanes, low);
    for (int k = 0; k < 4; ++k) {
      out.high[i + k] = static_cast<int8_t>(high_lanes[k]);
      out.low[i + k] = static_cast<int8_t>(low_lanes[k]);
    }
  }
}

// Every token's activations, in a per-thread buffer that only grows.
const SplitActivations* quantize_activations(const float* x, int64_t n_tokens, int64_t n_in) {
  thread_local std::vector<SplitActivations> blocks;
  const int64_t n_blocks = n_in / kLegacyBlockSize;
  if (blocks.size() < static_cast<size_t>(n_tokens * n_blocks)) blocks.resize(static_cast<size_t>(n_tokens * n_blocks));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < n_blocks; ++b)
      quantize_block(x + t * n_in + b * kLegacyBlockSize, blocks[static_cast<size_t>(t * n_blocks + b)]);
  return blocks.data();
}

// The 32 quants of a block as signed bytes (q - zero point), and its scale.
template <class Block, bool kFifthBit>
struct LegacyNibbleBytes {
  static void quants(const uint8_t* bytes, int8x16_t& first, int8x16_t& second) {
    uint8x16_t low, high;
    legacy_quants<Block, kFifthBit>(*reinterpret_cast<const Block*>(bytes), low, high);
    const uint8x16_t zero_point = vdupq_n_u8(kFifthBit ? 16 : 8);  // wraps to the signed q - zero_point
    first = vreinterpretq_s8_u8(vsubq_u8(low, zero_point));
    second = vreinterpretq_s8_u8(vsubq_u8(high, zero_point));
  }
  static uint16_t scale(const uint8_t* bytes) { return reinterpret_cast<const Block*>(bytes)->d; }
};

struct Q8_0Bytes {
  static void quants(const uint8_t* bytes, int8x16_t& first, int8x16_t& second) {
    const BlockQ8_0& block = *reinterpret_cast<const BlockQ8_0*>(bytes);
    first = vld1q_s8(block.qs);
    second = vld1q_s8(block.qs + 16);
  }
  static uint16_t scale(const uint8_t* bytes) { return reinterpret_cast<const BlockQ8_0*>(bytes)->d; }
};

// Lane r: the exact integer dot product of row r's block with the activation block.
template <class Format>
int32x4_t block_sums(const uint8_t* const (&blocks)[4], const SplitActivations& x) {
  const int8x16_t high0 = vld1q_s8(x.high), high1 = vld1q_s8(x.high + 16);
  const int8x16_t low0 = vld1q_s8(x.low), low1 = vld1q_s8(x.low + 16);
  int32x4_t sums[4];
  for (int r = 0; r < 4; ++r) {
    int8x16_t w0, w1;
    Format::quants(blocks[r], w0, w1);
    const int32x4_t high = vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, high0), w1, high1);
    const int32x4_t low = vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, low0), w1, low1);
    sums[r] = vaddq_s32(vshlq_n_s32(high, 8), low);
  }
  // Pairwise additions gather the four rows' sums into the four lanes.
  return vpaddq_s32(vpaddq_s32(sums[0], sums[1]), vpaddq_s32(sums[2], sums[3]));
}

// y[r] for the 4 rows first_row + r * row_stride and one token's activations.
template <class Format, int kBytes>
float32x4_t dot_rows(const uint8_t* first_row, uint64_t row_stride, int64_t n_blocks, const SplitActivations* x) {
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* const blocks[4] = {first_row + b * kBytes, first_row + row_stride + b * kBytes,
                                      first_row + 2 * row_stride + b * kBytes, first_row + 3 * row_stride + b * kBytes};
    const uint16_t halves[4] = {Format::scale(blocks[0]), Format::scale(blocks[1]), Format::scale(blocks[2]),
                                Format::scale(blocks[3])};
    const float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(halves)));
    acc = vfmaq_f32(acc, vcvtq_f32_s32(block_sums<Format>(blocks, x[b])), vmulq_n_f32(d, x[b].d));
  }
  return acc;
}

template <class Format, int kBytes>
void matmul_rows_int(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x, int64_t n_tokens,
                     float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const SplitActivations* xq = quantize_activations(x, n_tokens, n_in);
  const int64_t n_blocks = n_in / kLegacyBlockSize;
  for (int64_t o = row_begin; o < row_end; o += 4) {
    const int n_rows = static_cast<int>(std::min<int64_t>(4, row_end - o));
    // A short group computes its first row 4 times (a stride of 0) and keeps lane 0.
    const uint64_t stride = n_rows == 4 ? row_bytes : 0;
    for (int64_t r = 0; r < (n_rows == 4 ? 1 : n_rows); ++r) {
      const uint8_t* first_row = weights + uint64_t(o + r) * row_bytes;
      for (int64_t t = 0; t < n_tokens; ++t) {
        float out[4];
        vst1q_f32(out, dot_rows<Format, kBytes>(first_row, stride, n_blocks, xq + t * n_blocks));
        if (n_rows == 4) std::memcpy(y + t * y_stride + o, out, sizeof(out));
        else y[t * y_stride + o + r] = out[0];
      }
    }
  }
}

}  // namespace

tiling::FormatKernel integer_kernel(GgmlType type) {
  static const bool has_dotprod = cpu_has_dotprod();
  if (!has_dotprod) return nullptr;
  switch (type) {
    case GgmlType::Q4_0: return matmul_rows_int<LegacyNibbleBytes<BlockQ4_0, false>, sizeof(BlockQ4_0)>;
    case GgmlType::Q5_0: return matmul_rows_int<LegacyNibbleBytes<BlockQ5_0, true>, sizeof(BlockQ5_0)>;
    case GgmlType::Q8_0: return matmul_rows_int<Q8_0Bytes, sizeof(BlockQ8_0)>;
    default: return nullptr;
  }
}

}  // namespace slm::kernels::neon
