// LFM2 (Liquid AI's LFM2-350M ... 2.6B). How it differs from Llama:
//   - most layers are gated short convolutions instead of attention: in_proj gives B, C and x;
//     a causal depthwise convolution of B*x over shortconv.l_cache tokens (the last L - 1 are
//     the layer's recurrent state); C times the result; out_proj. Which layers: the per-layer
//     array attention.head_count_kv, 0 on a conv layer (ModelConfig::recurrent_layers);
//   - the attention layers are Qwen3's: GQA with per-head q/k RMSNorm, NeoX RoPE over the whole
//     head, head_dim = n_embd / n_head;
//   - the final norm is named token_embd_norm.
// Both kinds of layer are followed by Llama's SwiGLU feed-forward block.
#include <fmt/format.h>

#include "lib/model/arch.hpp"
#include "lib/model/batch_state.hpp"
#include "lib/model/weight_binder.hpp"
#include "lib/model/weights.hpp"
#include "lib/ops/short_conv.hpp"

namespace slm {

namespace {

constexpr int64_t kMaxShortConvLength = 64;

void read_lfm2_config(const GgufFile& file, ModelConfig& c) {
  c.short_conv_length = checked_hparam(file, "lfm2.shortconv.l_cache", 2, kMaxShortConvLength);
  c.recurrent_row_floats = 4 * int64_t(c.n_embd);  // B, C, x, then the gated conv's output
}

// A conv layer's state: the B*x of the last L - 1 tokens.
int64_t lfm2_state_floats(const ModelConfig& c, int32_t) { return int64_t(c.short_conv_length - 1) * c.n_embd; }

void bind_lfm2_layer(const WeightBinder& b, const ModelConfig& c, int32_t layer, LayerWeights& L) {
  if (!c.is_recurrent(layer)) return bind_llama_layer(b, c, layer, L);
  const std::string p = fmt::format("blk.{}.", layer);
  const int64_t E = c.n_embd, taps = c.short_conv_length;
  L.attn_norm = b.vector(p + "attn_norm.weight", E);
  L.shortconv_in_proj = b.matrix(p + "shortconv.in_proj.weight", E, 3 * E);
  L.shortconv_out_proj = b.matrix(p + "shortconv.out_proj.weight", E, E);
  L.shortconv_taps = b.conv_taps(p + "shortconv.conv.weight", taps, E);
  bind_llama_feed_forward(b, c, layer, L);
}

// x += out_proj(C * conv(B * x)) of RMSNorm(x), each sequence's rows from its own state.
void short_conv_block(const Model& model, ForwardScratch& s, const ForwardBatch& batch, int32_t layer) {
  const ModelConfig& c = model.config();
  const LayerWeights& L = model.weights().layers[size_t(layer)];
  const int64_t n = int64_t(batch.tokens.size()), E = c.n_embd;
  float *x = s.x.data(), *xn = s.x_norm.data(), *out = s.block_out.data();
  float *bcx = s.recurrent.data(), *gated = s.recurrent.data() + n * 3 * E;
  ops::rms_norm_rows(x, L.attn_norm, xn, n, E, c.rms_norm_eps);
  ops::matmul(L.shortconv_in_proj, xn, n, bcx, s.n_threads);
  ops::gated_short_conv(bcx, batch.sequences, batch.state_layout->layer_offset[size_t(layer)], L.shortconv_taps, E,
                        c.short_conv_length, gated, s.n_threads);
  ops::matmul(L.shortconv_out_proj, gated, n, out, s.n_threads);
  ops::add_in_place(x, out, n * E);
}

void forward_lfm2(const Model& model, ForwardScratch& s, ops::KvPool& pool, const ForwardBatch& batch,
                  float* logits) {
  forward_hybrid(model, s, pool, batch, logits, short_conv_block);
}

}  // namespace

const ArchSpec kLfm2Arch = {
    .name = "lfm2",
    .rope_style = RopeStyle::NeoX,
    .qkv_bias = false,
    .qk_norm = true,
    .forward = forward_lfm2,
    .read_config = read_lfm2_config,
    .bind_layer = bind_lfm2_layer,
    .recurrent_state_floats = lfm2_state_floats,
    .output_norm = "token_embd_norm.weight",
};

}  // namespace slm
