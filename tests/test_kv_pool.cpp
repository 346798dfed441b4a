// The KV pool (lib/ops/kv_pool.hpp): what a layer stores at a position is what attention over
// that layer reads back, whatever the other layers and blocks hold; copy_block copies every
// layer's rows; the storage starts on a 2 MiB boundary, so that 2 MiB pages can back it.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "lib/ops/kv_pool.hpp"

namespace {

using slm::KvType;
using slm::ops::AttentionShape;
using slm::ops::AttentionSpan;
using slm::ops::KvPool;

constexpr int32_t kLayers = 3, kHeadsKv = 2, kHeadDim = 64;

// A row of every KV head for (layer, position, which): distinct values, exact in F16.
std::vector<float> row_for(int32_t layer, int32_t position, int32_t which) {
  std::vector<float> row(size_t(kHeadsKv) * kHeadDim);
  for (size_t i = 0; i < row.size(); ++i) row[i] = float((layer * 7 + position * 3 + which * 5 + int32_t(i)) % 16) * 0.25f;
  return row;
}

// One query per KV head attending over positions 0 .. n_positions - 1 of `layer`.
std::vector<float> attend(const KvPool& pool, int32_t layer, const int32_t* blocks, int32_t n_positions) {
  const AttentionShape shape{kHeadsKv, kHeadsKv, kHeadDim};
  std::vector<float> q(size_t(kHeadsKv) * kHeadDim), out(q.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = float(i % 5) * 0.1f;
  const AttentionSpan span{0, 1, n_positions - 1, blocks, nullptr};
  slm::ops::attention(q.data(), pool, layer, {&span, 1}, shape, slm::ops::default_attention(kHeadDim), out.data(), 1);
  return out;
}

void fill(KvPool& pool, const int32_t* blocks, int32_t n_positions, int32_t which) {
  for (int32_t layer = 0; layer < kLayers; ++layer)
    for (int32_t p = 0; p < n_positions; ++p) {
      const std::vector<float> key = row_for(layer, p, which), value = row_for(layer, p, which + 1);
      pool.store(layer, blocks, p, key.data(), value.data());
    }
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << what << ", float " << i;
}

TEST(KvPool, EachLayerReadsBackItsOwnRowsWhateverTheOtherBlocksHold) {
  const int32_t n_positions = 2 * slm::ops::kKvBlockRows + 5;
  KvPool alone(KvType::F16, 3, kLayers, kHeadsKv, kHeadDim), crowded(KvType::F16, 6, kLayers, kHeadsKv, kHeadDim);
  const int32_t alone_blocks[] = {alone.allocate(), alone.allocate(), alone.allocate()};
  std::vector<int32_t> crowded_blocks;
  for (int i = 0; i < 6; ++i) crowded_blocks.push_back(crowded.allocate());
  const int32_t other[] = {crowded_blocks[0], crowded_blocks[2], crowded_blocks[4]};
  const int32_t mine[] = {crowded_blocks[5], crowded_blocks[3], crowded_blocks[1]};  // out of order
  fill(alone, alone_blocks, n_positions, 0);
  fill(crowded, other, n_positions, 9);  // another sequence's rows in the blocks between
  fill(crowded, mine, n_positions, 0);
  for (int32_t layer = 0; layer < kLayers; ++layer)
    expect_same_bits(attend(alone, layer, alone_blocks, n_positions), attend(crowded, layer, mine, n_positions), "layer");
}

TEST(KvPool, CopyBlockCopiesEveryLayersRows) {
  const int32_t n_positions = slm::ops::kKvBlockRows;
  KvPool pool(KvType::F16, 2, kLayers, kHeadsKv, kHeadDim);
  const int32_t from[] = {pool.allocate()}, to[] = {pool.allocate()};
  fill(pool, from, n_positions, 0);
  pool.copy_block(from[0], to[0]);
  for (int32_t layer = 0; layer < kLayers; ++layer)
    expect_same_bits(attend(pool, layer, from, n_positions), attend(pool, layer, to, n_positions), "copied block");
}

TEST(KvPool, StorageStartsOnA2MiBBoundaryAndIsZero) {
  for (KvType type : {KvType::F16, KvType::F32, KvType::Q8_0}) {
    const KvPool pool(type, 4, kLayers, kHeadsKv, kHeadDim);
    for (const void* storage : {pool.keys.data(), pool.values.data()}) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(storage) % (uintptr_t(2) << 20), 0u) << slm::kv_type_name(type);
      const auto* bytes = static_cast<const uint8_t*>(storage);
      for (uint64_t i = 0; i < pool.bytes() / 2; i += 4093) ASSERT_EQ(bytes[i], 0) << slm::kv_type_name(type) << " byte " << i;
    }
  }
}

}  // namespace
