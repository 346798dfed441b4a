// BF16 weights times bf16-rounded activations: the rounding every ISA shares, and the scalar
// reference of the vdpbf16ps kernels (the order: kernels/matmul_bf16.hpp).
#include "kernels/matmul_bf16.hpp"

#include <bit>
#include <cmath>
#include <cstring>

#include "kernels/activation_blocks.hpp"
#include "kernels/matmul_isa.hpp"

namespace slm::kernels {

const Bf16Bits* bf16_rounded_tokens(const float* x, int64_t n_tokens, int64_t n_in) {
  const int64_t stride = bf16_token_stride(n_in);
  static constexpr char kConversion = 0;  // names this conversion for convert_tokens_once
  return convert_tokens_once<Bf16Bits>(x, n_tokens, n_in, &kConversion, size_t(n_tokens * stride), [&](Bf16Bits* out) {
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t i = 0; i < n_in; ++i) out[t * stride + i] = fp32_to_bf16(x[t * n_in + i]);
      for (int64_t i = n_in; i < stride; ++i) out[t * stride + i] = 0;
    }
  });
}

const float* bf16_rounded_tokens_as_floats(const float* x, int64_t n_tokens, int64_t n_in) {
  static constexpr char kConversion = 0;
  return convert_tokens_once<float>(x, n_tokens, n_in, &kConversion, size_t(n_tokens * n_in), [&](float* out) {
    for (int64_t i = 0; i < n_tokens * n_in; ++i) out[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
  });
}

namespace {

// vdpbf16ps reads a subnormal bf16 as a zero of its sign (DAZ).
float bf16_read_as_vdpbf16ps_does(Bf16Bits b) {
  return bf16_to_fp32((b & 0x7f80u) == 0 ? Bf16Bits(b & 0x8000u) : b);
}

// ... and makes a subnormal result a zero of its sign (FTZ).
float flush_subnormal(float f) { return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f; }

}  // namespace

float dot_bf16_reference(const Bf16Bits* w, const Bf16Bits* x, int64_t n) {
  float lanes[kBf16DotLanes] = {};
  const auto value = [n](const Bf16Bits* v, int64_t i) {
    return i < n ? bf16_read_as_vdpbf16ps_does(v[i]) : 0.0f;  // the zero padding of the last step
  };
  for (int64_t pair = 0; 2 * pair < bf16_token_stride(n); ++pair) {
    float& lane = lanes[pair % kBf16DotLanes];
    lane = flush_subnormal(std::fma(value(w, 2 * pair + 1), value(x, 2 * pair + 1), lane));
    lane = flush_subnormal(std::fma(value(w, 2 * pair), value(x, 2 * pair), lane));
  }
  float eight[8];
  for (int j = 0; j < 8; ++j) eight[j] = lanes[j] + lanes[j + 8];
  for (int j = 0; j < 4; ++j) eight[j] += eight[j + 4];
  eight[0] += eight[2];
  eight[1] += eight[3];
  return eight[0] + eight[1];
}

void matmul_rows_bf16_dot_reference(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                    int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const Bf16Bits* rounded = bf16_rounded_tokens(x, n_tokens, n_in);
  for (int64_t o = row_begin; o < row_end; ++o) {
    const auto* row = reinterpret_cast<const Bf16Bits*>(weights + uint64_t(o) * row_bytes);
    for (int64_t t = 0; t < n_tokens; ++t)
      y[t * y_stride + o] = dot_bf16_reference(row, rounded + t * bf16_token_stride(n_in), n_in);
  }
}

void matmul_rows_bf16_activations_scalar(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                         int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin,
                                         int64_t row_end) {
  matmul_rows_scalar(GgmlType::BF16, weights, row_bytes, n_in, bf16_rounded_tokens_as_floats(x, n_tokens, n_in),
                     n_tokens, y, y_stride, row_begin, row_end);
}

}  // namespace slm::kernels
