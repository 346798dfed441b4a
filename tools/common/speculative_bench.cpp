#include "common/speculative_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/markdown_table.hpp"
#include "slm/bench.hpp"
#include "slm/generate.hpp"

namespace slm::tools {

namespace {

std::vector<TokenId> bench_prompt(const Model& model, const SpeculativeBenchOptions& o, uint32_t seed) {
  if (o.prompt_file.empty()) return bench::random_tokens(model, o.n_prompt, seed);
  std::ifstream in(o.prompt_file, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot read {}", o.prompt_file));
  std::ostringstream text;
  text << in.rdbuf();
  return model.tokenizer().tokenize(text.str(), true, true);
}

// X, G, X: G the greedy continuation of X (n_gen tokens), so the prompt's end has been seen
// before, followed by what the model said after it then; every edit_every-th token of G's copy
// replaced by a random token, so that the reply copies spans of its prompt between edits.
std::vector<TokenId> extraction_prompt(const std::vector<TokenId>& x, Session& session, int n_gen, int edit_every,
                                       uint32_t seed) {
  session.reset();
  SamplerParams greedy;
  greedy.temperature = 0.0f;
  Sampler sampler(greedy);
  GenerateOptions options;
  options.max_tokens = n_gen;
  options.stop_at_end_of_generation = false;
  const GenerateResult g = generate(session, sampler, x, options, nullptr);
  std::vector<TokenId> copy = g.tokens;
  if (edit_every > 0) {
    const std::vector<TokenId> edits = bench::random_tokens(session.model(), int32_t(copy.size()), seed + 1);
    for (size_t i = size_t(edit_every) - 1; i < copy.size(); i += size_t(edit_every)) copy[i] = edits[i];
  }
  std::vector<TokenId> prompt = x;
  prompt.insert(prompt.end(), copy.begin(), copy.end());
  prompt.insert(prompt.end(), x.begin(), x.end());
  return prompt;
}

// Generated tokens after the first, per second (the first comes from the prompt's logits).
double generation_rate(const GenerateResult& r) {
  return r.generation_seconds > 0 ? double(r.tokens.size() - 1) / r.generation_seconds : 0.0;
}

std::string mean_stddev_text(const std::vector<double>& values) {
  const bench::MeanStddev m = bench::mean_stddev(values);
  return fmt::format("{:.2f} ± {:.2f}", m.mean, m.stddev);
}

double speedup(const SpeculativeBenchResult& r) {
  return bench::mean_stddev(r.speculative_ts).mean / bench::mean_stddev(r.plain_ts).mean;
}

// The share of `tokens` a draft head cut to draft_vocab keeps (ids below it, end tokens).
double share_in_draft_vocab(const Model& model, const std::vector<TokenId>& tokens, int draft_vocab) {
  if (tokens.empty()) return 0.0;
  const std::vector<TokenId>& ends = model.tokenizer().end_of_generation_ids();
  const auto kept = [&](TokenId t) {
    return draft_vocab <= 0 || t < draft_vocab || std::find(ends.begin(), ends.end(), t) != ends.end();
  };
  return double(std::count_if(tokens.begin(), tokens.end(), kept)) / double(tokens.size());
}

}  // namespace

std::vector<SpeculativeBenchResult> run_speculative_bench(const std::shared_ptr<const Model>& model,
                                                          const std::string& model_path,
                                                          const std::shared_ptr<const Model>& draft,
                                                          const SpeculativeBenchOptions& o, int n_threads, int n_gen,
                                                          int repetitions, uint32_t seed, KvType kv_type) {
  std::vector<TokenId> prompt = bench_prompt(*model, o, seed);
  const int32_t n_prompt_max = o.extraction ? 2 * int32_t(prompt.size()) + n_gen : int32_t(prompt.size());
  SessionOptions session_options{.n_ctx = n_prompt_max + n_gen + 1, .n_threads = n_threads, .kv_type = kv_type};
  Session session(model, session_options);
  if (o.extraction) prompt = extraction_prompt(prompt, session, n_gen, o.extraction_edit_every, seed);
  // A cut draft head is measured beside the whole head, in the same alternation.
  std::vector<SpeculativeOptions> variants{o.speculative};
  if (o.speculative.draft_vocab > 0 && draft) {
    variants.insert(variants.begin(), o.speculative);
    variants.front().draft_vocab = 0;
  }
  std::vector<Speculator> speculators;
  std::vector<SpeculativeBenchResult> results;
  for (const SpeculativeOptions& variant : variants) {
    speculators.emplace_back(*model, draft, variant, session_options);
    SpeculativeBenchResult& result = results.emplace_back();
    result.model_filename = model_path;
    result.draft_filename = o.draft_path.empty() ? "-" : std::filesystem::path(o.draft_path).filename().string();
    result.n_threads = n_threads;
    result.n_prompt = int(prompt.size());
    result.n_gen = n_gen;
    result.lookup_ngram = variant.lookup_ngram;
    result.draft_vocab = variant.draft_vocab;
  }
  SamplerParams greedy;
  greedy.temperature = 0.0f;
  const auto generate_once = [&](Speculator* s) {
    session.reset();
    Sampler sampler(greedy);
    GenerateOptions options{.max_tokens = n_gen, .stop_at_end_of_generation = false};
    options.speculator = s;
    return generate(session, sampler, prompt, options, nullptr);
  };

  generate_once(nullptr);  // warm-up: page in both models, size the scratch buffers
  for (Speculator& speculator : speculators) generate_once(&speculator);
  for (int rep = 0; rep < repetitions; ++rep) {
    const GenerateResult plain = generate_once(nullptr);
    for (size_t v = 0; v < speculators.size(); ++v) {
      const GenerateResult fast = generate_once(&speculators[v]);
      SpeculativeBenchResult& result = results[v];
      result.plain_ts.push_back(generation_rate(plain));
      result.speculative_ts.push_back(generation_rate(fast));
      result.stats = fast.speculation;
      result.identical = result.identical && plain.tokens == fast.tokens;
      result.in_draft_vocab = share_in_draft_vocab(*model, plain.tokens, result.draft_vocab);
    }
  }
  for (size_t v = 0; v < speculators.size(); ++v) {
    const SpeculationCosts costs = speculators[v].estimated_costs();
    if (speculators[v].has_draft_model() && costs.verification.size() >= 4) {
      results[v].draft_token_cost = costs.draft_token;
      results[v].row_cost = (costs.verification[3] - costs.verification[0]) / 3.0;
    }
  }
  return results;
}

void print_speculative_table(const std::vector<SpeculativeBenchResult>& results) {
  if (results.empty()) return;
  std::vector<std::vector<std::string>> rows;
  for (const SpeculativeBenchResult& r : results)
    rows.push_back({std::filesystem::path(r.model_filename).filename().string(), r.draft_filename,
                    r.draft_vocab > 0 ? std::to_string(r.draft_vocab) : "-",
                    r.draft_vocab > 0 ? fmt::format("{:.1f}%", 100 * r.in_draft_vocab) : "-",
                    r.lookup_ngram > 0 ? std::to_string(r.lookup_ngram) : "-", std::to_string(r.n_threads),
                    fmt::format("tg{}", r.n_gen), mean_stddev_text(r.plain_ts), mean_stddev_text(r.speculative_ts),
                    fmt::format("{:.2f}x", speedup(r)), std::to_string(r.stats.drafted),
                    std::to_string(r.stats.accepted), fmt::format("{:.1f}%", 100 * r.stats.acceptance_rate()),
                    r.draft_token_cost > 0 ? fmt::format("{:.3f}", r.draft_token_cost) : "-",
                    r.draft_token_cost > 0 ? fmt::format("{:.3f}", r.row_cost) : "-", r.identical ? "yes" : "NO"});
  const MarkdownTable table({{"model file", 10, false}, {"draft", 5, false}, {"draft vocab", 11, true},
                             {"in vocab", 8, true}, {"lookup", 6, true},
                             {"threads", 7, true}, {"test", 6, true}, {"plain t/s", 14, true},
                             {"speculative t/s", 15, true}, {"speed-up", 8, true}, {"drafted", 7, true},
                             {"accepted", 8, true}, {"acceptance", 10, true}, {"draft cost", 10, true},
                             {"row cost", 8, true}, {"identical", 9, true}},
                            rows);
  fmt::print("\n");
  table.print_header();
  for (const auto& row : rows) table.print_row(row);
  fmt::print("\nspeculative: greedy generation of the same prompt ({} tokens) with and without speculation (with "
             "--draft-vocab, the whole draft head as well), runs alternating; t/s counts the generated tokens after the first; drafted/accepted: the last run; in vocab: the "
             "share of the plain output's tokens the cut draft head (--draft-vocab) keeps; draft cost, row cost: "
             "adaptive k's measured cost of a draft token and of a verification row past the first (the slope over "
             "4 rows), in target tokens\n",
             results.front().n_prompt);
}

nlohmann::ordered_json speculative_json(const std::vector<SpeculativeBenchResult>& results) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const SpeculativeBenchResult& r : results)
    out.push_back({{"model_filename", r.model_filename}, {"draft_filename", r.draft_filename},
                   {"draft_vocab", r.draft_vocab}, {"in_draft_vocab", r.in_draft_vocab},
                   {"lookup_ngram", r.lookup_ngram}, {"n_threads", r.n_threads}, {"n_prompt", r.n_prompt},
                   {"n_gen", r.n_gen}, {"plain_samples_ts", r.plain_ts}, {"speculative_samples_ts", r.speculative_ts},
                   {"speedup", speedup(r)}, {"drafted", r.stats.drafted}, {"accepted", r.stats.accepted},
                   {"acceptance_rate", r.stats.acceptance_rate()}, {"draft_token_cost", r.draft_token_cost},
                   {"row_cost", r.row_cost}, {"identical", r.identical}});
  return out;
}

}  // namespace slm::tools
