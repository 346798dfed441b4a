// Scalar quantization: float formats, legacy 32-weight blocks, and the dispatcher.
// The K-quants (and Q8_K) are in quantize_k_quants.cpp, IQ4_NL and IQ4_XS in quantize_iq4.cpp.
#include "kernels/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/dequantize.hpp"  // check_row_length

namespace slm::kernels {

void quantize_row_f32(const float* x, float* y, int64_t n) {
  check_row_length("quantize_row_f32", n, 1);
  if (n > 0) std::memcpy(y, x, size_t(n) * sizeof(float));
}

void quantize_row_f16(const float* x, Fp16Bits* y, int64_t n) {
  check_row_length("quantize_row_f16", n, 1);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_row_bf16(const float* x, Bf16Bits* y, int64_t n) {
  check_row_length("quantize_row_bf16", n, 1);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

namespace {

constexpr int kBlock = kLegacyBlockSize;

// The weight of largest magnitude, with its sign (the first such weight on ties).
float signed_absmax(const float* x, int n) {
  float result = 0.0f;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > std::fabs(result)) result = x[j];
  return result;
}

int round_and_clamp(float v, int lowest, int highest) {
  return std::clamp(int(std::lrintf(v)), lowest, highest);  // lrintf: nearest, ties to even
}

// Low 4 bits of quant j go to the low nibble of byte j (j < 16) or the high nibble of byte j-16.
void pack_legacy_nibbles(const int q[kBlock], uint8_t qs[kBlock / 2]) {
  for (int j = 0; j < kBlock / 2; ++j) qs[j] = uint8_t((q[j] & 0x0f) | ((q[j + kBlock / 2] & 0x0f) << 4));
}

// Bit 4 of quant j goes to bit j of qh, read as a little-endian uint32.
void pack_legacy_fifth_bits(const int q[kBlock], uint8_t qh[4]) {
  uint32_t high_bits = 0;
  for (int j = 0; j < kBlock; ++j) high_bits |= uint32_t((q[j] >> 4) & 1) << j;
  std::memcpy(qh, &high_bits, sizeof(high_bits));
}

// Q4_0 / Q5_0 (levels = 16 / 32): w = d * (q - levels/2). The weight of largest magnitude
// gets quant 0, i.e. the most negative value -levels/2, so d = absmax / -(levels/2).
Fp16Bits quantize_legacy_symmetric(const float* x, int levels, int q[kBlock]) {
  const int offset = levels / 2;
  const Fp16Bits d_bits = fp32_to_fp16(signed_absmax(x, kBlock) / float(-offset));
  const float d = fp16_to_fp32(d_bits);
  const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kBlock; ++j) q[j] = round_and_clamp(x[j] * inverse_d, -offset, offset - 1) + offset;
  return d_bits;
}

// Q4_1 / Q5_1 (levels = 16 / 32): w = d * q + m, with m the block minimum and d spanning to the maximum.
void quantize_legacy_affine(const float* x, int levels, Fp16Bits& d_bits, Fp16Bits& m_bits, int q[kBlock]) {
  const auto [lowest, highest] = std::minmax_element(x, x + kBlock);
  d_bits = fp32_to_fp16((*highest - *lowest) / float(levels - 1));
  m_bits = fp32_to_fp16(*lowest);
  const float d = fp16_to_fp32(d_bits);
  const float m = fp16_to_fp32(m_bits);
  const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kBlock; ++j) q[j] = round_and_clamp((x[j] - m) * inverse_d, 0, levels - 1);
}

// Q8_0 / Q8_1, exactly as ggml: d = absmax / 127 in float, q = round(x / d) half away from zero.
float quantize_q8_legacy(const float* x, int8_t qs[kBlock]) {
  float absmax = 0.0f;
  for (int j = 0; j < kBlock; ++j) absmax = std::max(absmax, std::fabs(x[j]));
  const float d = absmax / 127.0f;
  const float inverse_d = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kBlock; ++j) qs[j] = int8_t(std::round(x[j] * inverse_d));
  return d;
}

}  // namespace

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  check_row_length("quantize_row_q4_0", n, kBlock);
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock) {
    int q[kBlock];
    y[b].d = quantize_legacy_symmetric(x, 16, q);
    pack_legacy_nibbles(q, y[b].qs);
  }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n) {
  check_row_length("quantize_row_q5_0", n, kBlock);
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock) {
    int q[kBlock];
    y[b].d = quantize_legacy_symmetric(x, 32, q);
    pack_legacy_nibbles(q, y[b].qs);
    pack_legacy_fifth_bits(q, y[b].qh);
  }
}

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n) {
  check_row_length("quantize_row_q4_1", n, kBlock);
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock) {
    int q[kBlock];
    quantize_legacy_affine(x, 16, y[b].d, y[b].m, q);
    pack_legacy_nibbles(q, y[b].qs);
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n) {
  check_row_length("quantize_row_q5_1", n, kBlock);
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock) {
    int q[kBlock];
    quantize_legacy_affine(x, 32, y[b].d, y[b].m, q);
    pack_legacy_nibbles(q, y[b].qs);
    pack_legacy_fifth_bits(q, y[b].qh);
  }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  check_row_length("quantize_row_q8_0", n, kBlock);
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock) y[b].d = fp32_to_fp16(quantize_q8_legacy(x, y[b].qs));
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
  check_row_length("quantize_row_q8_1", n, kBlock);
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock) {
    const float d = quantize_q8_legacy(x, y[b].qs);
    int sum = 0;
    for (int j = 0; j < kBlock; ++j) sum += y[b].qs[j];
    y[b].d = fp32_to_fp16(d);
    y[b].s = fp32_to_fp16(float(sum) * d);
  }
}

bool can_quantize(GgmlType type) {
  for (const auto& info : kGgmlTypes)
    if (info.type == type) return true;
  return false;
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32: return quantize_row_f32(src, static_cast<float*>(dst), n);
    case GgmlType::F16: return quantize_row_f16(src, static_cast<Fp16Bits*>(dst), n);
    case GgmlType::BF16: return quantize_row_bf16(src, static_cast<Bf16Bits*>(dst), n);
    case GgmlType::Q4_0: return quantize_row_q4_0(src, static_cast<BlockQ4_0*>(dst), n);
    case GgmlType::Q4_1: return quantize_row_q4_1(src, static_cast<BlockQ4_1*>(dst), n);
    case GgmlType::Q5_0: return quantize_row_q5_0(src, static_cast<BlockQ5_0*>(dst), n);
    case GgmlType::Q5_1: return quantize_row_q5_1(src, static_cast<BlockQ5_1*>(dst), n);
    case GgmlType::Q8_0: return quantize_row_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
    case GgmlType::Q8_1: return quantize_row_q8_1(src, static_cast<BlockQ8_1*>(dst), n);
    case GgmlType::Q2_K: return quantize_row_q2_k(src, static_cast<BlockQ2_K*>(dst), n);
    case GgmlType::Q3_K: return quantize_row_q3_k(src, static_cast<BlockQ3_K*>(dst), n);
    case GgmlType::Q4_K: return quantize_row_q4_k(src, static_cast<BlockQ4_K*>(dst), n);
    case GgmlType::Q5_K: return quantize_row_q5_k(src, static_cast<BlockQ5_K*>(dst), n);
    case GgmlType::Q6_K: return quantize_row_q6_k(src, static_cast<BlockQ6_K*>(dst), n);
    case GgmlType::Q8_K: return quantize_row_q8_k(src, static_cast<BlockQ8_K*>(dst), n);
    case GgmlType::IQ4_NL: return quantize_row_iq4_nl(src, static_cast<BlockIQ4_NL*>(dst), n);
    case GgmlType::IQ4_XS: return quantize_row_iq4_xs(src, static_cast<BlockIQ4_XS*>(dst), n);
  }
  throw std::invalid_argument("quantize_row: unknown ggml type id " + std::to_string(uint32_t(type)));
}

}  // namespace slm::kernels
