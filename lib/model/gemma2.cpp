// Gemma 2. How it differs from Llama (the forward pass is lib/model/gemma.cpp):
//   - token embeddings times sqrt(n_embd); an RMSNorm after attention and after the FFN
//     (post_attention_norm, post_ffw_norm); a GeGLU FFN (GELU, tanh approximation);
//   - attention scores soft-capped at attn_logit_softcapping (absent: 50), logits at
//     final_logit_softcapping (absent: 30);
//   - a sliding window (attention.sliding_window, absent: 4096) on the layers that
//     attention.sliding_window_pattern marks (absent: every other layer, from layer 0);
//     the sliding layers rotate with rope.freq_base_swa when the file has it, and with the
//     model's scaling;
//   - RoPE rotates NeoX-style pairs; the output matrix is token_embd.
#include "lib/model/gemma.hpp"

namespace slm {

static void read_gemma2_config(const GgufFile& file, ModelConfig& c) {
  read_gemma_config(file, c,
                    {.sliding_window = 4096, .sliding_period = 2, .rope_freq_base_swa = 0.0f, .rope_swa_scaled = true,
                     .layers_of_27b = 46});
  c.attn_softcap = read_soft_cap(file, c.arch + ".attn_logit_softcapping", 50.0f);
  c.final_softcap = read_soft_cap(file, c.arch + ".final_logit_softcapping", 30.0f);
}

const ArchSpec kGemma2Arch = {
    .name = "gemma2",
    .rope_style = RopeStyle::NeoX,
    .qkv_bias = false,
    .qk_norm = false,
    .forward = forward_gemma,
    .read_config = read_gemma2_config,
    .bind_layer = bind_gemma_layer,
};

}  // namespace slm
