// The gated short convolution with NEON: eight channels in two q registers
// (kernels/recurrent_simd.hpp), the reference's bits as AVX2's.
#include "kernels/short_conv.hpp"
#include "kernels/simd_neon.hpp"
#include "kernels/recurrent_simd.hpp"

namespace slm::kernels::neon {

void gated_short_conv_neon(const ShortConvRows& rows) { gated_short_conv_simd<NeonLanes>(rows); }

}  // namespace slm::kernels::neon
