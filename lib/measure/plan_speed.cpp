// slm-plan's speed side: pp512 and tg128 from the bytes and FLOPs of every matmul a token runs,
// at this machine's measured rates for each weight type and layout (plan_calibrate.cpp).
//
// A matmul of B weight bytes, I inputs and F FLOPs per row over n rows takes
//   B * seconds_per_byte + n * (I * seconds_per_input + F * seconds_per_flop(I)) + one parallel loop,
// the first term streaming the weights (batch 1 is bound by it), the second converting the
// activations and the arithmetic (a 512-row prompt is bound by it). Attention adds 4 * n_head * head_dim FLOPs per key each
// query sees, at the attention kernel's measured rate; a hybrid model's recurrent layers their
// convolution and delta rule, at theirs.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lib/measure/planned_model.hpp"
#include "slm/plan.hpp"

namespace slm::plan {

namespace {

constexpr int32_t kPromptTokens = 512;  // pp512
constexpr int32_t kGeneratedTokens = 128;  // tg128

const KernelRate& rate_of(const MachineCapability& machine, const ops::WeightMatrix& w, bool repacked) {
  if (const KernelRate* rate = machine.rate(w.type, repacked)) return *rate;
  if (const KernelRate* rate = machine.rate(w.type, !repacked)) return *rate;  // the other layout, near enough
  throw Error(fmt::format("no measured rate for {} weights on this machine (run slm-plan --calibrate)",
                          ggml_type_name(w.type)));
}

// Query-key pairs of a causal pass of n_queries queries after `past` cached positions, each
// query seeing at most `window` keys (0: all).
double attended_keys(int64_t past, int64_t n_queries, int32_t window) {
  double keys = 0;
  for (int64_t i = 0; i < n_queries; ++i) {
    const int64_t seen = past + i + 1;
    keys += double(window > 0 ? std::min<int64_t>(seen, window) : seen);
  }
  return keys;
}

double attention_flops(const ModelConfig& c, int64_t past, int64_t n_queries) {
  double flops = 0;
  for (int32_t layer = 0; layer < c.n_layer; ++layer)
    if (!c.is_recurrent(layer))
      flops += 4.0 * c.n_head * c.head_dim *
               attended_keys(past, n_queries, c.is_sliding(layer) ? c.sliding_window : 0);
  return flops;
}

// Seconds of one forward pass of n_rows rows (all of one sequence), its matmuls and loops.
struct PassCost {
  double seconds = 0;
  double bytes = 0;
  double flops = 0;
};

PassCost matmul_cost(const PlannedModel& m, const MachineCapability& machine, int64_t n_rows) {
  PassCost cost;
  for (const PlannedMatrix& pm : m.matrices) {
    const ops::WeightMatrix& w = *pm.w;
    const KernelRate& rate = rate_of(machine, w, pm.repacked);
    const double matrix_bytes = double(w.row_bytes) * double(w.n_out);
    const double row_flops = 2.0 * double(w.n_in) * double(w.n_out);
    const int64_t rows = pm.logit_rows_only ? 1 : n_rows;
    // A mixture's experts: each row picks used_per_token of them; a long prompt touches them all.
    const double row_products = double(rows) * double(pm.used_per_token);
    const double matrices_read = std::min<double>(double(pm.n_matrices), row_products);
    cost.bytes += matrices_read * matrix_bytes;
    cost.flops += row_products * row_flops;
    cost.seconds += matrices_read * matrix_bytes * rate.seconds_per_byte +
                    row_products * (double(w.n_in) * rate.seconds_per_input + row_flops * rate.seconds_per_flop(w.n_in));
    cost.seconds += machine.loop_seconds;
  }
  // A parallel loop per layer: attention's, or a recurrent layer's convolution; a DeltaNet
  // layer's delta rule is one more.
  const ModelConfig& c = m.config;
  cost.seconds += machine.loop_seconds * (c.n_layer + (c.ssm_n_v_heads > 0 ? c.n_layer - c.n_kv_layers() : 0));
  return cost;
}

// Seconds of the recurrent layers' own work over n_rows rows of one sequence (a hybrid model):
// the causal convolution over its channels and taps, the gates and norms around it, and a
// DeltaNet layer's delta rule over its state (per row from memory for a token, held in cache
// over a prompt's rows).
double recurrent_seconds(const ModelConfig& c, const MachineCapability& machine, int64_t n_rows) {
  const int32_t n_recurrent = c.n_layer - c.n_kv_layers();
  if (n_recurrent == 0) return 0;
  double per_row = 0;
  if (c.ssm_n_v_heads > 0) {  // qwen35's Gated DeltaNet (lib/model/qwen35.cpp)
    const double channels = double(2 * c.ssm_n_k_heads + c.ssm_n_v_heads) * c.ssm_head_dim;
    const double inner = double(c.ssm_n_v_heads) * c.ssm_head_dim;
    const double state = inner * c.ssm_head_dim;
    const double delta_rule = n_rows == 1 ? machine.delta_rule_token_seconds_per_element
                                          : machine.delta_rule_seconds_per_element;
    per_row = state * delta_rule +
              (channels * c.short_conv_length + 2.0 * c.ssm_n_k_heads * c.ssm_head_dim + inner) *
                  machine.norm_seconds_per_element +
              (channels + inner) * machine.swiglu_seconds_per_element;  // SiLU of the conv and the gate
  } else {  // lfm2's gated short convolution (lib/model/lfm2.cpp)
    per_row = double(c.n_embd) * (c.short_conv_length + 2) * machine.norm_seconds_per_element;
  }
  return double(n_rows) * n_recurrent * per_row;
}

// Seconds of the element-wise steps of n_rows rows, which run on the calling thread alone: the
// FFN's gated activation over n_ff (a mixture's runs on every thread), and per layer about
// 4 n_embd of norms and residual adds (6 with Gemma's post-norms), the q/k norms, biases and
// rope over the heads.
double elementwise_seconds(const PlannedModel& m, const MachineCapability& machine, int64_t n_rows) {
  const ModelConfig& c = m.config;
  const bool gemma = c.arch.starts_with("gemma");  // GeGLU and post-norms (lib/model/gemma.cpp)
  const double activation = gemma ? machine.geglu_seconds_per_element : machine.swiglu_seconds_per_element;
  const double ffn = c.n_expert > 0 ? double(c.n_expert_used) * c.n_ff_exp / machine.n_threads : double(c.n_ff);
  const double heads = double(c.n_head + 2 * c.n_head_kv) * c.head_dim;  // an attention layer's
  const double per_layer = ffn * activation + (gemma ? 6.0 : 4.0) * c.n_embd * machine.norm_seconds_per_element;
  return double(n_rows) * (c.n_layer * per_layer + c.n_kv_layers() * heads * machine.norm_seconds_per_element);
}

}  // namespace

double KernelRate::seconds_per_flop(int64_t n_in) const {
  constexpr size_t n = std::size(kRateInputs);
  if (n_in <= kRateInputs[0]) return seconds_per_flop_at[0];
  for (size_t i = 1; i < n; ++i)
    if (n_in <= kRateInputs[i]) {
      const double t = std::log2(double(n_in) / double(kRateInputs[i - 1])) /
                       std::log2(double(kRateInputs[i]) / double(kRateInputs[i - 1]));
      return seconds_per_flop_at[i - 1] + t * (seconds_per_flop_at[i] - seconds_per_flop_at[i - 1]);
    }
  return seconds_per_flop_at[n - 1];
}

const KernelRate* MachineCapability::rate(GgmlType type, bool interleaved) const {
  for (const KernelRate& r : rates)
    if (r.type == type && r.interleaved == interleaved) return &r;
  return nullptr;
}

SpeedPlan predict_speed(const PlannedModel& m, const MachineCapability& machine) {
  const ModelConfig& c = m.config;
  SpeedPlan speed;

  const PassCost prompt = matmul_cost(m, machine, kPromptTokens);
  const double prompt_attention = attention_flops(c, 0, kPromptTokens);
  const double prompt_seconds = prompt.seconds + prompt_attention * machine.attention_seconds_per_flop +
                                elementwise_seconds(m, machine, kPromptTokens) +
                                recurrent_seconds(c, machine, kPromptTokens);
  speed.pp512_tokens_per_second = kPromptTokens / prompt_seconds;
  speed.pp_flops_per_token = (prompt.flops + prompt_attention) / kPromptTokens;

  // tg128: one token at a time at positions 1 .. 128 (slm-bench evaluates a first token untimed).
  const PassCost token = matmul_cost(m, machine, 1);
  const double generation_attention = attention_flops(c, 1, kGeneratedTokens);
  const double generation_seconds =
      kGeneratedTokens * (token.seconds + elementwise_seconds(m, machine, 1) + recurrent_seconds(c, machine, 1)) +
                                    generation_attention * machine.attention_seconds_per_flop;
  speed.tg128_tokens_per_second = kGeneratedTokens / generation_seconds;
  speed.tg_bytes_per_token = uint64_t(token.bytes);
  speed.tg_flops_per_token = token.flops + generation_attention / kGeneratedTokens;
  return speed;
}

}  // namespace slm::plan
