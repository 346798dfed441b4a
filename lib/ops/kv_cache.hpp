// Per-layer keys and values for n_ctx positions, in F16 (default: half the memory,
// and what llama.cpp uses) or F32. Rows are [position][n_head_kv * head_dim].
#pragma once

#include <cstdint>
#include <vector>

#include "slm/session.hpp"

namespace slm::ops {

struct KvCache {
  KvType type = KvType::F16;
  int32_t n_ctx = 0;
  int32_t n_layer = 0;
  int32_t row_size = 0;  // n_head_kv * head_dim
  std::vector<uint16_t> keys_f16, values_f16;
  std::vector<float> keys_f32, values_f32;

  KvCache(KvType type, int32_t n_ctx, int32_t n_layer, int32_t row_size);

  // Stores the key and value rows of one position.
  void store(int32_t layer, int32_t position, const float* key, const float* value);

 private:
  uint64_t row_index(int32_t layer, int32_t position) const {
    return (static_cast<uint64_t>(layer) * n_ctx + position) * row_size;
  }
};

// Causal grouped-query attention for n_tokens queries at positions pos0, pos0+1, ...
// q is [n_tokens][n_head * head_dim]; out is the same shape. Query head h reads KV head
// h / (n_head / n_head_kv). Each query attends to cache positions 0 .. its own position.
struct AttentionShape {
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
};
void attention(const float* q, const KvCache& cache, int32_t layer, int32_t pos0, int32_t n_tokens,
               const AttentionShape& shape, float* out, int n_threads);

}  // namespace slm::ops
