// The two generation routes, POST /v1/chat/completions and POST /v1/completions: parse, build
// the prompt, submit to the scheduler, then answer whole or as a stream of Server-Sent Events.
// A client that goes away cancels its request: a streamed one when a write fails, a whole one
// when its socket is seen closed (ClientConnection), both within one poll interval.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>

#include "lib/server/api_error.hpp"
#include "lib/server/http_server.hpp"
#include "lib/server/server_metrics.hpp"

namespace slm::server {

// What every route shares; owned by HttpServer.
struct RouteContext {
  HttpServerOptions options;
  ServerMetrics metrics;
  int64_t started_at = 0;  // Unix seconds, for /v1/models' `created`

  // The served model, or ApiError 503 while it loads or once the server refuses new requests.
  std::shared_ptr<const ServedModel> ready_model() const;
  void set_model(std::shared_ptr<const ServedModel> served);
  void refuse_new_requests();

  // Requests in flight, so that a shutdown can cancel them.
  void track(const std::shared_ptr<RequestStream>& stream);
  void untrack(const std::shared_ptr<RequestStream>& stream);
  void cancel_all();
  // Returns once no request is in flight.
  void wait_until_idle();

 private:
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::shared_ptr<const ServedModel> model_;
  bool refusing_ = false;
  std::set<std::shared_ptr<RequestStream>> in_flight_;
};

void handle_chat_completions(RouteContext& context, const httplib::Request& request, httplib::Response& response);
void handle_completions(RouteContext& context, const httplib::Request& request, httplib::Response& response);

// An ApiError as the response: status, JSON body, and Retry-After with a 503.
void send_error(httplib::Response& response, const ApiError& error, int32_t retry_after_seconds);

}  // namespace slm::server
