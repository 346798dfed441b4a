// Phi-3, Phi-3.5-mini, Phi-4-mini and Phi-4 (llama.cpp's "phi3"). How it differs from Llama:
//   - q, k and v come from one fused matrix, blk.N.attn_qkv (q rows, then k, then v); files with
//     separate attn_q/k/v load too, as in llama.cpp;
//   - the FFN's gate and up come from one fused blk.N.ffn_up of 2 * n_ff rows (gate rows first:
//     llama.cpp's SwiGLU of a fused tensor is silu(first half) * second half); no ffn_gate;
//   - RoPE rotates NeoX-style pairs over the first rope.dimension_count dimensions of each head
//     (Phi-4-mini: 96 of 128); the others pass unrotated;
//   - LongRoPE: rope_factors_long / rope_factors_short divide the rope frequencies, the long ones
//     when the run's context exceeds rope.scaling.original_context_length, and
//     rope.scaling.attn_factor scales cos and sin (both read for every architecture, as llama.cpp
//     does, and applied by Llama's forward pass when present);
//   - attention.sliding_window is not applied: llama.cpp reads Phi's window and then disables it
//     (its "Phi SWA is currently disabled", llama.cpp PR 13676), so slm attends over the whole
//     context as llama.cpp does, and the paged KV cache keeps every block;
//   - tied or untied output (handled for every architecture).
// The fused matrices are bound as row ranges of the file's tensor, each a matrix of its own, so
// everything else is Llama's forward pass.
#include <fmt/format.h>

#include "lib/model/arch.hpp"
#include "lib/model/weight_binder.hpp"

namespace slm {

static void bind_phi3_layer(const WeightBinder& b, const ModelConfig& c, int32_t layer, LayerWeights& L) {
  const std::string p = fmt::format("blk.{}.", layer);
  const int64_t E = c.n_embd, q_dim = int64_t(c.n_head) * c.head_dim, kv_dim = int64_t(c.n_head_kv) * c.head_dim;
  if (b.file.find_tensor(p + "attn_qkv.weight")) {
    L.attn_norm = b.vector(p + "attn_norm.weight", E);
    const std::vector<ops::WeightMatrix> qkv = b.split_matrix(p + "attn_qkv.weight", E, {q_dim, kv_dim, kv_dim});
    L.attn_q = qkv[0];
    L.attn_k = qkv[1];
    L.attn_v = qkv[2];
    L.attn_output = b.matrix(p + "attn_output.weight", q_dim, E);
  } else {
    bind_llama_attention(b, c, layer, L);
  }
  L.ffn_norm = b.vector(p + "ffn_norm.weight", E);
  const std::vector<ops::WeightMatrix> gate_up = b.split_matrix(p + "ffn_up.weight", E, {c.n_ff, c.n_ff});
  L.ffn_gate = gate_up[0];
  L.ffn_up = gate_up[1];
  L.ffn_down = b.matrix(p + "ffn_down.weight", c.n_ff, E);
}

const ArchSpec kPhi3Arch = {
    .name = "phi3",
    .rope_style = RopeStyle::NeoX,
    .qkv_bias = false,
    .qk_norm = false,
    .forward = forward_llama,
    .bind_layer = bind_phi3_layer,
};

}  // namespace slm
