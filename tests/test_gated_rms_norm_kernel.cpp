// RMSNorm gated by SiLU (kernels/gated_rms_norm.hpp): the scalar reference against the definition
// in double, and every available ISA's kernel against the reference (rounding apart: lane sums and
// a polynomial e^x), for row lengths that are and are not multiples of the vector width and gates
// far into both tails of the sigmoid.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/gated_rms_norm.hpp"
#include "support/kernel_checks.hpp"

namespace slm::test {
namespace {

using kernels::Isa;

struct NormCase {
  int64_t n_rows, n;
  std::vector<float> x, weight, z;
};

NormCase random_case(int64_t n_rows, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  NormCase c{n_rows, n, {}, {}, {}};
  c.x.resize(size_t(n_rows * n));
  c.z.resize(size_t(n_rows * n));
  c.weight.resize(size_t(n));
  for (float& f : c.x) f = 3.0f * normal(rng);
  for (float& f : c.z) f = 4.0f * normal(rng);
  for (float& f : c.weight) f = 1.0f + 0.1f * normal(rng);
  c.z[0] = 60.0f, c.z[1] = -60.0f, c.z[2] = 0.0f;  // the sigmoid's tails and its middle
  return c;
}

TEST(GatedRmsNormKernel, ReferenceFollowsTheDefinition) {
  const NormCase c = random_case(3, 20, 1);
  std::vector<float> y(c.x.size());
  kernels::gated_rms_norm_scalar(c.x.data(), c.weight.data(), c.z.data(), y.data(), c.n_rows, c.n, 1e-6f);
  for (int64_t r = 0; r < c.n_rows; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < c.n; ++i) sum += double(c.x[size_t(r * c.n + i)]) * c.x[size_t(r * c.n + i)];
    const double scale = 1.0 / std::sqrt(sum / double(c.n) + 1e-6);
    for (int64_t i = 0; i < c.n; ++i) {
      const size_t k = size_t(r * c.n + i);
      const double silu = c.z[k] / (1.0 + std::exp(-double(c.z[k])));
      EXPECT_NEAR(y[k], c.x[k] * scale * c.weight[size_t(i)] * silu, 1e-5 * (1.0 + std::fabs(silu))) << k;
    }
  }
}

TEST(GatedRmsNormKernel, EveryIsaMatchesTheReferenceInPlaceToo) {
  for (Isa isa : kernels::checks::available_isas()) {
    for (int64_t n : {8, 32, 128, 13}) {
      SCOPED_TRACE(testing::Message() << kernels::isa_name(isa) << ", n " << n);
      const NormCase c = random_case(4, n, uint32_t(n));
      std::vector<float> ref(c.x.size());
      kernels::gated_rms_norm_scalar(c.x.data(), c.weight.data(), c.z.data(), ref.data(), c.n_rows, n, 1e-6f);
      std::vector<float> y = c.x;  // in place, as the DeltaNet layer calls it
      kernels::gated_rms_norm_kernel(isa)(y.data(), c.weight.data(), c.z.data(), y.data(), c.n_rows, n, 1e-6f);
      // A few ulp: the lane order of the double sum and the polynomial e^x (within 2 ulp of expf).
      for (size_t k = 0; k < ref.size(); ++k) ASSERT_NEAR(y[k], ref[k], 2e-6f * (1.0f + std::fabs(ref[k]))) << k;
    }
  }
}

}  // namespace
}  // namespace slm::test
