// AVX2 kernels: the float formats and the legacy 32-weight blocks, the fp16 dot/axpy of
// attention, and the type switch (K-quants are in matmul_k_quants_avx2.cpp).
// Block layouts: kernels/quant_blocks.hpp.
#include <immintrin.h>

#include <cstring>

#include "kernels/activation_blocks.hpp"
#include "kernels/matmul_bf16.hpp"
#include "kernels/matmul_isa.hpp"
#include "kernels/matmul_tiling.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

// ---------------------------------------------------------------------------
// Float formats, in blocks of 8 weights (rows of any length; the tiling pads the last block)
// ---------------------------------------------------------------------------

struct F32Format : tiling::ScalesReadByDecode {
  static constexpr int kWeights = 8;
  static constexpr int kBytes = 8 * sizeof(float);
  static constexpr int kPieces = 1;
  template <class Sink>
  static void decode(const uint8_t* block, const Scales&, int /*piece*/, Sink&& sink) {
    sink(0, _mm256_loadu_ps(reinterpret_cast<const float*>(block)));
  }
};

struct F16Format : tiling::ScalesReadByDecode {
  static constexpr int kWeights = 8;
  static constexpr int kBytes = 8 * sizeof(Fp16Bits);
  static constexpr int kPieces = 1;
  template <class Sink>
  static void decode(const uint8_t* block, const Scales&, int /*piece*/, Sink&& sink) {
    sink(0, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block))));
  }
};

// bf16 is the top half of a float.
struct Bf16Format : tiling::ScalesReadByDecode {
  static constexpr int kWeights = 8;
  static constexpr int kBytes = 8 * sizeof(Bf16Bits);
  static constexpr int kPieces = 1;
  template <class Sink>
  static void decode(const uint8_t* block, const Scales&, int /*piece*/, Sink&& sink) {
    const __m256i widened = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
    sink(0, _mm256_castsi256_ps(_mm256_slli_epi32(widened, 16)));
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
    __m128i first, second;  // weights 0..15, 16..31
    legacy_quants<Block, kFifthBit>(block, first, second);
    const __m256 d = broadcast_half(block.d);
    if constexpr (kHasMin) {
      const __m256 m = broadcast_half(block.m);
      emit16(first, d, m, 0, sink);
      emit16(second, d, m, 16, sink);
    } else {
      const __m128i zero_point = _mm_set1_epi8(kFifthBit ? 16 : 8);
      emit16(_mm_sub_epi8(first, zero_point), d, 0, sink);
      emit16(_mm_sub_epi8(second, zero_point), d, 16, sink);
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
    const __m256 d = broadcast_half(block.d);
    emit16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs)), d, 0, sink);
    emit16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs + 16)), d, 16, sink);
  }
};

template <const IntegerKernelSet& kInteger>
tiling::FormatKernel kernel_for(GgmlType type) {
  if (const tiling::FormatKernel integer = kInteger.row_kernel(type)) return integer;
  switch (type) {
    case GgmlType::F32: return tiling::matmul_rows<Avx2Lanes, F32Format>;
    case GgmlType::F16: return tiling::matmul_rows<Avx2Lanes, F16Format>;
    case GgmlType::BF16: return tiling::matmul_rows<Avx2Lanes, Bf16Format>;
    case GgmlType::Q4_0: return tiling::matmul_rows<Avx2Lanes, Q4_0Format>;
    case GgmlType::Q4_1: return tiling::matmul_rows<Avx2Lanes, Q4_1Format>;
    case GgmlType::Q5_0: return tiling::matmul_rows<Avx2Lanes, Q5_0Format>;
    case GgmlType::Q5_1: return tiling::matmul_rows<Avx2Lanes, Q5_1Format>;
    case GgmlType::Q8_0: return tiling::matmul_rows<Avx2Lanes, Q8_0Format>;
    default: return k_quant_kernel(type);
  }
}

template <const IntegerKernelSet& kInteger>
void matmul_rows_avx2(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                      int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const tiling::FormatKernel kernel = kernel_for<kInteger>(type);
  if (!kernel)  // activation formats (Q8_1, Q8_K): never a model's weights
    return matmul_rows_scalar(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
  kernel(weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
}

// ---------------------------------------------------------------------------
// Attention over an F16 cache
// ---------------------------------------------------------------------------

// A key row is one row of an F16 matrix: the same lanes and order as the matmul.
float dot_f16_f32_avx2(const uint16_t* a, const float* b, int64_t n) {
  float result;
  tiling::dot_row_group<Avx2Lanes, F16Format, 1>(reinterpret_cast<const uint8_t*>(a), 0, 1, 0, n, b, &result);
  return result;
}

void axpy_f16_f32_avx2(float a, const uint16_t* x, float* y, int64_t n) {
  const __m256 scale = _mm256_set1_ps(a);
  const auto axpy8 = [scale](const uint16_t* x8, float* y8) {
    const __m256 x_floats = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x8)));
    _mm256_storeu_ps(y8, _mm256_fmadd_ps(scale, x_floats, _mm256_loadu_ps(y8)));
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

}  // namespace

void matmul_rows_bf16_activations(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                  int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  tiling::matmul_rows<Avx2Lanes, Bf16Format>(weights, row_bytes, n_in, bf16_rounded_tokens_as_floats(x, n_tokens, n_in),
                                             n_tokens, y, y_stride, row_begin, row_end);
}

}  // namespace slm::kernels::avx2

namespace slm::kernels {
namespace {

// The AVX2 table with one build of the integer kernels. Every entry is a constant (the
// lambdas read kInteger when called), so the table is ready before any static initializer
// of another file can ask for it.
template <const IntegerKernelSet& kInteger>
constexpr IsaKernels avx2_kernels(Isa isa, void (*attend_queries)(const AttentionQueries&) = avx2::attend_queries_avx2,
                                  bool (*int8_activations)(GgmlType) = avx2::int8_activations,
                                  MatmulInterleavedFn matmul_interleaved_int8 = avx2::matmul_interleaved_int8,
                                  MatmulBf16Fn matmul_rows_bf16_activations = avx2::matmul_rows_bf16_activations) {
  return {isa,
          isa_name(isa),
          avx2::matmul_rows_avx2<kInteger>,
          avx2::dot_f16_f32_avx2,
          avx2::axpy_f16_f32_avx2,
          avx2::attend_head_avx2,
          attend_queries,
          [](GgmlType type) { return kInteger.row_kernel(type) ? activation_magnitude_bits(type) : 0; },
          [](GgmlType type) { return kInteger.interleaves(type); },
          [](GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y,
             int64_t y_stride, int64_t row_begin, int64_t row_end) {
            kInteger.matmul_interleaved(type, tiles, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
          },
          int8_activations,
          matmul_interleaved_int8,
          matmul_rows_bf16_activations};
}

}  // namespace

// The float formats and one head's attention are the AVX2 kernels in every table; the integer
// kernels (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K .. Q6_K, rows and interleaved, Int16 and Int8
// activations) differ, and the AVX-512 table's grouped-query attention keeps rows in zmm registers.
const IsaKernels kAvx2Kernels = avx2_kernels<kAvx2IntegerKernels>(Isa::Avx2);
#if defined(SLM_HAVE_AVXVNNI_KERNELS)
const IsaKernels kAvxVnniKernels = avx2_kernels<kAvxVnniIntegerKernels>(Isa::AvxVnni, avx2::attend_queries_avx2,
                                                                         avxvnni::int8_activations,
                                                                         avxvnni::matmul_interleaved_int8);
#endif
#if defined(SLM_HAVE_AVX512_KERNELS)
const IsaKernels kAvx512Kernels = avx2_kernels<kAvx512IntegerKernels>(Isa::Avx512, avx512::attend_queries_avx512,
                                                                       avx512::int8_activations,
                                                                       avx512::matmul_interleaved_int8,
#if defined(SLM_HAVE_AVX512BF16_KERNELS)
                                                                       avx512::matmul_rows_bf16_activations
#else
                                                                       avx2::matmul_rows_bf16_activations
#endif
);
#endif
}  // namespace slm::kernels
