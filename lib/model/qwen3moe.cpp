// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B). How it differs from Llama:
//   - Qwen3's attention: per-head q/k RMSNorm, head_dim from key_length, NeoX RoPE;
//   - every layer's FFN is a mixture of experts (ops::moe_feed_forward): the router
//     blk.N.ffn_gate_inp [n_embd -> expert_count] and a softmax pick expert_used_count experts
//     per token, weighted by their probabilities renormalized to sum 1 (llama.cpp's norm_w for
//     qwen3moe); each expert is a SwiGLU FFN of width expert_feed_forward_length, a slice of the
//     3-D tensors blk.N.ffn_{gate,up,down}_exps.
// Everything else is Llama's forward pass, which runs the experts when a layer has them.
#include <fmt/format.h>

#include "lib/model/arch.hpp"
#include "lib/model/weight_binder.hpp"
#include "lib/model/weights.hpp"

namespace slm {

static void read_qwen3moe_config(const GgufFile& file, ModelConfig& c) {
  c.n_expert = checked_hparam(file, "qwen3moe.expert_count", 1, kMaxExperts);
  c.n_expert_used = checked_hparam(file, "qwen3moe.expert_used_count", 1, c.n_expert);
  // llama.cpp's fallback when the width is absent: n_ff / expert_used_count.
  c.n_ff_exp = checked_hparam(file, "qwen3moe.expert_feed_forward_length", 1, kMaxFeedForward,
                              c.n_ff / c.n_expert_used);
}

static void bind_qwen3moe_layer(const WeightBinder& b, const ModelConfig& c, int32_t layer, LayerWeights& L) {
  bind_llama_attention(b, c, layer, L);
  const std::string p = fmt::format("blk.{}.", layer);
  L.ffn_norm = b.vector(p + "ffn_norm.weight", c.n_embd);
  L.moe.router = b.matrix(p + "ffn_gate_inp.weight", c.n_embd, c.n_expert);
  L.moe.gate = b.matrix_stack(p + "ffn_gate_exps.weight", c.n_embd, c.n_ff_exp, c.n_expert);
  L.moe.up = b.matrix_stack(p + "ffn_up_exps.weight", c.n_embd, c.n_ff_exp, c.n_expert);
  L.moe.down = b.matrix_stack(p + "ffn_down_exps.weight", c.n_ff_exp, c.n_embd, c.n_expert);
  L.moe.n_expert_used = c.n_expert_used;
}

const ArchSpec kQwen3MoeArch = {
    .name = "qwen3moe",
    .rope_style = RopeStyle::NeoX,
    .qkv_bias = false,
    .qk_norm = true,
    .forward = forward_llama,
    .read_config = read_qwen3moe_config,
    .bind_layer = bind_qwen3moe_layer,
};

}  // namespace slm
