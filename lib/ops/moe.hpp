// The mixture-of-experts feed-forward block (Qwen3-MoE): a router picks, for each row, the k
// experts of highest softmax probability, and the row's output is the weighted sum of those
// experts' SwiGLU feed-forwards.
//
// In a batch the rows are grouped by expert, so each chosen expert's weights are read once per
// batch, not once per row: on a CPU the weights' bytes are the cost. A row's output has the
// same bits whatever other rows share the batch: matmul gives a row the same bits in a group of
// any size, and each row adds its experts' outputs in ascending expert id.
#pragma once

#include <cstdint>
#include <vector>

#include "lib/ops/ops.hpp"

namespace slm::ops {

// One layer's experts. Each expert is a view of its slice of the file's 3-D tensor
// (ffn_{gate,up,down}_exps), used where it is mapped.
struct MoeWeights {
  WeightMatrix router;                 // ffn_gate_inp: n_embd -> n_expert
  std::vector<WeightMatrix> gate, up;  // per expert: n_embd -> n_ff_exp
  std::vector<WeightMatrix> down;      // per expert: n_ff_exp -> n_embd
  int32_t n_expert_used = 0;           // k

  bool present() const { return !gate.empty(); }
  int32_t n_expert() const { return int32_t(gate.size()); }
};

struct ExpertChoice {
  int32_t expert = 0;
  float weight = 0.0f;
};

// One row's routing, llama.cpp's for qwen3moe (softmax gating, weights normalized): the
// softmax of the n_expert logits, the k experts of highest probability (ties: the lower id
// first) by rank, and their probabilities divided by the sum of the k.
void route_row(const float* logits, int32_t n_expert, int32_t k, ExpertChoice* chosen);

// One matrix product of the experts' step: an expert's matrix times its group of rows.
struct ExpertProduct {
  const WeightMatrix* w = nullptr;
  const float* x = nullptr;
  int64_t n_rows = 0;
  float* y = nullptr;
};

// Buffers for up to n_rows rows, allocated once. An entry is one (row, chosen expert) pair.
struct MoeScratch {
  std::vector<float> logits;            // [n_rows][n_expert]
  std::vector<ExpertChoice> chosen;     // [n_rows][k], by rank
  std::vector<int32_t> group_begin;     // [n_expert + 1]: expert e's entries are [begin[e], begin[e + 1])
  std::vector<int32_t> group_row;       // [n_rows * k]: the row of each entry, grouped by expert
  std::vector<float> group_weight;      // [n_rows * k]: its weight
  std::vector<float> x, gate, up, out;  // per entry: its row of x (n_embd), the expert's n_ff_exp, n_ff_exp, n_embd
  std::vector<ExpertProduct> gate_up_products, down_products;  // 2 and 1 per chosen expert

  MoeScratch() = default;
  // Empty for a model without experts.
  MoeScratch(const ModelConfig& config, int32_t n_rows);
};

// y[t] = sum over row t's chosen experts e, in ascending e, of weight * down_e(silu(gate_e x) * up_e x),
// for n_rows rows of x ([n_rows][n_embd]); y is [n_rows][n_embd].
void moe_feed_forward(const MoeWeights& w, const float* x, int64_t n_rows, float* y, MoeScratch& scratch,
                      int n_threads);

}  // namespace slm::ops
