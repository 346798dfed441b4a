#include "lib/ops/delta_net.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/delta_rule.hpp"
#include "lib/ops/thread_pool.hpp"

namespace slm::ops {

void delta_rule_gates(float* alpha, float* beta, const float* a, const float* dt_bias, int64_t n_rows,
                      int32_t n_heads) {
  for (int64_t t = 0; t < n_rows; ++t)
    for (int32_t h = 0; h < n_heads; ++h) {
      float& decay = alpha[t * n_heads + h];
      const float x = decay + dt_bias[h];
      const float softplus = x > 20.0f ? x : std::log1p(std::exp(x));
      decay = std::exp(a[h] * softplus);
      float& write = beta[t * n_heads + h];
      write = 1.0f / (1.0f + std::exp(-write));
    }
}

void normalize_queries_and_keys(float* qkv, int64_t n_rows, const DeltaNetShape& shape, float eps) {
  const int32_t d = shape.head_dim;
  const float q_scale = 1.0f / std::sqrt(float(d));
  for (int64_t t = 0; t < n_rows; ++t)
    for (int32_t head = 0; head < 2 * shape.n_k_heads; ++head) {  // q heads, then k heads
      float* x = qkv + t * shape.qkv_floats() + int64_t(head) * d;
      double sum_squares = 0.0;
      for (int32_t i = 0; i < d; ++i) sum_squares += double(x[i]) * x[i];
      float scale = 1.0f / std::max(float(std::sqrt(sum_squares)), eps);
      for (int32_t i = 0; i < d; ++i) x[i] *= scale;
      if (head < shape.n_k_heads)
        for (int32_t i = 0; i < d; ++i) x[i] *= q_scale;
    }
}

void gated_delta_rule(const float* qkv, const float* decay, const float* beta, std::span<const AttentionSpan> spans,
                      int64_t state_offset, const DeltaNetShape& shape, float* out, int n_threads) {
  const int32_t H = shape.n_v_heads, d = shape.head_dim;
  const int64_t k_offset = int64_t(shape.n_k_heads) * d, v_offset = 2 * k_offset;
  // One item per sequence and v head: its rows in order, from its state.
  parallel_for(int64_t(spans.size()) * H, 1, n_threads, [&](int64_t item, int64_t, int) {
    const AttentionSpan& span = spans[size_t(item / H)];
    const int32_t h = int32_t(item % H), qk_head = h % shape.n_k_heads;
    const float* row = qkv + int64_t(span.first_row) * shape.qkv_floats();
    kernels::DeltaRuleRows r;
    r.q = row + int64_t(qk_head) * d;
    r.k = row + k_offset + int64_t(qk_head) * d;
    r.v = row + v_offset + int64_t(h) * d;
    r.in_stride = shape.qkv_floats();
    r.decay = decay + int64_t(span.first_row) * H + h;
    r.beta = beta + int64_t(span.first_row) * H + h;
    r.gate_stride = H;
    r.out = out + int64_t(span.first_row) * shape.output_floats() + int64_t(h) * d;
    r.out_stride = shape.output_floats();
    r.state = span.state + state_offset + int64_t(h) * d * d;
    r.d_k = d;
    r.d_v = d;
    r.n_tokens = span.n_rows;
    kernels::gated_delta_rule(r);
  });
}

}  // namespace slm::ops
