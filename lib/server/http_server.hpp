// slm-server's HTTP face: the OpenAI routes and llama-server's extras over cpp-httplib.
//
//   POST /v1/chat/completions, POST /v1/completions   (also without the /v1 prefix)
//   GET  /v1/models, GET /health, GET /metrics, POST /tokenize, POST /detokenize
//   GET  / and /webui/...: the chat page, unless options.webui is off (webui_routes.hpp)
//
// The server listens before the model has loaded: until set_model(), /health and every API
// route answer 503. Every answer other than a success is an OpenAI error object. With an API
// key, every route but /health wants `Authorization: Bearer <key>`, compared in constant time.
// The HTTP layer talks to the engine only through slm::Scheduler (include/slm/scheduler.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "lib/chat/chat_prompt.hpp"
#include "lib/server/openai_request.hpp"
#include "lib/server/server_metrics.hpp"
#include "slm/scheduler.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace slm::server {

class Router;  // route_request.hpp

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (see bind())
  std::string api_key;           // empty: no key is asked
  std::string model_name;        // what /v1/models lists
  RequestLimits limits;
  SamplerParams sampling;        // every request's defaults; its seed makes unseeded requests repeatable
  int32_t http_threads = 76;     // connections served at once: the scheduler's parallel + queue, and some
  int32_t retry_after_seconds = 1;  // sent with a 503
  bool webui = true;             // the chat page at / (webui_routes.hpp)
  std::shared_ptr<Router> router;  // tiered routing to a fallback model (--fallback-url); null: off
};

// What the server serves once the model has loaded.
struct ServedModel {
  std::shared_ptr<Scheduler> scheduler;
  chat::ChatTemplate chat_template;
};

// What every route shares: options, metrics, the served model, the requests in flight
// (http_generation.hpp).
struct RouteContext;

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the address; returns the port (the chosen one for port 0). Throws slm::Error.
  int bind();
  // Serves until stop(); run it on its own thread. Returns once every connection has closed.
  void serve();
  // Ready: the API routes start answering.
  void set_model(ServedModel model);
  // Shutting down: new requests get 503; requests in flight go on.
  void refuse_new_requests();
  // Cancels every request in flight (its stream ends, its KV blocks are freed).
  void cancel_requests_in_flight();
  // Returns once no generation request is in flight (each has sent its last byte).
  void wait_until_idle();
  // Closes the listening socket and ends streams still running; serve() returns once every
  // handler has returned.
  void stop();

 private:
  void add_routes();
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<RouteContext> context_;
  // cpp-httplib's stop() does nothing before its accept loop runs, so stop() waits for that loop
  // (or for serve() to have returned, or never to start).
  std::mutex serve_mutex_;
  bool stop_requested_ = false, serve_entered_ = false;
  std::atomic<bool> serve_returned_ = false;
};

// Equal strings, compared in time that depends only on `expected`'s length.
bool equal_in_constant_time(std::string_view given, std::string_view expected);

}  // namespace slm::server
