#include "lib/server/http_generation.hpp"

#include <httplib.h>

#include <chrono>
#include <ctime>

#include "lib/server/client_connection.hpp"
#include "lib/server/openai_prompt.hpp"
#include "lib/server/openai_response.hpp"
#include "lib/server/route_request.hpp"

namespace slm::server {

namespace {

// How often a waiting handler looks at its client's socket: a client that leaves is noticed,
// and its request cancelled, within this time.
constexpr std::chrono::milliseconds client_poll_interval{50};

ConnectionAddresses addresses_of(const httplib::Request& request) {
  return {request.local_addr, request.local_port, request.remote_addr, request.remote_port};
}

ApiError failure_of(const GenerationSummary& summary) {
  if (summary.finish == FinishReason::Cancelled)
    return unavailable("the request was cancelled: the server is shutting down", "cancelled");
  return internal_error("generation failed: " + summary.error);
}

bool send_event(httplib::DataSink& sink, const std::string& data) {
  const std::string event = "data: " + data + "\n\n";
  return sink.write(event.data(), event.size());
}

// Called by cpp-httplib until sink.done(): each call sends what one event completes. A failed
// write means the client has gone: the request is cancelled and the connection dropped.
bool provide_stream(Generation& generation, httplib::DataSink& sink) {
  if (!generation.stream_started) {
    generation.stream_started = true;
    if (const std::optional<std::string> first = generation.builder.stream_start())
      if (!send_event(sink, *first)) return false;
    return true;
  }
  StreamEvent event;
  if (!generation.next_event(event)) return true;  // a cancelled request still ends with its summary
  if (event.token)
    if (const std::optional<std::string> chunk = generation.builder.stream_token(*event.token))
      if (!send_event(sink, *chunk)) return false;
  if (!event.done) return true;
  const GenerationSummary& summary = *event.done;
  std::vector<std::string> last;
  if (summary.finish == FinishReason::Stop || summary.finish == FinishReason::Length)
    last = generation.builder.stream_end(summary);
  else
    last.push_back(error_body(failure_of(summary)));  // the openai clients raise it as an APIError
  last.push_back("[DONE]");
  for (const std::string& data : last)
    if (!send_event(sink, data)) return false;
  sink.done();
  return true;
}

}  // namespace

Generation::Generation(RouteContext& context, std::shared_ptr<const ServedModel> served,
                       std::shared_ptr<RequestStream> stream, ResponseBuilder builder, ClientConnection client)
    : context(context), served(std::move(served)), stream(std::move(stream)), builder(std::move(builder)),
      client(client) {
  context.track(this->stream);
}

Generation::~Generation() {
  if (!finished) stream->cancel();
  context.untrack(stream);
}

bool Generation::next_event(StreamEvent& event) {
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_client_check) {
    next_client_check = now + client_poll_interval;
    if (!stream->cancelled() && client.closed()) stream->cancel();
  }
  if (!stream->next(event, client_poll_interval)) return false;
  if (event.done) {
    finished = true;
    context.metrics.observe_generation(*event.done);
    if (on_done) on_done(*event.done);
  }
  return true;
}

std::shared_ptr<Generation> submit_generation(RouteContext& context, std::shared_ptr<const ServedModel> served,
                                              GenerationRequest request, ResponseHeader header,
                                              ResponseOptions options, const httplib::Request& http_request) {
  std::shared_ptr<RequestStream> submitted;
  try {
    submitted = served->scheduler->submit(std::move(request));
  } catch (const Error& e) {  // a request that can never run; the checks before should have caught it
    throw invalid_request(e.what());
  }
  if (!submitted && !served->scheduler->accepting())
    throw unavailable("the server is shutting down and takes no new requests", "shutting_down");
  if (!submitted)
    throw unavailable("the server is busy: every slot is generating and the queue is full; retry later",
                      "queue_full");
  const Tokenizer& tokenizer = served->scheduler->model().tokenizer();
  return std::make_shared<Generation>(context, served, std::move(submitted),
                                      ResponseBuilder(std::move(header), options, tokenizer),
                                      ClientConnection(addresses_of(http_request)));
}

CollectedAnswer collect_answer(Generation& generation, bool stream) {
  CollectedAnswer answer;
  if (stream)
    if (const std::optional<std::string> first = generation.builder.stream_start()) answer.chunks.push_back(*first);
  StreamEvent event;
  while (true) {
    if (!generation.next_event(event)) continue;
    if (event.token) {
      if (!stream) generation.builder.add(*event.token);
      else if (const std::optional<std::string> chunk = generation.builder.stream_token(*event.token))
        answer.chunks.push_back(*chunk);
    }
    if (!event.done) continue;
    answer.summary = *event.done;
    if (answer.summary.finish != FinishReason::Stop && answer.summary.finish != FinishReason::Length)
      throw failure_of(answer.summary);
    return answer;
  }
}

void answer_whole(Generation& generation, httplib::Response& response) {
  const CollectedAnswer answer = collect_answer(generation, /*stream=*/false);
  response.status = 200;
  response.set_content(generation.builder.whole_response(answer.summary), "application/json");
}

void answer_stream(std::shared_ptr<Generation> generation, httplib::Response& response) {
  response.status = 200;
  response.set_header("Cache-Control", "no-cache");
  response.set_chunked_content_provider(
      "text/event-stream",
      [generation](size_t, httplib::DataSink& sink) {
        // This runs after the route's handler has returned, outside its catch: nothing may escape
        // into cpp-httplib's worker thread. A failure ends this stream (and cancels it), no more.
        try {
          return provide_stream(*generation, sink);
        } catch (...) {
          return false;
        }
      },
      [generation](bool) { generation->stream->cancel(); });  // after the last chunk this changes nothing
}

namespace {

void run_generation(RouteContext& context, std::shared_ptr<const ServedModel> served, GenerationRequest request,
                    ResponseHeader header, ResponseOptions options, bool stream, const httplib::Request& http_request,
                    httplib::Response& response) {
  if (context.options.router)
    return run_routed_generation(context, std::move(served), std::move(request), std::move(header), options, stream,
                                 http_request, response);
  std::shared_ptr<Generation> generation =
      submit_generation(context, std::move(served), std::move(request), std::move(header), options, http_request);
  if (stream) answer_stream(std::move(generation), response);
  else answer_whole(*generation, response);
}

ResponseHeader response_header(const char* id_prefix, const GenerationParams& params, const RouteContext& context) {
  return {new_response_id(id_prefix), params.model.empty() ? context.options.model_name : params.model,
          int64_t(std::time(nullptr))};
}

}  // namespace

std::shared_ptr<const ServedModel> RouteContext::ready_model() const {
  std::lock_guard lock(mutex_);
  if (refusing_) throw unavailable("the server is shutting down", "shutting_down");
  if (!model_) throw unavailable("the model is still loading", "model_loading");
  return model_;
}

void RouteContext::set_model(std::shared_ptr<const ServedModel> served) {
  std::lock_guard lock(mutex_);
  model_ = std::move(served);
}

void RouteContext::refuse_new_requests() {
  std::lock_guard lock(mutex_);
  refusing_ = true;
}

void RouteContext::track(const std::shared_ptr<RequestStream>& stream) {
  std::lock_guard lock(mutex_);
  in_flight_.insert(stream);
}

void RouteContext::untrack(const std::shared_ptr<RequestStream>& stream) {
  std::lock_guard lock(mutex_);
  in_flight_.erase(stream);
  if (in_flight_.empty()) idle_.notify_all();
}

void RouteContext::wait_until_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return in_flight_.empty(); });
}

void RouteContext::cancel_all() {
  std::lock_guard lock(mutex_);
  for (const std::shared_ptr<RequestStream>& stream : in_flight_) stream->cancel();
}

void send_error(httplib::Response& response, const ApiError& error, int32_t retry_after_seconds) {
  response.status = error.status();
  response.set_content(error_body(error), "application/json");
  if (error.status() == 503) response.set_header("Retry-After", std::to_string(retry_after_seconds));
}

void handle_chat_completions(RouteContext& context, const httplib::Request& http_request, httplib::Response& response) {
  std::shared_ptr<const ServedModel> served = context.ready_model();
  const ChatRequest request = parse_chat_request(http_request.body, context.options.sampling, context.options.limits);
  const Tokenizer& tokenizer = served->scheduler->model().tokenizer();
  PreparedPrompt prompt = prepare_chat_prompt(served->chat_template, tokenizer, request);
  const chat::ToolCallFormat tool_format = chat::detect_tool_call_format(served->chat_template.source);
  const bool parse_tool_calls = request.tool_choice.mode != ToolChoice::Mode::None;
  const ResponseOptions options{Endpoint::ChatCompletions, prompt.starts_inside_thinking,
                                request.params.top_logprobs >= 0, request.params.include_usage,
                                parse_tool_calls ? std::optional(tool_format) : std::nullopt};
  // A template that knows <think> (Qwen3, DeepSeek-R1) may open one; a prompt may end inside it.
  const chat::ThinkBlock think = prompt.starts_inside_thinking ? chat::ThinkBlock::Open
                                 : served->chat_template.source.find("<think>") != std::string::npos ? chat::ThinkBlock::Optional
                                                                                                    : chat::ThinkBlock::None;
  std::optional<Grammar> grammar = chat_output_grammar(request, tool_format, think, context.grammars);
  GenerationRequest generation =
      make_generation_request(std::move(prompt), request.params, served->scheduler->n_ctx(), "messages");
  generation.grammar = std::move(grammar);
  run_generation(context, served, std::move(generation), response_header("chatcmpl-", request.params, context),
                 options, request.params.stream, http_request, response);
}

void handle_completions(RouteContext& context, const httplib::Request& http_request, httplib::Response& response) {
  std::shared_ptr<const ServedModel> served = context.ready_model();
  const CompletionRequest request =
      parse_completion_request(http_request.body, context.options.sampling, context.options.limits);
  PreparedPrompt prompt = prepare_completion_prompt(served->scheduler->model().tokenizer(), request);
  const ResponseOptions options{Endpoint::Completions, false, request.params.top_logprobs >= 0,
                                request.params.include_usage, std::nullopt};
  std::optional<Grammar> grammar = completion_output_grammar(request, context.grammars);
  GenerationRequest generation =
      make_generation_request(std::move(prompt), request.params, served->scheduler->n_ctx(), "prompt");
  generation.grammar = std::move(grammar);
  run_generation(context, served, std::move(generation), response_header("cmpl-", request.params, context), options,
                 request.params.stream, http_request, response);
}

}  // namespace slm::server
