// Every instruction set's matmul and fp16 attention kernels against the scalar reference,
// on random inputs with fixed seeds; the checks themselves are in support/kernel_checks.hpp
// (shared with the NEON driver that runs under qemu, tests/cross/).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <ostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/matmul.hpp"
#include "kernels/matmul_amx.hpp"
#include "support/attention_kernel_checks.hpp"
#include "support/kernel_checks.hpp"
#include "support/recurrent_kernel_checks.hpp"

namespace slm::kernels {
// Test names and failure messages show the ISA and type by name.
void PrintTo(Isa isa, std::ostream* os) { *os << isa_name(isa); }
}  // namespace slm::kernels
namespace slm {
void PrintTo(GgmlType type, std::ostream* os) { *os << ggml_type_name(type); }
}  // namespace slm

namespace slm::kernels::checks {
namespace {

class KernelsPerIsaAndFormat : public ::testing::TestWithParam<std::tuple<Isa, GgmlType>> {};

// Every ISA the build knows is instantiated; one this CPU (or build) lacks is skipped by name.
#define SKIP_UNLESS_AVAILABLE(isa) \
  if (!isa_available(isa)) GTEST_SKIP() << isa_name(isa) << ": not available in this build or on this CPU, not run"

TEST_P(KernelsPerIsaAndFormat, MatmulMatchesScalarAndIsBitIdenticalWhateverTheRowsAndTokens) {
  const auto [isa, type] = GetParam();
  SKIP_UNLESS_AVAILABLE(isa);
  CheckReport report;
  check_matmul(isa, type, report);
  EXPECT_TRUE(report.ok()) << report.summary();
  EXPECT_GT(report.passed, 0);
}

TEST_P(KernelsPerIsaAndFormat, OneHotActivationsGiveTheScalarDequantizedWeightsExactly) {
  const auto [isa, type] = GetParam();
  SKIP_UNLESS_AVAILABLE(isa);
  CheckReport report;
  check_one_hot_activations_give_the_exact_weights(isa, type, report);
  EXPECT_TRUE(report.ok()) << report.summary();
}

// The ISA and format pairs multiplied from the interleaved layout (none without AVX2).
class InterleavedKernels : public ::testing::TestWithParam<std::tuple<Isa, GgmlType>> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(InterleavedKernels);

TEST_P(InterleavedKernels, MatmulGivesTheBitsOfTheRowLayout) {
  const auto [isa, type] = GetParam();
  CheckReport report;
  check_matmul_interleaved(isa, type, report);
  EXPECT_TRUE(report.ok()) << report.summary();
  EXPECT_GT(report.passed, 0);
}

#if defined(__x86_64__)
// Where the CPU has AMX, a prompt's matmuls of the formats it multiplies (amx_multiplies) take
// it, and the AVX-512 tiles it replaces would go unchecked on that machine: switched off, they
// must give the same bits.
TEST_P(InterleavedKernels, Avx512TilesWithAmxSwitchedOffGiveTheBitsOfTheRowLayout) {
  const auto [isa, type] = GetParam();
  if (isa != Isa::Avx512 || !slm::kernels::avx512::amx_multiplies(type))
    GTEST_SKIP() << "AMX serves only AVX-512 prompts of the formats amx_multiplies names";
  if (!slm::kernels::avx512::amx_int8_available())
    GTEST_SKIP() << "no AMX here: MatmulGivesTheBitsOfTheRowLayout already ran the AVX-512 tiles";
  slm::kernels::avx512::set_amx_allowed(false);
  EXPECT_FALSE(slm::kernels::avx512::amx_int8_available());
  CheckReport report;
  check_matmul_interleaved(isa, type, report);
  slm::kernels::avx512::set_amx_allowed(true);
  EXPECT_TRUE(report.ok()) << report.summary();
  EXPECT_GT(report.passed, 0);
}
#endif

TEST(InterleavedLayout, RoundTripsEveryRowAndPutsEachWeightInItsSlot) {
  for (GgmlType type : kWeightFormats) {
    if (!has_interleaved_layout(type)) continue;
    CheckReport report;
    check_interleave_round_trip(type, report);
    EXPECT_TRUE(report.ok()) << ggml_type_name(type) << "\n" << report.summary();
    EXPECT_GT(report.passed, 0);
  }
}

TEST(InterleavedLayout, RepackingAWordAtATimeWritesTheReferenceBytes) {
  for (GgmlType type : kWeightFormats) {
    if (!has_interleaved_layout(type)) continue;
    CheckReport report;
    check_interleave_matches_reference(type, report);
    EXPECT_TRUE(report.ok()) << ggml_type_name(type) << "\n" << report.summary();
    EXPECT_GT(report.passed, 0);
  }
}

TEST(InterleavedLayout, X86SimdInterleavesEveryQuantizedFormatAndNoOtherIsaDoes) {
  for (Isa isa : available_isas())
    for (GgmlType type : kWeightFormats) {
      const bool expected = is_x86_simd(isa) && has_interleaved_layout(type);
      EXPECT_EQ(kernels_for(isa).interleaves(type), expected) << isa_name(isa) << " " << ggml_type_name(type);
    }
  EXPECT_TRUE(has_interleaved_layout(GgmlType::Q4_0) && has_interleaved_layout(GgmlType::Q5_0) &&
              has_interleaved_layout(GgmlType::Q8_0) && has_interleaved_layout(GgmlType::Q4_K) &&
              has_interleaved_layout(GgmlType::Q5_K) && has_interleaved_layout(GgmlType::Q6_K) &&
              has_interleaved_layout(GgmlType::Q3_K) && has_interleaved_layout(GgmlType::Q2_K));
  EXPECT_TRUE(has_interleaved_layout(GgmlType::Q4_1) && has_interleaved_layout(GgmlType::Q5_1) &&
              has_interleaved_layout(GgmlType::IQ4_NL) && has_interleaved_layout(GgmlType::IQ4_XS));
  EXPECT_FALSE(has_interleaved_layout(GgmlType::F32) || has_interleaved_layout(GgmlType::F16) ||
               has_interleaved_layout(GgmlType::BF16));
}

// Q3_K's integer kernels sum a whole super-block (256 weights) in int32: every weight at the
// largest |scale_i q| (-32 x -4 = 128: a block of zero bytes but d) times every activation at
// the largest 15-bit magnitude (x = 32767 / 32768, so q = 32767) sums to 2^30 - 2^15 per
// block, which must stay exact. Q2_K's largest (15 x 3, min 0) rides along. Every output is
// then n_in x w x x exactly, from the rows and from the interleaved tiles, for one token and
// for a prompt tile.
TEST(IntegerKernels, LowBitKQuantsAtTheirLargestWeightsAndActivationsSumExactly) {
  constexpr int64_t kRows = 16, n_in = 2048;
  const float d = 0x1p-10f, x_value = 32767.0f / 32768.0f;
  for (GgmlType type : {GgmlType::Q3_K, GgmlType::Q2_K}) {
    const uint64_t row_bytes = ggml_row_bytes(type, uint64_t(n_in));
    std::vector<uint8_t> rows(kRows * row_bytes, 0);
    float weight = 0;
    for (uint64_t b = 0; b < kRows * uint64_t(n_in) / kSuperBlockSize; ++b) {
      if (type == GgmlType::Q3_K) {
        reinterpret_cast<BlockQ3_K*>(rows.data())[b].d = fp32_to_fp16(d);  // q = -4, scale_i = -32
        weight = 128 * d;
      } else {
        BlockQ2_K& block = reinterpret_cast<BlockQ2_K*>(rows.data())[b];
        std::memset(block.qs, 0xff, sizeof(block.qs));  // q = 3
        std::memset(block.scales, 0x0f, sizeof(block.scales));  // scale_i = 15, min_i = 0
        block.d = fp32_to_fp16(d);
        block.dmin = fp32_to_fp16(d);
        weight = 45 * d;
      }
    }
    const RandomMatrix m{type, kRows, n_in, row_bytes, rows, {}};
    const std::vector<uint8_t> tiles = interleaved_tiles(m);
    for (float sign : {1.0f, -1.0f}) {
      const float expected = sign * float(n_in) * weight * x_value;  // exact: 15 significant bits
      for (Isa isa : available_isas()) {
        const IsaKernels& kernels = kernels_for(isa);
        if (kernels.activation_bits(type) == 0) continue;
        for (int64_t n_tokens : {1, 9}) {
          const std::vector<float> x(size_t(n_tokens * n_in), sign * x_value);
          std::vector<float> y(size_t(n_tokens * kRows));
          kernels.matmul_rows(type, rows.data(), row_bytes, n_in, x.data(), n_tokens, y.data(), kRows, 0, kRows);
          for (float v : y) ASSERT_EQ(v, expected) << describe(kernels, type) << " rows, tokens " << n_tokens;
          if (!kernels.interleaves(type)) continue;
          kernels.matmul_interleaved(type, tiles.data(), n_in, x.data(), n_tokens, y.data(), kRows, 0, kRows);
          for (float v : y) ASSERT_EQ(v, expected) << describe(kernels, type) << " interleaved, tokens " << n_tokens;
        }
      }
    }
  }
}

std::vector<std::tuple<Isa, GgmlType>> isa_format_pairs(bool interleaved_only = false) {
  std::vector<std::tuple<Isa, GgmlType>> pairs;
  for (Isa isa : interleaved_only ? available_isas() : std::vector<Isa>(std::begin(kAllIsas), std::end(kAllIsas)))
    for (GgmlType type : kWeightFormats)
      if (!interleaved_only || kernels_for(isa).interleaves(type)) pairs.emplace_back(isa, type);
  return pairs;
}

std::string isa_format_name(const ::testing::TestParamInfo<std::tuple<Isa, GgmlType>>& info) {
  return std::string(isa_name(std::get<0>(info.param))) + "_" + std::string(ggml_type_name(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(EveryIsa, KernelsPerIsaAndFormat, ::testing::ValuesIn(isa_format_pairs()),
                         isa_format_name);
INSTANTIATE_TEST_SUITE_P(AvailableIsas, InterleavedKernels, ::testing::ValuesIn(isa_format_pairs(true)),
                         isa_format_name);

class KernelsPerIsa : public ::testing::TestWithParam<Isa> {};

TEST_P(KernelsPerIsa, DotF16F32MatchesScalar) {
  SKIP_UNLESS_AVAILABLE(GetParam());
  CheckReport report;
  check_dot_f16_f32(GetParam(), report);
  EXPECT_TRUE(report.ok()) << report.summary();
}

TEST_P(KernelsPerIsa, AxpyF16F32MatchesScalarAndStaysInBounds) {
  SKIP_UNLESS_AVAILABLE(GetParam());
  CheckReport report;
  check_axpy_f16_f32(GetParam(), report);
  EXPECT_TRUE(report.ok()) << report.summary();
}

// attend_head and attend_queries on awkward shapes (support/attention_kernel_checks.hpp), as the
// NEON driver checks them under qemu.
TEST_P(KernelsPerIsa, AttentionMatchesTheReferenceAndDoesNotDependOnTheOtherQueries) {
  SKIP_UNLESS_AVAILABLE(GetParam());
  CheckReport report;
  check_attention(GetParam(), report);
  EXPECT_TRUE(report.ok()) << report.summary();
}

// The hybrid models' recurrent kernels (support/recurrent_kernel_checks.hpp): every SIMD ISA's
// give the AVX2 kernels' bits, kept as hashes since no machine runs both AVX2 and NEON.
TEST_P(KernelsPerIsa, RecurrentKernelsGiveTheAvx2KernelsBits) {
  SKIP_UNLESS_AVAILABLE(GetParam());
  if (GetParam() == Isa::Scalar) GTEST_SKIP() << "the scalar reference rounds differently";
  CheckReport report;
  check_simd_kernels_give_the_avx2_bits(GetParam(), report);
  EXPECT_TRUE(report.ok()) << report.summary();
  EXPECT_EQ(report.passed, 3);
}

INSTANTIATE_TEST_SUITE_P(EveryIsa, KernelsPerIsa, ::testing::ValuesIn(kAllIsas),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(IsaChoice, PrefersAvx512ThenAvxVnniThenAvx2AndThrowsForAnIsaItCannotRun) {
  CheckReport report;
  check_isa_choice(report);
  EXPECT_TRUE(report.ok()) << report.summary();
}

TEST(MatmulRows, RejectsRowsThatAreNotWholeBlocks) {
  std::vector<uint8_t> weights(64);
  std::vector<float> x(40), y(1);
  EXPECT_THROW(matmul_rows(GgmlType::Q4_0, weights.data(), 18, 40, x.data(), 1, y.data(), 1, 0, 1),
               std::invalid_argument);
}

// active_isa() decides once per process, so these run in a fresh process ("threadsafe"
// death tests re-execute the binary) with SLM_ISA set before the first call.
TEST(IsaChoiceDeathTest, SlmIsaScalarForcesTheScalarKernels) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("SLM_ISA", "scalar", 1);
        std::exit(active_isa() == Isa::Scalar ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(IsaChoiceDeathTest, SlmIsaForcesEachAvailableIsa) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (Isa isa : available_isas()) {
    const std::string name = isa_name(isa);
    EXPECT_EXIT(
        {
          setenv("SLM_ISA", name.c_str(), 1);
          std::exit(active_isa() == isa && kernels_for(active_isa()).name == name ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "")
        << name;
  }
}

// The error names the setting and what this machine has; tools print it as one line.
TEST(IsaChoiceDeathTest, AForcedIsaThisCpuLacksIsAnErrorThatSaysWhatIsAvailable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Isa unavailable = Isa::Scalar;
  for (Isa isa : kAllIsas)
    if (!isa_available(isa)) unavailable = isa;
  if (unavailable == Isa::Scalar) GTEST_SKIP() << "every ISA is available here";
  const std::string name = isa_name(unavailable);
  EXPECT_EXIT(
      {
        setenv("SLM_ISA", name.c_str(), 1);
        try {
          active_isa();
        } catch (const std::runtime_error& error) {
          std::fprintf(stderr, "%s\n", error.what());
          std::exit(3);
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(3),
      "^SLM_ISA=" + name + ": the " + name + " kernels are not available[^\n]*available: [a-z0-9, ]*scalar\\)\n$");
}

}  // namespace
}  // namespace slm::kernels::checks
