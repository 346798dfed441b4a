#include "kernels/swiglu.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace slm::kernels {

void swiglu_scalar(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

SwigluFn swiglu_kernel(Isa isa) {
  if (!isa_available(isa)) throw std::invalid_argument(std::string("swiglu_kernel: ISA ") + isa_name(isa) + " is not available");
#if defined(SLM_HAVE_AVX2_KERNELS)
  // Every x86 tier above scalar (AVX2, and those that add integer instructions to it) has AVX2's floats.
  if (isa != Isa::Scalar && isa != Isa::Neon) return avx2::swiglu_avx2;
#endif
  return swiglu_scalar;
}

void swiglu(float* gate, const float* up, int64_t n) {
  static const SwigluFn kernel = swiglu_kernel(active_isa());
  kernel(gate, up, n);
}

}  // namespace slm::kernels
