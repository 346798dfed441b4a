// The gated delta rule with NEON: the AVX2 kernel's steps (kernels/recurrent_simd.hpp) on eight
// state columns in two q registers, reduced in dot_f32's order as AVX2's.
#include "kernels/delta_rule.hpp"
#include "kernels/simd_neon.hpp"
#include "kernels/recurrent_simd.hpp"

namespace slm::kernels::neon {

void gated_delta_rule_neon(const DeltaRuleRows& rows) { gated_delta_rule_simd<NeonLanes>(rows); }

}  // namespace slm::kernels::neon
