// Gemma 3. How it differs from Llama (the forward pass is lib/model/gemma.cpp):
//   - token embeddings times sqrt(n_embd); an RMSNorm after attention and after the FFN
//     (post_attention_norm, post_ffw_norm); a GeGLU FFN (GELU, tanh approximation);
//   - q and k get a per-head RMSNorm (attn_q_norm / attn_k_norm) before RoPE;
//   - head_dim (attention.key_length) is independent of n_embd / n_head;
//   - when the file has attention.sliding_window, a sliding window on the layers that
//     attention.sliding_window_pattern marks (absent: five of every six, the sixth global); the
//     sliding layers rotate with rope.freq_base_swa (absent: 10000) unscaled, the global layers
//     with the model's rope base and scaling;
//   - no attention soft cap; logits soft-capped only when the file has final_logit_softcapping;
//   - RoPE rotates NeoX-style pairs; the output matrix is token_embd unless the file has output.
#include "lib/model/gemma.hpp"

namespace slm {

static void read_gemma3_config(const GgufFile& file, ModelConfig& c) {
  read_gemma_config(file, c,
                    {.sliding_window = 0, .sliding_period = 6, .rope_freq_base_swa = 10000.0f,
                     .rope_swa_scaled = false, .layers_of_27b = 62});
  c.final_softcap = read_soft_cap(file, c.arch + ".final_logit_softcapping", 0.0f);
}

const ArchSpec kGemma3Arch = {
    .name = "gemma3",
    .rope_style = RopeStyle::NeoX,
    .qkv_bias = false,
    .qk_norm = true,
    .forward = forward_gemma,
    .read_config = read_gemma3_config,
    .bind_layer = bind_gemma_layer,
};

}  // namespace slm
