// The gated short convolution (kernels/short_conv.hpp): the scalar reference against a direct
// evaluation of its definition, and every available ISA's kernel against the reference, bit for
// bit, for channel counts that are and are not multiples of the vector width, several kernel
// lengths, and any split of the tokens into calls (the state carries the rest).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/short_conv.hpp"
#include "support/kernel_checks.hpp"

namespace slm::test {
namespace {

using kernels::Isa;

struct ConvCase {
  int64_t channels;
  int32_t kernel_len;
  int64_t n_tokens;
  std::vector<float> bcx, weights, state;  // bcx: [n_tokens][3 * channels]; state: [kernel_len - 1][channels]
};

ConvCase random_case(int64_t channels, int32_t kernel_len, int64_t n_tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ConvCase c{channels, kernel_len, n_tokens, {}, {}, {}};
  c.bcx.resize(size_t(n_tokens * 3 * channels));
  c.weights.resize(size_t(kernel_len * channels));
  c.state.resize(size_t((kernel_len - 1) * channels));
  for (auto* v : {&c.bcx, &c.weights, &c.state})
    for (float& f : *v) f = normal(rng);
  return c;
}

// Runs `kernel` over tokens [first, first + count) of the case, with its state.
void run(kernels::ShortConvFn kernel, const ConvCase& c, std::vector<float>& state, std::vector<float>& out,
         int64_t first, int64_t count) {
  kernels::ShortConvRows r;
  const float* rows = c.bcx.data() + first * 3 * c.channels;
  r.b = rows, r.c = rows + c.channels, r.x = rows + 2 * c.channels, r.in_stride = 3 * c.channels;
  r.out = out.data() + first * c.channels, r.out_stride = c.channels;
  r.state = state.data(), r.weights = c.weights.data(), r.row_stride = c.channels, r.channels = c.channels;
  r.kernel_len = c.kernel_len, r.n_tokens = count;
  kernel(r);
}

TEST(ShortConvKernel, ReferenceFollowsTheDefinition) {
  const ConvCase c = random_case(5, 3, 6, 1);
  std::vector<float> state = c.state, out(size_t(c.n_tokens * c.channels));
  run(kernels::gated_short_conv_scalar, c, state, out, 0, c.n_tokens);
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

TEST(ShortConvKernel, EveryIsaGivesTheReferenceBitsWhateverTheSplitOfTokens) {
  for (Isa isa : kernels::checks::available_isas())
    for (int64_t channels : {1, 7, 8, 24, 261})
      for (int32_t kernel_len : {2, 3, 4}) {
        SCOPED_TRACE(testing::Message() << kernels::isa_name(isa) << ", " << channels << " channels, L " << kernel_len);
        const ConvCase c = random_case(channels, kernel_len, 9, uint32_t(channels * 10 + kernel_len));
        std::vector<float> ref_state = c.state, ref_out(size_t(c.n_tokens * channels));
        run(kernels::gated_short_conv_scalar, c, ref_state, ref_out, 0, c.n_tokens);
        std::vector<float> state = c.state, out(ref_out.size(), -1.0f);
        const kernels::ShortConvFn kernel = kernels::short_conv_kernel(isa);
        run(kernel, c, state, out, 0, 4);  // 4 tokens, then 1, then the rest
        run(kernel, c, state, out, 4, 1);
        run(kernel, c, state, out, 5, c.n_tokens - 5);
        EXPECT_EQ(std::memcmp(out.data(), ref_out.data(), out.size() * sizeof(float)), 0);
        EXPECT_EQ(std::memcmp(state.data(), ref_state.data(), state.size() * sizeof(float)), 0);
      }
}

// qwen35's DeltaNet conv has no gates: b and c nullptr give the bits of gates of 1.
TEST(ShortConvKernel, WithoutGatesEveryIsaGivesTheConvolutionOfX) {
  for (Isa isa : kernels::checks::available_isas()) {
    SCOPED_TRACE(kernels::isa_name(isa));
    ConvCase c = random_case(19, 4, 6, 7);
    for (int64_t t = 0; t < c.n_tokens; ++t)
      for (int64_t ch = 0; ch < 2 * c.channels; ++ch) c.bcx[size_t(t * 3 * c.channels + ch)] = 1.0f;  // b, c = 1
    std::vector<float> gated_state = c.state, gated_out(size_t(c.n_tokens * c.channels));
    run(kernels::short_conv_kernel(isa), c, gated_state, gated_out, 0, c.n_tokens);
    std::vector<float> state = c.state, out(gated_out.size(), -1.0f);
    kernels::ShortConvRows r;
    r.x = c.bcx.data() + 2 * c.channels, r.in_stride = 3 * c.channels;
    r.out = out.data(), r.out_stride = c.channels;
    r.state = state.data(), r.weights = c.weights.data(), r.row_stride = c.channels, r.channels = c.channels;
    r.kernel_len = c.kernel_len, r.n_tokens = c.n_tokens;
    kernels::short_conv_kernel(isa)(r);
    EXPECT_EQ(std::memcmp(out.data(), gated_out.data(), out.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(state.data(), gated_state.data(), state.size() * sizeof(float)), 0);
  }
}

// The kernels give the reference's bits, so only this shows which one a tier runs.
TEST(ShortConvKernel, EveryX86TierAboveScalarTakesTheAvx2Kernel) {
#if defined(__x86_64__)
  for (Isa isa : kernels::checks::available_isas())
    if (kernels::checks::is_x86_simd(isa))
      EXPECT_EQ(kernels::short_conv_kernel(isa), &kernels::avx2::gated_short_conv_avx2) << kernels::isa_name(isa);
#endif
}

}  // namespace
}  // namespace slm::test
