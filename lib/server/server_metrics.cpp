#include "lib/server/server_metrics.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace slm::server {

namespace {

void append_metric(std::string& text, const char* name, const char* type, const char* help, double value) {
  text += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

void append_histogram(std::string& text, const char* name, const char* help, const Histogram& histogram) {
  text += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < histogram.upper_bounds.size(); ++i) {
    cumulative += histogram.counts[i];
    text += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, histogram.upper_bounds[i], cumulative);
  }
  text += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, histogram.count, name,
                      histogram.sum, name, histogram.count);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : upper_bounds(std::move(bounds)), counts(upper_bounds.size(), 0) {}

void Histogram::observe(double value) {
  const auto bucket = std::lower_bound(upper_bounds.begin(), upper_bounds.end(), value);
  if (bucket != upper_bounds.end()) ++counts[size_t(bucket - upper_bounds.begin())];
  sum += value;
  ++count;
}

ServerMetrics::ServerMetrics()
    : time_to_first_token_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      time_per_token_({0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}),
      fallback_seconds_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}) {}

void ServerMetrics::count_response(int status) {
  std::lock_guard lock(mutex_);
  ++responses_by_status_[status];
}

void ServerMetrics::observe_generation(const GenerationSummary& summary) {
  if (summary.completion_tokens < 1) return;
  std::lock_guard lock(mutex_);
  time_to_first_token_.observe(summary.time_to_first_token);
  if (summary.completion_tokens > 1)
    time_per_token_.observe(summary.generation_seconds / double(summary.completion_tokens - 1));
}

void ServerMetrics::count_route(const std::string& route, const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++routes_[{route, reason}];
}

void ServerMetrics::observe_fallback(double seconds, bool ok) {
  std::lock_guard lock(mutex_);
  fallback_seconds_.observe(seconds);
  if (!ok) ++fallback_failures_;
}

std::string ServerMetrics::prometheus_text(const SchedulerStats& stats) const {
  std::string text;
  {
    std::lock_guard lock(mutex_);
    text += "# HELP slm_http_responses_total HTTP responses sent, by status.\n"
            "# TYPE slm_http_responses_total counter\n";
    for (const auto& [status, count] : responses_by_status_)
      text += fmt::format("slm_http_responses_total{{status=\"{}\"}} {}\n", status, count);
    append_histogram(text, "slm_time_to_first_token_seconds", "From the request's arrival to its first token.",
                     time_to_first_token_);
    append_histogram(text, "slm_time_per_output_token_seconds",
                     "A request's mean time per generated token after the first.", time_per_token_);
    if (!routes_.empty() || fallback_seconds_.count > 0) {
      text += "# HELP slm_route_total Routed requests, by who answered and why.\n"
              "# TYPE slm_route_total counter\n";
      for (const auto& [key, count] : routes_)
        text += fmt::format("slm_route_total{{route=\"{}\",reason=\"{}\"}} {}\n", key.first, key.second, count);
      append_histogram(text, "slm_fallback_seconds", "Requests to the fallback, answered or not.", fallback_seconds_);
      append_metric(text, "slm_fallback_failures_total", "counter",
                    "Requests to the fallback that failed or timed out (the local answer was sent).",
                    double(fallback_failures_));
    }
  }
  append_metric(text, "slm_prompt_tokens_total", "counter", "Prompt tokens of all requests.",
                double(stats.prompt_tokens));
  append_metric(text, "slm_prompt_tokens_cached_total", "counter", "Prompt tokens reused from the KV cache.",
                double(stats.cached_prompt_tokens));
  append_metric(text, "slm_generated_tokens_total", "counter", "Tokens generated.", double(stats.generated_tokens));
  append_metric(text, "slm_draft_tokens_total", "counter",
                "Speculative decoding: tokens drafted for finished requests.", double(stats.draft_tokens));
  append_metric(text, "slm_draft_tokens_accepted_total", "counter",
                "Speculative decoding: of those, accepted by the model.", double(stats.draft_accepted_tokens));
  append_metric(text, "slm_draft_acceptance_rate", "gauge", "Speculative decoding: accepted / drafted (0: none drafted).",
                stats.draft_tokens > 0 ? double(stats.draft_accepted_tokens) / double(stats.draft_tokens) : 0.0);
  append_metric(text, "slm_scheduler_steps_total", "counter", "Forward passes of the scheduler.", double(stats.steps));
  append_metric(text, "slm_requests_queued", "gauge", "Requests waiting for a slot.", stats.queued);
  append_metric(text, "slm_requests_running", "gauge", "Requests generating or reading their prompt.", stats.running);
  append_metric(text, "slm_kv_blocks_used", "gauge", "KV cache blocks in use.", stats.kv_blocks_used);
  append_metric(text, "slm_kv_blocks_total", "gauge", "KV cache blocks in the pool.", stats.kv_blocks_total);
  append_metric(text, "slm_cached_sequences", "gauge", "Finished sequences kept for prefix reuse.",
                stats.cached_sequences);
  append_metric(text, "slm_recurrent_state_bytes", "gauge",
                "Hybrid models: bytes of the recurrent states and their checkpoints, of every sequence.",
                double(stats.state_bytes));
  return text;
}

}  // namespace slm::server
