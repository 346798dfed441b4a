// The gated delta rule with AVX2: eight state columns per register, four rows of the state at a
// time (four independent accumulators, and each load of k and q serves four rows). A d_k that is
// not a multiple of 8 goes to the reference.
#include "kernels/delta_rule.hpp"
#include "kernels/simd_avx2.hpp"

namespace slm::kernels::avx2 {

namespace {

// Rows j .. j + kRows - 1 of the state, for one token.
template <int kRows>
void update_rows(float* rows, int32_t d_k, const float* q, const float* k, const float* v, __m256 decay, float beta,
                 float* out) {
  // Decay, and S[j] . k.
  __m256 sk[kRows];
  for (int r = 0; r < kRows; ++r) sk[r] = _mm256_setzero_ps();
  for (int32_t i = 0; i < d_k; i += 8) {
    const __m256 k8 = _mm256_loadu_ps(k + i);
    for (int r = 0; r < kRows; ++r) {
      float* s = rows + int64_t(r) * d_k + i;
      const __m256 decayed = _mm256_mul_ps(_mm256_loadu_ps(s), decay);
      _mm256_storeu_ps(s, decayed);
      sk[r] = _mm256_fmadd_ps(decayed, k8, sk[r]);
    }
  }
  // The write along k, and S[j] . q.
  __m256 write[kRows], sq[kRows];
  for (int r = 0; r < kRows; ++r) {
    write[r] = _mm256_set1_ps((v[r] - Avx2Lanes::reduce(sk[r])) * beta);
    sq[r] = _mm256_setzero_ps();
  }
  for (int32_t i = 0; i < d_k; i += 8) {
    const __m256 k8 = _mm256_loadu_ps(k + i), q8 = _mm256_loadu_ps(q + i);
    for (int r = 0; r < kRows; ++r) {
      float* s = rows + int64_t(r) * d_k + i;
      const __m256 updated = _mm256_fmadd_ps(write[r], k8, _mm256_loadu_ps(s));
      _mm256_storeu_ps(s, updated);
      sq[r] = _mm256_fmadd_ps(updated, q8, sq[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = Avx2Lanes::reduce(sq[r]);
}

}  // namespace

void gated_delta_rule_avx2(const DeltaRuleRows& r) {
  if (r.d_k % 8 != 0) return gated_delta_rule_scalar(r);
  constexpr int kRowsAtOnce = 4;
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    const float *q = r.q + t * r.in_stride, *k = r.k + t * r.in_stride, *v = r.v + t * r.in_stride;
    const __m256 decay = _mm256_set1_ps(r.decay[t * r.gate_stride]);
    const float beta = r.beta[t * r.gate_stride];
    float* out = r.out + t * r.out_stride;
    int32_t j = 0;
    for (; j + kRowsAtOnce <= r.d_v; j += kRowsAtOnce)
      update_rows<kRowsAtOnce>(r.state + int64_t(j) * r.d_k, r.d_k, q, k, v + j, decay, beta, out + j);
    for (; j < r.d_v; ++j) update_rows<1>(r.state + int64_t(j) * r.d_k, r.d_k, q, k, v + j, decay, beta, out + j);
  }
}

}  // namespace slm::kernels::avx2
