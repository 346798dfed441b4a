#include "lib/ops/kv_pool.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include <sys/mman.h>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/quantize.hpp"
#include "lib/ops/thread_pool.hpp"
#include "slm/error.hpp"

namespace slm::ops {

uint64_t kv_row_bytes(KvType type, int32_t head_dim) {
  switch (type) {
    case KvType::F32: return uint64_t(head_dim) * 4;
    case KvType::F16: return uint64_t(head_dim) * 2;
    case KvType::Q8_0:
      if (head_dim % kernels::kLegacyBlockSize != 0)
        throw Error(fmt::format("a q8_0 KV cache needs a head_dim that is a multiple of {} (Q8_0 blocks); this "
                                "model's is {}: use an f16 or f32 cache",
                                kernels::kLegacyBlockSize, head_dim));
      return uint64_t(head_dim / kernels::kLegacyBlockSize) * sizeof(kernels::BlockQ8_0);
  }
  throw Error(fmt::format("unknown KV cache type {}", int(type)));
}

uint64_t KvPool::unit_bytes() const {
  return type == KvType::F32 ? 4 : type == KvType::F16 ? 2 : sizeof(kernels::BlockQ8_0);
}

KvPool::KvPool(KvType type_, int32_t n_blocks_, int32_t n_layer_, int32_t n_head_kv_, int32_t head_dim_)
    : type(type_),
      n_blocks(n_blocks_),
      n_layer(n_layer_),
      n_head_kv(n_head_kv_),
      head_dim(head_dim_),
      row_size(n_head_kv_ * head_dim_),
      row_units(int32_t(kv_row_bytes(type_, head_dim_) / unit_bytes())) {
  const uint64_t n = uint64_t(n_blocks) * block_units() * unit_bytes();
  try {
    keys = PageRegion(size_t(n), PageSize::Huge);
    values = PageRegion(size_t(n), PageSize::Huge);
  } catch (const std::bad_alloc&) {
    throw Error(fmt::format("cannot allocate a KV pool of {} MiB", bytes() >> 20));
  }
  ref_counts.assign(size_t(n_blocks), 0);
  free_blocks.resize(size_t(n_blocks));
  for (int32_t b = 0; b < n_blocks; ++b) free_blocks[size_t(b)] = n_blocks - 1 - b;
}

int32_t KvPool::allocate() {
  const int32_t block = free_blocks.back();
  free_blocks.pop_back();
  ref_counts[size_t(block)] = 1;
  return block;
}

void KvPool::release(int32_t block) {
  if (--ref_counts[size_t(block)] == 0) free_blocks.push_back(block);
}

void KvPool::copy_block(int32_t from, int32_t to) {
  const uint64_t bytes_per_block = block_units() * unit_bytes();
  for (void* storage : {keys.data(), values.data()}) {
    auto* base = static_cast<uint8_t*>(storage);
    std::memcpy(base + uint64_t(to) * bytes_per_block, base + uint64_t(from) * bytes_per_block, bytes_per_block);
  }
}

void KvPool::store(int32_t layer, const int32_t* blocks, int32_t position, const float* key, const float* value) {
  const uint64_t row_base = uint64_t(blocks[position / kKvBlockRows]) * block_units() +
                            uint64_t(layer) * layer_block_units() +
                            uint64_t(position % kKvBlockRows) * uint64_t(row_units);
  for (int32_t head = 0; head < n_head_kv; ++head) {
    const uint64_t base = row_base + uint64_t(head) * kKvBlockRows * uint64_t(row_units);
    const float* head_key = key + int64_t(head) * head_dim;
    const float* head_value = value + int64_t(head) * head_dim;
    if (type == KvType::Q8_0) {
      kernels::quantize_row_q8_0(head_key, reinterpret_cast<kernels::BlockQ8_0*>(keys.data()) + base, head_dim);
      kernels::quantize_row_q8_0(head_value, reinterpret_cast<kernels::BlockQ8_0*>(values.data()) + base, head_dim);
    } else if (type == KvType::F16) {
      uint16_t* k = reinterpret_cast<uint16_t*>(keys.data()) + base;
      uint16_t* v = reinterpret_cast<uint16_t*>(values.data()) + base;
      for (int32_t i = 0; i < head_dim; ++i) {
        k[i] = kernels::fp32_to_fp16(head_key[i]);
        v[i] = kernels::fp32_to_fp16(head_value[i]);
      }
    } else {
      std::memcpy(reinterpret_cast<float*>(keys.data()) + base, head_key, size_t(head_dim) * sizeof(float));
      std::memcpy(reinterpret_cast<float*>(values.data()) + base, head_value, size_t(head_dim) * sizeof(float));
    }
  }
}

void store_keys_and_values(KvPool& pool, int32_t layer, std::span<const AttentionSpan> spans, const float* keys,
                           const float* values) {
  for (const AttentionSpan& span : spans)
    for (int32_t i = 0; i < span.n_rows; ++i) {
      const int64_t row = int64_t(span.first_row + i) * pool.row_size;
      pool.store(layer, span.blocks, span.pos0 + i, keys + row, values + row);
    }
}

uint64_t kv_bytes_per_position(KvType type, int32_t n_layer, int32_t n_head_kv, int32_t head_dim) {
  return 2 * uint64_t(n_layer) * uint64_t(n_head_kv) * kv_row_bytes(type, head_dim);
}

void attention(const float* q, const KvPool& pool, int32_t layer, std::span<const AttentionSpan> spans,
               const AttentionShape& shape, const AttentionOptions& options, float* out, int n_threads) {
  const int32_t head_dim = shape.head_dim;
  const int32_t group = shape.n_head / shape.n_head_kv;  // query heads per KV head
  // A work item: up to kTileTokens tokens of one span x heads_per_item query heads of one KV
  // head, so that each block of keys and values serves all of them. Items are independent and
  // each query's result does not depend on its item, so the split never changes a bit of out.
  constexpr int32_t kTileTokens = 16;  // x 7 query heads (Qwen2.5) fill 7 zmm registers of queries
  struct Tile {
    int32_t span, first_token;
  };
  std::vector<Tile> tiles;
  for (size_t s = 0; s < spans.size(); ++s)
    for (int32_t t = 0; t < spans[s].n_rows; t += kTileTokens) tiles.push_back({int32_t(s), t});
  const int64_t n_tiles = int64_t(tiles.size());
  // A KV head's query heads are split only when there would be fewer items than threads: every
  // item of a KV head reads (and converts) all of its keys and values again, which at depth is
  // most of a decode step's attention time (2 KV heads on 2 threads: 2 items, not 4).
  int32_t splits = 1;
  while (splits < group && n_tiles * shape.n_head_kv * splits < int64_t(n_threads)) ++splits;
  const int32_t heads_per_item = (group + splits - 1) / splits;
  const int32_t items_per_kv_head = (group + heads_per_item - 1) / heads_per_item;
  const int64_t n_items = n_tiles * shape.n_head_kv * items_per_kv_head;
  const uint64_t layer_base = uint64_t(layer) * pool.layer_block_units();  // in each block
  parallel_for(n_items, 1, n_threads, [&](int64_t item, int64_t, int) {
    thread_local std::vector<float> scratch;  // per thread, kept between calls
    const Tile tile = tiles[size_t(item / (int64_t(shape.n_head_kv) * items_per_kv_head))];
    const AttentionSpan& span = spans[size_t(tile.span)];
    const int32_t kv_head = static_cast<int32_t>(item / items_per_kv_head % shape.n_head_kv);
    const int32_t first_head = kv_head * group + static_cast<int32_t>(item % items_per_kv_head) * heads_per_item;
    kernels::AttentionQueries queries;
    const int64_t offset = int64_t(span.first_row + tile.first_token) * shape.n_head * head_dim +
                           int64_t(first_head) * head_dim;
    queries.q = q + offset;
    queries.out = out + offset;
    queries.token_stride = int64_t(shape.n_head) * head_dim;
    queries.n_tokens = std::min(kTileTokens, span.n_rows - tile.first_token);
    queries.n_heads = std::min(heads_per_item, (kv_head + 1) * group - first_head);
    queries.head_dim = head_dim;
    queries.scale = options.scale;
    queries.softcap = options.softcap;
    queries.window = options.window;
    const uint64_t first_unit = layer_base + static_cast<uint64_t>(kv_head) * kKvBlockRows * pool.row_units;
    if (pool.type == KvType::Q8_0) {
      queries.kv.keys_q8_0 = reinterpret_cast<const kernels::BlockQ8_0*>(pool.keys.data()) + first_unit;
      queries.kv.values_q8_0 = reinterpret_cast<const kernels::BlockQ8_0*>(pool.values.data()) + first_unit;
    } else if (pool.type == KvType::F16) {
      queries.kv.keys_f16 = reinterpret_cast<const uint16_t*>(pool.keys.data()) + first_unit;
      queries.kv.values_f16 = reinterpret_cast<const uint16_t*>(pool.values.data()) + first_unit;
    } else {
      queries.kv.keys_f32 = reinterpret_cast<const float*>(pool.keys.data()) + first_unit;
      queries.kv.values_f32 = reinterpret_cast<const float*>(pool.values.data()) + first_unit;
    }
    queries.kv.stride = pool.row_units;  // a KV head's rows of a block are contiguous
    queries.kv.blocks = span.blocks;
    queries.kv.block_stride = int64_t(pool.block_units());
    queries.first_n_keys = span.pos0 + tile.first_token + 1;  // causal: positions 0 .. pos0 + t
    scratch.resize(static_cast<size_t>(kernels::attention_scratch_floats(queries)));
    queries.scratch = scratch.data();
    kernels::attend_queries(queries);
  });
}

}  // namespace slm::ops

namespace slm {

const char* kv_type_name(KvType type) {
  switch (type) {
    case KvType::F16: return "f16";
    case KvType::F32: return "f32";
    case KvType::Q8_0: return "q8_0";
  }
  return "?";
}

KvType kv_type_named(std::string_view name) {
  for (KvType type : {KvType::F16, KvType::F32, KvType::Q8_0})
    if (name == kv_type_name(type)) return type;
  throw Error(fmt::format("unknown KV cache type '{}' (f16, f32 or q8_0)", name));
}

uint64_t kv_bytes_per_token(const ModelConfig& config, KvType type) {
  return ops::kv_bytes_per_position(type, config.n_kv_layers(), config.n_head_kv, config.head_dim);
}

}  // namespace slm
