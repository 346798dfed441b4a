// Keys and values of every sequence, in one pool of fixed-size blocks (paged attention):
// a sequence's positions live in the blocks its block table names, kKvBlockRows positions
// each, so a short sequence holds only what it uses. Stored F16 (default: half the memory,
// as llama.cpp), F32, or Q8_0 (blocks of 32 int8 and an fp16 scale, as GGML's: 34 bytes per 32
// elements, 53 % of F16; head_dim must be a multiple of 32), laid out
// [block][layer][KV head][row in block][head_dim]: a KV head's
// rows of a block are one contiguous run, so the thread that attends over that head streams
// whole cache lines (rows [n_head_kv * head_dim] would have each thread's hardware prefetcher
// fetch the other heads' lines too: twice the memory traffic at depth with 2 KV heads). The
// storage starts on a 2 MiB boundary, so that a KV head's block of rows never straddles a page
// (calloc's 16-byte offset made every row span three cache lines: 0.89x the decode attention
// time at depth 4,096 once aligned), and asks for 2 MiB pages (MADV_HUGEPAGE): at depth a
// decode step reads a new 4 KiB page for every block of every layer (12,288 for Qwen2.5-0.5B at
// 4,096 positions, past the 2,048 entries of Zen 3's L2 TLB). Block-major, a short sequence
// touches only the pages of the blocks it holds (a 2 MiB page holds 10 blocks of Qwen2.5-0.5B,
// every layer's rows), not one page per layer.
//
// Blocks are reference-counted: sequences that share a prefix share its blocks, and a shared
// block is copied before anyone writes into it (copy_block).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/attention.hpp"
#include "lib/ops/page_region.hpp"
#include "slm/session.hpp"

namespace slm::ops {

inline constexpr int32_t kKvBlockRows = kernels::kKvBlockRows;

struct KvPool {
  KvType type = KvType::F16;
  int32_t n_blocks = 0;
  int32_t n_layer = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t row_size = 0;  // n_head_kv * head_dim: a position's keys (or values) in every KV head
  // A KV head's row of head_dim elements in units (kernels::KvRows): elements, or Q8_0 blocks.
  int32_t row_units = 0;

  // Zeroed lazily by the OS (an anonymous mapping): pages of blocks never written take no memory.
  // 2 MiB pages where the kernel gives them: at depth a decode step streams through the cache.
  PageRegion keys, values;

  std::vector<int32_t> ref_counts;   // per block: the sequences holding it
  std::vector<int32_t> free_blocks;  // a stack; the lowest ids are handed out first

  KvPool(KvType type, int32_t n_blocks, int32_t n_layer, int32_t n_head_kv, int32_t head_dim);

  int32_t n_free() const { return int32_t(free_blocks.size()); }
  // A free block with a reference count of 1. The caller has checked n_free() > 0.
  int32_t allocate();
  void retain(int32_t block) { ++ref_counts[size_t(block)]; }
  void release(int32_t block);
  // Copies every layer's rows of block `from` into block `to`.
  void copy_block(int32_t from, int32_t to);

  // Stores the key and value rows ([n_head_kv][head_dim] each) of `position` of the sequence
  // with this block table.
  void store(int32_t layer, const int32_t* blocks, int32_t position, const float* key, const float* value);

  uint64_t unit_bytes() const;  // 4 (F32), 2 (F16), 34 (a Q8_0 block)
  // A layer's rows of a block (every KV head's), and a block's rows of every layer.
  uint64_t layer_block_units() const { return uint64_t(kKvBlockRows) * uint64_t(n_head_kv) * uint64_t(row_units); }
  uint64_t block_units() const { return uint64_t(n_layer) * layer_block_units(); }
  // The bytes the pool holds at most.
  uint64_t bytes() const { return 2 * uint64_t(n_blocks) * block_units() * unit_bytes(); }
};

// The bytes of a KV head's row of head_dim elements. Throws slm::Error for a Q8_0 cache of a
// head_dim that is not a multiple of 32 (such a model takes an F16 or F32 cache).
uint64_t kv_row_bytes(KvType type, int32_t head_dim);

// The KV memory of one position of a model: keys and values of every layer.
uint64_t kv_bytes_per_position(KvType type, int32_t n_layer, int32_t n_head_kv, int32_t head_dim);

// The rows of one sequence in a forward pass: rows first_row .. first_row + n_rows - 1, at
// positions pos0, pos0 + 1, ...; their queries attend causally over the sequence's blocks.
struct AttentionSpan {
  int32_t first_row = 0;
  int32_t n_rows = 0;
  int32_t pos0 = 0;
  const int32_t* blocks = nullptr;
  float* state = nullptr;  // the sequence's recurrent state at pos0 (lib/ops/recurrent_state.hpp), or nullptr
};

struct AttentionShape {
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
};

// Each span's rows of keys and values ([n_rows][row_size] each) into its sequence's blocks, at
// its positions.
void store_keys_and_values(KvPool& pool, int32_t layer, std::span<const AttentionSpan> spans, const float* keys,
                           const float* values);

using AttentionOptions = kernels::AttentionOptions;  // scale, soft cap, sliding window

// The usual options: scores scaled by 1 / sqrt(head_dim), no cap, no window.
inline AttentionOptions default_attention(int32_t head_dim) { return {1.0f / std::sqrt(float(head_dim)), 0.0f, 0}; }

// Causal grouped-query attention of every span over its own sequence's cache. q and out are
// [n_rows][n_head * head_dim]. Query head h reads KV head h / (n_head / n_head_kv). A query's
// result depends only on its own sequence: never on the other spans or the thread count.
void attention(const float* q, const KvPool& pool, int32_t layer, std::span<const AttentionSpan> spans,
               const AttentionShape& shape, const AttentionOptions& options, float* out, int n_threads);

}  // namespace slm::ops
