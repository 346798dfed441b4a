// The Gemma transformer (Gemma 2 and Gemma 3), top to bottom. How it differs from Llama's:
//   - the token embeddings are multiplied by sqrt(n_embd);
//   - each block's output is RMS-normed (post_attention_norm, post_ffw_norm) before it is
//     added to the residual stream;
//   - the feed-forward block is GeGLU (GELU, tanh approximation) instead of SwiGLU;
//   - sliding-window layers see only their last `sliding_window` positions and rotate with their
//     own rope base and scale; the others attend over the whole sequence;
//   - attention scores and logits may be soft-capped (cap * tanh(x / cap)).
// The norm weights are used as stored: the converter already added Gemma's 1 to them.
// The KV pool keeps every position: the global layers need them all.
#include "lib/model/gemma.hpp"

#include <fmt/format.h>

#include <cmath>

#include "lib/model/batch_state.hpp"
#include "lib/model/weight_binder.hpp"
#include "lib/model/weights.hpp"
#include "lib/ops/ops.hpp"

namespace slm {

void forward_gemma(const Model& model, ForwardScratch& s, ops::KvPool& pool, const ForwardBatch& batch,
                   float* logits) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  const int64_t n_embd = c.n_embd, n_ff = c.n_ff;
  const int64_t q_dim = int64_t(c.n_head) * c.head_dim, kv_dim = int64_t(c.n_head_kv) * c.head_dim;
  const int threads = s.n_threads;
  float *x = s.x.data(), *xn = s.x_norm.data(), *q = s.q.data(), *k = s.k.data(), *v = s.v.data();
  float *attn = s.attn.data(), *out = s.block_out.data(), *gate = s.gate.data(), *up = s.up.data();

  // Token embeddings, scaled by sqrt(n_embd).
  for (int64_t t = 0; t < n; ++t) ops::dequantize_matrix_row(w.token_embd, batch.tokens[t], x + t * n_embd);
  ops::scale_in_place(x, c.embedding_scale, n * n_embd);

  // Rotation angles of each row's position: the global layers' and the sliding layers' own.
  for (int64_t t = 0; t < n; ++t) {
    ops::rope_angles(batch.positions[t], c, w.rope_freq_factors, s.rope.data() + t * c.n_rot);
    if (!s.rope_swa.empty())
      ops::rope_angles(batch.positions[t], c.n_rot, c.rope_freq_base_swa, c.rope_freq_scale_swa, w.rope_freq_factors,
                       s.rope_swa.data() + t * c.n_rot);
  }

  for (int32_t layer = 0; layer < c.n_layer; ++layer) {
    const LayerWeights& L = w.layers[layer];
    const bool sliding = c.is_sliding(layer);
    const float* rope = sliding ? s.rope_swa.data() : s.rope.data();
    const ops::AttentionOptions options{c.attention_scale, c.attn_softcap, sliding ? c.sliding_window : 0};

    // ---- attention block ----
    ops::rms_norm_rows(x, L.attn_norm, xn, n, n_embd, c.rms_norm_eps);
    ops::matmul(L.attn_q, xn, n, q, threads);
    ops::matmul(L.attn_k, xn, n, k, threads);
    ops::matmul(L.attn_v, xn, n, v, threads);
    if (L.attn_q_norm) {  // gemma3: RMSNorm over each head's vector
      ops::rms_norm_rows(q, L.attn_q_norm, q, n * c.n_head, c.head_dim, c.rms_norm_eps);
      ops::rms_norm_rows(k, L.attn_k_norm, k, n * c.n_head_kv, c.head_dim, c.rms_norm_eps);
    }
    for (int64_t t = 0; t < n; ++t) {
      ops::rope_in_place(q + t * q_dim, c.n_head, c.head_dim, c.n_rot, rope + t * c.n_rot, c.rope_style);
      ops::rope_in_place(k + t * kv_dim, c.n_head_kv, c.head_dim, c.n_rot, rope + t * c.n_rot, c.rope_style);
    }
    ops::store_keys_and_values(pool, layer, batch.sequences, k, v);
    ops::attention(q, pool, layer, batch.sequences, {c.n_head, c.n_head_kv, c.head_dim}, options, attn, threads);
    ops::matmul(L.attn_output, attn, n, out, threads);
    ops::rms_norm_rows(out, L.attn_post_norm, out, n, n_embd, c.rms_norm_eps);
    ops::add_in_place(x, out, n * n_embd);

    // ---- feed-forward block (GeGLU) ----
    ops::rms_norm_rows(x, L.ffn_norm, xn, n, n_embd, c.rms_norm_eps);
    ops::matmul(L.ffn_gate, xn, n, gate, threads);
    ops::matmul(L.ffn_up, xn, n, up, threads);
    ops::geglu_in_place(gate, up, n * n_ff);
    ops::matmul(L.ffn_down, gate, n, out, threads);
    ops::rms_norm_rows(out, L.ffn_post_norm, out, n, n_embd, c.rms_norm_eps);
    ops::add_in_place(x, out, n * n_embd);
  }

  // Final norm and the output projection, for the rows that want logits; then the soft cap.
  llama_output_logits(model, s, batch, logits);
}

void bind_gemma_layer(const WeightBinder& b, const ModelConfig& c, int32_t layer, LayerWeights& L) {
  const std::string p = fmt::format("blk.{}.", layer);
  bind_llama_attention(b, c, layer, L);
  L.attn_post_norm = b.vector(p + "post_attention_norm.weight", c.n_embd);
  bind_llama_feed_forward(b, c, layer, L);
  L.ffn_post_norm = b.vector(p + "post_ffw_norm.weight", c.n_embd);
}

namespace {

// Per layer, whether it has a sliding window: from the pattern key (a period, or one flag per
// layer: bools, or integers where nonzero means sliding, as llama.cpp reads them) or, when
// absent, from default_period.
std::vector<bool> read_sliding_layers(const GgufFile& file, const std::string& key, int32_t n_layer,
                                      uint32_t default_period) {
  std::vector<bool> sliding(static_cast<size_t>(n_layer));
  const GgufValue* value = file.find(key);
  if (value && value->type == GgufValueType::ARRAY) {
    const GgufArray& flags = file.get_array(key);
    const GgufValueType type = flags.element_type;
    const bool flag_type = type == GgufValueType::BOOL || type == GgufValueType::INT32 || type == GgufValueType::UINT32;
    if (!flag_type || flags.size() != uint64_t(n_layer))
      throw Error(fmt::format("{}: key {} is an array of {} {}, expected one bool per layer ({})", file.path(), key,
                              flags.size(), gguf_value_type_name(type), n_layer));
    for (int32_t l = 0; l < n_layer; ++l) sliding[size_t(l)] = flags.ints[size_t(l)] != 0;
    return sliding;
  }
  // llama.cpp's set_swa_pattern: period n makes every nth layer global (0: none), 1 all of them.
  const uint32_t period = value ? file.get_u32(key) : default_period;
  for (int32_t l = 0; l < n_layer; ++l) sliding[size_t(l)] = period == 0 || uint32_t(l) % period < period - 1;
  return sliding;
}

}  // namespace

void read_gemma_config(const GgufFile& file, ModelConfig& c, const GemmaDefaults& defaults) {
  const std::string p = c.arch + ".";
  c.embedding_scale = std::sqrt(float(c.n_embd));
  const bool is_27b = c.n_layer == defaults.layers_of_27b;
  c.attention_scale = 1.0f / std::sqrt(float(is_27b ? c.n_embd / c.n_head : c.head_dim));
  c.sliding_window = checked_hparam(file, p + "attention.sliding_window", 0, kMaxContext, defaults.sliding_window);
  if (c.sliding_window == 0) return;
  c.sliding_layers = read_sliding_layers(file, p + "attention.sliding_window_pattern", c.n_layer,
                                         defaults.sliding_period);
  const std::string base_key = p + "rope.freq_base_swa";
  const float fallback = defaults.rope_freq_base_swa > 0.0f ? defaults.rope_freq_base_swa : c.rope_freq_base;
  c.rope_freq_base_swa = file.get_f32_opt(base_key).value_or(fallback);
  if (!(c.rope_freq_base_swa > 1.0f && c.rope_freq_base_swa < 1e12f))
    throw Error(fmt::format("{}: {} is {}, expected a value in (1, 1e12)", file.path(), base_key, c.rope_freq_base_swa));
  c.rope_freq_scale_swa = defaults.rope_swa_scaled ? c.rope_freq_scale : 1.0f;
}

float read_soft_cap(const GgufFile& file, const std::string& key, float fallback) {
  const float cap = file.get_f32_opt(key).value_or(fallback);
  if (!(cap >= 0.0f && std::isfinite(cap)))
    throw Error(fmt::format("{}: key {} is {}, expected a positive soft cap (0: none)", file.path(), key, cap));
  return cap;
}

}  // namespace slm
