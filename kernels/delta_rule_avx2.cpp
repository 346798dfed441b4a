// The gated delta rule with AVX2: eight state columns a register, four rows of the state at a
// time (kernels/recurrent_simd.hpp).
#include "kernels/delta_rule.hpp"
#include "kernels/simd_avx2.hpp"
#include "kernels/recurrent_simd.hpp"

namespace slm::kernels::avx2 {

void gated_delta_rule_avx2(const DeltaRuleRows& rows) { gated_delta_rule_simd<Avx2Lanes>(rows); }

}  // namespace slm::kernels::avx2
