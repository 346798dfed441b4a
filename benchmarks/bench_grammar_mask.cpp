// Token-mask time on the Qwen2.5 vocabulary (151,936 tokens): one mask per token of a real
// JSON document, as generation computes it, for a few schema classes. Each iteration walks
// the document once with a fresh matcher (its caches empty: what one generation pays) or with
// the same matcher reset (caches kept: repeated structure). Counters: mean, p50 and p99 of
// one mask in microseconds of this thread's CPU time (so that other processes on a busy machine
// do not count), and the grammar compile time.
//
// BM_Corpus does the same over a real-world corpus, per schema class: the JSONSchemaBench subset
// in benchmarks/jsonschemabench (README.md there), a fresh matcher per schema. It walks each
// schema's own valid instance (compact JSON); where the grammar does not take that text (the
// grammar fixes the order of properties: required ones first), it walks a text sampled under the
// grammar instead (sample_grammar_text). Schemas slm refuses are counted, and the refusals, by
// message, printed to stderr. Counters: mask mean/p50/p99 over every mask of the class, compile
// p50/max per schema. SLM_BENCH_PER_SCHEMA=1 also prints each schema's figures to stderr, and
// SLM_BENCH_SCHEMA=TEXT runs only the schemas whose id contains TEXT (to profile one).
//
//   build/bin/bench_grammar_mask            (SLM_SHARED_DIR or ../shared must hold vocab/)
//   build/bin/bench_grammar_mask --benchmark_filter=Corpus
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "lib/grammar/compiled_grammar.hpp"
#include "slm/error.hpp"
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

struct TimeSummary {
  double mean = 0, p50 = 0, p99 = 0, max = 0;
};

TimeSummary summarize(std::vector<double> times) {
  TimeSummary s;
  if (times.empty()) return s;
  std::sort(times.begin(), times.end());
  for (double t : times) s.mean += t;
  s.mean /= double(times.size());
  s.p50 = times[times.size() / 2];
  s.p99 = times[std::min(times.size() - 1, times.size() * 99 / 100)];
  s.max = times.back();
  return s;
}

// A random sentence of the grammar: random alternatives until `budget` bytes are out, then the
// shortest ones, so that it ends. Bytes are drawn from their set, letters and digits first, so
// that strings look like words and tokenize like text.
std::string sample_grammar_text(const slm::grammar::CompiledGrammar& g, uint32_t seed, size_t budget) {
  using slm::grammar::ElementKind;
  constexpr int64_t unbounded = int64_t(1) << 40;
  const auto alternative_length = [&](int32_t start, const std::vector<int64_t>& rule_length) {
    int64_t length = 0;
    for (int32_t p = start; g.elements[size_t(p)].kind != ElementKind::End; ++p)
      length += g.elements[size_t(p)].kind == ElementKind::Bytes ? 1 : rule_length[size_t(g.elements[size_t(p)].value)];
    return std::min(length, unbounded);
  };
  std::vector<int64_t> rule_length(g.rule_alternatives.size(), unbounded);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rule_length.size(); ++r)
      for (int32_t start : g.rule_alternatives[r])
        if (const int64_t length = alternative_length(start, rule_length); length < rule_length[r]) {
          rule_length[r] = length;
          changed = true;
        }
  }
  std::mt19937 rng(seed);
  std::string text;
  std::vector<int32_t> todo;  // positions still to expand, last first
  const auto push_alternative = [&](int32_t rule) {
    const auto& starts = g.rule_alternatives[size_t(rule)];
    std::vector<int32_t> finite;
    for (int32_t start : starts)
      if (alternative_length(start, rule_length) < unbounded) finite.push_back(start);
    int32_t chosen = finite.front();
    if (text.size() < budget) {
      // Prefer the longer alternative of a repetition (x r | ""), so strings are not all empty.
      chosen = finite[std::uniform_int_distribution<size_t>(0, finite.size() - 1)(rng)];
      if (finite.size() == 2 && alternative_length(finite[1], rule_length) == 0 && rng() % 4 != 0) chosen = finite[0];
    } else {
      for (int32_t start : finite)
        if (alternative_length(start, rule_length) < alternative_length(chosen, rule_length)) chosen = start;
    }
    int32_t end = chosen;
    while (g.elements[size_t(end)].kind != ElementKind::End) ++end;
    for (int32_t p = end; p-- > chosen;) todo.push_back(p);
  };
  push_alternative(g.root);
  while (!todo.empty()) {
    const slm::grammar::Element e = g.elements[size_t(todo.back())];
    todo.pop_back();
    if (e.kind == ElementKind::RuleRef) {
      push_alternative(e.value);
      continue;
    }
    const slm::grammar::ByteSet& set = g.byte_sets[size_t(e.value)];
    std::vector<uint8_t> wordlike, any;
    for (int b = 0; b < 256; ++b)
      if (slm::grammar::byte_set_has(set, uint8_t(b))) (std::isalnum(b) ? wordlike : any).push_back(uint8_t(b));
    const std::vector<uint8_t>& from = wordlike.empty() ? any : wordlike;
    text += char(from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng)]);
  }
  return text;
}

struct CorpusSchema {
  std::string id, schema, instance;
};

std::vector<CorpusSchema> load_corpus_class(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path() / "jsonschemabench";
  std::ifstream in(dir / (name + ".jsonl"));
  if (!in) throw slm::Error("bench_grammar_mask: cannot open " + (dir / (name + ".jsonl")).string());
  std::vector<CorpusSchema> out;
  for (std::string line; std::getline(in, line);) {
    const auto entry = nlohmann::ordered_json::parse(line);
    out.push_back({entry["id"].get<std::string>(), entry["schema"].dump(), entry["instance"].dump()});
  }
  return out;
}

const char* const corpus_classes[] = {"Github_trivial", "Github_easy", "Github_medium", "Github_hard",
                                      "Github_ultra",   "Glaiveai2K",  "Kubernetes",    "Snowplow",
                                      "JsonSchemaStore", "WashingtonPost"};

void BM_Corpus(benchmark::State& state) {
  const std::string class_name = corpus_classes[state.range(0)];
  state.SetLabel(class_name);
  const slm::Tokenizer& tokenizer = qwen_tokenizer();
  static const auto vocabulary = slm::make_grammar_vocabulary(qwen_tokenizer());
  const std::vector<CorpusSchema> corpus = load_corpus_class(class_name);
  std::vector<double> mask_times, compile_times;
  std::map<std::string, int> refusals;
  int instances = 0, sampled = 0;
  const bool per_schema = std::getenv("SLM_BENCH_PER_SCHEMA") != nullptr;
  const char* only_schema = std::getenv("SLM_BENCH_SCHEMA");  // only the schemas whose id contains it
  slm::TokenMask mask;
  for (auto _ : state) {
    for (const CorpusSchema& entry : corpus) {
      if (only_schema && entry.id.find(only_schema) == std::string::npos) continue;
      const double compile_start = thread_cpu_us();
      slm::Grammar grammar;
      try {
        grammar = slm::grammar_from_json_schema(entry.schema);
      } catch (const slm::Error& e) {
        ++refusals[e.what()];
        continue;
      }
      compile_times.push_back(thread_cpu_us() - compile_start);
      std::string text = entry.instance;
      if (!slm::GrammarMatcher(grammar, vocabulary).accept_bytes(text)) {
        text = sample_grammar_text(*grammar.compiled, uint32_t(std::hash<std::string>{}(entry.id)), 400);
        ++sampled;
      } else {
        ++instances;
      }
      slm::GrammarMatcher matcher(grammar, vocabulary);
      const size_t first_mask = mask_times.size();
      for (slm::TokenId t : tokenizer.tokenize(text, false, false)) {
        const double start = thread_cpu_us();
        matcher.fill_mask(mask);
        mask_times.push_back(thread_cpu_us() - start);
        if (!mask.allows(t) || !matcher.accept_token(t)) {
          state.SkipWithError(("a text of " + entry.id + " does not fit its grammar").c_str());
          return;
        }
      }
      if (per_schema) {
        const TimeSummary own = summarize({mask_times.begin() + ptrdiff_t(first_mask), mask_times.end()});
        fprintf(stderr, "%s %s: %zu masks, mean %.1f us, p99 %.0f us, max %.0f us, compile %.2f ms\n", class_name.c_str(),
                entry.id.c_str(), mask_times.size() - first_mask, own.mean, own.p99, own.max, compile_times.back() / 1000);
      }
    }
  }
  for (const auto& [message, count] : refusals) fprintf(stderr, "%s: refused %d: %s\n", class_name.c_str(), count, message.c_str());
  const TimeSummary masks = summarize(mask_times), compiles = summarize(compile_times);
  state.counters["schemas"] = double(corpus.size());
  state.counters["refused"] = double(corpus.size()) - double(compile_times.size());
  state.counters["instances"] = instances;
  state.counters["sampled"] = sampled;
  state.counters["masks"] = double(mask_times.size());
  state.counters["mask_mean_us"] = masks.mean;
  state.counters["mask_p50_us"] = masks.p50;
  state.counters["mask_p99_us"] = masks.p99;
  state.counters["compile_p50_us"] = compiles.p50;
  state.counters["compile_max_us"] = compiles.max;
}

BENCHMARK(BM_Corpus)->DenseRange(0, 9)->Unit(benchmark::kMillisecond)->Iterations(1);

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
  const TimeSummary masks = summarize(std::move(times));
  state.counters["mask_mean_us"] = masks.mean;
  state.counters["mask_p50_us"] = masks.p50;
  state.counters["mask_p99_us"] = masks.p99;
  state.counters["compile_us"] = compile_us;
  state.counters["tokens"] = double(tokens.size());
}

BENCHMARK(BM_Mask)->ArgsProduct({{0, 1, 2, 3}, {0, 1}})->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
