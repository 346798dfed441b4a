// The two generation routes, POST /v1/chat/completions and POST /v1/completions: parse, build
// the prompt, submit to the scheduler, then answer whole or as a stream of Server-Sent Events.
// A client that goes away cancels its request: a streamed one when a write fails, a whole one
// when its socket is seen closed (ClientConnection), both within one poll interval.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "lib/server/api_error.hpp"
#include "lib/server/client_connection.hpp"
#include "lib/server/http_server.hpp"
#include "lib/server/openai_response.hpp"
#include "lib/server/server_metrics.hpp"
#include "lib/server/structured_output.hpp"

namespace slm::server {

// What every route shares; owned by HttpServer.
struct RouteContext {
  HttpServerOptions options;
  ServerMetrics metrics;
  int64_t started_at = 0;  // Unix seconds, for /v1/models' `created`
  GrammarCache grammars;   // response_format schemas, grammars and tool-call grammars, compiled

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

// One submitted request, from the scheduler's stream to the client.
struct Generation {
  RouteContext& context;
  std::shared_ptr<const ServedModel> served;  // keeps the model (and its tokenizer) alive
  std::shared_ptr<RequestStream> stream;
  ResponseBuilder builder;
  ClientConnection client;
  bool finished = false;        // the summary has come
  bool stream_started = false;  // streaming: the first chunk (chat's role) has been sent
  std::chrono::steady_clock::time_point next_client_check{};
  std::function<void(const GenerationSummary&)> on_done;  // called once, with the summary (routing's log)

  Generation(RouteContext& context, std::shared_ptr<const ServedModel> served, std::shared_ptr<RequestStream> stream,
             ResponseBuilder builder, ClientConnection client);
  ~Generation();  // cancels a request that has not finished
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // The next event; false after one poll interval without one. The client's socket is looked
  // at once per interval, events or not: a client seen gone cancels the request.
  bool next_event(StreamEvent& event);
};

// Submits a request to the scheduler. ApiError: 400 for a request that can never run, 503 when
// every slot and the queue are taken or the server is shutting down.
std::shared_ptr<Generation> submit_generation(RouteContext& context, std::shared_ptr<const ServedModel> served,
                                              GenerationRequest request, ResponseHeader header,
                                              ResponseOptions options, const httplib::Request& http_request);

// A generation run to its end. Streaming: the chunks sent before the last ones (stream_end()'s).
struct CollectedAnswer {
  GenerationSummary summary;
  std::vector<std::string> chunks;
};
// Waits for the whole answer; a cancelled or failed generation throws its ApiError.
CollectedAnswer collect_answer(Generation& generation, bool stream);

// The answer as one JSON body, or as Server-Sent Events while it is generated.
void answer_whole(Generation& generation, httplib::Response& response);
void answer_stream(std::shared_ptr<Generation> generation, httplib::Response& response);

void handle_chat_completions(RouteContext& context, const httplib::Request& request, httplib::Response& response);
void handle_completions(RouteContext& context, const httplib::Request& request, httplib::Response& response);

// An ApiError as the response: status, JSON body, and Retry-After with a 503.
void send_error(httplib::Response& response, const ApiError& error, int32_t retry_after_seconds);

}  // namespace slm::server
