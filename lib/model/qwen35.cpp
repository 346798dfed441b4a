// Qwen3.5, the dense models (llama.cpp's "qwen35"). How it differs from Llama:
//   - most layers are Gated DeltaNet linear attention, with a fixed-size state per sequence in
//     place of keys and values. Which ones the metadata says: attention.recurrent_layers (a bool
//     per layer, true = DeltaNet), else full_attention_interval n (layer l attends when
//     (l + 1) % n == 0; absent: 4), as llama.cpp reads them. A DeltaNet layer, with d =
//     ssm.state_size, G = ssm.group_count q/k heads and H = ssm.time_step_rank v heads:
//       attn_qkv gives q (G heads), k (G heads) and v (H heads) of d values;
//       a causal depthwise convolution over the last ssm.conv_kernel tokens (ssm_conv1d; the
//       inputs of the K - 1 tokens before are state), then SiLU;
//       q and k L2-normalized per head;
//       per token and v head a decay exp(ssm_a * softplus(ssm_alpha.x + ssm_dt.bias)) and a
//       write strength sigmoid(ssm_beta.x);
//       the gated delta rule on each v head's d x d state (v head j reads q/k head j % G);
//       each head's output RMS-normed (ssm_norm) and multiplied by SiLU(attn_gate.x); ssm_out;
//   - the other layers are Qwen3's attention (GQA, per-head q/k RMSNorm) with a sigmoid output
//     gate: attn_q gives each head's query rows and then its gate rows, and the attention output
//     is multiplied by sigmoid(gate) before attn_output (Llama's block does it when a layer's
//     attn_q_gated is set);
//   - rope rotates NeoX pairs on the first rope.dimension_count dims of a head (a quarter, in
//     Qwen3.5), in the sections of rope.dimension_sections (ops::rope_angles);
//   - the feed-forward block's norm is named post_attention_norm.
// The norm weights are used as stored: the converter already added Qwen's 1 to them.
#include <fmt/format.h>

#include <algorithm>

#include "lib/model/arch.hpp"
#include "lib/model/batch_state.hpp"
#include "lib/model/weight_binder.hpp"
#include "lib/model/weights.hpp"
#include "lib/ops/delta_net.hpp"
#include "lib/ops/ops.hpp"
#include "lib/ops/short_conv.hpp"

namespace slm {

namespace {

constexpr int64_t kMaxConvKernel = 64;

ops::DeltaNetShape delta_net_shape(const ModelConfig& c) { return {c.ssm_n_k_heads, c.ssm_n_v_heads, c.ssm_head_dim}; }

// Which layers are DeltaNet layers, as llama.cpp decides it. A list may also cover the MTP blocks.
std::vector<bool> read_recurrent_layers(const GgufFile& file, int32_t n_layer, int32_t n_layer_mtp) {
  const std::string list_key = "qwen35.attention.recurrent_layers", interval_key = "qwen35.full_attention_interval";
  auto recurrent = std::vector<bool>(size_t(n_layer));
  if (const GgufArray* flags = file.get_array_opt(list_key)) {
    if (flags->ints.size() != size_t(n_layer) && flags->ints.size() != size_t(n_layer + n_layer_mtp))
      throw Error(fmt::format("{}: {} has {} values, expected one bool per layer ({})", file.path(), list_key,
                              flags->size(), n_layer));
    for (int32_t l = 0; l < n_layer; ++l) recurrent[size_t(l)] = flags->ints[size_t(l)] != 0;
    return recurrent;
  }
  const int32_t interval = checked_hparam(file, interval_key, 1, kMaxLayers, 4);
  for (int32_t l = 0; l < n_layer; ++l) recurrent[size_t(l)] = (l + 1) % interval != 0;
  return recurrent;
}

void read_qwen35_config(const GgufFile& file, ModelConfig& c) {
  const std::string p = "qwen35.";
  c.short_conv_length = checked_hparam(file, p + "ssm.conv_kernel", 2, kMaxConvKernel);
  c.ssm_head_dim = checked_hparam(file, p + "ssm.state_size", 1, kMaxHeadDim);
  c.ssm_n_k_heads = checked_hparam(file, p + "ssm.group_count", 1, kMaxHeads);
  c.ssm_n_v_heads = checked_hparam(file, p + "ssm.time_step_rank", 1, kMaxHeads);
  if (c.ssm_n_v_heads % c.ssm_n_k_heads != 0)
    throw Error(fmt::format("{}: {}ssm.time_step_rank ({}) is not a multiple of ssm.group_count ({})", file.path(), p,
                            c.ssm_n_v_heads, c.ssm_n_k_heads));
  const int64_t inner = checked_hparam(file, p + "ssm.inner_size", 1, kMaxHeads * kMaxHeadDim);
  if (inner != int64_t(c.ssm_n_v_heads) * c.ssm_head_dim)
    throw Error(fmt::format("{}: {}ssm.inner_size is {}, expected time_step_rank x state_size ({})", file.path(), p,
                            inner, int64_t(c.ssm_n_v_heads) * c.ssm_head_dim));
  // Multi-token-prediction blocks are the last nextn_predict_layers of block_count (llama.cpp's
  // converter puts them there). The model's own forward pass never runs them: they are left in
  // the file, unread, as llama.cpp does unless asked to load them for drafting.
  c.n_layer_mtp = checked_hparam(file, p + "nextn_predict_layers", 0, c.n_layer - 1, 0);
  c.n_layer -= c.n_layer_mtp;

  const std::string sections_key = p + "rope.dimension_sections";
  const GgufArray& sections = file.get_array(sections_key);
  if (sections.ints.size() != 4)
    throw Error(fmt::format("{}: {} has {} values, expected 4 integers", file.path(), sections_key, sections.size()));
  int64_t total = 0;
  for (size_t i = 0; i < 4; ++i) {
    const int64_t s = sections.ints[i];
    if (s < 0 || s > c.head_dim)
      throw Error(fmt::format("{}: {}[{}] is {}, expected a value in [0, {}]", file.path(), sections_key, i, s, c.head_dim));
    c.rope_sections[i] = int32_t(s);
    total += s;
  }
  if (c.rope_sections[0] + c.rope_sections[1] + c.rope_sections[2] == 0 || total > c.head_dim)
    throw Error(fmt::format("{}: {} sum to {}, expected the first three not all 0 and the sum at most head_dim ({})",
                            file.path(), sections_key, total, c.head_dim));

  c.recurrent_layers = read_recurrent_layers(file, c.n_layer, c.n_layer_mtp);
  // Scratch per row: the gated attention's fused query and gate; a DeltaNet layer's q, k, v, their
  // convolution, z, the two gates per v head and the heads' output.
  const ops::DeltaNetShape shape = delta_net_shape(c);
  c.recurrent_row_floats = std::max(2 * int64_t(c.n_head) * c.head_dim,
                                    2 * shape.qkv_floats() + 2 * shape.output_floats() + 2 * int64_t(c.ssm_n_v_heads));
}

// A DeltaNet layer's state: the convolution's last K - 1 inputs, then every v head's d x d matrix.
int64_t conv_state_floats(const ModelConfig& c) {
  return int64_t(c.short_conv_length - 1) * delta_net_shape(c).qkv_floats();
}
int64_t qwen35_state_floats(const ModelConfig& c, int32_t) {
  return conv_state_floats(c) + delta_net_shape(c).state_floats();
}

void bind_qwen35_layer(const WeightBinder& b, const ModelConfig& c, int32_t layer, LayerWeights& L) {
  const std::string p = fmt::format("blk.{}.", layer);
  const int64_t E = c.n_embd, q_dim = int64_t(c.n_head) * c.head_dim, kv_dim = int64_t(c.n_head_kv) * c.head_dim;
  L.attn_norm = b.vector(p + "attn_norm.weight", E);
  if (c.is_recurrent(layer)) {
    const ops::DeltaNetShape shape = delta_net_shape(c);
    const int64_t H = c.ssm_n_v_heads;
    L.ssm_qkv = b.matrix(p + "attn_qkv.weight", E, shape.qkv_floats());
    L.ssm_z = b.matrix(p + "attn_gate.weight", E, shape.output_floats());
    L.ssm_alpha = b.matrix(p + "ssm_alpha.weight", E, H);
    L.ssm_beta = b.matrix(p + "ssm_beta.weight", E, H);
    L.ssm_out = b.matrix(p + "ssm_out.weight", shape.output_floats(), E);
    L.shortconv_taps = b.conv_taps(p + "ssm_conv1d.weight", c.short_conv_length, shape.qkv_floats());
    L.ssm_a = b.vector(p + "ssm_a", H);
    L.ssm_dt_bias = b.vector(p + "ssm_dt.bias", H);
    L.ssm_norm = b.vector(p + "ssm_norm.weight", c.ssm_head_dim);
  } else {
    L.attn_q = b.matrix(p + "attn_q.weight", E, 2 * q_dim);
    L.attn_q_gated = true;
    L.attn_k = b.matrix(p + "attn_k.weight", E, kv_dim);
    L.attn_v = b.matrix(p + "attn_v.weight", E, kv_dim);
    L.attn_output = b.matrix(p + "attn_output.weight", q_dim, E);
    L.attn_q_norm = b.vector(p + "attn_q_norm.weight", c.head_dim);
    L.attn_k_norm = b.vector(p + "attn_k_norm.weight", c.head_dim);
  }
  L.ffn_norm = b.vector(p + "post_attention_norm.weight", E);
  L.ffn_gate = b.matrix(p + "ffn_gate.weight", E, c.n_ff);
  L.ffn_up = b.matrix(p + "ffn_up.weight", E, c.n_ff);
  L.ffn_down = b.matrix(p + "ffn_down.weight", c.n_ff, E);
}

// x += ssm_out(gated RMSNorm(delta rule(conv(attn_qkv . RMSNorm(x))))), each sequence's rows in
// order from its own state.
void delta_net_block(const Model& model, ForwardScratch& s, const ForwardBatch& batch, int32_t layer) {
  const ModelConfig& c = model.config();
  const LayerWeights& L = model.weights().layers[size_t(layer)];
  const ops::DeltaNetShape shape = delta_net_shape(c);
  const int64_t n = int64_t(batch.tokens.size()), E = c.n_embd, H = shape.n_v_heads;
  const int64_t channels = shape.qkv_floats(), inner = shape.output_floats();
  const int threads = s.n_threads;
  float *x = s.x.data(), *xn = s.x_norm.data(), *out = s.block_out.data();
  float* qkv = s.recurrent.data();  // [n][channels] each, then [n][inner] each, then [n][H] each
  float *conv = qkv + n * channels, *z = conv + n * channels, *heads = z + n * inner;
  float *decay = heads + n * inner, *beta = decay + n * H;
  const int64_t state = batch.state_layout->layer_offset[size_t(layer)];

  ops::rms_norm_rows(x, L.attn_norm, xn, n, E, c.rms_norm_eps);
  ops::matmul(L.ssm_qkv, xn, n, qkv, threads);
  ops::matmul(L.ssm_z, xn, n, z, threads);
  ops::matmul(L.ssm_alpha, xn, n, decay, threads);
  ops::matmul(L.ssm_beta, xn, n, beta, threads);
  ops::short_conv(qkv, batch.sequences, state, L.shortconv_taps, channels, c.short_conv_length, conv, threads);
  ops::silu_in_place(conv, n * channels);
  ops::normalize_queries_and_keys(conv, n, shape, c.rms_norm_eps);
  ops::delta_rule_gates(decay, beta, L.ssm_a, L.ssm_dt_bias, n, int32_t(H));
  ops::gated_delta_rule(conv, decay, beta, batch.sequences, state + conv_state_floats(c), shape, heads, threads);
  ops::rms_norm_silu_gated_rows(heads, L.ssm_norm, z, heads, n * H, shape.head_dim, c.rms_norm_eps);
  ops::matmul(L.ssm_out, heads, n, out, threads);
  ops::add_in_place(x, out, n * E);
}

void forward_qwen35(const Model& model, ForwardScratch& s, ops::KvPool& pool, const ForwardBatch& batch,
                    float* logits) {
  forward_hybrid(model, s, pool, batch, logits, delta_net_block);  // attention layers: gated (attn_q_gated)
}

}  // namespace

const ArchSpec kQwen35Arch = {
    .name = "qwen35",
    .rope_style = RopeStyle::NeoX,
    .qkv_bias = false,
    .qk_norm = true,
    .forward = forward_qwen35,
    .read_config = read_qwen35_config,
    .bind_layer = bind_qwen35_layer,
    .recurrent_state_floats = qwen35_state_floats,
};

}  // namespace slm
