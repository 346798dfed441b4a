// Token-mask time on the Qwen2.5 vocabulary (151,936 tokens): one mask per token of a real
// JSON document, as generation computes it, for a few schema classes. Each iteration walks
// the document once with a fresh matcher (its caches empty: what one generation pays) or with
// the same matcher reset (caches kept: repeated structure). Counters: mean, p50 and p99 of
// one mask in microseconds of this thread's CPU time (so that other processes on a busy machine
// do not count), and the grammar compile time.
//
//   build/bin/bench_grammar_mask            (SLM_SHARED_DIR or ../shared must hold vocab/)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <cstdlib>
#include <string>
#include <vector>

#include "slm/gguf.hpp"
#include "slm/grammar.hpp"
#include "slm/tokenizer.hpp"

namespace {

double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e6 + double(t.tv_nsec) * 1e-3;
}

struct SchemaCase {
  const char* name;
  const char* schema;    // JSON Schema; nullptr: the json_object grammar
  const char* document;  // a valid output, tokenized and replayed
};

const SchemaCase cases[] = {
    {"json_object", nullptr,
     R"({"name": "Ada Lovelace", "born": 1815, "tags": ["math", "poetry"], "address": {"city": "London", "zip": null}})"},
    {"extraction",
     R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},"email":{"type":"string","format":"email"},"phones":{"type":"array","items":{"type":"string","pattern":"^\\+?[0-9 ]{6,15}$"},"maxItems":3}},"required":["name","age"],"additionalProperties":false})",
     R"({"name": "Grace Hopper", "age": 85, "email": "grace@navy.mil", "phones": ["+1 555 0100", "555 0199"]})"},
    {"classification",
     R"({"type":"object","properties":{"label":{"enum":["billing","technical","account","other"]},"confidence":{"type":"number"},"reason":{"type":"string","maxLength":200}},"required":["label","confidence","reason"],"additionalProperties":false})",
     R"({"label": "technical", "confidence": 0.93, "reason": "The customer reports that the router keeps dropping the connection every evening."})"},
    {"nested_refs",
     R"({"$defs":{"item":{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"qty":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/item"}}},"required":["id","qty"]}},"type":"object","properties":{"order":{"type":"array","items":{"$ref":"#/$defs/item"}},"date":{"type":"string","format":"date"}},"required":["order","date"]})",
     R"({"order": [{"id": "123e4567-e89b-12d3-a456-426614174000", "qty": 2, "children": [{"id": "00000000-0000-4000-8000-000000000000", "qty": 1}]}], "date": "2024-05-17"})"},
};

const slm::Tokenizer& qwen_tokenizer() {
  static const slm::Tokenizer tokenizer = [] {
    const char* dir = std::getenv("SLM_SHARED_DIR");
    const std::string shared = dir ? dir : SLM_BENCH_SHARED_DIR;
    return slm::Tokenizer::from_gguf(slm::GgufFile::open(shared + "/vocab/ggml-vocab-qwen2.gguf"));
  }();
  return tokenizer;
}

void BM_Mask(benchmark::State& state) {
  const SchemaCase& c = cases[state.range(0)];
  const bool fresh = state.range(1) == 0;
  state.SetLabel(std::string(c.name) + (fresh ? " fresh matcher" : " reused matcher"));
  const slm::Tokenizer& tokenizer = qwen_tokenizer();
  static const auto vocabulary = slm::make_grammar_vocabulary(qwen_tokenizer());
  const double compile_start = thread_cpu_us();
  const slm::Grammar grammar = c.schema ? slm::grammar_from_json_schema(c.schema) : slm::json_object_grammar();
  const double compile_us = thread_cpu_us() - compile_start;
  const std::vector<slm::TokenId> tokens = tokenizer.tokenize(c.document, false, false);

  std::vector<double> times;
  slm::TokenMask mask;
  slm::GrammarMatcher reused(grammar, vocabulary);
  for (auto _ : state) {
    slm::GrammarMatcher matcher = fresh ? slm::GrammarMatcher(grammar, vocabulary) : std::move(reused);
    matcher.reset();
    for (slm::TokenId t : tokens) {
      const double start = thread_cpu_us();
      matcher.fill_mask(mask);
      times.push_back(thread_cpu_us() - start);
      if (!mask.allows(t) || !matcher.accept_token(t)) {
        state.SkipWithError("the document does not fit its grammar");
        return;
      }
    }
    if (!fresh) reused = std::move(matcher);
  }
  std::sort(times.begin(), times.end());
  double sum = 0;
  for (double t : times) sum += t;
  state.counters["mask_mean_us"] = sum / double(times.size());
  state.counters["mask_p50_us"] = times[times.size() / 2];
  state.counters["mask_p99_us"] = times[std::min(times.size() - 1, times.size() * 99 / 100)];
  state.counters["compile_us"] = compile_us;
  state.counters["tokens"] = double(tokens.size());
}

BENCHMARK(BM_Mask)->ArgsProduct({{0, 1, 2, 3}, {0, 1}})->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
