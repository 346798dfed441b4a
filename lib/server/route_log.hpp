// slm-server --route-log FILE: one JSON line per routed request, for calibrating the threshold
// of confidence:T against the answers. No prompt text unless --route-log-prompts; never the
// fallback's key.
//
//   {"time":1733472000.123,"endpoint":"chat.completions","model":"auto","stream":false,
//    "route":"fallback","reason":"low_confidence","prompt_tokens":31,"completion_tokens":64,
//    "confidence":{...},"fallback_seconds":1.92,"fallback_error":null}
//
// (`confidence` is the local answer's, null when there was none; `completion_tokens` the local
// answer's; with --route-log-prompts, "prompt" is the request's `messages` or `prompt` as sent.)
#pragma once

#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include "slm/confidence.hpp"

namespace slm::server {

struct RouteRecord {
  std::string endpoint;  // "chat.completions" or "completions"
  std::string model;     // as the request named it
  bool stream = false;
  std::string route, reason;
  int32_t prompt_tokens = 0;
  std::optional<int32_t> completion_tokens;    // the local answer's
  std::optional<Confidence> confidence;        // the local answer's
  std::optional<double> fallback_seconds;      // when the fallback was asked
  std::string fallback_error;                  // when it failed
  std::string request_body;                    // for the prompt, with log_prompts
};

class RouteLog {
 public:
  // Appends to `path`. Throws slm::Error when it cannot be opened.
  RouteLog(const std::string& path, bool log_prompts);
  ~RouteLog();
  RouteLog(const RouteLog&) = delete;
  RouteLog& operator=(const RouteLog&) = delete;

  void write(const RouteRecord& record);

 private:
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
  bool log_prompts_ = false;
};

}  // namespace slm::server
