// What Gemma 2 and Gemma 3 share (lib/model/gemma.cpp): the forward pass, the block tensors and
// the metadata both read. Each architecture's own file (gemma2.cpp, gemma3.cpp) reads the rest.
#pragma once

#include <string>

#include "lib/model/arch.hpp"

namespace slm {

// The Gemma transformer: Llama's, with the embeddings scaled, a norm after each block, GeGLU,
// per-layer sliding windows and rope, and the soft caps of the config.
void forward_gemma(const Model& model, ForwardScratch& scratch, ops::KvPool& pool, const ForwardBatch& batch,
                   float* logits);

// Llama's block tensors plus post_attention_norm and post_ffw_norm.
void bind_gemma_layer(const WeightBinder& b, const ModelConfig& config, int32_t layer, LayerWeights& L);

// What Gemma 2 and Gemma 3 assume where a key is absent.
struct GemmaDefaults {
  int32_t sliding_window;    // <arch>.attention.sliding_window (0: no sliding layers)
  uint32_t sliding_period;   // <arch>.attention.sliding_window_pattern
  float rope_freq_base_swa;  // <arch>.rope.freq_base_swa (0: the model's rope base)
  bool rope_swa_scaled;      // whether the sliding layers share the model's rope scaling
  int32_t layers_of_27b;     // the block count by which llama.cpp recognizes the 27B model
};

// What both read: the embedding scale sqrt(n_embd); the attention scale; the sliding window,
// which layers have it (<arch>.attention.sliding_window_pattern: a period n, where layer l is
// sliding unless l % n == n - 1, or one bool per layer) and their rope. The 27B models scale
// attention by 1/sqrt(n_embd / n_head) rather than 1/sqrt(head_dim): the file has no
// query_pre_attn_scalar, so llama.cpp recognizes them by their block count, and slm does too.
void read_gemma_config(const GgufFile& file, ModelConfig& config, const GemmaDefaults& defaults);

// <key> as a soft cap: `fallback` when absent; 0 means none; negative or not finite is an error.
float read_soft_cap(const GgufFile& file, const std::string& key, float fallback);

}  // namespace slm
