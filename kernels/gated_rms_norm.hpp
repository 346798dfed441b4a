// RMSNorm gated by SiLU: y = x / sqrt(mean(x^2) + eps) * weight * silu(z), silu(z) = z / (1 + e^-z),
// for rows of n values (y may be x). The sum of squares is taken in double, as ops::rms_norm does.
// The scalar reference sums in index order; the SIMD kernels sum in lanes and compute e^-z with a
// polynomial, so two instruction sets differ by rounding only.
#pragma once

#include <cstdint>

#include "kernels/matmul.hpp"

namespace slm::kernels {

using GatedRmsNormFn = void (*)(const float* x, const float* weight, const float* z, float* y, int64_t n_rows,
                                int64_t n, float eps);

// The scalar reference, and the kernel of `isa` (throws std::invalid_argument unless isa_available).
void gated_rms_norm_scalar(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                           float eps);
GatedRmsNormFn gated_rms_norm_kernel(Isa isa);
// active_isa()'s.
void gated_rms_norm(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                    float eps);

namespace avx2 {
void gated_rms_norm_avx2(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                         float eps);  // gated_rms_norm_avx2.cpp
}
namespace neon {
void gated_rms_norm_neon(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                         float eps);  // gated_rms_norm_neon.cpp: AVX2's steps and lane order
}

}  // namespace slm::kernels
