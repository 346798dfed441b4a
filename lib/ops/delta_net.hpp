// The recurrent core of a Gated DeltaNet layer (Qwen3.5's linear attention), over a forward
// pass's rows: the gates of each token and head, q and k normalized, and the gated delta rule
// (kernels/delta_rule.hpp) run over each sequence's rows in order from its own state.
#pragma once

#include <cstdint>
#include <span>

#include "lib/ops/kv_pool.hpp"

namespace slm::ops {

// n_k_heads heads of q and of k, n_v_heads heads of v (a multiple: v head j reads q/k head
// j % n_k_heads), all of head_dim values. A row of q, k, v is [q heads][k heads][v heads].
struct DeltaNetShape {
  int32_t n_k_heads = 0;
  int32_t n_v_heads = 0;
  int32_t head_dim = 0;
  int64_t qkv_floats() const { return (2 * int64_t(n_k_heads) + n_v_heads) * head_dim; }
  int64_t output_floats() const { return int64_t(n_v_heads) * head_dim; }
  // One sequence's delta-rule state: a head_dim x head_dim matrix per v head.
  int64_t state_floats() const { return int64_t(n_v_heads) * head_dim * head_dim; }
};

// For each of n_rows rows and n_heads heads, in place:
//   alpha -> decay = exp(a[h] * softplus(alpha + dt_bias[h]))   (a < 0: the decay is in (0, 1])
//   beta  -> sigmoid(beta)                                        (the write strength)
// softplus(x) is x past 20, as llama.cpp computes it.
void delta_rule_gates(float* alpha, float* beta, const float* a, const float* dt_bias, int64_t n_rows,
                      int32_t n_heads);

// Each row's q and k heads divided by their length (at least eps, as ggml_l2_norm), and q
// then scaled by 1 / sqrt(head_dim): the scores of linear attention. qkv is [n_rows][qkv_floats].
void normalize_queries_and_keys(float* qkv, int64_t n_rows, const DeltaNetShape& shape, float eps);

// The gated delta rule over each span's rows, in order, from the span's state at
// span.state + state_offset (state_floats(), v head after v head) and leaving it after them.
// qkv as normalize_queries_and_keys leaves it; decay and beta [n_rows][n_v_heads]; out is
// [n_rows][output_floats]. Heads and sequences are independent: any division of them among
// threads gives the same bits.
void gated_delta_rule(const float* qkv, const float* decay, const float* beta, std::span<const AttentionSpan> spans,
                      int64_t state_offset, const DeltaNetShape& shape, float* out, int n_threads);

}  // namespace slm::ops
