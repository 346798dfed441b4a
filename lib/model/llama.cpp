// The Llama-family transformer, top to bottom. Llama 2/3.x, TinyLlama, SmolLM2 and
// Mistral run it as is; Qwen2 (q/k/v biases), Qwen3 (q/k norms) and Qwen3-MoE (q/k norms,
// experts in place of the FFN) run it with their extra tensors present, and Phi-3 with its
// fused matrices bound as separate row ranges and LongRoPE's factors. Every step is one op over
// the whole batch of rows, whatever sequences they belong to; only attention looks at each
// sequence on its own.
#include <algorithm>
#include <limits>
#include <vector>

#include "lib/model/arch.hpp"
#include "lib/model/batch_state.hpp"
#include "lib/model/weights.hpp"
#include "lib/ops/moe.hpp"
#include "lib/ops/ops.hpp"

namespace slm {

const ArchSpec kLlamaArch = {
    .name = "llama",
    .rope_style = RopeStyle::Normal,
    .qkv_bias = false,
    .qk_norm = false,
    .forward = forward_llama,
};

void llama_attention_block(const Model& model, ForwardScratch& s, ops::KvPool& pool, const ForwardBatch& batch,
                           int32_t layer) {
  const ModelConfig& c = model.config();
  const LayerWeights& L = model.weights().layers[size_t(layer)];
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  const int64_t q_dim = int64_t(c.n_head) * c.head_dim, kv_dim = int64_t(c.n_head_kv) * c.head_dim;
  const int threads = s.n_threads;
  float *x = s.x.data(), *xn = s.x_norm.data(), *q = s.q.data(), *k = s.k.data(), *v = s.v.data();
  float *attn = s.attn.data(), *out = s.block_out.data();

  ops::rms_norm_rows(x, L.attn_norm, xn, n, c.n_embd, c.rms_norm_eps);
  float* query_and_gate = s.recurrent.data();  // qwen35: [n][n_head][query, gate]
  ops::matmuls({{L.attn_q, L.attn_q_gated ? query_and_gate : q}, {L.attn_k, k}, {L.attn_v, v}}, xn, n, threads);
  if (L.attn_q_gated) ops::take_queries(query_and_gate, q, n, c.n_head, c.head_dim);
  if (L.attn_q_bias) {  // qwen2
    ops::add_bias(q, L.attn_q_bias, n, q_dim);
    ops::add_bias(k, L.attn_k_bias, n, kv_dim);
    ops::add_bias(v, L.attn_v_bias, n, kv_dim);
  }
  if (L.attn_q_norm) {  // qwen3: RMSNorm over each head's vector
    ops::rms_norm_rows(q, L.attn_q_norm, q, n * c.n_head, c.head_dim, c.rms_norm_eps);
    ops::rms_norm_rows(k, L.attn_k_norm, k, n * c.n_head_kv, c.head_dim, c.rms_norm_eps);
  }
  for (int64_t t = 0; t < n; ++t) {
    const float* angles = s.rope.data() + t * c.n_rot;
    ops::rope_in_place(q + t * q_dim, c.n_head, c.head_dim, c.n_rot, angles, c.rope_style);
    ops::rope_in_place(k + t * kv_dim, c.n_head_kv, c.head_dim, c.n_rot, angles, c.rope_style);
  }
  const int32_t kv_layer = c.kv_layer(layer);
  ops::store_keys_and_values(pool, kv_layer, batch.sequences, k, v);
  ops::attention(q, pool, kv_layer, batch.sequences, {c.n_head, c.n_head_kv, c.head_dim},
                 ops::default_attention(c.head_dim), attn, threads);
  if (L.attn_q_gated) ops::apply_output_gates(attn, query_and_gate, n, c.n_head, c.head_dim);
  ops::matmul(L.attn_output, attn, n, out, threads);
  ops::add_in_place(x, out, n * c.n_embd);
}

void llama_feed_forward_block(const Model& model, ForwardScratch& s, int64_t n, int32_t layer) {
  const ModelConfig& c = model.config();
  const LayerWeights& L = model.weights().layers[size_t(layer)];
  const int threads = s.n_threads;
  float *x = s.x.data(), *xn = s.x_norm.data(), *out = s.block_out.data(), *gate = s.gate.data(), *up = s.up.data();
  ops::rms_norm_rows(x, L.ffn_norm, xn, n, c.n_embd, c.rms_norm_eps);
  if (L.moe.present()) {
    ops::moe_feed_forward(L.moe, xn, n, out, s.moe, threads);
  } else {
    ops::matmul_swiglu(L.ffn_gate, L.ffn_up, xn, n, gate, up, threads);  // gate = silu(gate x) * (up x)
    ops::matmul(L.ffn_down, gate, n, out, threads);
  }
  ops::add_in_place(x, out, n * c.n_embd);
}

void llama_input_rows(const Model& model, ForwardScratch& s, const ForwardBatch& batch) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  for (int64_t t = 0; t < n; ++t) ops::dequantize_matrix_row(w.token_embd, batch.tokens[t], s.x.data() + t * c.n_embd);
  // Rotation angles of each row's position, shared by every layer and head.
  const float* rope_factors = w.rope_factors(c, batch.n_ctx);
  for (int64_t t = 0; t < n; ++t) ops::rope_angles(batch.positions[t], c, rope_factors, s.rope.data() + t * c.n_rot);
}

namespace {

// A cut head's rows (kept: the ids below it, and the end-of-generation tokens): the soft cap, if
// any, on the kept logits only, and -infinity for every other one (probability 0 in any sampler,
// never an argmax). The rest of each row was never computed, so it is not worth capping.
void finish_cut_rows(const Model& model, int64_t kept, float soft_cap, float* logits, int64_t n_out) {
  const int64_t n_vocab = model.config().n_vocab;
  const std::vector<TokenId>& ends = model.tokenizer().end_of_generation_ids();
  std::vector<float> end_logits(ends.size());
  for (int64_t i = 0; i < n_out; ++i) {
    float* row = logits + i * n_vocab;
    for (size_t j = 0; j < ends.size(); ++j) end_logits[j] = row[ends[j]];
    if (soft_cap > 0.0f) {
      ops::soft_cap_in_place(row, soft_cap, kept);
      ops::soft_cap_in_place(end_logits.data(), soft_cap, int64_t(end_logits.size()));
    }
    std::fill(row + kept, row + n_vocab, -std::numeric_limits<float>::infinity());
    for (size_t j = 0; j < ends.size(); ++j) row[ends[j]] = end_logits[j];
  }
}

}  // namespace

void llama_output_logits(const Model& model, ForwardScratch& s, const ForwardBatch& batch, float* logits) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t n_out = int64_t(batch.logit_rows.size()), n_embd = c.n_embd;
  for (int64_t i = 0; i < n_out; ++i)
    ops::rms_norm(s.x.data() + batch.logit_rows[i] * n_embd, w.output_norm, s.x_norm.data() + i * n_embd, n_embd,
                  c.rms_norm_eps);
  if (n_out == 0) return;
  const int64_t n_vocab = c.n_vocab, kept = batch.logit_vocab > 0 ? batch.logit_vocab : n_vocab;
  if (kept == n_vocab) {
    ops::matmul(w.output, s.x_norm.data(), n_out, logits, s.n_threads);
  } else {
    // A cut head (a draft's, slm/speculative.hpp): its leading rows, and the line of 16 rows
    // holding each end-of-generation token, so that the draft can still propose the end.
    ops::matmul_leading_rows(w.output, kept, s.x_norm.data(), n_out, logits, s.n_threads);
    for (TokenId end : model.tokenizer().end_of_generation_ids()) {
      const int64_t line = end / ops::kMatmulRowsPerLine * ops::kMatmulRowsPerLine;
      if (end >= kept)
        ops::matmul_row_range(w.output, s.x_norm.data(), n_out, logits, line, line + ops::kMatmulRowsPerLine);
    }
  }
  if (kept < n_vocab) return finish_cut_rows(model, kept, c.final_softcap, logits, n_out);
  if (c.final_softcap > 0.0f) ops::soft_cap_in_place(logits, c.final_softcap, n_out * n_vocab);
}

void forward_llama(const Model& model, ForwardScratch& s, ops::KvPool& pool, const ForwardBatch& batch,
                   float* logits) {
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  llama_input_rows(model, s, batch);  // token embeddings, rope angles
  for (int32_t layer = 0; layer < model.config().n_layer; ++layer) {
    llama_attention_block(model, s, pool, batch, layer);
    llama_feed_forward_block(model, s, n, layer);  // SwiGLU; qwen3moe: a mixture of SwiGLU experts
  }
  llama_output_logits(model, s, batch, logits);  // final norm and output projection of the rows that want them
}

void forward_hybrid(const Model& model, ForwardScratch& s, ops::KvPool& pool, const ForwardBatch& batch, float* logits,
                    RecurrentBlockFn recurrent_block) {
  const ModelConfig& c = model.config();
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  llama_input_rows(model, s, batch);
  for (int32_t layer = 0; layer < c.n_layer; ++layer) {
    if (c.is_recurrent(layer))
      recurrent_block(model, s, batch, layer);
    else
      llama_attention_block(model, s, pool, batch, layer);
    llama_feed_forward_block(model, s, n, layer);
  }
  llama_output_logits(model, s, batch, logits);
}

}  // namespace slm
