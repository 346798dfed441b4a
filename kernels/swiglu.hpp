// SwiGLU's product: gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g). The scalar
// reference takes std::exp; the AVX2 kernel (every x86 tier above scalar) e^-|g| from a polynomial
// (kernels/silu_avx2.hpp), so the two differ by rounding only. Each value depends on its own
// inputs alone, never on n or on where a range starts: the AVX2 kernel runs a range's last partial
// vector through the same vector steps, so a row split among threads at any point keeps its bits.
#pragma once

#include <cstdint>

#include "kernels/matmul.hpp"

namespace slm::kernels {

using SwigluFn = void (*)(float* gate, const float* up, int64_t n);

// The scalar reference, and the kernel of `isa` (throws std::invalid_argument unless isa_available).
void swiglu_scalar(float* gate, const float* up, int64_t n);
SwigluFn swiglu_kernel(Isa isa);
// active_isa()'s.
void swiglu(float* gate, const float* up, int64_t n);

namespace avx2 {
void swiglu_avx2(float* gate, const float* up, int64_t n);  // swiglu_avx2.cpp
}

}  // namespace slm::kernels
