// A loaded model: the mapped GGUF file, its validated hyperparameters, its
// tokenizer and views of its weights. Loading validates everything up front,
// so that the forward pass can trust every shape it reads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slm/activation_precision.hpp"
#include "slm/gguf.hpp"
#include "slm/tokenizer.hpp"

namespace slm {

enum class RopeStyle {
  Normal,  // rotates pairs (x[2i], x[2i+1])                 - Llama
  NeoX,    // rotates pairs (x[i], x[i + n_rot/2])             - Qwen2, Qwen3
};

struct ModelConfig {
  std::string arch;          // general.architecture
  std::string name;          // general.name, or the file name
  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;       // the layers a forward pass runs
  int32_t n_layer_mtp = 0;   // blocks after them that only a multi-token-prediction head uses (qwen35's nextn): never run
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;      // independent of n_embd / n_head in Qwen3
  int32_t n_ff = 0;
  int32_t n_ctx_train = 0;   // <arch>.context_length: the largest context a session may ask for
  int32_t n_rot = 0;         // rotated dimensions per head (<arch>.rope.dimension_count)
  float rms_norm_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  RopeStyle rope_style = RopeStyle::Normal;
  bool tied_output = false;  // output matrix is token_embd
  bool has_qkv_bias = false;
  bool has_qk_norm = false;
  bool has_rope_freq_factors = false;  // rope_freqs.weight (Llama 3.1+)
  // LongRoPE (Phi-3.5, Phi-4-mini): rope_factors_long.weight and rope_factors_short.weight, the
  // long ones for a run whose context exceeds n_ctx_orig (llama.cpp's rule).
  bool has_longrope_factors = false;
  int32_t n_ctx_orig = 0;          // <arch>.rope.scaling.original_context_length; n_ctx_train when absent
  float rope_attn_factor = 1.0f;   // <arch>.rope.scaling.attn_factor: multiplies the rotation's cos and sin
  // <arch>.rope.dimension_sections (qwen35): interleaved multi-section rope (IMROPE), made for
  // positions of images; all 0: none. Rotary pair i falls in section s = i % sum: t when
  // s % 3 == 0 and s < 3 * [0], h when s % 3 == 1 and s < 3 * [1], w when s % 3 == 2 and
  // s < 3 * [2], else e. A text token's position is its position in t, h and w, and 0 in e.
  std::array<int32_t, 4> rope_sections{};
  // qwen35's Gated DeltaNet layers (its recurrent_layers; the conv's taps are short_conv_length).
  int32_t ssm_head_dim = 0;   // ssm.state_size: the size of every q, k and v head
  int32_t ssm_n_k_heads = 0;  // ssm.group_count: q and k heads
  int32_t ssm_n_v_heads = 0;  // ssm.time_step_rank: v heads, a multiple; v head j reads q/k head j % n_k_heads
  // Gemma 2 / Gemma 3 (zero, one or empty for the others).
  float embedding_scale = 1.0f;   // token embeddings are multiplied by it (Gemma: sqrt(n_embd))
  float attention_scale = 0.0f;   // > 0: the q.k scale in place of 1 / sqrt(head_dim)
  float attn_softcap = 0.0f;      // > 0: attention scores become cap * tanh(score / cap) (Gemma 2)
  float final_softcap = 0.0f;     // > 0: logits become cap * tanh(logit / cap)
  int32_t sliding_window = 0;     // > 0: a sliding layer's query sees only its last sliding_window positions
  std::vector<bool> sliding_layers;     // per layer, true for sliding-window attention; empty: none
  float rope_freq_base_swa = 10000.0f;  // the rope base and scale of the sliding layers
  float rope_freq_scale_swa = 1.0f;
  bool is_sliding(int32_t layer) const {
    return sliding_window > 0 && !sliding_layers.empty() && sliding_layers[size_t(layer)];
  }
  int32_t n_expert = 0;       // mixture of experts (qwen3moe): experts per layer, 0 for a dense FFN
  int32_t n_expert_used = 0;  // experts each token is routed to
  int32_t n_ff_exp = 0;       // one expert's feed-forward width
  // Hybrid models (lfm2, qwen35): per layer, true for a recurrent layer, which keeps a fixed-size
  // state per sequence (lib/ops/recurrent_state.hpp) and no keys or values; empty: none.
  std::vector<bool> recurrent_layers;
  int32_t short_conv_length = 0;     // lfm2: shortconv.l_cache, the taps of a conv layer
  int64_t recurrent_row_floats = 0;  // scratch a recurrent layer needs per row (its projections), set by the arch
  bool is_recurrent(int32_t layer) const { return !recurrent_layers.empty() && recurrent_layers[size_t(layer)]; }
  // The layers that keep keys and values, and an attention layer's index among them (its KV pool layer).
  int32_t n_kv_layers() const { return kv_layer(n_layer); }
  int32_t kv_layer(int32_t layer) const {
    int32_t index = 0;
    for (int32_t l = 0; l < layer; ++l) index += !is_recurrent(l);
    return index;
  }
};

struct ModelWeights;  // lib/model/weights.hpp: views into the mapped file

// Where a load that repacks the weights is: the first load of a file on a CPU, or one whose tile
// cache is missing or stale, repacks them ("repacking") and writes the cache ("writing cache").
struct LoadProgress {
  const char* step = "";
  uint64_t done_bytes = 0;
  uint64_t total_bytes = 0;
};

struct LoadOptions {
  // Int8: the matrices whose format the active kernels multiply with 8-bit activations
  // (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K on x86) do so; the others keep Int16 or float32.
  ActivationPrecision activations = ActivationPrecision::Int16;
  // Called on the loading thread as a repacking load goes (each step from 0 to its total, then
  // the next); never when the tiles come from the cache. Tools print it (tools/common/cli.hpp).
  std::function<void(const LoadProgress&)> on_progress;
  // The weights in 2 MiB pages where the kernel gives them (transparent huge pages "madvise" or
  // "always"): the repacked tiles, and the rows of F16/BF16/F32 matrices copied out of the file.
  // Generation streams through them every token, and on 4 KiB pages that stream stops at every
  // page. The environment's SLM_HUGE_PAGES=off turns it off as well.
  bool huge_pages = true;
};

class Model {
 public:
  // Opens, maps and validates a GGUF model. Throws slm::Error naming what is wrong:
  // an unknown architecture, a missing or insane hyperparameter, a missing tensor or
  // one of the wrong shape or type, special token ids outside the vocabulary.
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& gguf() const { return gguf_; }
  const ModelWeights& weights() const { return *weights_; }
  // tokenizer.chat_template, or "" when the file has none.
  std::string chat_template() const;
  // Number of weights, and the bytes they occupy in the file.
  uint64_t n_params() const;
  uint64_t weight_bytes() const;

  Model(GgufFile gguf, ModelConfig config, std::unique_ptr<Tokenizer> tokenizer,
        std::unique_ptr<ModelWeights> weights);
  ~Model();

 private:
  GgufFile gguf_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ModelWeights> weights_;
};

}  // namespace slm
