// SiLU in AVX2 lanes, for the kernels that gate by it (gated_rms_norm_avx2.cpp, swiglu_avx2.cpp).
// Included only by files compiled with -mavx2 -mfma; internal linkage, as attention_avx2.hpp.
#pragma once

#include <immintrin.h>

#include "kernels/attention_avx2.hpp"

namespace slm::kernels::avx2 {
namespace {

// z / (1 + e^-z): e = e^-|z|, sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) below.
inline __m256 silu(__m256 z) {
  const __m256 abs_z = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
  const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_setzero_ps(), abs_z));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 numerator = _mm256_blendv_ps(one, e, _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ));
  return _mm256_mul_ps(z, _mm256_div_ps(numerator, _mm256_add_ps(one, e)));
}

}  // namespace
}  // namespace slm::kernels::avx2
