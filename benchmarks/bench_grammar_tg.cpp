// Text generation under a JSON schema against unconstrained, alternating in one run: the tg
// overhead ratio of issue 18 (goal >= 0.95). Each iteration generates up to 128 tokens after a
// short prompt both ways, with the same seeded sampler; tokens/s counts the tokens after the
// first over generate()'s generation_seconds, the mask and the sampling included. A grammar
// that completes early ends its run early; its tokens/s still counts only what it generated.
//
//   SLM_BENCH_MODEL=benchmarks/models/qwen2.5-0.5b-Q4_K_M.gguf SLM_BENCH_THREADS=2 build/bin/bench_grammar_tg
//
// Without SLM_BENCH_MODEL the benchmark is skipped.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "slm/generate.hpp"
#include "slm/grammar.hpp"
#include "slm/model.hpp"

namespace {

// Strings, an enum, integers and a nested array: most tokens are inside strings.
const char* const schema = R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},"label":{"enum":["billing","technical","account","other"]},"notes":{"type":"array","items":{"type":"string"}}},"required":["name","age","label","notes"],"additionalProperties":false})";

struct Runs {
  double seconds = 0;
  int64_t tokens = 0;
  double rate() const { return seconds > 0 ? double(tokens) / seconds : 0; }
};

void BM_GenerateWithSchema(benchmark::State& state) {
  const char* path = std::getenv("SLM_BENCH_MODEL");
  if (!path) {
    state.SkipWithError("set SLM_BENCH_MODEL to a GGUF model");
    return;
  }
  const auto model = slm::Model::load(path);
  const char* threads = std::getenv("SLM_BENCH_THREADS");
  slm::Session session(model, {.n_ctx = 512, .n_threads = threads ? std::atoi(threads) : 0});
  const auto vocabulary = slm::make_grammar_vocabulary(model->tokenizer());
  slm::GrammarMatcher matcher(slm::grammar_from_json_schema(schema), vocabulary);
  const std::vector<slm::TokenId> prompt = model->tokenizer().tokenize("A customer record as JSON:", false, false);
  Runs free_runs, schema_runs;
  uint64_t seed = 1;
  const auto run = [&](slm::GrammarMatcher* grammar, Runs& into) {
    slm::Sampler sampler({.seed = seed});
    matcher.reset();
    const slm::GenerateResult result = slm::generate(
        session, sampler, prompt, {.max_tokens = 128, .stop_at_end_of_generation = false, .grammar = grammar},
        [](std::string_view) { return true; });
    into.seconds += result.generation_seconds;
    into.tokens += int64_t(result.tokens.size()) - 1;
  };
  for (auto _ : state) {
    run(nullptr, free_runs);
    run(&matcher, schema_runs);
    ++seed;
  }
  state.counters["free_tokens_per_s"] = free_runs.rate();
  state.counters["schema_tokens_per_s"] = schema_runs.rate();
  state.counters["schema_tokens"] = double(schema_runs.tokens) / double(state.iterations());
  state.counters["ratio"] = schema_runs.rate() / free_runs.rate();
}
BENCHMARK(BM_GenerateWithSchema)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
