// Scalar dequantization: float formats, legacy 32-weight blocks, the non-linear IQ4_NL and
// IQ4_XS (which share the legacy nibble order), and the dispatcher.
// The K-quants are in dequantize_k_quants.cpp.
#include "kernels/dequantize.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace slm::kernels {

void check_row_length(const char* what, int64_t n, int64_t block_size) {
  if (n < 0 || n % block_size != 0)
    throw std::invalid_argument(std::string(what) + ": row length " + std::to_string(n) +
                                " is not a multiple of the block size " + std::to_string(block_size));
}

void dequantize_row_f32(const float* x, float* y, int64_t n) {
  check_row_length("dequantize_row_f32", n, 1);
  if (n > 0) std::memcpy(y, x, size_t(n) * sizeof(float));
}

void dequantize_row_f16(const Fp16Bits* x, float* y, int64_t n) {
  check_row_length("dequantize_row_f16", n, 1);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void dequantize_row_bf16(const Bf16Bits* x, float* y, int64_t n) {
  check_row_length("dequantize_row_bf16", n, 1);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

namespace {

// The 4-bit quant of weight j (0..31) of a legacy block: low nibbles hold weights 0..15,
// high nibbles weights 16..31.
int legacy_nibble(const uint8_t* qs, int j) {
  constexpr int half = kLegacyBlockSize / 2;
  return j < half ? (qs[j] & 0x0f) : (qs[j - half] >> 4);
}

// The 5th bit of weight j of a Q5_0 / Q5_1 block: bit j of qh read as a little-endian uint32.
int legacy_fifth_bit(const uint8_t* qh, int j) {
  uint32_t high_bits;
  std::memcpy(&high_bits, qh, sizeof(high_bits));
  return int((high_bits >> j) & 1u);
}

}  // namespace

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q4_0", n, kLegacyBlockSize);
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b, y += kLegacyBlockSize) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kLegacyBlockSize; ++j) y[j] = float(legacy_nibble(x[b].qs, j) - 8) * d;
  }
}

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q4_1", n, kLegacyBlockSize);
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b, y += kLegacyBlockSize) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < kLegacyBlockSize; ++j) y[j] = float(legacy_nibble(x[b].qs, j)) * d + m;
  }
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q5_0", n, kLegacyBlockSize);
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b, y += kLegacyBlockSize) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kLegacyBlockSize; ++j) {
      const int q = legacy_nibble(x[b].qs, j) | (legacy_fifth_bit(x[b].qh, j) << 4);
      y[j] = float(q - 16) * d;
    }
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q5_1", n, kLegacyBlockSize);
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b, y += kLegacyBlockSize) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < kLegacyBlockSize; ++j) {
      const int q = legacy_nibble(x[b].qs, j) | (legacy_fifth_bit(x[b].qh, j) << 4);
      y[j] = float(q) * d + m;
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q8_0", n, kLegacyBlockSize);
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b, y += kLegacyBlockSize) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kLegacyBlockSize; ++j) y[j] = float(x[b].qs[j]) * d;
  }
}

void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q8_1", n, kLegacyBlockSize);
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b, y += kLegacyBlockSize) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kLegacyBlockSize; ++j) y[j] = float(x[b].qs[j]) * d;
  }
}

void dequantize_row_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t n) {
  check_row_length("dequantize_row_iq4_nl", n, kLegacyBlockSize);
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b, y += kLegacyBlockSize) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kLegacyBlockSize; ++j) y[j] = d * float(kIq4NlValues[legacy_nibble(x[b].qs, j)]);
  }
}

// As ggml: the sub-block scale d * (ls - 32) first, then times the value. Both products are
// exact in float32 (11 + 6 and 17 + 7 significant bits), so any order gives these bits.
void dequantize_row_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t n) {
  check_row_length("dequantize_row_iq4_xs", n, kSuperBlockSize);
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int i = 0; i < kSuperBlockSize / 32; ++i, y += 32) {
      const float sub_block_scale = d * float(iq4_xs_scale(x[b], i) - 32);
      for (int j = 0; j < 32; ++j) y[j] = sub_block_scale * float(kIq4NlValues[legacy_nibble(x[b].qs + 16 * i, j)]);
    }
  }
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32: return dequantize_row_f32(static_cast<const float*>(src), dst, n);
    case GgmlType::F16: return dequantize_row_f16(static_cast<const Fp16Bits*>(src), dst, n);
    case GgmlType::BF16: return dequantize_row_bf16(static_cast<const Bf16Bits*>(src), dst, n);
    case GgmlType::Q4_0: return dequantize_row_q4_0(static_cast<const BlockQ4_0*>(src), dst, n);
    case GgmlType::Q4_1: return dequantize_row_q4_1(static_cast<const BlockQ4_1*>(src), dst, n);
    case GgmlType::Q5_0: return dequantize_row_q5_0(static_cast<const BlockQ5_0*>(src), dst, n);
    case GgmlType::Q5_1: return dequantize_row_q5_1(static_cast<const BlockQ5_1*>(src), dst, n);
    case GgmlType::Q8_0: return dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, n);
    case GgmlType::Q8_1: return dequantize_row_q8_1(static_cast<const BlockQ8_1*>(src), dst, n);
    case GgmlType::Q2_K: return dequantize_row_q2_k(static_cast<const BlockQ2_K*>(src), dst, n);
    case GgmlType::Q3_K: return dequantize_row_q3_k(static_cast<const BlockQ3_K*>(src), dst, n);
    case GgmlType::Q4_K: return dequantize_row_q4_k(static_cast<const BlockQ4_K*>(src), dst, n);
    case GgmlType::Q5_K: return dequantize_row_q5_k(static_cast<const BlockQ5_K*>(src), dst, n);
    case GgmlType::Q6_K: return dequantize_row_q6_k(static_cast<const BlockQ6_K*>(src), dst, n);
    case GgmlType::Q8_K: return dequantize_row_q8_k(static_cast<const BlockQ8_K*>(src), dst, n);
    case GgmlType::IQ4_NL: return dequantize_row_iq4_nl(static_cast<const BlockIQ4_NL*>(src), dst, n);
    case GgmlType::IQ4_XS: return dequantize_row_iq4_xs(static_cast<const BlockIQ4_XS*>(src), dst, n);
  }
  throw std::invalid_argument("dequantize_row: unknown ggml type id " + std::to_string(uint32_t(type)));
}

}  // namespace slm::kernels
