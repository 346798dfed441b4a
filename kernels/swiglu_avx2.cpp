// SwiGLU with AVX2: silu(gate) as gate * sigmoid(gate), sigmoid from e^-|gate| (never overflows).
#include <cstring>

#include "kernels/silu_avx2.hpp"
#include "kernels/swiglu.hpp"

namespace slm::kernels::avx2 {

void swiglu_avx2(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(up + i)));
  if (i == n) return;
  // The last few values through the same steps, so that none depends on where the range ends.
  float gate8[8] = {}, up8[8] = {};
  const size_t rest = size_t(n - i) * sizeof(float);
  std::memcpy(gate8, gate + i, rest);
  std::memcpy(up8, up + i, rest);
  _mm256_storeu_ps(gate8, _mm256_mul_ps(silu(_mm256_loadu_ps(gate8)), _mm256_loadu_ps(up8)));
  std::memcpy(gate + i, gate8, rest);
}

}  // namespace slm::kernels::avx2
