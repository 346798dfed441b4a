// BF16 weights under ActivationPrecision::Int8 (kernels/matmul_bf16.hpp): the rounding of the
// activations (llama.cpp's), the scalar reference of vdpbf16ps against the specification's
// properties, the vdpbf16ps kernels against the reference bit for bit whatever the rows and
// tokens of a call (on a CPU with AVX512_BF16; skipped elsewhere), and every other ISA's float
// kernels on the rounded activations.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/matmul_bf16.hpp"
#include "kernels/quant_blocks.hpp"
#include "support/kernel_checks.hpp"

namespace slm::kernels::checks {
namespace {

constexpr float kInfinity = std::numeric_limits<float>::infinity();

std::vector<Bf16Bits> bf16_values(std::initializer_list<float> values) {
  std::vector<Bf16Bits> out;
  for (float v : values) out.push_back(fp32_to_bf16(v));
  return out;
}

// Records a check, building its message only when it fails.
template <class Message>
void check(CheckReport& report, bool passed, Message&& message) {
  report.expect(passed, passed ? std::string() : message());
}

// Equal bits, or both NaN (a NaN's payload is not specified).
bool same_result(float a, float b) { return float_bits(a) == float_bits(b) || (std::isnan(a) && std::isnan(b)); }

TEST(Bf16ActivationRounding, IsLlamaCppsRoundToNearestEvenWithQuietNaNsAndZeroPadding) {
  const float subnormal = 0x1.8p-130f;
  const std::vector<float> x = {1.0f + 0x1p-8f,         // a tie: to even, 1
                                1.0f + 0x3p-8f,         // a tie: to even, 1 + 2^-6
                                1.0f + 0x1.02p-8f,      // above the tie: up
                                std::numeric_limits<float>::max(),  // overflows to infinity, as ggml rounds
                                -kInfinity,
                                std::bit_cast<float>(0x7fa00001u),  // a signalling NaN, made quiet
                                subnormal};  // rounded like any value, not flushed
  const Bf16Bits* rounded = bf16_rounded_tokens(x.data(), 1, int64_t(x.size()));
  EXPECT_EQ(rounded[0], 0x3f80);
  EXPECT_EQ(rounded[1], 0x3f82);
  EXPECT_EQ(rounded[2], 0x3f81);
  EXPECT_EQ(rounded[3], 0x7f80);
  EXPECT_EQ(rounded[4], 0xff80);
  EXPECT_EQ(rounded[5], 0x7fe0);
  EXPECT_EQ(rounded[6], fp32_to_bf16(subnormal));
  EXPECT_EQ(bf16_to_fp32(rounded[6]), subnormal);
  for (int64_t i = int64_t(x.size()); i < bf16_token_stride(int64_t(x.size())); ++i) EXPECT_EQ(rounded[i], 0) << i;
  const float* as_floats = bf16_rounded_tokens_as_floats(x.data(), 1, int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_TRUE(same_result(as_floats[i], bf16_to_fp32(rounded[i]))) << i;
}

// Small integers: every product and every partial sum is exact, so any order gives the exact dot product.
TEST(Bf16DotReference, IsTheExactDotProductWhereNoSumRounds) {
  std::vector<Bf16Bits> w, x;
  double exact = 0;
  for (int i = 0; i < 77; ++i) {
    const float a = float(i % 13 - 6), b = float(i % 7 - 3);
    w.push_back(fp32_to_bf16(a));
    x.push_back(fp32_to_bf16(b));
    exact += double(a) * b;
  }
  EXPECT_EQ(dot_bf16_reference(w.data(), x.data(), 77), float(exact));
}

// vdpbf16ps reads subnormal inputs as zeros and flushes subnormal results to zeros (DAZ, FTZ).
TEST(Bf16DotReference, ReadsSubnormalsAsZeroAndFlushesSubnormalResults) {
  const std::vector<Bf16Bits> big = bf16_values({0x1p100f, 1.0f});
  const std::vector<Bf16Bits> subnormal = bf16_values({0x1p-130f, 0.0f});
  EXPECT_EQ(dot_bf16_reference(big.data(), subnormal.data(), 2), 0.0f);  // exactly: 2^-30, were it read
  const std::vector<Bf16Bits> tiny = bf16_values({0x1p-70f, -0x1p-70f});
  const std::vector<Bf16Bits> positive_tiny = bf16_values({0x1p-70f, 0x1p-70f});
  // 2^-140 and -2^-140 flush to zeros (the lanes' sum makes a -0 lane +0).
  EXPECT_EQ(float_bits(dot_bf16_reference(tiny.data(), positive_tiny.data(), 1)), 0u);
  EXPECT_EQ(float_bits(dot_bf16_reference(tiny.data() + 1, positive_tiny.data(), 1)), 0u);
  // Normal products pass: 2^-60 * 2^-60 = 2^-120.
  const std::vector<Bf16Bits> small = bf16_values({0x1p-60f});
  EXPECT_EQ(dot_bf16_reference(small.data(), small.data(), 1), 0x1p-120f);
}

TEST(Bf16DotReference, InfinitiesAndNaNsReachTheResult) {
  const std::vector<Bf16Bits> w = bf16_values({1.0f, 2.0f, 3.0f});
  EXPECT_EQ(dot_bf16_reference(w.data(), bf16_values({kInfinity, 1.0f, 1.0f}).data(), 3), kInfinity);
  EXPECT_TRUE(std::isnan(dot_bf16_reference(w.data(), bf16_values({kInfinity, -kInfinity, 1.0f}).data(), 3)));
  EXPECT_TRUE(std::isnan(dot_bf16_reference(w.data(), bf16_values({1.0f, NAN, 1.0f}).data(), 3)));
}

// Activations of every class: normal ones with a few NaNs, infinities, subnormals, values that
// round to infinity and values whose products flush, by seed.
std::vector<float> awkward_activations(int64_t n, uint32_t seed, bool special) {
  std::vector<float> x = random_activations(n, seed);
  if (!special) return x;
  std::mt19937 rng(seed);
  const float specials[] = {NAN, kInfinity, -kInfinity, 0x1.8p-130f, -0x1p-140f, 0x1p-100f, 3.4e38f, -0.0f};
  for (int64_t i = 0; i < n; ++i)
    if (rng() % 23 == 0) x[size_t(i)] = specials[rng() % std::size(specials)];
  return x;
}

// A BF16 matrix with some subnormal, tiny and infinite weights.
RandomMatrix awkward_matrix(int64_t n_rows, int64_t n_in, uint32_t seed, bool special) {
  RandomMatrix m = random_matrix(GgmlType::BF16, n_rows, n_in, seed);
  if (!special) return m;
  std::mt19937 rng(seed + 1);
  auto* w = reinterpret_cast<Bf16Bits*>(m.bytes.data());
  const Bf16Bits specials[] = {0x0001, 0x8040, fp32_to_bf16(0x1p-100f), 0x7f80};
  for (int64_t i = 0; i < n_rows * n_in; ++i)
    if (rng() % 29 == 0) w[i] = specials[rng() % std::size(specials)];
  return m;
}

constexpr float kUntouched = -12345.0f;

// Rows [row_begin, row_end) of an n_rows matrix, n_tokens tokens, into a y of stride n_rows + 3
// whose other elements must keep kUntouched; the kernel against the reference, bit for bit.
void check_dot_kernel(int64_t n_rows, int64_t n_in, int64_t n_tokens, int64_t row_begin, int64_t row_end, bool special,
                      CheckReport& report) {
  const RandomMatrix m = awkward_matrix(n_rows, n_in, uint32_t(n_in * 31 + n_rows), special);
  const std::vector<float> x = awkward_activations(n_tokens * n_in, uint32_t(n_tokens * 7 + n_in), special);
  const int64_t stride = n_rows + 3;
  std::vector<float> expected(size_t(n_tokens * stride), kUntouched), got(expected);
  matmul_rows_bf16_dot_reference(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, expected.data(), stride,
                                 row_begin, row_end);
  matmul_rows_bf16_dot(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, got.data(), stride, row_begin, row_end);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t o = 0; o < stride; ++o) {
      const size_t i = size_t(t * stride + o);
      check(report, same_result(got[i], expected[i]), [&] {
        return "n_in " + std::to_string(n_in) + " rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) +
               ") of " + std::to_string(n_rows) + ", " + std::to_string(n_tokens) + " tokens" +
               (special ? " (special values)" : "") + ": y[" + std::to_string(t) + "][" + std::to_string(o) +
               "] = " + std::to_string(got[i]) + ", reference " + std::to_string(expected[i]);
      });
    }
}

TEST(Bf16DotKernel, MatchesTheReferenceBitForBitOnAwkwardShapes) {
  if (!bf16_dot_available()) GTEST_SKIP() << "no AVX512_BF16 on this CPU (or in this build)";
  CheckReport report;
  // Lengths around the 32-value step and past the 1024-value chunk; rows around the group of 8;
  // 1 to 17 tokens (passes of 3) and 30 (past the tile of 24).
  for (int64_t n_in : {1, 5, 31, 32, 33, 100, 896, 2049})
    for (int64_t n_rows : {1, 7, 8, 9, 17})
      for (int64_t n_tokens : {1, 2, 3, 4, 5, 8, 13, 17, 30}) {
        check_dot_kernel(n_rows, n_in, n_tokens, 0, n_rows, false, report);
        check_dot_kernel(n_rows, n_in, n_tokens, n_rows / 3, n_rows, true, report);
      }
  EXPECT_EQ(report.failed, 0) << report.summary();
}

// Every (row, token) has the bits of its own one-token, one-row call: the batch, the tile and the
// row group do not change the order.
TEST(Bf16DotKernel, OutputsDoNotDependOnTheBatchOrTheRowRange) {
  if (!bf16_dot_available()) GTEST_SKIP() << "no AVX512_BF16 on this CPU (or in this build)";
  const int64_t n_rows = 19, n_in = 1100, n_tokens = 29;
  const RandomMatrix m = awkward_matrix(n_rows, n_in, 5, true);
  const std::vector<float> x = awkward_activations(n_tokens * n_in, 6, true);
  std::vector<float> batched(size_t(n_tokens * n_rows)), single(1);
  matmul_rows_bf16_dot(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, batched.data(), n_rows, 0, n_rows);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t o = 0; o < n_rows; ++o) {
      matmul_rows_bf16_dot(m.bytes.data() + uint64_t(o) * m.row_bytes, m.row_bytes, n_in, x.data() + t * n_in, 1,
                           single.data(), 1, 0, 1);
      ASSERT_TRUE(same_result(single[0], batched[size_t(t * n_rows + o)])) << "token " << t << " row " << o;
    }
}

// vdpbf16ps where the ISA takes it, the float kernels on the rounded activations elsewhere
// (check_bf16_activations, tests/support/kernel_checks.hpp: also run under qemu for NEON).
TEST(Bf16ActivationKernels, EveryIsaGivesTheBitsOfItsReference) {
  for (Isa isa : available_isas()) {
    CheckReport report;
    check_bf16_activations(isa, report);
    EXPECT_EQ(report.failed, 0) << isa_name(isa) << "\n" << report.summary();
  }
}

// Both orders sum the same exact products: the float kernels in 8 lanes (at most n/8 + 4
// roundings per product), vdpbf16ps in 16 (n/16 + 5), so they are within
// (gamma(n/8 + 4) + gamma(n/16 + 5)) * sum |w x| of each other, below dot_tolerance(n).
TEST(Bf16ActivationKernels, EveryIsaIsWithinTheOrderBoundOfTheReference) {
  for (Isa isa : available_isas()) {
    const IsaKernels& kernels = kernels_for(isa);
    const int64_t n_rows = 9, n_in = 2000, n_tokens = 4;
    const RandomMatrix m = random_matrix(GgmlType::BF16, n_rows, n_in, 3);
    const std::vector<float> x = random_activations(n_tokens * n_in, 4);
    std::vector<float> reference(size_t(n_tokens * n_rows)), got(reference.size());
    matmul_rows_bf16_dot_reference(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, reference.data(), n_rows, 0,
                                   n_rows);
    kernels.matmul_rows_bf16_activations(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, got.data(), n_rows, 0,
                                         n_rows);
    const float* rounded = bf16_rounded_tokens_as_floats(x.data(), n_tokens, n_in);
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t o = 0; o < n_rows; ++o) {
        const double bound = dot_tolerance(n_in, sum_abs_products(m.weights.data() + o * n_in, rounded + t * n_in, n_in));
        EXPECT_NEAR(got[size_t(t * n_rows + o)], reference[size_t(t * n_rows + o)], bound) << kernels.name;
      }
  }
}

// matmul_rows: Int8 routes BF16 to the bf16 kernels; other formats' rows keep Int16.
TEST(Bf16ActivationKernels, MatmulRowsRoundsOnlyBf16UnderInt8) {
  const int64_t n_rows = 8, n_in = 96, n_tokens = 3;
  const std::vector<float> x = random_activations(n_tokens * n_in, 9);
  for (GgmlType type : {GgmlType::BF16, GgmlType::F16, GgmlType::Q8_0}) {
    const RandomMatrix m = random_matrix(type, n_rows, n_in, 8);
    std::vector<float> int16(size_t(n_tokens * n_rows)), int8(int16.size()), expected(int16.size());
    matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, int16.data(), n_rows, 0, n_rows);
    matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, int8.data(), n_rows, 0, n_rows,
                ActivationPrecision::Int8);
    if (type == GgmlType::BF16)
      kernels_for(active_isa()).matmul_rows_bf16_activations(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens,
                                                             expected.data(), n_rows, 0, n_rows);
    else
      expected = int16;
    for (size_t i = 0; i < int8.size(); ++i)
      EXPECT_EQ(float_bits(int8[i]), float_bits(expected[i])) << ggml_type_name(type) << " output " << i;
    if (type == GgmlType::BF16) EXPECT_NE(int8, int16) << "the rounding of the activations moved nothing";
  }
}

}  // namespace
}  // namespace slm::kernels::checks
