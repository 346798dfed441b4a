#include "kernels/gated_rms_norm.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace slm::kernels {

void gated_rms_norm_scalar(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                           float eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float *row = x + r * n, *gate = z + r * n;
    float* out = y + r * n;
    double sum_squares = 0.0;
    for (int64_t i = 0; i < n; ++i) sum_squares += double(row[i]) * row[i];
    const float scale = float(1.0 / std::sqrt(sum_squares / double(n) + eps));
    for (int64_t i = 0; i < n; ++i) out[i] = row[i] * scale * weight[i] * (gate[i] / (1.0f + std::exp(-gate[i])));
  }
}

GatedRmsNormFn gated_rms_norm_kernel(Isa isa) {
  if (!isa_available(isa))
    throw std::invalid_argument(std::string("gated_rms_norm_kernel: ISA ") + isa_name(isa) + " is not available");
#if defined(SLM_HAVE_AVX2_KERNELS)
  // Every x86 tier above scalar (AVX2, and those that add integer instructions to it) has AVX2's floats.
  if (isa != Isa::Scalar && isa != Isa::Neon) return avx2::gated_rms_norm_avx2;
#endif
#if defined(SLM_HAVE_NEON_KERNELS)
  if (isa == Isa::Neon) return neon::gated_rms_norm_neon;
#endif
  return gated_rms_norm_scalar;
}

void gated_rms_norm(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                    float eps) {
  static const GatedRmsNormFn kernel = gated_rms_norm_kernel(active_isa());
  kernel(x, weight, z, y, n_rows, n, eps);
}

}  // namespace slm::kernels
