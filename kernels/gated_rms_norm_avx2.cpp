// RMSNorm gated by SiLU with AVX2: the squares summed in four double lanes, silu(z) as
// z * sigmoid(z) with sigmoid from e^-|z| (never overflows). A row whose length is not a multiple
// of 8 goes to the reference.
#include "kernels/gated_rms_norm.hpp"
#include "kernels/silu_avx2.hpp"

#include <cmath>

namespace slm::kernels::avx2 {

void gated_rms_norm_avx2(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                         float eps) {
  if (n % 8 != 0) return gated_rms_norm_scalar(x, weight, z, y, n_rows, n, eps);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float *row = x + r * n, *gate = z + r * n;
    float* out = y + r * n;
    __m256d low = _mm256_setzero_pd(), high = _mm256_setzero_pd();
    for (int64_t i = 0; i < n; i += 8) {
      const __m256 v = _mm256_loadu_ps(row + i);
      const __m256d v_low = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), v_high = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      low = _mm256_fmadd_pd(v_low, v_low, low);
      high = _mm256_fmadd_pd(v_high, v_high, high);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(low, high));
    const double sum_squares = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
    const __m256 scale = _mm256_set1_ps(float(1.0 / std::sqrt(sum_squares / double(n) + eps)));
    for (int64_t i = 0; i < n; i += 8) {
      const __m256 normed = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(row + i), scale), _mm256_loadu_ps(weight + i));
      _mm256_storeu_ps(out + i, _mm256_mul_ps(normed, silu(_mm256_loadu_ps(gate + i))));
    }
  }
}

}  // namespace slm::kernels::avx2
