// The gated delta rule (kernels/delta_rule.hpp): the scalar reference against a direct evaluation
// of its definition in double, and every available ISA's kernel against the reference (rounding
// apart: the SIMD kernels fuse multiply-adds), for head sizes that are and are not multiples of
// the vector width; and each kernel gives the same bits whatever the split of a run of tokens into
// calls (the state carries the rest).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/delta_rule.hpp"
#include "support/kernel_checks.hpp"

namespace slm::test {
namespace {

using kernels::Isa;

// A head's inputs as the model gives them: q and k of unit length, v of any size, decay in (0, 1],
// beta in (0, 1); tokens laid out [n_tokens][q, k, v], gates [n_tokens][decay, beta].
struct DeltaCase {
  int32_t d_k, d_v;
  int64_t n_tokens;
  std::vector<float> qkv, gates, state;  // state: [d_v][d_k]
  int64_t stride() const { return 2 * int64_t(d_k) + d_v; }
};

DeltaCase random_case(int32_t d_k, int32_t d_v, int64_t n_tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.05f, 1.0f);
  DeltaCase c{d_k, d_v, n_tokens, {}, {}, {}};
  c.qkv.resize(size_t(n_tokens * c.stride()));
  for (float& f : c.qkv) f = normal(rng);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int part = 0; part < 2; ++part) {  // q, then k, to unit length
      float* head = c.qkv.data() + t * c.stride() + part * d_k;
      double norm = 0;
      for (int32_t i = 0; i < d_k; ++i) norm += double(head[i]) * head[i];
      for (int32_t i = 0; i < d_k; ++i) head[i] = float(head[i] / std::sqrt(norm));
    }
  c.gates.resize(size_t(2 * n_tokens));
  for (float& f : c.gates) f = unit(rng);
  c.state.resize(size_t(d_v) * size_t(d_k));
  for (float& f : c.state) f = 0.3f * normal(rng);
  return c;
}

// Runs `kernel` over tokens [first, first + count) of the case, from `state`.
void run(kernels::DeltaRuleFn kernel, const DeltaCase& c, std::vector<float>& state, std::vector<float>& out,
         int64_t first, int64_t count) {
  kernels::DeltaRuleRows r;
  const float* row = c.qkv.data() + first * c.stride();
  r.q = row, r.k = row + c.d_k, r.v = row + 2 * c.d_k, r.in_stride = c.stride();
  r.decay = c.gates.data() + 2 * first, r.beta = r.decay + 1, r.gate_stride = 2;
  r.out = out.data() + first * c.d_v, r.out_stride = c.d_v;
  r.state = state.data(), r.d_k = c.d_k, r.d_v = c.d_v, r.n_tokens = count;
  kernel(r);
}

TEST(DeltaRuleKernel, ReferenceFollowsTheDefinition) {
  const DeltaCase c = random_case(12, 5, 7, 1);
  std::vector<float> state = c.state, out(size_t(c.n_tokens * c.d_v));
  run(kernels::gated_delta_rule_scalar, c, state, out, 0, c.n_tokens);
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
  DeltaCase c = random_case(16, 4, 1, 2);
  std::fill(c.state.begin(), c.state.end(), 0.0f);
  c.gates = {1.0f, 1.0f};
  std::memcpy(c.qkv.data(), c.qkv.data() + c.d_k, size_t(c.d_k) * sizeof(float));  // q = k
  for (Isa isa : kernels::checks::available_isas()) {
    std::vector<float> state = c.state, out(size_t(c.d_v));
    run(kernels::delta_rule_kernel(isa), c, state, out, 0, 1);
    for (int32_t j = 0; j < c.d_v; ++j)
      EXPECT_NEAR(out[size_t(j)], c.qkv[size_t(2 * c.d_k + j)], 1e-5) << kernels::isa_name(isa) << " row " << j;
  }
}

TEST(DeltaRuleKernel, EveryIsaMatchesTheReferenceAndGivesTheSameBitsWhateverTheSplitOfTokens) {
  for (Isa isa : kernels::checks::available_isas())
    for (auto [d_k, d_v] : {std::pair{8, 8}, {16, 7}, {32, 32}, {128, 128}, {12, 9}}) {
      SCOPED_TRACE(testing::Message() << kernels::isa_name(isa) << ", d_k " << d_k << ", d_v " << d_v);
      const DeltaCase c = random_case(d_k, d_v, 9, uint32_t(d_k * 100 + d_v));
      std::vector<float> ref_state = c.state, ref_out(size_t(c.n_tokens * d_v));
      run(kernels::gated_delta_rule_scalar, c, ref_state, ref_out, 0, c.n_tokens);
      const kernels::DeltaRuleFn kernel = kernels::delta_rule_kernel(isa);
      std::vector<float> whole_state = c.state, whole_out(ref_out.size());
      run(kernel, c, whole_state, whole_out, 0, c.n_tokens);
      // Fused multiply-adds round once where the reference rounds twice: a few ulp of the
      // largest terms of a dot product, which stay below 1e-5 for inputs of this size.
      for (size_t i = 0; i < ref_out.size(); ++i) ASSERT_NEAR(whole_out[i], ref_out[i], 1e-5f) << "output " << i;
      for (size_t i = 0; i < ref_state.size(); ++i) ASSERT_NEAR(whole_state[i], ref_state[i], 1e-5f) << "state " << i;
      std::vector<float> state = c.state, out(ref_out.size(), -1.0f);
      run(kernel, c, state, out, 0, 4);  // 4 tokens, then 1, then the rest
      run(kernel, c, state, out, 4, 1);
      run(kernel, c, state, out, 5, c.n_tokens - 5);
      EXPECT_EQ(std::memcmp(out.data(), whole_out.data(), out.size() * sizeof(float)), 0);
      EXPECT_EQ(std::memcmp(state.data(), whole_state.data(), state.size() * sizeof(float)), 0);
    }
}

TEST(DeltaRuleKernel, EveryX86TierAboveScalarTakesTheAvx2Kernel) {
#if defined(__x86_64__)
  for (Isa isa : kernels::checks::available_isas())
    if (kernels::checks::is_x86_simd(isa))
      EXPECT_EQ(kernels::delta_rule_kernel(isa), &kernels::avx2::gated_delta_rule_avx2) << kernels::isa_name(isa);
#endif
}

}  // namespace
}  // namespace slm::test
