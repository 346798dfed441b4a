#include "common/serving_bench.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "common/completion_stream_client.hpp"
#include "common/markdown_table.hpp"
#include "slm/bench.hpp"
#include "slm/error.hpp"

namespace slm::tools {

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// Words that are one token each in the common BPE vocabularies (with their leading space), so a
// text prompt of N words is about N tokens; the server's usage says exactly how many.
constexpr const char* kPromptWords[] = {
    "the",   "cat",   "dog",   "sun",   "tree",  "house", "water", "light", "small", "big",   "red",
    "blue",  "green", "happy", "day",   "night", "road",  "book",  "door",  "hand",  "time",  "year",
    "world", "life",  "work",  "place", "city",  "river", "stone", "bird",  "fish",  "song",  "game",
    "food",  "bread", "milk",  "cold",  "warm",  "fast",  "slow",  "old",   "new",   "good",  "bad",
    "long",  "short", "high",  "low",   "open",  "close", "walk",  "run",   "play",  "read",  "write",
    "sing",  "look",  "find",  "give",  "take",  "make",  "come",  "go",    "see"};

// The prompt of request number `request_number`: the same on every run with the same seed, and
// different from every other request's from its first token on.
Json make_prompt(const ServingBenchOptions& o, uint64_t request_number) {
  std::seed_seq seeds{o.seed, uint32_t(request_number), uint32_t(request_number >> 32)};
  std::mt19937_64 random(seeds);
  if (o.prompt_kind == PromptKind::TokenIds) {
    Json ids = Json::array();
    for (int i = 0; i < o.prompt_tokens; ++i) ids.push_back(int64_t(random() % uint64_t(o.token_id_limit)));
    return ids;
  }
  std::string text;
  constexpr size_t n_words = std::size(kPromptWords);
  for (int i = 0; i < o.prompt_tokens; ++i) {
    if (i > 0) text += ' ';
    text += kPromptWords[random() % n_words];
  }
  return text;
}

// Greedy, streamed, with the usage at the end. "ignore_eos" is an extension of llama-server and
// vLLM (others ignore it) that keeps a request generating to max_tokens; the table reports how
// many tokens each request really got.
Json make_request_body(const ServingBenchOptions& o, const std::string& model, uint64_t request_number,
                       int max_tokens) {
  return {{"model", model},
          {"prompt", make_prompt(o, request_number)},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"stream", true},
          {"stream_options", {{"include_usage", true}}},
          {"ignore_eos", true}};
}

// Progress on stderr: a counter rewritten in place at a terminal, one line per level elsewhere.
class LevelProgress {
 public:
  LevelProgress(int concurrency, int requests) : concurrency_(concurrency), requests_(requests) {
    fmt::print(stderr, "slm-bench: concurrency {}: {} requests\n", concurrency, requests);
  }
  void request_done(bool ok) {
    const std::lock_guard lock(mutex_);
    ++done_;
    failed_ += !ok;
    if (terminal_) fmt::print(stderr, "\rslm-bench: concurrency {}: {}/{} done, {} failed", concurrency_, done_, requests_, failed_);
  }
  void finish(double seconds) {
    if (terminal_) fmt::print(stderr, "\n");
    fmt::print(stderr, "slm-bench: concurrency {}: {} requests in {:.1f} s, {} failed\n", concurrency_, done_, seconds,
               failed_);
  }

 private:
  const bool terminal_ = ::isatty(STDERR_FILENO) != 0;
  int concurrency_, requests_;
  std::mutex mutex_;
  int done_ = 0, failed_ = 0;
};

ServingLevelResult summarize_level(int concurrency, const std::vector<StreamedCompletion>& outcomes,
                                   double wall_seconds) {
  ServingLevelResult level;
  level.concurrency = concurrency;
  level.requests = int(outcomes.size());
  level.wall_seconds = wall_seconds;
  std::set<std::string> errors;
  double prompt_token_sum = 0;
  int prompt_token_reports = 0;
  bool first = true;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const StreamedCompletion& outcome = outcomes[i];
    if (!outcome.ok) {
      ++level.failed;
      errors.insert(outcome.error);
      continue;
    }
    level.generated_tokens += outcome.completion_tokens;
    level.min_tokens_per_request = first ? outcome.completion_tokens : std::min(level.min_tokens_per_request, outcome.completion_tokens);
    level.max_tokens_per_request = std::max(level.max_tokens_per_request, outcome.completion_tokens);
    first = false;
    if (outcome.prompt_tokens >= 0) prompt_token_sum += outcome.prompt_tokens, ++prompt_token_reports;
    if (outcome.text_chunks > 0) {
      level.time_to_first_token.push_back(outcome.seconds_to_first_token);
      (i < size_t(concurrency) ? level.first_wave_time_to_first_token : level.later_time_to_first_token)
          .push_back(outcome.seconds_to_first_token);
    }
    // Generation speed after the first token, as slm-bench's tg measures it without a prompt.
    const double decode_seconds = outcome.seconds_to_last_token - outcome.seconds_to_first_token;
    if (outcome.completion_tokens >= 2 && decode_seconds > 0)
      level.stream_tokens_per_second.push_back((outcome.completion_tokens - 1) / decode_seconds);
  }
  if (prompt_token_reports > 0) level.mean_prompt_tokens = prompt_token_sum / prompt_token_reports;
  level.errors.assign(errors.begin(), errors.end());
  return level;
}

ServingLevelResult run_level(const ServingBenchOptions& o, const std::string& model, int concurrency, int n_requests,
                             uint64_t first_request_number) {
  std::vector<StreamedCompletion> outcomes(static_cast<size_t>(n_requests));
  std::atomic<int> next_request{0};
  LevelProgress progress(concurrency, n_requests);
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> connections;
  for (int c = 0; c < std::min(concurrency, n_requests); ++c)
    connections.emplace_back([&] {
      CompletionStreamClient client(o.url, o.api_key, o.timeout_seconds);  // one kept-alive connection
      for (int i = next_request++; i < n_requests; i = next_request++) {
        outcomes[size_t(i)] = client.stream_completion(make_request_body(o, model, first_request_number + uint64_t(i), o.gen_tokens));
        progress.request_done(outcomes[size_t(i)].ok);
      }
    });
  for (std::thread& connection : connections) connection.join();
  const double wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  progress.finish(wall_seconds);
  return summarize_level(concurrency, outcomes, wall_seconds);
}

std::string tokens_per_request_text(const ServingLevelResult& r) {
  if (r.failed == r.requests) return "-";
  if (r.min_tokens_per_request == r.max_tokens_per_request) return std::to_string(r.min_tokens_per_request);
  return fmt::format("{}-{}", r.min_tokens_per_request, r.max_tokens_per_request);
}

// A percentile in ms with one decimal, "-" for no values.
std::string milliseconds_text(const std::vector<double>& seconds, double p) {
  return seconds.empty() ? "-" : fmt::format("{:.1f}", 1e3 * percentile(seconds, p));
}

OrderedJson milliseconds_json(const std::vector<double>& seconds, double p) {
  return seconds.empty() ? OrderedJson(nullptr) : OrderedJson(1e3 * percentile(seconds, p));
}

std::vector<std::string> level_row(const ServingLevelResult& r) {
  const slm::bench::MeanStddev stream = slm::bench::mean_stddev(r.stream_tokens_per_second);
  return {std::to_string(r.concurrency),
          std::to_string(r.requests),
          std::to_string(r.failed),
          r.mean_prompt_tokens < 0 ? "-" : fmt::format("{:.0f}", r.mean_prompt_tokens),
          tokens_per_request_text(r),
          fmt::format("{:.2f}", r.aggregate_tokens_per_second()),
          fmt::format("{:.2f} ± {:.2f}", stream.mean, stream.stddev),
          fmt::format("{:.1f}", 1e3 * percentile(r.time_to_first_token, 50)),
          fmt::format("{:.1f}", 1e3 * percentile(r.time_to_first_token, 99)),
          milliseconds_text(r.first_wave_time_to_first_token, 50),
          milliseconds_text(r.later_time_to_first_token, 50)};
}

const MarkdownTable& level_table() {
  static const MarkdownTable table({{"concurrency", 11, true},
                                    {"requests", 8, true},
                                    {"failed", 6, true},
                                    {"prompt tokens", 13, true},
                                    {"gen tokens", 10, true},
                                    {"aggregate t/s", 13, true},
                                    {"per-stream t/s", 16, true},
                                    {"TTFT p50 ms", 11, true},
                                    {"TTFT p99 ms", 11, true},
                                    {"wave 1 TTFT p50", 15, true},
                                    {"later TTFT p50", 14, true}});
  return table;
}

void print_footnote(const ServingBenchOptions& o, const std::string& model) {
  const std::string prompts = o.prompt_kind == PromptKind::TokenIds
                                  ? fmt::format("{} random token ids below {}", o.prompt_tokens, o.token_id_limit)
                                  : fmt::format("{} random words", o.prompt_tokens);
  fmt::print("\nserver: {}, model: {}; each request: {} (its own), max_tokens {}, temperature 0, streamed.\n"
             "prompt tokens: the mean of usage.prompt_tokens; gen tokens: per request, from usage.completion_tokens "
             "(else text chunks); aggregate t/s: all generated tokens / the level's wall time; per-stream t/s: "
             "(tokens - 1) / (last token - first token), mean ± stddev over requests; TTFT: request sent -> first "
             "text chunk; wave 1: the first `concurrency` requests, sent together at the start; later: the others, each sent "
             "when one finished (the steady state).\n",
             o.url, model, prompts, o.gen_tokens);
}

OrderedJson level_json(const ServingLevelResult& r) {
  const slm::bench::MeanStddev stream = slm::bench::mean_stddev(r.stream_tokens_per_second);
  return {{"concurrency", r.concurrency},
          {"requests", r.requests},
          {"failed", r.failed},
          {"wall_seconds", r.wall_seconds},
          {"mean_prompt_tokens", r.mean_prompt_tokens < 0 ? OrderedJson(nullptr) : OrderedJson(r.mean_prompt_tokens)},
          {"generated_tokens", r.generated_tokens},
          {"min_tokens_per_request", r.min_tokens_per_request},
          {"max_tokens_per_request", r.max_tokens_per_request},
          {"aggregate_tokens_per_second", r.aggregate_tokens_per_second()},
          {"stream_tokens_per_second_mean", stream.mean},
          {"stream_tokens_per_second_stddev", stream.stddev},
          {"ttft_p50_ms", 1e3 * percentile(r.time_to_first_token, 50)},
          {"ttft_p99_ms", 1e3 * percentile(r.time_to_first_token, 99)},
          {"ttft_p50_first_wave_ms", milliseconds_json(r.first_wave_time_to_first_token, 50)},
          {"ttft_p50_later_ms", milliseconds_json(r.later_time_to_first_token, 50)},
          {"errors", r.errors}};
}

}  // namespace

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * double(values.size() - 1);
  const size_t below = size_t(std::floor(rank));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (rank - double(below)) * (values[above] - values[below]);
}

int run_serving_bench(const ServingBenchOptions& o) {
  std::string model = o.model;
  if (model.empty()) {
    const std::vector<std::string> ids = CompletionStreamClient(o.url, o.api_key, o.timeout_seconds).model_ids();
    if (ids.empty()) throw Error(fmt::format("{} lists no models; name one with --server-model", o.url));
    model = ids.front();
  }

  // Warm-up: pages the weights in and checks the server answers (a wrong key stops here).
  uint64_t request_number = 0;
  fmt::print(stderr, "slm-bench: warm-up request to {} (model {})\n", o.url, model);
  const StreamedCompletion warm_up = CompletionStreamClient(o.url, o.api_key, o.timeout_seconds)
                                         .stream_completion(make_request_body(o, model, request_number++, std::min(o.gen_tokens, 8)));
  if (!warm_up.ok) throw Error(fmt::format("the warm-up request to {} failed: {}", o.url, warm_up.error));

  if (!o.json_output) level_table().print_header();
  OrderedJson levels = OrderedJson::array();
  bool any_failed = false;
  for (int concurrency : o.concurrency) {
    const int n_requests = o.requests > 0 ? o.requests : std::max(4, 2 * concurrency);
    const ServingLevelResult level = run_level(o, model, concurrency, n_requests, request_number);
    request_number += uint64_t(n_requests);
    for (const std::string& error : level.errors) fmt::print(stderr, "slm-bench: concurrency {}: failed: {}\n", concurrency, error);
    any_failed = any_failed || level.failed > 0;
    if (o.json_output)
      levels.push_back(level_json(level));
    else
      level_table().print_row(level_row(level));
  }
  if (o.json_output) {
    const OrderedJson out{{"server", o.url},           {"model", model},
                          {"prompt_tokens", o.prompt_tokens}, {"gen_tokens", o.gen_tokens},
                          {"prompt_kind", o.prompt_kind == PromptKind::TokenIds ? "token_ids" : "text"},
                          {"levels", levels}};
    fmt::print("{}\n", out.dump(2));
  } else {
    print_footnote(o, model);
  }
  return any_failed ? 1 : 0;
}

}  // namespace slm::tools
