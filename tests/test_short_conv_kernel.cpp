// The gated short convolution (kernels/short_conv.hpp): the scalar reference against a direct
// evaluation of its definition, and every available ISA's kernel against the reference, bit for
// bit (support/recurrent_kernel_checks.hpp: channel counts short of, equal to and past a vector,
// several kernel lengths, with and without gates, and any split of the tokens into calls).
#include <gtest/gtest.h>

#include <vector>

#include "kernels/short_conv.hpp"
#include "support/recurrent_kernel_checks.hpp"

namespace slm::test {
namespace {

using kernels::Isa;
using kernels::checks::ConvCase;
using kernels::checks::random_conv_case;
using kernels::checks::run_conv;

TEST(ShortConvKernel, ReferenceFollowsTheDefinition) {
  const ConvCase c = random_conv_case(5, 3, 6, 1);
  std::vector<float> state = c.state, out(size_t(c.n_tokens * c.channels));
  run_conv(kernels::gated_short_conv_scalar, c, state, out, 0, c.n_tokens);
  // The definition in double: the window is the initial state, then every token's b * x.
  for (int64_t ch = 0; ch < c.channels; ++ch) {
    std::vector<double> window;
    for (int32_t k = 0; k < c.kernel_len - 1; ++k) window.push_back(c.state[size_t(k * c.channels + ch)]);
    for (int64_t t = 0; t < c.n_tokens; ++t) {
      const float* row = c.bcx.data() + t * 3 * c.channels;
      window.push_back(double(row[ch]) * row[2 * c.channels + ch]);
      double conv = 0;
      for (int32_t k = 0; k < c.kernel_len; ++k)
        conv += double(c.weights[size_t(k * c.channels + ch)]) * window[window.size() - size_t(c.kernel_len) + size_t(k)];
      EXPECT_NEAR(out[size_t(t * c.channels + ch)], row[c.channels + ch] * conv, 1e-5) << "token " << t << " channel " << ch;
    }
    for (int32_t k = 0; k < c.kernel_len - 1; ++k)
      EXPECT_FLOAT_EQ(state[size_t(k * c.channels + ch)], float(window[window.size() - size_t(c.kernel_len - 1) + size_t(k)]));
  }
}

// qwen35's DeltaNet conv has no gates: b and c nullptr give the bits of gates of 1.
TEST(ShortConvKernel, WithoutGatesTheReferenceGivesTheConvolutionOfX) {
  ConvCase c = random_conv_case(19, 4, 6, 7);
  for (int64_t t = 0; t < c.n_tokens; ++t)
    for (int64_t ch = 0; ch < 2 * c.channels; ++ch) c.bcx[size_t(t * 3 * c.channels + ch)] = 1.0f;  // b, c = 1
  std::vector<float> gated_state = c.state, gated_out(size_t(c.n_tokens * c.channels));
  run_conv(kernels::gated_short_conv_scalar, c, gated_state, gated_out, 0, c.n_tokens);
  std::vector<float> state = c.state, out(gated_out.size(), -1.0f);
  run_conv(kernels::gated_short_conv_scalar, c, state, out, 0, c.n_tokens, /*gated=*/false);
  EXPECT_TRUE(kernels::checks::same_bits(out, gated_out));
  EXPECT_TRUE(kernels::checks::same_bits(state, gated_state));
}

TEST(ShortConvKernel, EveryIsaGivesTheReferenceBitsWhateverTheShapeAndTheSplitOfTokens) {
  for (Isa isa : kernels::checks::available_isas()) {
    kernels::checks::CheckReport report;
    kernels::checks::check_short_conv(isa, report);
    EXPECT_TRUE(report.ok()) << report.summary();
    EXPECT_GT(report.passed, 0) << kernels::isa_name(isa);
  }
}

// The kernels give the reference's bits, so only this shows which one an ISA runs.
TEST(ShortConvKernel, EveryX86TierAboveScalarTakesTheAvx2KernelAndNeonItsOwn) {
  for (Isa isa : kernels::checks::available_isas()) {
#if defined(__x86_64__)
    if (kernels::checks::is_x86_simd(isa))
      EXPECT_EQ(kernels::short_conv_kernel(isa), &kernels::avx2::gated_short_conv_avx2) << kernels::isa_name(isa);
#endif
#if defined(__aarch64__)
    if (isa == Isa::Neon) EXPECT_EQ(kernels::short_conv_kernel(isa), &kernels::neon::gated_short_conv_neon);
#endif
    if (isa == Isa::Scalar) EXPECT_EQ(kernels::short_conv_kernel(isa), &kernels::gated_short_conv_scalar);
  }
}

}  // namespace
}  // namespace slm::test
