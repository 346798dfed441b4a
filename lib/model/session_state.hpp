// What a Session owns: the KV cache, the tokens it holds, and scratch rows sized
// for one batch, allocated once so the forward pass never allocates.
#pragma once

#include <vector>

#include "lib/ops/kv_cache.hpp"
#include "slm/session.hpp"

namespace slm {

struct SessionState {
  int32_t n_ctx = 0;
  int32_t n_batch = 0;
  int n_threads = 1;
  ops::KvCache cache;
  std::vector<TokenId> cached_tokens;

  // Scratch for up to n_batch tokens: [n_batch][width] each.
  std::vector<float> x;        // residual stream, n_embd
  std::vector<float> x_norm;   // normalized input of a block, n_embd
  std::vector<float> q;        // n_head * head_dim
  std::vector<float> k;        // n_head_kv * head_dim
  std::vector<float> v;        // n_head_kv * head_dim
  std::vector<float> attn;     // attention output, n_head * head_dim
  std::vector<float> block_out;// a block's projection back to n_embd
  std::vector<float> gate;     // n_ff
  std::vector<float> up;       // n_ff
  std::vector<float> rope;     // cos/sin pairs, n_rot
  std::vector<float> logits;   // what eval() returns

  SessionState(const ModelConfig& config, int32_t n_ctx, int32_t n_batch, int n_threads, KvType kv_type);
};

}  // namespace slm
