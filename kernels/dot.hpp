// Float dot products. The reduction order is fixed by the function alone (never by
// the caller's batch size or thread count), which is what keeps logits bit-identical
// between batched and one-at-a-time evaluation.
#pragma once

#include <cstdint>

namespace slm::kernels {

// sum_i a[i] * b[i], accumulated in 8 interleaved float lanes (lane i % 8), then the
// lanes summed pairwise. SIMD versions keep this exact order.
float dot_f32(const float* a, const float* b, int64_t n);

// y[i] += a * x[i]
void axpy_f32(float a, const float* x, float* y, int64_t n);

}  // namespace slm::kernels
