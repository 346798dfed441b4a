#include "lib/server/http_server.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <ctime>
#include <new>
#include <thread>

#include "lib/server/http_generation.hpp"
#include "lib/server/openai_response.hpp"
#include "lib/server/webui_routes.hpp"
#include "slm/error.hpp"

namespace slm::server {

namespace {

using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

bool has_valid_key(const std::string& api_key, const httplib::Request& request) {
  if (api_key.empty()) return true;
  const std::string header = request.get_header_value("Authorization");
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() < scheme.size() || !std::equal(scheme.begin(), scheme.end(), header.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      }))
    return false;
  return equal_in_constant_time(std::string_view(header).substr(scheme.size()), api_key);
}

// Every route runs inside this: the key is checked, and whatever is thrown becomes an OpenAI
// error response. Nothing a request does can take the server down.
httplib::Server::Handler guarded(RouteContext& context, bool needs_key, Handler handler) {
  return [&context, needs_key, handler = std::move(handler)](const httplib::Request& request,
                                                             httplib::Response& response) {
    const int32_t retry_after = context.options.retry_after_seconds;
    try {
      if (needs_key && !has_valid_key(context.options.api_key, request)) throw invalid_api_key();
      handler(request, response);
    } catch (const ApiError& e) {
      send_error(response, e, retry_after);
    } catch (const std::bad_alloc&) {
      send_error(response, internal_error("out of memory"), retry_after);
    } catch (const std::exception& e) {
      send_error(response, internal_error(e.what()), retry_after);
    } catch (...) {
      send_error(response, internal_error("unknown error"), retry_after);
    }
  };
}

// Answers cpp-httplib produces itself (no route, a body over the limit, a malformed request)
// get the OpenAI error object too.
httplib::Server::HandlerResponse fill_error_body(const RouteContext& context, const httplib::Request& request,
                                                 httplib::Response& response) {
  if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
  const int status = response.status;
  if (status == 404) send_error(response, unknown_route(request.method, request.path), 0);
  else if (status == 413) send_error(response, body_too_large(context.options.limits.max_body_bytes), 0);
  else if (status == 400) send_error(response, invalid_request("malformed HTTP request"), 0);
  else send_error(response, ApiError(status, fmt::format("HTTP error {}", status), "invalid_request_error"), 0);
  return httplib::Server::HandlerResponse::Handled;
}

void handle_health(const RouteContext& context, httplib::Response& response) {
  context.ready_model();  // 503 while loading or shutting down
  response.set_content(R"({"status":"ok"})", "application/json");
}

void handle_models(const RouteContext& context, httplib::Response& response) {
  const std::shared_ptr<const ServedModel> served = context.ready_model();
  response.set_content(models_response(context.options.model_name, context.started_at, served->scheduler->n_ctx()),
                       "application/json");
}

void handle_metrics(const RouteContext& context, httplib::Response& response) {
  const std::shared_ptr<const ServedModel> served = context.ready_model();
  response.set_content(context.metrics.prometheus_text(served->scheduler->stats()), "text/plain; version=0.0.4");
}

void handle_tokenize(const RouteContext& context, const httplib::Request& request, httplib::Response& response) {
  const std::shared_ptr<const ServedModel> served = context.ready_model();
  const TokenizeRequest tokenize = parse_tokenize_request(request.body, context.options.limits);
  const Tokenizer& tokenizer = served->scheduler->model().tokenizer();
  const std::vector<TokenId> tokens = tokenizer.tokenize(tokenize.content, tokenize.add_special, tokenize.parse_special);
  response.set_content(tokenize_response(tokenizer, tokens, tokenize.with_pieces), "application/json");
}

void handle_detokenize(const RouteContext& context, const httplib::Request& request, httplib::Response& response) {
  const std::shared_ptr<const ServedModel> served = context.ready_model();
  const DetokenizeRequest detokenize = parse_detokenize_request(request.body, context.options.limits);
  const Tokenizer& tokenizer = served->scheduler->model().tokenizer();
  std::vector<TokenId> tokens;
  for (size_t i = 0; i < detokenize.token_ids.size(); ++i) {
    const int64_t id = detokenize.token_ids[i];
    if (id >= tokenizer.n_vocab())
      throw invalid_request(fmt::format("tokens[{}] = {} is not a token id of this model's vocabulary of {}", i, id,
                                        tokenizer.n_vocab()),
                            fmt::format("tokens[{}]", i), "invalid_value");
    tokens.push_back(TokenId(id));
  }
  response.set_content(detokenize_response(tokenizer.detokenize(tokens)), "application/json");
}

}  // namespace

bool equal_in_constant_time(std::string_view given, std::string_view expected) {
  // Every byte of `expected` is read once whatever `given` holds, so the time tells nothing
  // about how much of a guess was right.
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char guess = given.empty() ? 0 : static_cast<unsigned char>(given[i % given.size()]);
    difference |= static_cast<unsigned char>(guess ^ static_cast<unsigned char>(expected[i]));
  }
  return difference == 0;
}

HttpServer::HttpServer(HttpServerOptions options)
    : http_(std::make_unique<httplib::Server>()), context_(std::make_unique<RouteContext>()) {
  context_->options = std::move(options);
  context_->started_at = int64_t(std::time(nullptr));
  const HttpServerOptions& o = context_->options;
  const size_t threads = size_t(std::max(o.http_threads, 4));
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(o.limits.max_body_bytes);
  http_->set_keep_alive_max_count(1000);  // the openai clients keep their connections
  http_->set_tcp_nodelay(true);           // each streamed token goes out at once
  RouteContext& context = *context_;
  http_->set_error_handler(httplib::Server::HandlerWithResponse(
      [&context](const httplib::Request& request, httplib::Response& response) {
        return fill_error_body(context, request, response);
      }));
  http_->set_exception_handler([&context](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
    send_error(response, internal_error("unexpected error"), context.options.retry_after_seconds);
  });
  // Counted before the response is written (httplib runs the post-routing handler after the
  // error handler, before the status line), not by the logger, which runs after: a client
  // could read its response and then /metrics before the logger had counted it.
  http_->set_post_routing_handler([&context](const httplib::Request&, httplib::Response& response) {
    context.metrics.count_response(response.status);
  });
  add_routes();
}

HttpServer::~HttpServer() = default;

void HttpServer::add_routes() {
  RouteContext& context = *context_;
  const auto chat = guarded(context, true, [&context](const httplib::Request& request, httplib::Response& response) {
    handle_chat_completions(context, request, response);
  });
  const auto completions = guarded(context, true, [&context](const httplib::Request& request,
                                                             httplib::Response& response) {
    handle_completions(context, request, response);
  });
  const auto models = guarded(context, true, [&context](const httplib::Request&, httplib::Response& response) {
    handle_models(context, response);
  });
  // The OpenAI paths, and the same without /v1 as llama-server answers them.
  for (const std::string prefix : {"/v1", ""}) {
    http_->Post(prefix + "/chat/completions", chat);
    http_->Post(prefix + "/completions", completions);
    http_->Get(prefix + "/models", models);
  }
  http_->Get("/health", guarded(context, false, [&context](const httplib::Request&, httplib::Response& response) {
    handle_health(context, response);
  }));
  http_->Get("/metrics", guarded(context, true, [&context](const httplib::Request&, httplib::Response& response) {
    handle_metrics(context, response);
  }));
  http_->Post("/tokenize", guarded(context, true, [&context](const httplib::Request& request,
                                                             httplib::Response& response) {
    handle_tokenize(context, request, response);
  }));
  http_->Post("/detokenize", guarded(context, true, [&context](const httplib::Request& request,
                                                               httplib::Response& response) {
    handle_detokenize(context, request, response);
  }));
  if (context.options.webui) add_webui_routes(*http_);
}

int HttpServer::bind() {
  const HttpServerOptions& o = context_->options;
  if (o.port == 0) {
    const int port = http_->bind_to_any_port(o.host);
    if (port < 0) throw Error(fmt::format("cannot listen on {} (any port)", o.host));
    return port;
  }
  if (!http_->bind_to_port(o.host, o.port))
    throw Error(fmt::format("cannot listen on {}:{} (is the port in use, or the address not this machine's?)", o.host,
                            o.port));
  return o.port;
}

void HttpServer::serve() {
  {
    std::lock_guard lock(serve_mutex_);
    if (stop_requested_) return;
    serve_entered_ = true;
  }
  http_->listen_after_bind();
  serve_returned_ = true;
}

void HttpServer::set_model(ServedModel model) {
  context_->set_model(std::make_shared<const ServedModel>(std::move(model)));
}

void HttpServer::refuse_new_requests() { context_->refuse_new_requests(); }

void HttpServer::cancel_requests_in_flight() { context_->cancel_all(); }

void HttpServer::wait_until_idle() { context_->wait_until_idle(); }

void HttpServer::stop() {
  {
    std::lock_guard lock(serve_mutex_);
    stop_requested_ = true;
    if (!serve_entered_) return;
  }
  while (!http_->is_running() && !serve_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_->stop();
}

}  // namespace slm::server
