// The gated short convolution with AVX2: eight channels a register (kernels/recurrent_simd.hpp).
#include "kernels/short_conv.hpp"
#include "kernels/simd_avx2.hpp"
#include "kernels/recurrent_simd.hpp"

namespace slm::kernels::avx2 {

void gated_short_conv_avx2(const ShortConvRows& rows) { gated_short_conv_simd<Avx2Lanes>(rows); }

}  // namespace slm::kernels::avx2
