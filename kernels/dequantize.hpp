// Scalar dequantization of every GGML weight format to float32.
//
// These are the specification of each format and the oracle the SIMD kernels are
// tested against, so they are written as plainly as the format allows. Each computes,
// in float32 and in the same order as ggml's reference, exactly the values ggml's
// own dequantizers produce.
//
// `n` is the number of weights; it must be a multiple of the format's block size
// (32 for the legacy formats, 256 for the K-quants). `x` points at n / block_size blocks.
#pragma once

#include <cstdint>

#include "kernels/quant_blocks.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels {

void dequantize_row_f32(const float* x, float* y, int64_t n);
void dequantize_row_f16(const Fp16Bits* x, float* y, int64_t n);
void dequantize_row_bf16(const Bf16Bits* x, float* y, int64_t n);

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n);

void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t n);
void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t n);
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t n);

void dequantize_row_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t n);
void dequantize_row_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t n);

// Dequantizes n weights of `type` stored at `src` (n / block_size whole blocks).
// Throws std::invalid_argument when n is negative or not a multiple of the block size.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Throws std::invalid_argument naming `what` (e.g. "dequantize_row_q4_k") unless
// n >= 0 and n % block_size == 0. Shared by the quantizers and dequantizers.
void check_row_length(const char* what, int64_t n, int64_t block_size);

}  // namespace slm::kernels
