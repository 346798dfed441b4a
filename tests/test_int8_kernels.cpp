// ActivationPrecision::Int8 (kernels/matmul_int8.hpp): the scalar reference against the
// specification's properties, and every ISA's Int8 kernels against the reference, bit for
// bit, whatever the rows and the tokens of a call.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/activation_blocks.hpp"
#include "kernels/matmul_int8.hpp"
#include "kernels/quant_blocks.hpp"
#include "support/kernel_checks.hpp"

namespace slm::kernels::checks {
namespace {

TEST(Int8ActivationReference, RoundsToTheNearestOf127StepsOfTheLargestMagnitude) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[size_t(i)] = float(i - 16) * 0.37f;  // amax 5.92 at i = 0
  const Int8ActivationBlockRef b = quantize_int8_block_reference(x.data(), 32);
  EXPECT_EQ(b.d, 5.92f / 127.0f);
  EXPECT_EQ(b.q[0], -127);
  int32_t sum = 0;
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(b.q[i], int(std::nearbyint(x[size_t(i)] * (127.0f / 5.92f)))) << i;
    EXPECT_LE(std::abs(float(b.q[i]) * b.d - x[size_t(i)]), b.d / 2 * 1.0001f) << i;
    sum += b.q[i];
  }
  EXPECT_EQ(b.sum32[0], sum);
  EXPECT_EQ(b.sum16[0] + b.sum16[1], sum);
}

TEST(Int8ActivationReference, ZeroAndNonFiniteBlocks) {
  std::vector<float> x(32, 0.0f);
  Int8ActivationBlockRef b = quantize_int8_block_reference(x.data(), 32);
  EXPECT_EQ(b.d, 0.0f);
  x[5] = std::numeric_limits<float>::infinity();
  b = quantize_int8_block_reference(x.data(), 32);
  EXPECT_TRUE(std::isnan(b.d));
  for (int8_t q : b.q) EXPECT_EQ(q, 0);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(quantize_int8_block_reference(x.data(), 32).d));
}

// The reference's outputs are the float dot products of the dequantized weights with the
// rounded activations, up to float rounding: the formula, not an accident of the code, is
// what the SIMD kernels are then held to.
TEST(Int8MatmulReference, IsTheDotProductOfTheWeightsWithTheRoundedActivations) {
  for (GgmlType type : kWeightFormats) {
    if (!has_int8_formula(type)) continue;
    const int64_t n_in = 512, n_rows = 5, n_tokens = 3;
    const RandomMatrix m = random_matrix(type, n_rows, n_in, 11);
    const std::vector<float> x = random_activations(n_tokens * n_in, 12);
    std::vector<float> y(size_t(n_tokens * n_rows));
    matmul_rows_int8_reference(type, m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, y.data(), n_rows, 0, n_rows);
    const int block = int(ggml_type_info(type).block_size);
    std::vector<float> w(static_cast<size_t>(n_in));
    for (int64_t o = 0; o < n_rows; ++o) {
      dequantize_row(type, m.bytes.data() + o * m.row_bytes, w.data(), n_in);
      for (int64_t t = 0; t < n_tokens; ++t) {
        double exact = 0.0, magnitude = 0.0;
        for (int64_t b = 0; b < n_in / block; ++b) {
          const Int8ActivationBlockRef a = quantize_int8_block_reference(x.data() + t * n_in + b * block, block);
          for (int i = 0; i < block; ++i) {
            const double product = double(w[size_t(b * block + i)]) * a.q[i] * a.d;
            exact += product;
            magnitude += std::fabs(product);
          }
        }
        // float32 steps: a handful of roundings per block, each at most 2^-24 of the magnitude.
        EXPECT_NEAR(y[size_t(t * n_rows + o)], exact, 1e-5 * magnitude + 1e-30) << ggml_type_name(type) << " row " << o;
      }
    }
  }
}

// An ISA and format pair; skipped, saying why, where the ISA or its Int8 kernel is missing.
class Int8Kernels : public ::testing::TestWithParam<std::tuple<Isa, GgmlType>> {
 protected:
  void SetUp() override {
    const auto [isa, type] = GetParam();
    if (!isa_available(isa)) GTEST_SKIP() << isa_name(isa) << ": not available in this build or on this CPU, not run";
    if (!kernels_for(isa).interleaves(type) || !kernels_for(isa).int8_activations(type))
      GTEST_SKIP() << isa_name(isa) << " has no Int8 kernel for " << ggml_type_name(type) << " (it keeps Int16)";
  }
};

TEST_P(Int8Kernels, GiveTheBitsOfTheReferenceWhateverTheRowsAndTokens) {
  const auto [isa, type] = GetParam();
  const IsaKernels& kernels = kernels_for(isa);
  // 10 layout tiles: a prompt's driver takes them 8 at a time, so a range holds a full group, a
  // group and a remainder of 1 or 2, or only a remainder of 1 to 7.
  constexpr int64_t kRows = 10 * kInterleavedRows, kTokens = 151, kStride = kRows + 3;
  int64_t checked = 0;
  for (int64_t n_in : test_row_lengths(type)) {
    const RandomMatrix m = random_matrix(type, kRows, n_in, uint32_t(8000 + n_in));
    const std::vector<uint8_t> tiles = interleaved_tiles(m);
    std::vector<float> x = random_activations(kTokens * n_in, uint32_t(9000 + n_in));
    x[size_t(3 * n_in + 1)] = 0.0f;  // a few blocks of zeros, and one tiny block, for the d = 0 rule
    for (int64_t i = 0; i < std::min<int64_t>(n_in, 32); ++i) x[size_t(7 * n_in + i)] = 0.0f;
    for (int64_t i = 0; i < std::min<int64_t>(n_in, 32); ++i) x[size_t(9 * n_in + i)] = 1e-31f * float(i);
    std::vector<float> expected(size_t(kTokens * kRows));
    matmul_rows_int8_reference(type, m.bytes.data(), m.row_bytes, n_in, x.data(), kTokens, expected.data(), kRows, 0, kRows);
    const float sentinel = std::bit_cast<float>(0x7fc0dead);
    const int64_t row_ranges[][2] = {{0, 80}, {8, 80}, {16, 80}, {0, 64}, {0, 24}, {0, 8}, {8, 16}, {8, 24}};
    for (const auto& range : row_ranges)
      for (int64_t n_tokens : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 33, 144, 145, 151})
        for (int64_t first_token : {int64_t(0), kTokens - n_tokens}) {
          std::vector<float> y(size_t(kTokens * kStride), sentinel);
          kernels.matmul_interleaved_int8(type, tiles.data(), n_in, x.data() + first_token * n_in, n_tokens,
                                          y.data() + first_token * kStride, kStride, range[0], range[1]);
          const auto [identical, untouched] =
              compare_written_block(y, kStride, expected, kRows, first_token, n_tokens, range[0], range[1], sentinel);
          const std::string call = describe(kernels, type) + " n_in " + std::to_string(n_in) + " rows [" +
                                   std::to_string(range[0]) + ", " + std::to_string(range[1]) + ") tokens " +
                                   std::to_string(first_token) + " + " + std::to_string(n_tokens);
          ASSERT_TRUE(identical) << call << ": not bit-identical to matmul_rows_int8_reference";
          ASSERT_TRUE(untouched) << call << ": wrote outside its rows and tokens";
          ++checked;
        }
  }
  EXPECT_GT(checked, 0);
}

// Every quant bit set, the block scales (and Q4_1/Q5_1's mins) kept: the largest unsigned
// quants (Q4_0 and Q4_1 15, Q5_0, Q5_1 and Q5_K 31, Q4_K's and Q5_K's sub-block scales and mins 63).
// IQ4_NL's largest |w_int| is nibble 0's -127: every quant byte `fill` = 0 there; IQ4_XS's,
// 4064, is that times scale ls_i - 32 = -32: its scale bits 0 too.
template <class Block>
void set_every_quant_bit(RandomMatrix& m, uint8_t fill = 0xff) {
  auto* blocks = reinterpret_cast<Block*>(m.bytes.data());
  for (size_t b = 0; b < m.bytes.size() / sizeof(Block); ++b) {
    const Block kept = blocks[b];
    std::memset(&blocks[b], fill, sizeof(Block));
    blocks[b].d = kept.d;
    if constexpr (requires { kept.dmin; }) blocks[b].dmin = kept.dmin;
    if constexpr (requires { kept.m; }) blocks[b].m = kept.m;
  }
}

// The largest quants times activations all at +127: the 16-bit sums of maddubs products, which
// the kernels add before widening (4 groups for Q5_0 and Q5_K, 8 for Q4_0 and Q4_K), at their
// largest (Q4_1 and Q5_1 as Q4_0 and Q5_0). One group too many would wrap around there, and not
// with random weights.
TEST_P(Int8Kernels, TheLargestQuantsAndActivationsGiveTheBitsOfTheReference) {
  const auto [isa, type] = GetParam();
  const IsaKernels& kernels = kernels_for(isa);
  constexpr int64_t kRows = 2 * kInterleavedRows;
  const int64_t n_in = 512;
  RandomMatrix m = random_matrix(type, kRows, n_in, 41);
  switch (type) {
    case GgmlType::Q4_0: set_every_quant_bit<BlockQ4_0>(m); break;
    case GgmlType::Q5_0: set_every_quant_bit<BlockQ5_0>(m); break;
    case GgmlType::Q4_1: set_every_quant_bit<BlockQ4_1>(m); break;
    case GgmlType::Q5_1: set_every_quant_bit<BlockQ5_1>(m); break;
    case GgmlType::Q8_0: set_every_quant_bit<BlockQ8_0>(m); break;
    case GgmlType::IQ4_NL: set_every_quant_bit<BlockIQ4_NL>(m, 0); break;
    case GgmlType::Q4_K: set_every_quant_bit<BlockQ4_K>(m); break;
    case GgmlType::Q5_K: set_every_quant_bit<BlockQ5_K>(m); break;
    case GgmlType::Q6_K: set_every_quant_bit<BlockQ6_K>(m); break;
    case GgmlType::IQ4_XS: set_every_quant_bit<BlockIQ4_XS>(m, 0); break;
    default: FAIL() << "no block layout for " << ggml_type_name(type);
  }
  const std::vector<uint8_t> tiles = interleaved_tiles(m);
  for (int64_t n_tokens : {1, 3, 20}) {
    const std::vector<float> x(size_t(n_tokens * n_in), 1.0f);
    std::vector<float> expected(size_t(n_tokens * kRows)), y(expected.size());
    matmul_rows_int8_reference(type, m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, expected.data(), kRows, 0, kRows);
    kernels.matmul_interleaved_int8(type, tiles.data(), n_in, x.data(), n_tokens, y.data(), kRows, 0, kRows);
    EXPECT_EQ(std::memcmp(y.data(), expected.data(), y.size() * sizeof(float)), 0)
        << describe(kernels, type) << " " << n_tokens << " tokens";
  }
}

// A NaN or an infinity in a token's activations reaches that token's outputs (as float math
// would), and no other token's.
TEST_P(Int8Kernels, NonFiniteActivationsReachOnlyTheirToken) {
  const auto [isa, type] = GetParam();
  const IsaKernels& kernels = kernels_for(isa);
  const int64_t n_in = 256, kRows = kInterleavedRows;
  const RandomMatrix m = random_matrix(type, kRows, n_in, 31);
  const std::vector<uint8_t> tiles = interleaved_tiles(m);
  for (int64_t n_tokens : {1, 3, 20}) {
    std::vector<float> x = random_activations(n_tokens * n_in, 32);
    x[size_t((n_tokens - 1) * n_in + 7)] = std::numeric_limits<float>::infinity();
    std::vector<float> y(size_t(n_tokens * kRows));
    kernels.matmul_interleaved_int8(type, tiles.data(), n_in, x.data(), n_tokens, y.data(), kRows, 0, kRows);
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t o = 0; o < kRows; ++o)
        EXPECT_EQ(std::isnan(y[size_t(t * kRows + o)]), t == n_tokens - 1) << "token " << t << " row " << o;
  }
}

std::vector<std::tuple<Isa, GgmlType>> int8_cases() {
  std::vector<std::tuple<Isa, GgmlType>> cases;
  for (Isa isa : kAllIsas)
    for (GgmlType type : kWeightFormats)
      if (has_int8_formula(type) && isa != Isa::Scalar && isa != Isa::Neon) cases.emplace_back(isa, type);
  return cases;
}
INSTANTIATE_TEST_SUITE_P(X86, Int8Kernels, ::testing::ValuesIn(int8_cases()),
                         [](const auto& info) {
                           return std::string(isa_name(std::get<0>(info.param))) + "_" +
                                  std::string(ggml_type_name(std::get<1>(info.param)));
                         });

}  // namespace
}  // namespace slm::kernels::checks
