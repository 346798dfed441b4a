#include "common/arch_features.hpp"

#include <fmt/format.h>

#include <optional>

namespace slm::tools {

namespace {

// The key's value, or nullopt when it is absent or not of that type.
std::optional<uint32_t> u32(const GgufFile& gguf, const std::string& key) {
  try {
    return gguf.get_u32_opt(key);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::optional<float> f32(const GgufFile& gguf, const std::string& key) {
  try {
    return gguf.get_f32_opt(key);
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

std::vector<std::string> architecture_features(const GgufFile& gguf) {
  std::vector<std::string> features;
  const std::string* arch = nullptr;
  try {
    arch = gguf.get_string_opt("general.architecture");
  } catch (const Error&) {
  }
  if (!arch) return features;
  const std::string p = *arch + ".";
  const auto has_tensor = [&](const std::string& name) { return gguf.find_tensor(name) != nullptr; };

  if (has_tensor("blk.0.attn_q.bias")) features.push_back("q/k/v biases");
  if (has_tensor("blk.0.attn_q_norm.weight")) features.push_back("per-head q/k RMSNorm");
  if (has_tensor("blk.0.attn_qkv.weight")) features.push_back("fused q/k/v projection (attn_qkv)");
  const std::optional<uint32_t> n_ff = u32(gguf, p + "feed_forward_length");
  if (const GgufTensor* up = gguf.find_tensor("blk.0.ffn_up.weight");
      up && n_ff && !has_tensor("blk.0.ffn_gate.weight") && up->ne[1] == 2 * uint64_t(*n_ff))
    features.push_back("fused gate+up (ffn_up: gate rows, then up)");
  if (const std::optional<uint32_t> n_expert = u32(gguf, p + "expert_count"); n_expert && *n_expert > 0) {
    const std::optional<uint32_t> n_ff_exp = u32(gguf, p + "expert_feed_forward_length");
    features.push_back(fmt::format("mixture of experts: {} of {} experts per token (router ffn_gate_inp, softmax, "
                                   "top-k weights renormalized){}",
                                   u32(gguf, p + "expert_used_count").value_or(0), *n_expert,
                                   n_ff_exp ? fmt::format(", expert FFN width {}", *n_ff_exp) : ""));
  }

  const std::optional<uint32_t> n_embd = u32(gguf, p + "embedding_length"), n_head = u32(gguf, p + "attention.head_count");
  std::optional<uint32_t> head_dim = u32(gguf, p + "attention.key_length");
  if (!head_dim && n_embd && n_head && *n_head > 0) head_dim = *n_embd / *n_head;
  if (const std::optional<uint32_t> n_rot = u32(gguf, p + "rope.dimension_count"); n_rot && head_dim && *n_rot < *head_dim)
    features.push_back(fmt::format("partial rotary: {} of {} dims per head", *n_rot, *head_dim));
  if (has_tensor("rope_freqs.weight")) features.push_back("rope frequency factors (rope_freqs, Llama 3.1+)");
  if (has_tensor("rope_factors_long.weight") || has_tensor("rope_factors_short.weight")) {
    const std::optional<uint32_t> orig = u32(gguf, p + "rope.scaling.original_context_length");
    const std::optional<uint32_t> ctx = u32(gguf, p + "context_length");
    features.push_back(fmt::format("LongRoPE: long factors for a context over {} tokens, else short; attention factor {:.4f}",
                                   orig ? *orig : ctx.value_or(0), f32(gguf, p + "rope.scaling.attn_factor").value_or(1.0f)));
  }
  const bool gemma = *arch == "gemma2" || *arch == "gemma3";  // its windows below
  if (const std::optional<uint32_t> window = u32(gguf, p + "attention.sliding_window"); window && *window > 0 && !gemma)
    features.push_back(*arch == "phi3"
                           ? fmt::format("sliding window {} in the file, not applied (llama.cpp disables Phi's)", *window)
                           : fmt::format("sliding window {}", *window));
  if (gemma) {  // lib/model/gemma.cpp, with llama.cpp's defaults
    const bool gemma2 = *arch == "gemma2";
    features.push_back("token embeddings x sqrt(n_embd)");
    features.push_back("RMSNorm after attention and after the FFN (post_attention_norm, post_ffw_norm)");
    features.push_back("GeGLU FFN (GELU, tanh approximation)");
    const std::string pattern_key = p + "attention.sliding_window_pattern";
    const uint32_t window = u32(gguf, p + "attention.sliding_window").value_or(gemma2 ? 4096 : 0);
    const GgufValue* pattern = gguf.find(pattern_key);
    const uint32_t period = u32(gguf, pattern_key).value_or(gemma2 ? 2 : 6);
    if (window > 0)
      features.push_back(fmt::format(
          "sliding window {} on {}, which rotate with rope base {}{}", window,
          pattern && pattern->type == GgufValueType::ARRAY ? "the layers " + pattern_key + " marks"
                                                           : fmt::format("every layer but one in {}", period),
          f32(gguf, p + "rope.freq_base_swa").value_or(gemma2 ? f32(gguf, p + "rope.freq_base").value_or(10000.0f) : 10000.0f),
          gemma2 ? "" : " unscaled"));
    if (gemma2)
      features.push_back(fmt::format("attention scores soft-capped at {}", f32(gguf, p + "attn_logit_softcapping").value_or(50.0f)));
    if (const float cap = f32(gguf, p + "final_logit_softcapping").value_or(gemma2 ? 30.0f : 0.0f); cap > 0.0f)
      features.push_back(fmt::format("logits soft-capped at {}", cap));
  }
  if (const std::optional<uint32_t> taps = u32(gguf, p + "shortconv.l_cache"); taps && n_embd && *taps >= 2) {
    // lfm2: head_count_kv is 0 on a conv layer, whose state is the last l_cache - 1 inputs (lib/model/lfm2.cpp).
    int64_t conv_layers = 0, layers = 0;
    if (const GgufValue* kv = gguf.find(p + "attention.head_count_kv"))
      if (const auto* per_layer = std::get_if<GgufArray>(&kv->value))
        for (const int64_t n : per_layer->ints) ++layers, conv_layers += n == 0;
    features.push_back(fmt::format("gated short convolution on {} of {} layers (l_cache {}): a recurrent state of "
                                   "{:.1f} KiB per sequence beside the attention layers' KV cache",
                                   conv_layers, layers, *taps,
                                   double(conv_layers) * (*taps - 1) * *n_embd * sizeof(float) / 1024.0));
  }
  if (has_tensor("token_embd.weight")) features.push_back(has_tensor("output.weight") ? "untied output" : "tied output");
  return features;
}

}  // namespace slm::tools
