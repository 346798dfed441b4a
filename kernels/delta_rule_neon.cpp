// The gated delta rule with NEON: the AVX2 kernel's steps on NeonLanes (eight state columns in
// two q registers, reduced in dot_f32's order), four rows of the state at a time (four
// independent accumulators, and each load of k and q serves four rows). A d_k that is not a
// multiple of 8 goes to the reference.
#include "kernels/delta_rule.hpp"
#include "kernels/simd_neon.hpp"

namespace slm::kernels::neon {

namespace {

using Vec = NeonLanes::Vec;

Vec scale(Vec v, float32x4_t factor) { return {vmulq_f32(v.low, factor), vmulq_f32(v.high, factor)}; }

// Rows j .. j + kRows - 1 of the state, for one token.
template <int kRows>
void update_rows(float* rows, int32_t d_k, const float* q, const float* k, const float* v, float32x4_t decay,
                 float beta, float* out) {
  // Decay, and S[j] . k.
  Vec sk[kRows];
  for (int r = 0; r < kRows; ++r) sk[r] = NeonLanes::zero();
  for (int32_t i = 0; i < d_k; i += 8) {
    const Vec k8 = NeonLanes::load(k + i);
    for (int r = 0; r < kRows; ++r) {
      float* s = rows + int64_t(r) * d_k + i;
      const Vec decayed = scale(NeonLanes::load(s), decay);
      NeonLanes::store(s, decayed);
      sk[r] = NeonLanes::fma(decayed, k8, sk[r]);
    }
  }
  // The write along k, and S[j] . q.
  Vec write[kRows], sq[kRows];
  for (int r = 0; r < kRows; ++r) {
    const float32x4_t w = vdupq_n_f32((v[r] - NeonLanes::reduce(sk[r])) * beta);
    write[r] = {w, w};
    sq[r] = NeonLanes::zero();
  }
  for (int32_t i = 0; i < d_k; i += 8) {
    const Vec k8 = NeonLanes::load(k + i), q8 = NeonLanes::load(q + i);
    for (int r = 0; r < kRows; ++r) {
      float* s = rows + int64_t(r) * d_k + i;
      const Vec updated = NeonLanes::fma(write[r], k8, NeonLanes::load(s));
      NeonLanes::store(s, updated);
      sq[r] = NeonLanes::fma(updated, q8, sq[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = NeonLanes::reduce(sq[r]);
}

}  // namespace

void gated_delta_rule_neon(const DeltaRuleRows& r) {
  if (r.d_k % 8 != 0) return gated_delta_rule_scalar(r);
  constexpr int kRowsAtOnce = 4;
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    const float *q = r.q + t * r.in_stride, *k = r.k + t * r.in_stride, *v = r.v + t * r.in_stride;
    const float32x4_t decay = vdupq_n_f32(r.decay[t * r.gate_stride]);
    const float beta = r.beta[t * r.gate_stride];
    float* out = r.out + t * r.out_stride;
    int32_t j = 0;
    for (; j + kRowsAtOnce <= r.d_v; j += kRowsAtOnce)
      update_rows<kRowsAtOnce>(r.state + int64_t(j) * r.d_k, r.d_k, q, k, v + j, decay, beta, out + j);
    for (; j < r.d_v; ++j) update_rows<1>(r.state + int64_t(j) * r.d_k, r.d_k, q, k, v + j, decay, beta, out + j);
  }
}

}  // namespace slm::kernels::neon
