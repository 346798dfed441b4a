// slm-bench --server: the serving benchmark. It drives any OpenAI-compatible server with
// streamed /v1/completions requests, `concurrency` at a time, and measures for each level the
// aggregate generation speed, each stream's speed, and the time to the first token.
//
// Every request gets its own prompt (deterministic from --seed and the request's number), so
// that no request finds another's prefix in the server's cache and flatters the figures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slm::tools {

enum class PromptKind {
  TokenIds,  // random token ids below token_id_limit, sent as an array (slm-server, llama-server, vLLM)
  Text,      // random common English words, about one token each (any server, Ollama among them)
};

struct ServingBenchOptions {
  std::string url;                    // http://HOST:PORT, optionally with /v1
  std::string api_key;
  std::string model;                  // the request's "model"; empty: the first that /v1/models lists
  std::vector<int> concurrency{1, 4, 8};
  int prompt_tokens = 128;
  int gen_tokens = 128;
  int requests = 0;                   // per level; 0: 2 x the concurrency, at least 4
  PromptKind prompt_kind = PromptKind::TokenIds;
  int token_id_limit = 256;           // every vocabulary has at least this many ids
  uint32_t seed = 1234;
  double timeout_seconds = 300;       // per connection attempt and per wait for bytes
  bool json_output = false;           // else a markdown table
};

// One concurrency level: what each of its requests gave.
struct ServingLevelResult {
  int concurrency = 0;
  int requests = 0;
  int failed = 0;
  double wall_seconds = 0;                  // the first request sent -> the last one answered
  int64_t generated_tokens = 0;             // by the requests that succeeded
  int min_tokens_per_request = 0, max_tokens_per_request = 0;
  double mean_prompt_tokens = -1;           // as the server counted them (usage); -1 when it did not say
  std::vector<double> time_to_first_token;  // seconds, per successful request
  // The same, split: the first wave (the first `concurrency` requests, sent together at the
  // start) and the later ones (each sent as another finished: the steady state).
  std::vector<double> first_wave_time_to_first_token, later_time_to_first_token;
  std::vector<double> stream_tokens_per_second;  // per successful request of two tokens or more
  std::vector<std::string> errors;          // the distinct reasons of the failures

  double aggregate_tokens_per_second() const { return wall_seconds > 0 ? generated_tokens / wall_seconds : 0; }
};

// Percentile p (0..100) by linear interpolation between the closest ranks (numpy's default);
// 0 for no values.
double percentile(std::vector<double> values, double p);

// Runs every level, printing progress on stderr and the results on stdout. Returns the exit
// code: 0 when every request succeeded, 1 when any failed.
int run_serving_bench(const ServingBenchOptions& options);

}  // namespace slm::tools
