// Grouped-query attention at depth (ops::attention over an F16 KV pool), the attention layers of a
// model shape one after the other, so that their keys and values come from memory as in a decode
// step: args are the shape (0 Qwen2.5-0.5B: 14 query and 2 KV heads of 64, 24 layers; 1 LFM2-1.2B:
// 32 and 8 of 64, 6 attention layers; 2 Qwen3.5-0.8B: 8 and 2 of 256, 6; 3 and 4: shapes 0 and 2 with
// one layer, whose keys and values at depth 4,096 (2 and 8 MB) stay in the L3 cache, so that
// the kernel's own time shows apart from memory's), the tokens of the call
// (1: a decode step; 512: a prompt), the depth before them, the threads and the cache type (0 F16,
// 1 Q8_0: --kv-type q8_0). Time is per call over every layer.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "lib/ops/kv_pool.hpp"
#include "slm/bench.hpp"

namespace {

struct Shape {
  int32_t n_head, n_head_kv, head_dim, n_layer;
};
constexpr Shape kShapes[] = {{14, 2, 64, 24}, {32, 8, 64, 6}, {8, 2, 256, 6}, {14, 2, 64, 1}, {8, 2, 256, 1}};

void BM_AttentionAtDepth(benchmark::State& state) {
  const Shape shape = kShapes[state.range(0)];
  const auto n_tokens = int32_t(state.range(1)), depth = int32_t(state.range(2));
  const int n_threads = int(state.range(3));
  const slm::KvType kv_type = state.range(4) == 1 ? slm::KvType::Q8_0 : slm::KvType::F16;
  const int32_t n_positions = depth + n_tokens;
  const int32_t n_blocks = (n_positions + slm::ops::kKvBlockRows - 1) / slm::ops::kKvBlockRows;
  slm::ops::KvPool pool(kv_type, n_blocks, shape.n_layer, shape.n_head_kv, shape.head_dim);
  std::vector<int32_t> blocks(size_t(n_blocks), 0);
  for (int32_t& b : blocks) b = pool.allocate();
  const int32_t row = shape.n_head_kv * shape.head_dim;
  const std::vector<float> kv = slm::bench::normal_values(int64_t(2) * row, 7);
  for (int32_t layer = 0; layer < shape.n_layer; ++layer)
    for (int32_t p = 0; p < n_positions; ++p) pool.store(layer, blocks.data(), p, kv.data(), kv.data() + row);
  const int64_t q_size = int64_t(n_tokens) * shape.n_head * shape.head_dim;
  const std::vector<float> q = slm::bench::normal_values(q_size, 3);
  std::vector<float> out(size_t(q_size), 0.0f);
  const slm::ops::AttentionSpan span{0, n_tokens, depth, blocks.data(), nullptr};
  const slm::ops::AttentionShape attention_shape{shape.n_head, shape.n_head_kv, shape.head_dim};
  for (auto _ : state) {
    for (int32_t layer = 0; layer < shape.n_layer; ++layer)
      slm::ops::attention(q.data(), pool, layer, {&span, 1}, attention_shape,
                          slm::ops::default_attention(shape.head_dim), out.data(), n_threads);
    benchmark::DoNotOptimize(out.data());
  }
}

BENCHMARK(BM_AttentionAtDepth)
    ->ArgNames({"shape", "tokens", "depth", "threads", "kv"})
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1}, {0, 4096}, {2}, {0, 1}})
    ->ArgsProduct({{0}, {512}, {0, 4096}, {2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
