// RMSNorm gated by SiLU (kernels/gated_rms_norm.hpp): the scalar reference against the definition
// in double, and every available ISA's kernel against the reference (rounding apart: lane sums and
// a polynomial e^x; support/recurrent_kernel_checks.hpp), for row lengths short of, equal to and
// not multiples of the vector width, in place and not, and gates far into both tails of the sigmoid.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/gated_rms_norm.hpp"
#include "support/recurrent_kernel_checks.hpp"

namespace slm::test {
namespace {

using kernels::Isa;

using kernels::checks::NormCase;
using kernels::checks::random_norm_case;

TEST(GatedRmsNormKernel, ReferenceFollowsTheDefinition) {
  const NormCase c = random_norm_case(3, 20, 1);
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

TEST(GatedRmsNormKernel, EveryIsaMatchesTheReferenceInPlaceAndNot) {
  for (Isa isa : kernels::checks::available_isas()) {
    kernels::checks::CheckReport report;
    kernels::checks::check_gated_rms_norm(isa, report);
    EXPECT_TRUE(report.ok()) << report.summary();
    EXPECT_GT(report.passed, 0) << kernels::isa_name(isa);
  }
}

TEST(GatedRmsNormKernel, EveryX86TierAboveScalarTakesTheAvx2KernelAndNeonItsOwn) {
  for (Isa isa : kernels::checks::available_isas()) {
#if defined(__x86_64__)
    if (kernels::checks::is_x86_simd(isa))
      EXPECT_EQ(kernels::gated_rms_norm_kernel(isa), &kernels::avx2::gated_rms_norm_avx2) << kernels::isa_name(isa);
#endif
#if defined(__aarch64__)
    if (isa == Isa::Neon) EXPECT_EQ(kernels::gated_rms_norm_kernel(isa), &kernels::neon::gated_rms_norm_neon);
#endif
    if (isa == Isa::Scalar) EXPECT_EQ(kernels::gated_rms_norm_kernel(isa), &kernels::gated_rms_norm_scalar);
  }
}

}  // namespace
}  // namespace slm::test
