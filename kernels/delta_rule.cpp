#include "kernels/delta_rule.hpp"

#include <stdexcept>
#include <string>

#include "kernels/dot.hpp"

namespace slm::kernels {

void gated_delta_rule_scalar(const DeltaRuleRows& r) {
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    const float *q = r.q + t * r.in_stride, *k = r.k + t * r.in_stride, *v = r.v + t * r.in_stride;
    const float decay = r.decay[t * r.gate_stride], beta = r.beta[t * r.gate_stride];
    float* out = r.out + t * r.out_stride;
    for (int32_t j = 0; j < r.d_v; ++j) {
      float* row = r.state + int64_t(j) * r.d_k;
      for (int32_t i = 0; i < r.d_k; ++i) row[i] *= decay;
      const float write = (v[j] - dot_f32(row, k, r.d_k)) * beta;
      axpy_f32(write, k, row, r.d_k);
      out[j] = dot_f32(row, q, r.d_k);
    }
  }
}

DeltaRuleFn delta_rule_kernel(Isa isa) {
  if (!isa_available(isa))
    throw std::invalid_argument(std::string("delta_rule_kernel: ISA ") + isa_name(isa) + " is not available");
#if defined(SLM_HAVE_AVX2_KERNELS)
  // Every x86 tier above scalar (AVX2, and those that add integer instructions to it) has AVX2's floats.
  if (isa != Isa::Scalar && isa != Isa::Neon) return avx2::gated_delta_rule_avx2;
#endif
#if defined(SLM_HAVE_NEON_KERNELS)
  if (isa == Isa::Neon) return neon::gated_delta_rule_neon;
#endif
  return gated_delta_rule_scalar;
}

void gated_delta_rule(const DeltaRuleRows& rows) {
  static const DeltaRuleFn kernel = delta_rule_kernel(active_isa());
  kernel(rows);
}

}  // namespace slm::kernels
