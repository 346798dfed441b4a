// NEON kernels: the float formats and the legacy 32-weight blocks, the fp16 dot/axpy, and the
// type switch (attention is in attention_neon.cpp, K-quants in matmul_k_quants_neon.cpp, the
// dotprod integer kernels, taken first where the CPU has them, in matmul_int_neon.cpp).
// Block layouts: kernels/quant_blocks.hpp. The same decoders as matmul_avx2.cpp, 16 bytes
// of quants at a time.
#include "kernels/attention.hpp"
#include <arm_neon.h>

#include <cstring>

#include "kernels/activation_blocks.hpp"
#include "kernels/matmul_bf16.hpp"
#include "kernels/matmul_isa.hpp"
#include "kernels/matmul_tiling.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_neon.hpp"

namespace slm::kernels::neon {
namespace {

using Vec = NeonLanes::Vec;

// ---------------------------------------------------------------------------
// Float formats, in blocks of 8 weights (rows of any length; the tiling pads the last block)
// ---------------------------------------------------------------------------

struct F32Format : tiling::ScalesReadByDecode {
  static constexpr int kWeights = 8;
  static constexpr int kBytes = 8 * sizeof(float);
  static constexpr int kPieces = 1;
  template <class Sink>
  static void decode(const uint8_t* block, const Scales&, int /*piece*/, Sink&& sink) {
    sink(0, NeonLanes::load(reinterpret_cast<const float*>(block)));
  }
};

struct F16Format : tiling::ScalesReadByDecode {
  static constexpr int kWeights = 8;
  static constexpr int kBytes = 8 * sizeof(Fp16Bits);
  static constexpr int kPieces = 1;
  template <class Sink>
  static void decode(const uint8_t* block, const Scales&, int /*piece*/, Sink&& sink) {
    const uint16_t* halves = reinterpret_cast<const uint16_t*>(block);
    sink(0, Vec{vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(halves))),
                vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(halves + 4)))});
  }
};

// bf16 is the top half of a float.
struct Bf16Format : tiling::ScalesReadByDecode {
  static constexpr int kWeights = 8;
  static constexpr int kBytes = 8 * sizeof(Bf16Bits);
  static constexpr int kPieces = 1;
  template <class Sink>
  static void decode(const uint8_t* block, const Scales&, int /*piece*/, Sink&& sink) {
    const uint16_t* halves = reinterpret_cast<const uint16_t*>(block);
    sink(0, Vec{vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(halves), 16)),
                vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(halves + 4), 16))});
  }
};

// ---------------------------------------------------------------------------
// Legacy formats: 32 weights, one fp16 scale d (and min m) per block.
// ---------------------------------------------------------------------------

// Q4_0, Q4_1, Q5_0, Q5_1: byte j of qs holds weight j in its low nibble and weight j+16 in
// its high nibble; Q5 adds bit j of qh as the 5th bit of weight j. Without a min,
// w = d * (q - zero_point) with zero_point 8 (Q4_0) or 16 (Q5_0); with one, w = d * q + m.
template <class Block, bool kFifthBit>
struct LegacyNibbleFormat : tiling::ScalesReadByDecode {
  static constexpr int kWeights = kLegacyBlockSize;
  static constexpr int kBytes = sizeof(Block);
  static constexpr int kPieces = 1;
  static constexpr bool kHasMin = requires(const Block& b) { b.m; };

  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales&, int /*piece*/, Sink&& sink) {
    const Block& block = *reinterpret_cast<const Block*>(bytes);
    uint8x16_t first, second;  // weights 0..15, 16..31
    legacy_quants<Block, kFifthBit>(block, first, second);
    const float32x4_t d = broadcast_half(block.d);
    if constexpr (kHasMin) {
      const float32x4_t m = broadcast_half(block.m);
      emit16(first, d, m, 0, sink);
      emit16(second, d, m, 16, sink);
    } else {
      const uint8x16_t zero_point = vdupq_n_u8(kFifthBit ? 16 : 8);  // wraps to the signed q - zero_point
      emit16(vsubq_u8(first, zero_point), d, 0, sink);
      emit16(vsubq_u8(second, zero_point), d, 16, sink);
    }
  }
};

using Q4_0Format = LegacyNibbleFormat<BlockQ4_0, false>;
using Q4_1Format = LegacyNibbleFormat<BlockQ4_1, false>;
using Q5_0Format = LegacyNibbleFormat<BlockQ5_0, true>;
using Q5_1Format = LegacyNibbleFormat<BlockQ5_1, true>;

// Q8_0: w = d * q, q a signed byte.
struct Q8_0Format : tiling::ScalesReadByDecode {
  static constexpr int kWeights = kLegacyBlockSize;
  static constexpr int kBytes = sizeof(BlockQ8_0);
  static constexpr int kPieces = 1;
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales&, int /*piece*/, Sink&& sink) {
    const BlockQ8_0& block = *reinterpret_cast<const BlockQ8_0*>(bytes);
    const float32x4_t d = broadcast_half(block.d);
    const uint8_t* qs = reinterpret_cast<const uint8_t*>(block.qs);
    emit16(vld1q_u8(qs), d, 0, sink);
    emit16(vld1q_u8(qs + 16), d, 16, sink);
  }
};

// IQ4_NL: Q4_0's block with the nibbles looked up in kIq4NlValues (vqtbl1q) in place of q - 8.
struct IQ4_NLFormat : tiling::ScalesReadByDecode {
  static constexpr int kWeights = kLegacyBlockSize;
  static constexpr int kBytes = sizeof(BlockIQ4_NL);
  static constexpr int kPieces = 1;
  template <class Sink>
  static void decode(const uint8_t* bytes, const Scales&, int /*piece*/, Sink&& sink) {
    const BlockIQ4_NL& block = *reinterpret_cast<const BlockIQ4_NL*>(bytes);
    uint8x16_t first, second;
    iq4_values(block.qs, first, second);
    const float32x4_t d = broadcast_half(block.d);
    emit16(first, d, 0, sink);
    emit16(second, d, 16, sink);
  }
};

tiling::FormatKernel kernel_for(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return tiling::matmul_rows<NeonLanes, F32Format>;
    case GgmlType::F16: return tiling::matmul_rows<NeonLanes, F16Format>;
    case GgmlType::BF16: return tiling::matmul_rows<NeonLanes, Bf16Format>;
    case GgmlType::Q4_0: return tiling::matmul_rows<NeonLanes, Q4_0Format>;
    case GgmlType::Q4_1: return tiling::matmul_rows<NeonLanes, Q4_1Format>;
    case GgmlType::Q5_0: return tiling::matmul_rows<NeonLanes, Q5_0Format>;
    case GgmlType::Q5_1: return tiling::matmul_rows<NeonLanes, Q5_1Format>;
    case GgmlType::Q8_0: return tiling::matmul_rows<NeonLanes, Q8_0Format>;
    case GgmlType::IQ4_NL: return tiling::matmul_rows<NeonLanes, IQ4_NLFormat>;
    default: return k_quant_kernel(type);
  }
}

void matmul_rows_neon(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                      int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const tiling::FormatKernel integer = integer_kernel(type);
  const tiling::FormatKernel kernel = integer ? integer : kernel_for(type);
  if (!kernel)  // activation formats (Q8_1, Q8_K): never a model's weights
    return matmul_rows_scalar(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
  kernel(weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
}

// ---------------------------------------------------------------------------
// Attention over an F16 cache
// ---------------------------------------------------------------------------

// A key row is one row of an F16 matrix: the same lanes and order as the matmul.
float dot_f16_f32_neon(const uint16_t* a, const float* b, int64_t n) {
  float result;
  tiling::dot_row_group<NeonLanes, F16Format, 1>(reinterpret_cast<const uint8_t*>(a), 0, 1, 0, n, b, &result);
  return result;
}

void axpy_f16_f32_neon(float a, const uint16_t* x, float* y, int64_t n) {
  const float32x4_t scale = vdupq_n_f32(a);
  const auto axpy8 = [scale](const uint16_t* x8, float* y8) {
    const float32x4_t x_low = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x8)));
    const float32x4_t x_high = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x8 + 4)));
    vst1q_f32(y8, vfmaq_f32(vld1q_f32(y8), scale, x_low));
    vst1q_f32(y8 + 4, vfmaq_f32(vld1q_f32(y8 + 4), scale, x_high));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) axpy8(x + i, y + i);
  if (const int64_t tail = n - i) {
    uint16_t x_padded[8] = {};
    float y_padded[8] = {};
    std::memcpy(x_padded, x + i, static_cast<size_t>(tail) * sizeof(uint16_t));
    std::memcpy(y_padded, y + i, static_cast<size_t>(tail) * sizeof(float));
    axpy8(x_padded, y_padded);
    std::memcpy(y + i, y_padded, static_cast<size_t>(tail) * sizeof(float));
  }
}

// BF16 under Int8 (kernels/matmul_bf16.hpp): the float kernel of BF16 on the rounded activations.
void matmul_rows_bf16_activations(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                  int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  tiling::matmul_rows<NeonLanes, Bf16Format>(weights, row_bytes, n_in, bf16_rounded_tokens_as_floats(x, n_tokens, n_in),
                                             n_tokens, y, y_stride, row_begin, row_end);
}

}  // namespace
}  // namespace slm::kernels::neon

namespace slm::kernels {
const IsaKernels kNeonKernels = {Isa::Neon,
                                  "neon",
                                  neon::matmul_rows_neon,
                                  neon::dot_f16_f32_neon,
                                  neon::axpy_f16_f32_neon,
                                  neon::attend_head_neon,
                                  neon::attend_queries_neon,
                                  [](GgmlType type) { return neon::integer_kernel(type) ? kNeonActivationBits : 0; },
                                  never_interleaves,
                                  nullptr,
                                  never_interleaves,
                                  nullptr,
                                  neon::matmul_rows_bf16_activations};
}  // namespace slm::kernels
