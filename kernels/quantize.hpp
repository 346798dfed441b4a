// Scalar quantization from float32 to the GGML weight formats.
//
// The blocks written are bit-compatible with ggml: llama.cpp reads them, and
// dequantize.hpp turns them back into floats. How each format chooses its scales:
//
// - Q8_0, Q8_1, Q8_K (the activation formats): ggml's rule exactly (absmax scale,
//   same rounding), so that slm can reproduce llama.cpp's activation quantization bit for bit.
// - Q4_0, Q5_0: the weight of largest magnitude maps to the most negative quant (-8 / -16);
//   Q4_1, Q5_1: min and max span the 16 / 32 levels. The quants are rounded to nearest
//   against the fp16-rounded scale and min the dequantizer will use.
// - K-quants: per sub-block, a least-squares search for the scale (and min) that minimizes
//   the squared error; then the sub-block scales are coded against the fp16 super-block scale,
//   and each sub-block tries its neighbouring codes (+-1) and keeps whichever gives the least error.
//   (Search in the spirit of ggml's quantize_row_q4_K_ref; the results may differ bit-wise, but
//   the file format is the same.)
// - IQ4_NL, IQ4_XS: a searched scale per 32 weights, each weight on its nearest table value
//   (quantize_iq4.cpp); IQ4_XS then codes the 8 scales in 6 bits against an fp16 super-block scale.
//
// `n` is the number of floats; it must be a multiple of the block size (std::invalid_argument otherwise).
#pragma once

#include <cstdint>

#include "kernels/quant_blocks.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels {

void quantize_row_f32(const float* x, float* y, int64_t n);
void quantize_row_f16(const float* x, Fp16Bits* y, int64_t n);
void quantize_row_bf16(const float* x, Bf16Bits* y, int64_t n);

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n);

void quantize_row_q2_k(const float* x, BlockQ2_K* y, int64_t n);
void quantize_row_q3_k(const float* x, BlockQ3_K* y, int64_t n);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n);
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n);

void quantize_row_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t n);
void quantize_row_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t n);

// True for every type quantize_row accepts (all types of the table in ggml_type.hpp).
bool can_quantize(GgmlType type);

// Quantizes n floats into ggml_row_bytes(type, n) bytes at `dst`.
// Throws std::invalid_argument for a type it cannot write or a bad n.
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace slm::kernels
