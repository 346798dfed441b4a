#include "lib/ops/kv_cache.hpp"

#include <algorithm>
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
  const int32_t group = shape.n_head / shape.n_head_kv;  // query heads per KV head
  // A work item: up to kTileTokens tokens x heads_per_item query heads of one KV head, so that
  // each block of keys and values serves all of them. Items are independent and each query's
  // result does not depend on its item, so the split never changes a bit of out.
  constexpr int32_t kTileTokens = 8;
  const int32_t n_token_tiles = (n_tokens + kTileTokens - 1) / kTileTokens;
  int32_t splits = 1;  // a KV head's query heads are split when there would be too few items
  while (splits < group && int64_t(n_token_tiles) * shape.n_head_kv * splits < 2 * int64_t(n_threads)) ++splits;
  const int32_t heads_per_item = (group + splits - 1) / splits;
  const int32_t items_per_kv_head = (group + heads_per_item - 1) / heads_per_item;
  const int64_t n_items = int64_t(n_token_tiles) * shape.n_head_kv * items_per_kv_head;
  const bool f16 = cache.type == KvType::F16;
  // Keys and values are read in place: the cache is [layer][position][row_size].
  const uint64_t layer_base = static_cast<uint64_t>(layer) * cache.n_ctx * cache.row_size;
#pragma omp parallel num_threads(n_threads)
  {
    std::vector<float> scratch;
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < n_items; ++item) {
      const int32_t tile = static_cast<int32_t>(item / (int64_t(shape.n_head_kv) * items_per_kv_head));
      const int32_t kv_head = static_cast<int32_t>(item / items_per_kv_head % shape.n_head_kv);
      const int32_t first_head = kv_head * group + static_cast<int32_t>(item % items_per_kv_head) * heads_per_item;
      const int32_t first_token = tile * kTileTokens;
      kernels::AttentionQueries queries;
      const int64_t offset = int64_t(first_token) * shape.n_head * head_dim + int64_t(first_head) * head_dim;
      queries.q = q + offset;
      queries.out = out + offset;
      queries.token_stride = int64_t(shape.n_head) * head_dim;
      queries.n_tokens = std::min(kTileTokens, n_tokens - first_token);
      queries.n_heads = std::min(heads_per_item, (kv_head + 1) * group - first_head);
      queries.head_dim = head_dim;
      queries.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
      const uint64_t first_row = layer_base + static_cast<uint64_t>(kv_head) * head_dim;
      if (f16) {
        queries.kv.keys_f16 = cache.keys_f16.data() + first_row;
        queries.kv.values_f16 = cache.values_f16.data() + first_row;
      } else {
        queries.kv.keys_f32 = cache.keys_f32.data() + first_row;
        queries.kv.values_f32 = cache.values_f32.data() + first_row;
      }
      queries.kv.stride = cache.row_size;
      queries.first_n_keys = pos0 + first_token + 1;  // causal: positions 0 .. pos0 + t
      scratch.resize(static_cast<size_t>(kernels::attention_scratch_floats(queries)));
      queries.scratch = scratch.data();
      kernels::attend_queries(queries);
    }
  }
}

}  // namespace slm::ops
