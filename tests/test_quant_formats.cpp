// The GGML weight formats: block geometry, fp16/bf16 conversions, hand-built blocks with
// known values, and quantize -> dequantize round trips on random data.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/dequantize.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/quantize.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels {
namespace {

// ---------------------------------------------------------------------------
// Block geometry
// ---------------------------------------------------------------------------

TEST(QuantBlocks, StructSizesMatchTheTypeTable) {
  EXPECT_EQ(sizeof(BlockQ4_0), ggml_type_info(GgmlType::Q4_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ4_1), ggml_type_info(GgmlType::Q4_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_0), ggml_type_info(GgmlType::Q5_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_1), ggml_type_info(GgmlType::Q5_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_0), ggml_type_info(GgmlType::Q8_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_1), ggml_type_info(GgmlType::Q8_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ2_K), ggml_type_info(GgmlType::Q2_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ3_K), ggml_type_info(GgmlType::Q3_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ4_K), ggml_type_info(GgmlType::Q4_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_K), ggml_type_info(GgmlType::Q5_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ6_K), ggml_type_info(GgmlType::Q6_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_K), ggml_type_info(GgmlType::Q8_K).block_bytes);
  EXPECT_EQ(sizeof(BlockIQ4_NL), ggml_type_info(GgmlType::IQ4_NL).block_bytes);
  EXPECT_EQ(sizeof(BlockIQ4_XS), ggml_type_info(GgmlType::IQ4_XS).block_bytes);
  EXPECT_EQ(ggml_type_info(GgmlType::IQ4_NL).block_size, 32u);
  EXPECT_EQ(ggml_type_info(GgmlType::IQ4_XS).block_size, 256u);
  EXPECT_EQ(ggml_type_info(GgmlType::Q4_0).block_size, 32u);
  EXPECT_EQ(ggml_type_info(GgmlType::Q4_K).block_size, 256u);
}

// ---------------------------------------------------------------------------
// fp16
// ---------------------------------------------------------------------------

TEST(Fp16, EveryHalfRoundTripsThroughFloatExactly) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto h = uint16_t(bits);
    const float f = fp16_to_fp32(h);
    if ((h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << bits;
      const uint16_t back = fp32_to_fp16(f);
      ASSERT_TRUE(std::isnan(fp16_to_fp32(back))) << "NaN must stay NaN: " << std::hex << bits;
      ASSERT_EQ(back & 0x8000, h & 0x8000) << "NaN keeps its sign: " << std::hex << bits;
    } else {
      ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << bits;
    }
  }
}

TEST(Fp16, DecodesKnownValues) {
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0400), 0x1p-14f);  // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03ff), 1023 * 0x1p-24f);
  EXPECT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(fp16_to_fp32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xfc00), -std::numeric_limits<float>::infinity());
}

// Between two neighbouring halves lo < hi, floats below the midpoint round to lo, above it
// to hi, and the midpoint itself to whichever has an even mantissa. Checked for every pair,
// both signs, including the subnormals and the step from 65504 to infinity (2^16).
TEST(Fp16, RoundsToNearestEvenAtEveryMidpoint) {
  for (uint16_t lo_bits = 0; lo_bits < 0x7c00; ++lo_bits) {
    const uint16_t hi_bits = lo_bits + 1;
    const float lo = fp16_to_fp32(lo_bits);
    const float hi = hi_bits == 0x7c00 ? 65536.0f : fp16_to_fp32(hi_bits);
    const float midpoint = (lo + hi) / 2;  // exact: lo and hi have at most 11 significant bits
    const uint16_t even_bits = (lo_bits & 1) ? hi_bits : lo_bits;
    for (const float sign : {1.0f, -1.0f}) {
      const uint16_t sign_bit = sign < 0 ? 0x8000 : 0;
      ASSERT_EQ(fp32_to_fp16(sign * midpoint), even_bits | sign_bit) << lo;
      ASSERT_EQ(fp32_to_fp16(sign * std::nextafter(midpoint, 0.0f)), lo_bits | sign_bit) << lo;
      ASSERT_EQ(fp32_to_fp16(sign * std::nextafter(midpoint, 1e9f)), hi_bits | sign_bit) << lo;
    }
  }
}

TEST(Fp16, EncodesSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp32_to_fp16(inf), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-inf), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(1e9f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);                 // half of the smallest subnormal: tie to even (0)
  EXPECT_EQ(fp32_to_fp16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(0x1p-14f - 0x1p-25f), 0x0400);      // rounds up from the subnormals into the normals
  const uint16_t quiet_nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(quiet_nan)));
  // A NaN whose payload lies only in the low 13 bits (dropped by the conversion) is still NaN.
  const uint16_t low_payload_nan = fp32_to_fp16(std::bit_cast<float>(0xff800001u));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(low_payload_nan)));
  EXPECT_EQ(low_payload_nan & 0x8000, 0x8000);
}

// ---------------------------------------------------------------------------
// bf16
// ---------------------------------------------------------------------------

TEST(Bf16, EveryBf16RoundTripsThroughFloatExactly) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto b = uint16_t(bits);
    const float f = bf16_to_fp32(b);
    if (std::isnan(f))
      ASSERT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f)))) << std::hex << bits;
    else
      ASSERT_EQ(fp32_to_bf16(f), b) << std::hex << bits;
  }
}

TEST(Bf16, RoundsToNearestEvenAndKeepsNan) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);                      // tie, 1.0 is even
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);                  // tie, goes up to the even 1 + 2^-6
  EXPECT_EQ(fp32_to_bf16(std::nextafter(1.0f + 0x1p-8f, 2.0f)), 0x3f81);  // just above the tie
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);   // overflows to infinity
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

// ---------------------------------------------------------------------------
// Hand-built blocks with known values
// ---------------------------------------------------------------------------

TEST(KnownBlocks, Q4_0LowNibblesAreTheFirstHalf) {
  BlockQ4_0 block{};
  block.d = 0x3800;  // 0.5
  for (int j = 0; j < 16; ++j) block.qs[j] = uint8_t(j | ((15 - j) << 4));
  float y[32];
  dequantize_row_q4_0(&block, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * float(j - 8)) << j;            // low nibble j
    EXPECT_EQ(y[16 + j], 0.5f * float(7 - j)) << 16 + j;  // high nibble 15 - j
  }
}

TEST(KnownBlocks, Q8_0IsScaleTimesSignedByte) {
  BlockQ8_0 block{};
  block.d = 0x3400;  // 0.25
  for (int j = 0; j < 32; ++j) block.qs[j] = int8_t(j * 8 - 128);
  float y[32];
  dequantize_row_q8_0(&block, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.25f * float(j * 8 - 128)) << j;
}

TEST(KnownBlocks, Q5_0FifthBitComesFromQh) {
  BlockQ5_0 block{};
  block.d = 0x3c00;  // 1.0
  for (int j = 0; j < 16; ++j) block.qs[j] = 0x00;
  const uint32_t high_bits = 0x80000001u;  // weights 0 and 31 have q = 16, the rest q = 0
  std::memcpy(block.qh, &high_bits, 4);
  float y[32];
  dequantize_row_q5_0(&block, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], (j == 0 || j == 31) ? 0.0f : -16.0f) << j;
}

// Q4_K scale/min codes by hand: sub-blocks 0..3 use the low 6 bits of bytes 0..7; sub-blocks
// 4..7 take their low nibbles from bytes 8..11 and their top 2 bits from the top of bytes 0..7.
//   scales = {1, 2, 3, 4, 40, 50, 60, 63}, mins = {0, 1, 2, 3, 17, 33, 48, 5}
constexpr uint8_t kQ4KScaleCodes[8] = {1, 2, 3, 4, 40, 50, 60, 63};
constexpr uint8_t kQ4KMinCodes[8] = {0, 1, 2, 3, 17, 33, 48, 5};
constexpr uint8_t kQ4KPackedScales[12] = {
    0x81, 0xc2, 0xc3, 0xc4,  // scale i | (top 2 bits of scale i+4) << 6
    0x40, 0x81, 0xc2, 0x03,  // min i   | (top 2 bits of min i+4) << 6
    0x18, 0x12, 0x0c, 0x5f,  // low nibble of scale i+4 | low nibble of min i+4 << 4
};

TEST(KnownBlocks, Q4_KScalesAndMinsUnpackFromTwelveBytes) {
  for (int i = 0; i < 8; ++i) {
    const ScaleAndMin sm = k_quant_scale_min(kQ4KPackedScales, i);
    EXPECT_EQ(sm.scale, kQ4KScaleCodes[i]) << i;
    EXPECT_EQ(sm.min, kQ4KMinCodes[i]) << i;
  }
  uint8_t packed[12];
  pack_k_quant_scales_mins(kQ4KScaleCodes, kQ4KMinCodes, packed);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(packed[i], kQ4KPackedScales[i]) << i;
}

TEST(KnownBlocks, Q4_KDequantizesScaleTimesQuantMinusMin) {
  BlockQ4_K block{};
  block.d = 0x3c00;     // 1.0
  block.dmin = 0x3800;  // 0.5
  std::memcpy(block.scales, kQ4KPackedScales, 12);
  // Byte i of each 32-byte group: low nibble i % 16 (sub-block 2p), high nibble 15 - i % 16 (sub-block 2p+1).
  for (int i = 0; i < 128; ++i) block.qs[i] = uint8_t((i % 16) | ((15 - i % 16) << 4));
  float y[256];
  dequantize_row_q4_k(&block, y, 256);
  for (int sub = 0; sub < 8; ++sub) {
    for (int l = 0; l < 32; ++l) {
      const int q = sub % 2 == 0 ? l % 16 : 15 - l % 16;
      const float expected = 1.0f * float(kQ4KScaleCodes[sub]) * float(q) - 0.5f * float(kQ4KMinCodes[sub]);
      EXPECT_EQ(y[32 * sub + l], expected) << "sub-block " << sub << " weight " << l;
    }
  }
}

TEST(KnownBlocks, Q3_KScalesPackAndUnpackForEveryValue) {
  int8_t scales[16];
  for (int start = -32; start < 32; ++start) {
    for (int i = 0; i < 16; ++i) scales[i] = int8_t((start + 32 + 5 * i) % 64 - 32);  // all of -32..31 across starts
    uint8_t packed[12];
    pack_q3_k_scales(scales, packed);
    for (int i = 0; i < 16; ++i) ASSERT_EQ(q3_k_scale(packed, i), scales[i]) << "start " << start << " i " << i;
  }
}

TEST(KnownBlocks, K_QuantScaleMinPackingRoundTripsEveryPair) {
  for (int scale = 0; scale < 64; ++scale) {
    for (int min = 0; min < 64; ++min) {
      uint8_t scales[8], mins[8], packed[12];
      for (int i = 0; i < 8; ++i) scales[i] = uint8_t((scale + 7 * i) % 64), mins[i] = uint8_t((min + 11 * i) % 64);
      pack_k_quant_scales_mins(scales, mins, packed);
      for (int i = 0; i < 8; ++i) {
        const ScaleAndMin sm = k_quant_scale_min(packed, i);
        ASSERT_EQ(sm.scale, scales[i]);
        ASSERT_EQ(sm.min, mins[i]);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Dispatchers
// ---------------------------------------------------------------------------

TEST(Dispatch, RejectsRowLengthsThatAreNotWholeBlocks) {
  std::vector<uint8_t> bytes(4096);
  std::vector<float> floats(1024);
  EXPECT_THROW(dequantize_row(GgmlType::Q4_0, bytes.data(), floats.data(), 33), std::invalid_argument);
  EXPECT_THROW(dequantize_row(GgmlType::Q4_K, bytes.data(), floats.data(), 128), std::invalid_argument);
  EXPECT_THROW(dequantize_row(GgmlType::F16, bytes.data(), floats.data(), -1), std::invalid_argument);
  EXPECT_THROW(quantize_row(GgmlType::Q8_0, floats.data(), bytes.data(), 31), std::invalid_argument);
  EXPECT_THROW(quantize_row(GgmlType::Q6_K, floats.data(), bytes.data(), 512 + 32), std::invalid_argument);
  EXPECT_THROW(dequantize_row(GgmlType::IQ4_NL, bytes.data(), floats.data(), 48), std::invalid_argument);
  EXPECT_THROW(dequantize_row(GgmlType::IQ4_XS, bytes.data(), floats.data(), 288), std::invalid_argument);
  EXPECT_THROW(quantize_row(GgmlType::IQ4_XS, floats.data(), bytes.data(), 32), std::invalid_argument);
  EXPECT_THROW(quantize_row(static_cast<GgmlType>(99), floats.data(), bytes.data(), 32), std::invalid_argument);
  EXPECT_THROW(dequantize_row(static_cast<GgmlType>(99), bytes.data(), floats.data(), 32), std::invalid_argument);
  EXPECT_NO_THROW(dequantize_row(GgmlType::Q4_K, bytes.data(), floats.data(), 0));
}

TEST(Dispatch, CanQuantizeEveryTypeOfTheTable) {
  for (const auto& info : kGgmlTypes) EXPECT_TRUE(can_quantize(info.type)) << info.name;
  EXPECT_FALSE(can_quantize(static_cast<GgmlType>(99)));
}

// ---------------------------------------------------------------------------
// Round trips on random data
// ---------------------------------------------------------------------------

std::vector<float> gaussian_data(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = normal(rng);
  return x;
}

std::vector<float> round_trip(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> bytes(ggml_row_bytes(type, x.size()));
  quantize_row(type, x.data(), bytes.data(), int64_t(x.size()));
  std::vector<float> y(x.size());
  dequantize_row(type, bytes.data(), y.data(), int64_t(y.size()));
  return y;
}

// RMS(dequantized - x) / RMS(x).
double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double error = 0, signal = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    error += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    signal += double(x[i]) * x[i];
  }
  return std::sqrt(error / signal);
}

struct RoundTripBound {
  GgmlType type;
  double max_relative_rms;  // on N(0, 1) data
  const char* why;
};

// Bounds on standard normal data, 64 Ki values; each sits about 10% above the error measured
// when it was written (in brackets), so a regression in a scale search fails the test.
// Where they come from: a uniform quantizer with step s has RMS error s / sqrt(12). The absmax
// of 16 / 32 / 256 normal samples is about 1.9 / 2.3 / 3.0 sigma and the range of 32 about 4.1.
// The K-quants search their scales; for them the bracket also gives a lower bound for *any*
// encoder of the format: a brute-force grid search over unquantized float scales (and mins).
constexpr RoundTripBound kRoundTripBounds[] = {
    {GgmlType::F32, 0.0, "exact copy"},
    {GgmlType::F16, 2.3e-4, "ulp / |x| is 2^-11 .. 2^-10: about 2^-10.5 / sqrt(12) = 2.0e-4 [2.08e-4]"},
    {GgmlType::BF16, 1.8e-3, "ulp / |x| is 2^-8 .. 2^-7: about 2^-7.5 / sqrt(12) = 1.6e-3 [1.66e-3]"},
    // ggml's rule exactly (see quantize.hpp), so llama.cpp's activation quantization can be reproduced.
    {GgmlType::Q8_0, 5.9e-3, "step absmax(32) / 127: 2.3 / 127 / sqrt(12) = 5.2e-3 [5.40e-3]"},
    {GgmlType::Q8_1, 5.9e-3, "the same quants as Q8_0 [5.40e-3]"},
    {GgmlType::Q8_K, 7.6e-3, "step absmax(256) / 127: 3.0 / 127 / sqrt(12) = 6.8e-3 [6.98e-3]"},
    {GgmlType::Q6_K, 1.8e-2, "step about absmax(16) / 32: 1.7e-2; lower bound 1.63e-2 [1.65e-2]"},
    {GgmlType::Q5_0, 4.7e-2, "step absmax(32) / 16: 2.3 / 16 / sqrt(12) = 4.2e-2 [4.30e-2]"},
    {GgmlType::Q5_1, 4.2e-2, "step range(32) / 31: 4.1 / 31 / sqrt(12) = 3.8e-2 [3.81e-2]"},
    {GgmlType::Q5_K, 3.8e-2, "32 levels per 32 weights, searched scale and min; lower bound 3.30e-2 [3.46e-2]"},
    {GgmlType::Q4_0, 9.5e-2, "step absmax(32) / 8: 2.3 / 8 / sqrt(12) = 8.3e-2 [8.66e-2]"},
    {GgmlType::Q4_1, 8.7e-2, "step range(32) / 15: 4.1 / 15 / sqrt(12) = 7.9e-2 [7.89e-2]"},
    {GgmlType::Q4_K, 7.7e-2, "16 levels per 32 weights, searched scale and min; lower bound 6.88e-2 [7.04e-2]"},
    {GgmlType::Q3_K, 1.58e-1, "8 levels per 16 weights, searched scale; lower bound 1.43e-1 [1.44e-1]"},
    {GgmlType::Q2_K, 2.9e-1, "4 levels per 16 weights, searched scale and min; lower bound 2.55e-1 [2.64e-1]"},
    {GgmlType::IQ4_NL, 8.2e-2, "16 levels, denser near 0, per 32 weights, searched scale: below Q4_0's [7.41e-2]"},
    {GgmlType::IQ4_XS, 8.2e-2, "IQ4_NL's levels, 6-bit sub-block scales on an fp16 scale: near IQ4_NL [7.47e-2]"},
};

TEST(RoundTrip, EveryFormatStaysWithinItsErrorBoundOnNormalData) {
  const std::vector<float> x = gaussian_data(64 * 1024, 20240611);
  for (const auto& bound : kRoundTripBounds) {
    const double error = relative_rms_error(x, round_trip(bound.type, x));
    EXPECT_LE(error, bound.max_relative_rms) << ggml_type_name(bound.type) << ": " << bound.why;
    std::printf("  %-5s relative RMS error %.3e (bound %.1e)\n", std::string(ggml_type_name(bound.type)).c_str(),
                error, bound.max_relative_rms);
  }
}

// More bits give less error, and a K-quant beats the legacy format of the same bit count.
TEST(RoundTrip, MoreBitsGiveLessError) {
  const std::vector<float> x = gaussian_data(16 * 1024, 7);
  auto error = [&](GgmlType type) { return relative_rms_error(x, round_trip(type, x)); };
  EXPECT_LT(error(GgmlType::Q3_K), error(GgmlType::Q2_K));
  EXPECT_LT(error(GgmlType::Q4_K), error(GgmlType::Q3_K));
  EXPECT_LT(error(GgmlType::Q5_K), error(GgmlType::Q4_K));
  EXPECT_LT(error(GgmlType::Q6_K), error(GgmlType::Q5_K));
  EXPECT_LT(error(GgmlType::Q4_K), error(GgmlType::Q4_0));
  EXPECT_LT(error(GgmlType::Q4_K), error(GgmlType::Q4_1));
  EXPECT_LT(error(GgmlType::Q5_K), error(GgmlType::Q5_0));
  EXPECT_LT(error(GgmlType::Q5_K), error(GgmlType::Q5_1));
  EXPECT_LT(error(GgmlType::IQ4_NL), error(GgmlType::Q4_0));  // the same 4.5 bits per weight
  EXPECT_LT(error(GgmlType::IQ4_XS), error(GgmlType::Q4_0));
}

// Data far from zero mean, with one large outlier per block: the affine formats must keep
// their min, and no format may produce NaN or infinity.
TEST(RoundTrip, OffsetDataWithOutliersStaysFinite) {
  std::vector<float> x = gaussian_data(4096, 99);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 3.0f + 0.1f * x[i] + (i % 256 == 17 ? 40.0f : 0.0f);
  for (const auto& info : kGgmlTypes) {
    const std::vector<float> y = round_trip(info.type, x);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << info.name << " at " << i;
    EXPECT_LE(relative_rms_error(x, y), 0.25) << info.name;
  }
}

TEST(RoundTrip, ZerosStayZeros) {
  const std::vector<float> x(512, 0.0f);
  for (const auto& info : kGgmlTypes) {
    const std::vector<float> y = round_trip(info.type, x);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], 0.0f) << info.name << " at " << i;
  }
}

TEST(RoundTrip, ValuesOnTheGridComeBackExactly) {
  // Multiples of 1/4 from -8/4 .. 7/4 in each block of 32, with -2 present: Q4_0's scale is
  // then exactly 0.25 and every value is on its grid; the same holds for Q8_0 with -127/64 .. 127/64.
  std::vector<float> q4(64), q8(64);
  for (int i = 0; i < 64; ++i) q4[i] = float(i % 16 - 8) / 4.0f;
  for (int i = 0; i < 64; ++i) q8[i] = float((i * 37) % 255 - 127) / 64.0f;
  q8[0] = q8[32] = -127.0f / 64.0f;
  EXPECT_EQ(round_trip(GgmlType::Q4_0, q4), q4);
  EXPECT_EQ(round_trip(GgmlType::Q8_0, q8), q8);
}

// A block whose weights are d times table values, the value of largest magnitude -127 among
// them, comes back exactly from IQ4_NL: the scale search tries that scale first.
TEST(RoundTrip, Iq4NlValuesOnTheTableComeBackExactly) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = float(kIq4NlValues[(i * 7) % 16]) / 16.0f;
  EXPECT_EQ(round_trip(GgmlType::IQ4_NL, x), x);
}

TEST(KnownBlocks, Iq4XsSixBitScalesUnpackFromLowNibblesAndHighPairs) {
  BlockIQ4_XS block{};
  const int ls[8] = {0, 63, 32, 17, 48, 5, 40, 31};
  for (int i = 0; i < 8; ++i) {
    block.scales_l[i / 2] |= uint8_t((ls[i] & 0x0f) << (4 * (i % 2)));
    block.scales_h |= uint16_t((ls[i] >> 4) << (2 * i));
  }
  for (int i = 0; i < 8; ++i) EXPECT_EQ(iq4_xs_scale(block, i), ls[i]) << i;
  // Sub-block 1 (ls 63: scale 31) at d = 0.5, nibbles 0 and 15 of its first byte: weights 32 and 48.
  block.d = fp32_to_fp16(0.5f);
  block.qs[16] = 0xf0;
  std::vector<float> y(256);
  dequantize_row_iq4_xs(&block, y.data(), 256);
  EXPECT_EQ(y[32], 0.5f * 31 * -127);
  EXPECT_EQ(y[48], 0.5f * 31 * 113);
  EXPECT_EQ(y[0], 0.5f * -32 * -127);  // sub-block 0: ls 0, scale -32, nibble 0
}

TEST(Q8_K, BlockSumsAreTheSumsOfEachSixteenQuants) {
  const std::vector<float> x = gaussian_data(512, 3);
  BlockQ8_K blocks[2];
  quantize_row_q8_k(x.data(), blocks, 512);
  for (const auto& block : blocks) {
    int max_abs = 0;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) {
        sum += block.qs[16 * g + i];
        max_abs = std::max(max_abs, std::abs(int(block.qs[16 * g + i])));
      }
      EXPECT_EQ(block.bsums[g], sum) << g;
    }
    EXPECT_EQ(max_abs, 127);  // the largest weight maps to -127 (or 127)
  }
}

TEST(Q8_1, SumTermIsScaleTimesSumOfQuants) {
  const std::vector<float> x = gaussian_data(64, 5);
  BlockQ8_1 blocks[2];
  quantize_row_q8_1(x.data(), blocks, 64);
  for (const auto& block : blocks) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += block.qs[j];
    const float d = fp16_to_fp32(block.d);
    EXPECT_NEAR(fp16_to_fp32(block.s), d * float(sum), std::fabs(d * float(sum)) * 1e-3 + 1e-6);
  }
}

}  // namespace
}  // namespace slm::kernels
