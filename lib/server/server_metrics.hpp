// The numbers GET /metrics reports, in Prometheus' text format: HTTP responses by status, the
// scheduler's token totals, queue and KV pool (from Scheduler::stats()), and histograms of the
// time to first token and of the time per generated token; with routing (route_request.hpp),
// the routes taken and the fallback's latency.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "slm/scheduler.hpp"

namespace slm::server {

// A Prometheus histogram: cumulative counts per upper bound, plus the sum and the count.
struct Histogram {
  std::vector<double> upper_bounds;  // ascending; +Inf is implied
  std::vector<uint64_t> counts;      // one per bound, not cumulative
  double sum = 0;
  uint64_t count = 0;

  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
};

class ServerMetrics {
 public:
  ServerMetrics();
  void count_response(int status);
  // A generation that ended with tokens: its time to first token and mean time per later token.
  void observe_generation(const GenerationSummary& summary);
  // Routing: a request answered by `route` ("local", "fallback") for `reason`.
  void count_route(const std::string& route, const std::string& reason);
  // Routing: one request to the fallback, answered or not.
  void observe_fallback(double seconds, bool ok);
  std::string prometheus_text(const SchedulerStats& stats) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_by_status_;
  Histogram time_to_first_token_, time_per_token_;
  std::map<std::pair<std::string, std::string>, uint64_t> routes_;  // (route, reason) -> count
  Histogram fallback_seconds_;
  uint64_t fallback_failures_ = 0;
};

}  // namespace slm::server
