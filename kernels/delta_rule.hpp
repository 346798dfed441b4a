// The gated delta rule (Yang, Kautz and Hatamizadeh 2024, "Gated Delta Networks") in its
// sequential form, for one head over a run of tokens. The head's state S has d_v rows of d_k;
// for each token, in order:
//   S      = decay * S                          decay in (0, 1]: how much of the past is kept
//   S[j]  += beta * (v[j] - S[j] . k) * k         for each row j: write v along k, strength beta
//   out[j] = S[j] . q
// Each row j of S is updated and read on its own, so rows could go to different threads; the
// tokens of a run must go in order, one after the other. Every dot product is reduced in
// dot_f32's order (8 lanes, then pairwise), fixed by d_k alone: a token's output has the same
// bits whether its run was one call or split into several (the state carries the rest). The
// scalar reference multiplies, then adds; the SIMD kernels fuse each multiply-add, so two
// instruction sets differ by rounding only.
#pragma once

#include <cstdint>

#include "kernels/matmul.hpp"

namespace slm::kernels {

struct DeltaRuleRows {
  const float* q = nullptr;      // token t's d_k values at q + t * in_stride (likewise k, and v's d_v)
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t in_stride = 0;
  const float* decay = nullptr;  // token t's at decay[t * gate_stride] (likewise beta)
  const float* beta = nullptr;
  int64_t gate_stride = 0;
  float* out = nullptr;          // token t's d_v values at out + t * out_stride
  int64_t out_stride = 0;
  float* state = nullptr;        // [d_v][d_k], row-major
  int32_t d_k = 0;
  int32_t d_v = 0;
  int64_t n_tokens = 0;
};

// The scalar reference, and the kernel of `isa` (throws std::invalid_argument unless isa_available).
void gated_delta_rule_scalar(const DeltaRuleRows& rows);
using DeltaRuleFn = void (*)(const DeltaRuleRows& rows);
DeltaRuleFn delta_rule_kernel(Isa isa);
// active_isa()'s.
void gated_delta_rule(const DeltaRuleRows& rows);

namespace avx2 {
void gated_delta_rule_avx2(const DeltaRuleRows& rows);  // delta_rule_avx2.cpp
}
namespace neon {
void gated_delta_rule_neon(const DeltaRuleRows& rows);  // delta_rule_neon.cpp: AVX2's steps and lane order
}

}  // namespace slm::kernels
