#include "lib/ops/kv_cache.hpp"

#include <cmath>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/dot.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"
#include "lib/ops/ops.hpp"

namespace slm::ops {

KvCache::KvCache(KvType type_, int32_t n_ctx_, int32_t n_layer_, int32_t row_size_)
    : type(type_), n_ctx(n_ctx_), n_layer(n_layer_), row_size(row_size_) {
  const uint64_t n = static_cast<uint64_t>(n_ctx) * n_layer * row_size;
  if (type == KvType::F16) {
    keys_f16.resize(n);
    values_f16.resize(n);
  } else {
    keys_f32.resize(n);
    values_f32.resize(n);
  }
}

void KvCache::store(int32_t layer, int32_t position, const float* key, const float* value) {
  const uint64_t base = row_index(layer, position);
  for (int32_t i = 0; i < row_size; ++i) {
    if (type == KvType::F16) {
      keys_f16[base + i] = kernels::fp32_to_fp16(key[i]);
      values_f16[base + i] = kernels::fp32_to_fp16(value[i]);
    } else {
      keys_f32[base + i] = key[i];
      values_f32[base + i] = value[i];
    }
  }
}

void attention(const float* q, const KvCache& cache, int32_t layer, int32_t pos0, int32_t n_tokens,
               const AttentionShape& shape, float* out, int n_threads) {
  const int32_t head_dim = shape.head_dim;
  const int32_t group = shape.n_head / shape.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int64_t n_pairs = static_cast<int64_t>(n_tokens) * shape.n_head;
  const bool f16 = cache.type == KvType::F16;
  // Keys and values are read in place: the cache is [layer][position][row_size].
  const uint64_t layer_base = static_cast<uint64_t>(layer) * cache.n_ctx * cache.row_size;
#pragma omp parallel num_threads(n_threads)
  {
    std::vector<float> scores(static_cast<size_t>(pos0 + n_tokens));
#pragma omp for schedule(static)
    for (int64_t pair = 0; pair < n_pairs; ++pair) {
      const int32_t t = static_cast<int32_t>(pair / shape.n_head);
      const int32_t h = static_cast<int32_t>(pair % shape.n_head);
      const int32_t kv_offset = (h / group) * head_dim;
      const float* q_head = q + (static_cast<int64_t>(t) * shape.n_head + h) * head_dim;
      float* out_head = out + (static_cast<int64_t>(t) * shape.n_head + h) * head_dim;
      const uint64_t first_row = layer_base + static_cast<uint64_t>(kv_offset);
      kernels::AttentionHead head;
      head.q = q_head;
      head.head_dim = head_dim;
      head.scale = scale;
      if (f16) {
        head.keys_f16 = cache.keys_f16.data() + first_row;
        head.values_f16 = cache.values_f16.data() + first_row;
      } else {
        head.keys_f32 = cache.keys_f32.data() + first_row;
        head.values_f32 = cache.values_f32.data() + first_row;
      }
      head.stride = cache.row_size;
      head.n_keys = pos0 + t + 1;  // causal: positions 0 .. pos0 + t
      head.scores = scores.data();
      head.out = out_head;
      kernels::attend_head(head);
    }
  }
}

}  // namespace slm::ops
