#include "lib/server/route_log.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "lib/confidence_json.hpp"
#include "slm/error.hpp"

namespace slm::server {

namespace {

using Json = nlohmann::ordered_json;

// The request's `messages` (chat) or `prompt` (completions), as the client sent them.
Json prompt_of(const std::string& request_body) {
  const Json request = Json::parse(request_body, nullptr, false);
  if (!request.is_object()) return nullptr;
  for (const char* field : {"messages", "prompt"})
    if (request.contains(field)) return request[field];
  return nullptr;
}

}  // namespace

RouteLog::RouteLog(const std::string& path, bool log_prompts) : log_prompts_(log_prompts) {
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw Error(fmt::format("--route-log {}: cannot open it for appending: {}", path, std::strerror(errno)));
}

RouteLog::~RouteLog() {
  if (file_) std::fclose(file_);
}

void RouteLog::write(const RouteRecord& r) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  Json line = {{"time", now},
               {"endpoint", r.endpoint},
               {"model", r.model},
               {"stream", r.stream},
               {"route", r.route},
               {"reason", r.reason},
               {"prompt_tokens", r.prompt_tokens},
               {"completion_tokens", r.completion_tokens ? Json(*r.completion_tokens) : Json(nullptr)},
               {"confidence", r.confidence ? confidence_json(*r.confidence) : Json(nullptr)},
               {"fallback_seconds", r.fallback_seconds ? Json(*r.fallback_seconds) : Json(nullptr)},
               {"fallback_error", r.fallback_error.empty() ? Json(nullptr) : Json(r.fallback_error)}};
  if (log_prompts_) line["prompt"] = prompt_of(r.request_body);
  const std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  std::lock_guard lock(mutex_);
  std::fwrite(text.data(), 1, text.size(), file_);
  std::fflush(file_);  // a line is whole on disk before the response goes out
}

}  // namespace slm::server
