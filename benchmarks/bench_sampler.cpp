// One sampled token from a whole vocabulary's logits, with top-k off (every candidate reaches
// top-p and the final sort), at the vocabulary sizes of Llama 2 (32,000), Qwen2.5 (151,936) and
// Gemma 3 (262,144): the sort a sampler pays per token when it is not cut to the top k first.
//
//   build/bin/bench_sampler
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "slm/sampler.hpp"

namespace {

void BM_SampleWithoutTopK(benchmark::State& state) {
  const size_t n_vocab = size_t(state.range(0));
  std::vector<float> logits(n_vocab);
  for (size_t i = 0; i < n_vocab; ++i) logits[i] = float(std::sin(double(i) * 12.9898) * 4.0);  // a flat, noisy row
  slm::SamplerParams params;
  params.top_k = 0;
  params.top_p = 0.95f;
  params.min_p = 0.0f;
  slm::Sampler sampler(params);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits));
}
BENCHMARK(BM_SampleWithoutTopK)->Arg(32000)->Arg(151936)->Arg(262144)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
