// Tiered routing in slm-server (--fallback-url, --route): the generation routes' path when a
// fallback is configured. Routing is off unless --fallback-url is given; when it is on, the
// prompts of routed requests are sent to the fallback.
//
// Every answer says who answered: the header `x-slm-route: local|fallback`, and at the top level
// of the body (the chunk with finish_reason, streaming) the field
//   "slm_route": {"route": "local|fallback", "reason": "...", "confidence": {...local...} | null,
//                 "threshold": T | null, "fallback_error": "..." (only when it failed)}
// A fallback that fails or times out gives the local answer, marked reason "fallback_failed":
// never an error where a local answer exists.
//
// Streaming: a decision on the prompt (prompt-tokens, model:auto) is made before anything is
// sent, and a local answer streams as it is generated. With confidence:T, the local answer is
// generated whole first (buffered), then either it or the fallback's is sent as the stream. The
// fallback is always asked without streaming, and its answer is re-sent as chunks.
#pragma once

#include <memory>
#include <string>

#include "lib/server/fallback_client.hpp"
#include "lib/server/http_generation.hpp"
#include "lib/server/route_log.hpp"
#include "lib/server/route_policy.hpp"

namespace slm::server {

struct RouterOptions {
  FallbackOptions fallback;
  RoutePolicy policy;
  std::string log_path;      // --route-log; empty: none
  bool log_prompts = false;  // --route-log-prompts
};

class Router {
 public:
  // Throws slm::Error for a bad URL or a log file that cannot be opened.
  explicit Router(RouterOptions options);

  const RoutePolicy& policy() const { return options_.policy; }
  FallbackAnswer ask_fallback(Endpoint endpoint, std::string_view request_body) const {
    return fallback_.ask(endpoint, request_body);
  }
  void log(const RouteRecord& record);  // nothing without --route-log
  bool logs_prompts() const { return log_ && options_.log_prompts; }

 private:
  RouterOptions options_;
  FallbackClient fallback_;
  std::unique_ptr<RouteLog> log_;
};

// The generation routes' path when context.options.router is set (http_generation.cpp).
void run_routed_generation(RouteContext& context, std::shared_ptr<const ServedModel> served,
                           GenerationRequest request, ResponseHeader header, ResponseOptions options, bool stream,
                           const httplib::Request& http_request, httplib::Response& response);

// The fallback's whole answer as the chunks of a stream (without the SSE framing and [DONE]):
// chat's role chunk, the content (reasoning and tool calls too), the chunk with finish_reason
// carrying `final_fields`, and with include_usage the usage chunk. Completions: the text, then
// the chunk with finish_reason.
std::vector<std::string> fallback_stream_chunks(Endpoint endpoint, const std::string& whole_body,
                                                bool include_usage, const std::string& final_fields_json);

}  // namespace slm::server
