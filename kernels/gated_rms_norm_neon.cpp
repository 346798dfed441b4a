// RMSNorm gated by SiLU with NEON, step for step the AVX2 kernel's: the squares summed in double
// lanes and reduced in its order, silu(z) as z * sigmoid(z) with sigmoid from e^-|z| (never
// overflows) and e^x from its polynomial. A row whose length is not a multiple of 8 goes to the
// reference.
#include <arm_neon.h>

#include <cmath>

#include "kernels/gated_rms_norm.hpp"

namespace slm::kernels::neon {

namespace {

// exp(x) for x <= 0, as avx2::exp_nonpositive (attention_avx2.hpp): x = n ln2 + r with
// |r| <= ln2/2, then 2^n times a degree-7 polynomial of r (Cephes' expf coefficients).
float32x4_t exp_nonpositive(float32x4_t x) {
  x = vmaxq_f32(x, vdupq_n_f32(-87.3f));  // below, exp is under FLT_MIN: 2^-126 stands in for it
  const float32x4_t n = vrndmq_f32(vfmaq_f32(vdupq_n_f32(0.5f), x, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));  // ln2 split in two for an exact first step
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  const float32x4_t e_r = vaddq_f32(vfmaq_f32(r, vmulq_f32(p, r), r), vdupq_n_f32(1.0f));
  const int32x4_t two_to_n = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);  // n is whole
  return vmulq_f32(e_r, vreinterpretq_f32_s32(two_to_n));
}

// z / (1 + e^-z): e = e^-|z|, sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) below.
float32x4_t silu(float32x4_t z) {
  const float32x4_t e = exp_nonpositive(vsubq_f32(vdupq_n_f32(0.0f), vabsq_f32(z)));  // 0 - |z|: +0 at 0, as AVX2
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t numerator = vbslq_f32(vcltq_f32(z, vdupq_n_f32(0.0f)), e, one);
  return vmulq_f32(z, vdivq_f32(numerator, vaddq_f32(one, e)));
}

}  // namespace

void gated_rms_norm_neon(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                         float eps) {
  if (n % 8 != 0) return gated_rms_norm_scalar(x, weight, z, y, n_rows, n, eps);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float *row = x + r * n, *gate = z + r * n;
    float* out = y + r * n;
    // Element e of each 8 goes to double lane e: AVX2's low (0..3) and high (4..7) registers.
    float64x2_t lanes01 = vdupq_n_f64(0.0), lanes23 = lanes01, lanes45 = lanes01, lanes67 = lanes01;
    for (int64_t i = 0; i < n; i += 8) {
      const float32x4_t low = vld1q_f32(row + i), high = vld1q_f32(row + i + 4);
      const float64x2_t v01 = vcvt_f64_f32(vget_low_f32(low)), v23 = vcvt_high_f64_f32(low);
      const float64x2_t v45 = vcvt_f64_f32(vget_low_f32(high)), v67 = vcvt_high_f64_f32(high);
      lanes01 = vfmaq_f64(lanes01, v01, v01), lanes23 = vfmaq_f64(lanes23, v23, v23);
      lanes45 = vfmaq_f64(lanes45, v45, v45), lanes67 = vfmaq_f64(lanes67, v67, v67);
    }
    // AVX2: lanes = low + high, then (0 + 2) + (1 + 3).
    const float64x2_t sum01 = vaddq_f64(lanes01, lanes45), sum23 = vaddq_f64(lanes23, lanes67);
    const double sum_squares = (vgetq_lane_f64(sum01, 0) + vgetq_lane_f64(sum23, 0)) +
                               (vgetq_lane_f64(sum01, 1) + vgetq_lane_f64(sum23, 1));
    const float32x4_t scale = vdupq_n_f32(float(1.0 / std::sqrt(sum_squares / double(n) + eps)));
    for (int64_t i = 0; i < n; i += 4) {
      const float32x4_t normed = vmulq_f32(vmulq_f32(vld1q_f32(row + i), scale), vld1q_f32(weight + i));
      vst1q_f32(out + i, vmulq_f32(normed, silu(vld1q_f32(gate + i))));
    }
  }
}

}  // namespace slm::kernels::neon
