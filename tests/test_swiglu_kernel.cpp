// SwiGLU's product (kernels/swiglu.hpp): the scalar reference against the definition in double,
// every available ISA's kernel against the reference (rounding apart: a polynomial e^x), and a
// range split at any point giving each value the bits of the whole range, which is what lets a
// feed-forward block's threads each take their own rows of it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/swiglu.hpp"
#include "support/kernel_checks.hpp"

namespace slm::test {
namespace {

using kernels::Isa;

// Gates of every size the sigmoid cares about: around 0, and far into both tails (e^-g overflows
// float past g = -88.7, where silu is -0).
std::vector<float> random_gates(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> gate(static_cast<size_t>(n));
  for (float& g : gate) g = normal(rng);
  const float tails[] = {-100.0f, -88.0f, -30.0f, 0.0f, -0.0f, 30.0f, 100.0f};
  for (size_t i = 0; i < gate.size(); i += 5) gate[i] = tails[(i / 5) % std::size(tails)];
  return gate;
}

std::vector<float> random_ups(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> up(static_cast<size_t>(n));
  for (float& u : up) u = normal(rng);
  return up;
}

TEST(SwigluKernel, ReferenceFollowsTheDefinition) {
  const std::vector<float> gate = random_gates(61, 1), up = random_ups(61, 2);
  std::vector<float> out = gate;
  kernels::swiglu_scalar(out.data(), up.data(), int64_t(out.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    const double expected = gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i];
    EXPECT_NEAR(out[i], expected, 1e-6 * (1.0 + std::fabs(expected))) << "gate " << gate[i];
  }
}

TEST(SwigluKernel, EveryIsaMatchesTheReference) {
  for (Isa isa : kernels::checks::available_isas())
    for (int64_t n : {1, 3, 7, 8, 9, 16, 23, 4864}) {
      const std::vector<float> gate = random_gates(n, uint32_t(n)), up = random_ups(n, uint32_t(n + 1));
      std::vector<float> reference = gate, out = gate;
      kernels::swiglu_scalar(reference.data(), up.data(), n);
      kernels::swiglu_kernel(isa)(out.data(), up.data(), n);
      // A few ulp: the polynomial e^x is within 2 ulp of expf.
      for (size_t i = 0; i < out.size(); ++i)
        EXPECT_LE(std::fabs(out[i] - reference[i]), 2e-6f * (1.0f + std::fabs(reference[i])))
            << kernels::isa_name(isa) << ", n " << n << ", gate " << gate[i];
    }
}

TEST(SwigluKernel, ARangeSplitAnywhereKeepsEveryValuesBits) {
  constexpr int64_t kN = 37;
  const std::vector<float> gate = random_gates(kN, 3), up = random_ups(kN, 4);
  for (Isa isa : kernels::checks::available_isas()) {
    std::vector<float> whole = gate;
    kernels::swiglu_kernel(isa)(whole.data(), up.data(), kN);
    for (int64_t split = 0; split <= kN; ++split) {
      std::vector<float> parts = gate;
      kernels::swiglu_kernel(isa)(parts.data(), up.data(), split);
      kernels::swiglu_kernel(isa)(parts.data() + split, up.data() + split, kN - split);
      EXPECT_EQ(std::memcmp(parts.data(), whole.data(), sizeof(float) * kN), 0)
          << kernels::isa_name(isa) << ", split at " << split;
    }
  }
}

TEST(SwigluKernel, EveryX86TierAboveScalarTakesTheAvx2Kernel) {
  for (Isa isa : kernels::checks::available_isas()) {
#if defined(__x86_64__)
    if (kernels::checks::is_x86_simd(isa)) EXPECT_EQ(kernels::swiglu_kernel(isa), &kernels::avx2::swiglu_avx2);
#endif
    if (isa == Isa::Scalar || isa == Isa::Neon) EXPECT_EQ(kernels::swiglu_kernel(isa), &kernels::swiglu_scalar);
  }
}

}  // namespace
}  // namespace slm::test
