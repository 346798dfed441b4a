#include "lib/server/route_request.hpp"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "lib/confidence_json.hpp"

namespace slm::server {

namespace {

using Json = nlohmann::ordered_json;

std::string dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Where a request went and why, as it is reported: slm_route, the header, /metrics, the log.
struct RouteReport {
  Route route = Route::Local;
  RouteReason reason = RouteReason::PromptWithinLimit;
  std::optional<Confidence> local_confidence;
  std::string fallback_error;
};

Json route_json(const RouteReport& report, const RoutePolicy& policy) {
  Json json = {{"route", route_name(report.route)},
               {"reason", route_reason_name(report.reason)},
               {"confidence", report.local_confidence ? confidence_json(*report.local_confidence) : Json(nullptr)},
               {"threshold", policy.min_mean_logprob ? Json(*policy.min_mean_logprob) : Json(nullptr)}};
  if (!report.fallback_error.empty()) json["fallback_error"] = report.fallback_error;
  return json;
}

std::string sse_text(const std::vector<std::string>& chunks) {
  std::string text;
  for (const std::string& chunk : chunks) text += "data: " + chunk + "\n\n";
  return text + "data: [DONE]\n\n";
}

// Counts the route for /metrics and writes the log line.
void report_route(RouteContext& context, Router& router, RouteRecord& record, const RouteReport& report) {
  record.route = route_name(report.route);
  record.reason = route_reason_name(report.reason);
  record.fallback_error = report.fallback_error;
  context.metrics.count_route(record.route, record.reason);
  router.log(record);
}

// One routed request: what it asked, and the record of where it went.
struct RoutedRequest {
  RouteContext& context;
  Router& router;
  ResponseOptions options;
  bool stream;
  const httplib::Request& http_request;
  httplib::Response& response;
  RouteRecord record;

  void report(const RouteReport& report) { report_route(context, router, record, report); }

  // Asks the fallback; on success its answer is the response. False: the local answer is next.
  bool answered_by_fallback(RouteReport& report) {
    const FallbackAnswer answer = router.ask_fallback(options.endpoint, http_request.body);
    context.metrics.observe_fallback(answer.seconds, answer.ok);
    record.fallback_seconds = answer.seconds;
    if (!answer.ok) {
      report.route = Route::Local;
      report.reason = RouteReason::FallbackFailed;
      report.fallback_error = answer.error;
      return false;
    }
    report.route = Route::Fallback;
    const Json route = route_json(report, router.policy());
    response.status = 200;
    response.set_header("x-slm-route", "fallback");
    if (stream) {
      response.set_header("Cache-Control", "no-cache");
      response.set_content(sse_text(fallback_stream_chunks(options.endpoint, answer.body, options.include_usage,
                                                           dump({{"slm_route", route}}))),
                           "text/event-stream");
    } else {
      Json body = Json::parse(answer.body);
      body["slm_route"] = route;
      response.set_content(dump(body), "application/json");
    }
    this->report(report);
    return true;
  }
};

}  // namespace

Router::Router(RouterOptions options) : options_(std::move(options)), fallback_(options_.fallback) {
  if (!options_.log_path.empty()) log_ = std::make_unique<RouteLog>(options_.log_path, options_.log_prompts);
}

void Router::log(const RouteRecord& record) {
  if (log_) log_->write(record);
}

void run_routed_generation(RouteContext& context, std::shared_ptr<const ServedModel> served,
                           GenerationRequest request, ResponseHeader header, ResponseOptions options, bool stream,
                           const httplib::Request& http_request, httplib::Response& response) {
  Router& router = *context.options.router;
  RoutedRequest routed{context, router, options, stream, http_request, response, {}};
  RouteRecord& record = routed.record;
  record.endpoint = options.endpoint == Endpoint::ChatCompletions ? "chat.completions" : "completions";
  record.model = header.model;
  record.stream = stream;
  record.prompt_tokens = int32_t(request.prompt.size());
  if (router.logs_prompts()) record.request_body = http_request.body;

  const PromptDecision decision = decide_on_prompt(router.policy(), header.model, record.prompt_tokens);
  RouteReport report{Route::Local, decision.reason, std::nullopt, {}};
  if (decision.to_fallback && routed.answered_by_fallback(report)) return;

  std::shared_ptr<Generation> generation =
      submit_generation(context, std::move(served), std::move(request), std::move(header), options, http_request);
  if (!decision.check_confidence) {
    // Decided on the prompt: the local answer goes out as it is generated, reported at its end.
    // It runs after this handler has returned when streaming: it holds only what outlives it.
    Generation* const local = generation.get();  // on_done is the generation's own: no cycle
    generation->on_done = [local, &context, &router, record, report](const GenerationSummary& summary) mutable {
      report.local_confidence = summary.confidence;
      record.confidence = summary.confidence;
      record.completion_tokens = summary.completion_tokens;
      local->builder.set_extension("slm_route", dump(route_json(report, router.policy())));
      report_route(context, router, record, report);
    };
    response.set_header("x-slm-route", "local");
    if (stream) answer_stream(std::move(generation), response);
    else answer_whole(*generation, response);
    return;
  }

  // confidence:T: the whole local answer first, then the decision.
  CollectedAnswer local = collect_answer(*generation, stream);
  report.local_confidence = local.summary.confidence;
  record.confidence = local.summary.confidence;
  record.completion_tokens = local.summary.completion_tokens;
  if (confidence_too_low(router.policy(), local.summary.confidence)) {
    report.reason = RouteReason::LowConfidence;
    if (routed.answered_by_fallback(report)) return;
  }
  generation->builder.set_extension("slm_route", dump(route_json(report, router.policy())));
  response.status = 200;
  response.set_header("x-slm-route", "local");
  if (stream) {
    for (std::string& chunk : generation->builder.stream_end(local.summary)) local.chunks.push_back(std::move(chunk));
    response.set_header("Cache-Control", "no-cache");
    response.set_content(sse_text(local.chunks), "text/event-stream");
  } else {
    response.set_content(generation->builder.whole_response(local.summary), "application/json");
  }
  routed.report(report);
}

std::vector<std::string> fallback_stream_chunks(Endpoint endpoint, const std::string& whole_body, bool include_usage,
                                                const std::string& final_fields_json) {
  const Json whole = Json::parse(whole_body);
  const Json& choice = whole["choices"][0];
  const Json finish_reason = choice.value("finish_reason", Json("stop"));
  const bool chat = endpoint == Endpoint::ChatCompletions;
  Json head = {{"id", whole.value("id", Json(""))},
               {"object", chat ? "chat.completion.chunk" : "text_completion"},
               {"created", whole.value("created", Json(0))},
               {"model", whole.value("model", Json(""))}};
  const auto chunk = [&](Json choice_fields) {
    Json body = head;
    choice_fields["index"] = 0;
    body["choices"] = Json::array({choice_fields});
    if (include_usage) body["usage"] = nullptr;
    return body;
  };
  std::vector<Json> chunks;
  if (chat) {
    const Json message = choice.value("message", Json::object());
    chunks.push_back(chunk({{"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}));
    Json delta = Json::object();
    if (message.contains("reasoning_content")) delta["reasoning_content"] = message["reasoning_content"];
    if (message.contains("content") && message["content"].is_string()) delta["content"] = message["content"];
    if (message.contains("tool_calls") && message["tool_calls"].is_array()) {
      Json calls = message["tool_calls"];
      for (size_t i = 0; i < calls.size(); ++i) calls[i]["index"] = i;
      delta["tool_calls"] = calls;
    }
    chunks.push_back(chunk({{"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}));
    chunks.push_back(chunk({{"delta", Json::object()}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}));
  } else {
    chunks.push_back(chunk({{"text", choice.value("text", Json(""))}, {"logprobs", nullptr}, {"finish_reason", nullptr}}));
    chunks.push_back(chunk({{"text", ""}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}));
  }
  chunks.back().update(Json::parse(final_fields_json));
  if (include_usage && whole.contains("usage")) {
    Json usage = head;
    usage["choices"] = Json::array();
    usage["usage"] = whole["usage"];
    chunks.push_back(usage);
  }
  std::vector<std::string> texts;
  for (const Json& c : chunks) texts.push_back(dump(c));
  return texts;
}

}  // namespace slm::server
