// One generation step of N sequences in one forward pass (BatchDecoder::decode with one row
// per sequence), each sequence holding 128 tokens of context, against N = 1: how much of the
// weight reading batching saves. tokens/s counts the N generated tokens per second of real time.
//
//   SLM_BENCH_MODEL=benchmarks/models/qwen2.5-0.5b-Q4_K_M.gguf build/bin/bench_batch_decode
//
// SLM_BENCH_THREADS sets the threads (default: physical cores). Without SLM_BENCH_MODEL the
// benchmark is skipped.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "slm/batch.hpp"

namespace {

constexpr int32_t kContext = 128;

std::shared_ptr<const slm::Model> bench_model() {
  static std::shared_ptr<const slm::Model> model = [] {
    const char* path = std::getenv("SLM_BENCH_MODEL");
    return path ? slm::Model::load(path) : nullptr;
  }();
  return model;
}

void BM_DecodeStep(benchmark::State& state) {
  const auto model = bench_model();
  if (!model) {
    state.SkipWithError("set SLM_BENCH_MODEL to a GGUF model");
    return;
  }
  const int32_t n_sequences = int32_t(state.range(0));
  const char* threads = std::getenv("SLM_BENCH_THREADS");
  slm::BatchDecoder decoder(model, {.n_ctx = 512,
                                    .kv_tokens = 512 * n_sequences,
                                    .n_threads = threads ? std::atoi(threads) : 0,
                                    .max_batch_rows = 512});
  std::vector<slm::SequenceId> sequences;
  std::vector<slm::BatchRow> rows;
  for (int32_t s = 0; s < n_sequences; ++s) {
    sequences.push_back(decoder.add_sequence());
    for (int32_t p = 0; p < kContext; ++p)
      rows.push_back({sequences.back(), p, slm::TokenId((p * 31 + s * 7) % model->config().n_vocab), false});
  }
  decoder.decode(rows);
  int32_t position = kContext;
  for (auto _ : state) {
    rows.clear();
    for (int32_t s = 0; s < n_sequences; ++s) rows.push_back({sequences[size_t(s)], position, slm::TokenId(s + 1), true});
    benchmark::DoNotOptimize(decoder.decode(rows).data());
    if (++position == kContext + 64) position = kContext;  // the context stays near 128 tokens
  }
  state.counters["tokens/s"] = benchmark::Counter(double(state.iterations()) * n_sequences, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeStep)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
