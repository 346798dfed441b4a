// Views of a model's weights, bound by name once at load time. Matrices point into
// the mapped file; the small 1-D tensors (norms, biases, rope factors) are copied
// to float so the forward pass never cares about their storage type or alignment.
#pragma once

#include <cstdlib>
#include <memory>
#include <vector>

#include "lib/ops/page_region.hpp"
#include "lib/ops/moe.hpp"
#include "lib/ops/ops.hpp"

namespace slm {

struct LayerWeights {
  const float* attn_norm = nullptr;
  ops::WeightMatrix attn_q, attn_k, attn_v, attn_output;  // phi3: q, k, v are row ranges of the fused attn_qkv
  const float* attn_q_bias = nullptr;  // qwen2
  const float* attn_k_bias = nullptr;
  const float* attn_v_bias = nullptr;
  const float* attn_q_norm = nullptr;  // qwen3: per-head RMSNorm weights, head_dim values
  const float* attn_k_norm = nullptr;
  bool attn_q_gated = false;  // qwen35: attn_q gives each head's query rows, then its output gate's
  // qwen35's Gated DeltaNet layers (lib/model/qwen35.cpp): attn_qkv (q, k and v heads: the conv's
  // channels), attn_gate (z, the output's gate), ssm_alpha and ssm_beta (n_embd -> v heads) and
  // ssm_out; ssm_a and ssm_dt.bias (per v head), ssm_norm (head size); the conv's taps in shortconv_taps.
  ops::WeightMatrix ssm_qkv, ssm_z, ssm_alpha, ssm_beta, ssm_out;
  const float* ssm_a = nullptr;
  const float* ssm_dt_bias = nullptr;
  const float* ssm_norm = nullptr;
  const float* attn_post_norm = nullptr;  // gemma: RMSNorm of the attention output (post_attention_norm)
  const float* ffn_norm = nullptr;
  ops::WeightMatrix ffn_gate, ffn_up, ffn_down;  // phi3: gate and up are row ranges of the fused ffn_up
  const float* ffn_post_norm = nullptr;   // gemma: RMSNorm of the feed-forward output (post_ffw_norm)
  ops::MoeWeights moe;  // qwen3moe: the router and the experts, in place of ffn_gate/up/down
  // lfm2's conv layers: in_proj [n_embd -> 3 * n_embd] (B, C, x), the conv taps copied tap-major
  // ([short_conv_length][n_embd], tap L-1 on the current token), out_proj [n_embd -> n_embd].
  ops::WeightMatrix shortconv_in_proj, shortconv_out_proj;
  const float* shortconv_taps = nullptr;
};

struct ModelWeights {
  ops::WeightMatrix token_embd;  // n_vocab rows of n_embd
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;
  ops::WeightMatrix output;      // token_embd itself when the model ties them
  const float* rope_freq_factors = nullptr;  // n_rot/2 divisors (Llama 3.1+), or nullptr
  const float* rope_factors_long = nullptr;   // LongRoPE (phi3): n_rot/2 divisors each, or nullptr
  const float* rope_factors_short = nullptr;
  // The divisors of the rope frequencies for a run whose context is n_ctx positions per sequence:
  // rope_freqs, else LongRoPE's long factors past the original context (llama.cpp's rule), else
  // its short ones; nullptr for none.
  const float* rope_factors(const ModelConfig& c, int32_t n_ctx) const {
    if (rope_freq_factors) return rope_freq_factors;
    return n_ctx > c.n_ctx_orig ? rope_factors_long : rope_factors_short;
  }
  std::vector<std::unique_ptr<std::vector<float>>> float_copies;  // storage for the pointers above
  // Storage of all the matrices' interleaved tiles (WeightMatrix::interleaved), each 64-byte
  // aligned: zero pages they were repacked into, or the tile cache file's mapping (header first).
  PageRegion interleaved_tiles;
  bool tiles_from_cache = false;
  // The rows of the matrices read from rows (F16, BF16, F32: no tiles) copied out of the file
  // into 2 MiB pages (LoadOptions::huge_pages), each 64-byte aligned; empty without.
  PageRegion row_copies;
};

}  // namespace slm
