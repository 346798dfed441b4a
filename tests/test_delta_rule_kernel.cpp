// The gated delta rule (kernels/delta_rule.hpp): the scalar reference against a direct evaluation
// of its definition in double, and every available ISA's kernel against the reference (rounding
// apart: the SIMD kernels fuse multiply-adds), for head sizes that are and are not multiples of
// the vector width (support/recurrent_kernel_checks.hpp); and each kernel gives the same bits whatever the split of a run of tokens into
// calls (the state carries the rest).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/delta_rule.hpp"
#include "support/recurrent_kernel_checks.hpp"

namespace slm::test {
namespace {

using kernels::Isa;
using kernels::checks::DeltaCase;
using kernels::checks::random_delta_case;
using kernels::checks::run_delta;

TEST(DeltaRuleKernel, ReferenceFollowsTheDefinition) {
  const DeltaCase c = random_delta_case(12, 5, 7, 1);
  std::vector<float> state = c.state, out(size_t(c.n_tokens * c.d_v));
  run_delta(kernels::gated_delta_rule_scalar, c, state, out, 0, c.n_tokens);
  // S = decay S; S += beta (v - S k) k^T; o = S q, as matrices in double.
  std::vector<double> S(c.state.begin(), c.state.end());
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    const float *q = c.qkv.data() + t * c.stride(), *k = q + c.d_k, *v = k + c.d_k;
    const double decay = c.gates[size_t(2 * t)], beta = c.gates[size_t(2 * t + 1)];
    for (double& s : S) s *= decay;
    std::vector<double> Sk(size_t(c.d_v), 0.0);
    for (int32_t j = 0; j < c.d_v; ++j)
      for (int32_t i = 0; i < c.d_k; ++i) Sk[size_t(j)] += S[size_t(j * c.d_k + i)] * k[i];
    for (int32_t j = 0; j < c.d_v; ++j)
      for (int32_t i = 0; i < c.d_k; ++i) S[size_t(j * c.d_k + i)] += beta * (v[j] - Sk[size_t(j)]) * k[i];
    for (int32_t j = 0; j < c.d_v; ++j) {
      double o = 0;
      for (int32_t i = 0; i < c.d_k; ++i) o += S[size_t(j * c.d_k + i)] * q[i];
      EXPECT_NEAR(out[size_t(t * c.d_v + j)], o, 1e-5) << "token " << t << " row " << j;
    }
  }
  for (size_t i = 0; i < S.size(); ++i) EXPECT_NEAR(state[i], S[i], 1e-5) << "state " << i;
}

TEST(DeltaRuleKernel, AZeroStateWithFullWriteStoresVAlongKAndReadsItBack) {
  // beta = 1, decay = 1 from S = 0: S = v k^T, so reading with q = k gives v (k of unit length).
  DeltaCase c = random_delta_case(16, 4, 1, 2);
  std::fill(c.state.begin(), c.state.end(), 0.0f);
  c.gates = {1.0f, 1.0f};
  std::memcpy(c.qkv.data(), c.qkv.data() + c.d_k, size_t(c.d_k) * sizeof(float));  // q = k
  for (Isa isa : kernels::checks::available_isas()) {
    std::vector<float> state = c.state, out(size_t(c.d_v));
    run_delta(kernels::delta_rule_kernel(isa), c, state, out, 0, 1);
    for (int32_t j = 0; j < c.d_v; ++j)
      EXPECT_NEAR(out[size_t(j)], c.qkv[size_t(2 * c.d_k + j)], 1e-5) << kernels::isa_name(isa) << " row " << j;
  }
}

TEST(DeltaRuleKernel, EveryIsaMatchesTheReferenceAndGivesTheSameBitsWhateverTheSplitOfTokens) {
  for (Isa isa : kernels::checks::available_isas()) {
    kernels::checks::CheckReport report;
    kernels::checks::check_delta_rule(isa, report);
    EXPECT_TRUE(report.ok()) << report.summary();
    EXPECT_GT(report.passed, 0) << kernels::isa_name(isa);
  }
}

TEST(DeltaRuleKernel, EveryX86TierAboveScalarTakesTheAvx2KernelAndNeonItsOwn) {
  for (Isa isa : kernels::checks::available_isas()) {
#if defined(__x86_64__)
    if (kernels::checks::is_x86_simd(isa))
      EXPECT_EQ(kernels::delta_rule_kernel(isa), &kernels::avx2::gated_delta_rule_avx2) << kernels::isa_name(isa);
#endif
#if defined(__aarch64__)
    if (isa == Isa::Neon) EXPECT_EQ(kernels::delta_rule_kernel(isa), &kernels::neon::gated_delta_rule_neon);
#endif
    if (isa == Isa::Scalar) EXPECT_EQ(kernels::delta_rule_kernel(isa), &kernels::gated_delta_rule_scalar);
  }
}

}  // namespace
}  // namespace slm::test
