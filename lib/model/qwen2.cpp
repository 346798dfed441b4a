// Qwen2 / Qwen2.5. How it differs from Llama:
//   - the q, k and v projections carry biases (blk.N.attn_{q,k,v}.bias);
//   - RoPE rotates NeoX-style pairs (x[i], x[i + head_dim/2]);
//   - published files tie the output matrix to token_embd (handled for every arch).
// Everything else is Llama's forward pass, which applies the biases when present.
#include "lib/model/arch.hpp"

namespace slm {

const ArchSpec kQwen2Arch = {
    .name = "qwen2",
    .rope_style = RopeStyle::NeoX,
    .qkv_bias = true,
    .qk_norm = false,
    .forward = forward_llama,
};

}  // namespace slm
