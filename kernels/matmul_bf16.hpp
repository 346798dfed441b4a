// BF16 weights under ActivationPrecision::Int8: the activations are rounded to bf16, as
// llama.cpp rounds them (its vec_dot_type for GGML_TYPE_BF16 is BF16; ggml_compute_fp32_to_bf16,
// which is fp32_to_bf16 in kernels/quant_blocks.hpp: round to nearest even, NaN made quiet,
// subnormals rounded like any value, not flushed). A product of two bf16 values has at most 16
// significant bits, so it is exact in float32; only the sums round.
//
// Every instruction set rounds the activations the same way; how the products are summed
// depends on the instruction set:
// - AVX-512 BF16 (vdpbf16ps): matmul_rows_bf16_dot_reference below, bit for bit;
// - every other (scalar, avx2, avxvnni, avx512 on a CPU without AVX512_BF16, neon): the float
//   kernels of BF16 (kernels/matmul.hpp's order) on the rounded activations.
#pragma once

#include <cstdint>

#include "kernels/quant_blocks.hpp"

namespace slm::kernels {

// vdpbf16ps's order, which its kernels follow and matmul_rows_bf16_dot_reference defines.
// A row and a token's activations, both zero-padded to a multiple of kBf16DotStep values, are
// summed in kBf16DotLanes float lanes: pair p (values 2p, 2p+1) goes to lane p % 16, in
// increasing p, as two fused multiply-adds, the odd value's first:
//   lane = ftz(fma(daz(w[2p+1]), daz(x[2p+1]), lane)); lane = ftz(fma(daz(w[2p]), daz(x[2p]), lane))
// daz reads a subnormal bf16 (weight or activation) as a zero of its sign; ftz makes a result
// that is subnormal after rounding a zero of its sign (vdpbf16ps ignores MXCSR: Intel's SDM,
// and measured on Zen 4, 3.2 million random lanes with every class of value). Then the lanes
// are summed: lane j + lane j+8 (j < 8), then (0+4, 1+5, 2+6, 3+7), (0+2, 1+3), 0+1, in float32
// adds that neither flush nor read subnormals as zero.
inline constexpr int kBf16DotLanes = 16;
inline constexpr int64_t kBf16DotStep = 2 * kBf16DotLanes;

// A token's activations as the vdpbf16ps kernels read them: n_in rounded up to kBf16DotStep.
constexpr int64_t bf16_token_stride(int64_t n_in) { return (n_in + kBf16DotStep - 1) / kBf16DotStep * kBf16DotStep; }

// Every token's activations rounded to bf16, token t's at t * bf16_token_stride(n_in), zeros
// after its n_in values; once per thread and activations name (kernels/activation_blocks.hpp).
const Bf16Bits* bf16_rounded_tokens(const float* x, int64_t n_tokens, int64_t n_in);

// The same values as floats (bf16_to_fp32), token t's at t * n_in: what the float kernels read.
const float* bf16_rounded_tokens_as_floats(const float* x, int64_t n_tokens, int64_t n_in);

// The dot product of n bf16 weights with n bf16 activations, in the order above.
float dot_bf16_reference(const Bf16Bits* w, const Bf16Bits* x, int64_t n);

// y[t * y_stride + o] = dot_bf16_reference(row o, bf16(x of token t)) for o in [row_begin,
// row_end) and t in [0, n_tokens): the oracle of matmul_rows_bf16_dot. Row o is the n_in bf16
// values at weights + o * row_bytes.
void matmul_rows_bf16_dot_reference(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                    int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

// Whether this build has the vdpbf16ps kernels and this CPU runs them: AVX-512 F, BW, VL and
// BF16 (CPUID leaf 7 sub-leaf 1 EAX bit 5) with the zmm and opmask state saved (XCR0).
bool bf16_dot_available();

// matmul_rows_bf16_dot_reference with vdpbf16ps, bit for bit. Only where bf16_dot_available().
void matmul_rows_bf16_dot(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x, int64_t n_tokens,
                          float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

// The kernels of the ISAs without vdpbf16ps: the activations rounded, then matmul_rows_scalar.
void matmul_rows_bf16_activations_scalar(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                         int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin,
                                         int64_t row_end);

}  // namespace slm::kernels
