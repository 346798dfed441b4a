// The numbers GET /metrics reports, in Prometheus' text format: HTTP responses by status, the
// scheduler's token totals, queue and KV pool (from Scheduler::stats()), and histograms of the
// time to first token and of the time per generated token.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
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
  std::string prometheus_text(const SchedulerStats& stats) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_by_status_;
  Histogram time_to_first_token_, time_per_token_;
};

}  // namespace slm::server
