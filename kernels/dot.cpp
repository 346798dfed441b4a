#include "kernels/dot.hpp"

namespace slm::kernels {

float dot_f32(const float* a, const float* b, int64_t n) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int lane = 0; lane < 8; ++lane) lanes[lane] += a[i + lane] * b[i + lane];
  for (int lane = 0; i < n; ++i, ++lane) lanes[lane] += a[i] * b[i];
  // Pairwise: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1 - the order an 8-wide register reduces in.
  for (int lane = 0; lane < 4; ++lane) lanes[lane] += lanes[lane + 4];
  lanes[0] += lanes[2];
  lanes[1] += lanes[3];
  return lanes[0] + lanes[1];
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace slm::kernels
