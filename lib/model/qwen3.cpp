// Qwen3. How it differs from Llama:
//   - q and k get a per-head RMSNorm (blk.N.attn_q_norm / attn_k_norm, head_dim weights)
//     after the projection and before RoPE;
//   - head_dim (qwen3.attention.key_length) is independent of n_embd / n_head;
//   - RoPE rotates NeoX-style pairs; no q/k/v biases.
// Everything else is Llama's forward pass, which applies the norms when present.
#include "lib/model/arch.hpp"

namespace slm {

const ArchSpec kQwen3Arch = {
    .name = "qwen3",
    .rope_style = RopeStyle::NeoX,
    .qkv_bias = false,
    .qk_norm = true,
    .forward = forward_llama,
};

}  // namespace slm
