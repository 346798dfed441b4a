// NEON integer matmul for prompts with the 8-bit matrix multiply-accumulate instruction smmla
// (FEAT_I8MM, Armv8.6; Graviton 3, Apple M2 and later), for the formats of the dotprod kernels
// (matmul_int_neon.cpp). smmla multiplies a 2x8 matrix of signed bytes by the transpose of another
// into a 2x2 matrix of int32 sums: one instruction sums 8 weights of 2 rows against 8 activations
// of 2 tokens (32 products, sdot's 16), and each block of weights is decoded once per pair of
// tokens instead of once per token. The integer group sums are the dotprod kernel's (integers:
// the same in any order) and the floats are accumulated in its order (kernels/matmul_int_neon.hpp),
// so every output has the dotprod kernel's bits; an odd last token takes its dot_rows itself.
// This file alone is compiled with +i8mm, and runs only where the CPU reports HWCAP2_I8MM (the
// inline helpers of simd_neon.hpp it shares are intrinsics that compile to no i8mm instruction).
#include "kernels/matmul_int_neon.hpp"
#include "kernels/matmul_isa.hpp"

namespace slm::kernels::neon {
namespace {

// Bytes 0..7 of a and of b (first), or bytes 8..15 of each (second): the rows of a 2x8 matrix.
inline int8x16_t first_halves(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
inline int8x16_t second_halves(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

// 16 bytes of two tokens' activations, as the 2x8 matrices smmla takes.
struct TokenPair {
  int8x16_t first, second;
  TokenPair(const int8_t* token0, const int8_t* token1)
      : first(first_halves(vld1q_s8(token0), vld1q_s8(token1))), second(second_halves(vld1q_s8(token0), vld1q_s8(token1))) {}
};

// The 16-byte dot products of weights w0, w1 (rows) with the pair's tokens: lanes (row 0 token 0,
// row 0 token 1, row 1 token 0, row 1 token 1).
inline int32x4_t sums_2x2(int8x16_t w0, int8x16_t w1, const TokenPair& x) {
  return vmmlaq_s32(vmmlaq_s32(vdupq_n_s32(0), first_halves(w0, w1), x.first), second_halves(w0, w1), x.second);
}

// y[r] for the 4 rows first_row + r * row_stride and tokens x0 (acc[0]) and x1 (acc[1]).
template <class Format>
void dot_rows_two_tokens(const uint8_t* first_row, uint64_t row_stride, int64_t n_blocks,
                         const SplitActivations<Format::kWeights>* x0, const SplitActivations<Format::kWeights>* x1,
                         float32x4_t (&acc)[2]) {
  constexpr int kPieces = Format::kWeights / 16;
  acc[0] = acc[1] = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const SplitActivations<Format::kWeights>&xa = x0[b], &xb = x1[b];
    const FourBlocks<Format> rows(first_row, row_stride, b);
    const float32x4_t scale0 = rows.group_scale(xa.d), scale1 = rows.group_scale(xb.d);
    for (int first_piece = 0; first_piece < kPieces; first_piece += Format::kGroupPieces) {
      int32x4_t pairs[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};  // rows 0, 1 and rows 2, 3
      for (int j = first_piece; j < first_piece + Format::kGroupPieces; ++j) {
        const TokenPair high(xa.high + 16 * j, xb.high + 16 * j), low(xa.low + 16 * j, xb.low + 16 * j);
        for (int p = 0; p < 2; ++p) {
          const int8x16_t w0 = rows.quants(2 * p, j), w1 = rows.quants(2 * p + 1, j);
          const int32x4_t sums = vaddq_s32(vshlq_n_s32(sums_2x2(w0, w1, high), 8), sums_2x2(w0, w1, low));
          const int32x4_t piece_scales =
              vcombine_s32(vdup_n_s32(rows.piece_scale(2 * p, j)), vdup_n_s32(rows.piece_scale(2 * p + 1, j)));
          pairs[p] = vmlaq_s32(pairs[p], sums, piece_scales);
        }
      }
      // (r0 t0, r0 t1, r1 t0, r1 t1), (r2 t0, ...) -> each token's 4 rows.
      acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(vuzp1q_s32(pairs[0], pairs[1])), scale0);
      acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(vuzp2q_s32(pairs[0], pairs[1])), scale1);
    }
    acc[0] = rows.add_mins(acc[0], xa.sum32, xa.d);
    acc[1] = rows.add_mins(acc[1], xb.sum32, xb.d);
  }
}

template <class Format>
struct I8mmKernel {
  static void run(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x, int64_t n_tokens, float* y,
                  int64_t y_stride, int64_t row_begin, int64_t row_end) {
    const SplitActivations<Format::kWeights>* xq = quantize_activations<Format::kWeights>(x, n_tokens, n_in);
    const int64_t n_blocks = n_in / Format::kWeights;
    const auto rows = [&](const uint8_t* first_row, uint64_t stride, auto store) {
      int64_t t = 0;
      for (; t + 2 <= n_tokens; t += 2) {
        float32x4_t acc[2];
        dot_rows_two_tokens<Format>(first_row, stride, n_blocks, xq + t * n_blocks, xq + (t + 1) * n_blocks, acc);
        store(t, acc[0]);
        store(t + 1, acc[1]);
      }
      if (t < n_tokens) store(t, dot_rows<Format>(first_row, stride, n_blocks, xq + t * n_blocks));
    };
    for_each_four_rows(weights, row_bytes, y, y_stride, row_begin, row_end, rows);
  }
};

}  // namespace

IntegerRowsKernel i8mm_integer_kernel(GgmlType type) {
  static const bool has_i8mm = cpu_has_i8mm();
  // An odd last token takes the dotprod kernel's sdot: every CPU with i8mm has it, but ask.
  return has_i8mm && dotprod_integer_kernel(type) ? integer_kernel_of<I8mmKernel>(type) : nullptr;
}

}  // namespace slm::kernels::neon
