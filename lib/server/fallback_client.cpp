#include "lib/server/fallback_client.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "slm/error.hpp"

namespace slm::server {

namespace {

using Json = nlohmann::ordered_json;

std::string error_message_of(const std::string& body) {
  const Json json = Json::parse(body, nullptr, false);
  if (json.is_object() && json.contains("error") && json["error"].is_object() && json["error"].contains("message") &&
      json["error"]["message"].is_string())
    return json["error"]["message"].get<std::string>().substr(0, 200);
  return "no OpenAI error object";
}

}  // namespace

FallbackClient::FallbackClient(FallbackOptions options) : options_(std::move(options)) {
  const std::string& url = options_.url;
  const bool https = url.starts_with("https://");
  if (!https && !url.starts_with("http://"))
    throw Error(fmt::format("--fallback-url {}: it must start with http:// or https://", url));
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (https) throw Error("--fallback-url: https needs cpp-httplib built with OpenSSL, and this one is not");
#endif
  const size_t path_at = url.find('/', https ? 8 : 7);
  scheme_host_port_ = url.substr(0, path_at);
  base_path_ = path_at == std::string::npos ? "" : url.substr(path_at);
  while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  if (scheme_host_port_.size() <= (https ? 8u : 7u)) throw Error(fmt::format("--fallback-url {}: no host", url));
  if (options_.model.empty()) throw Error("--fallback-model: the fallback's model name is empty");
  if (!(options_.timeout_seconds > 0)) throw Error("--fallback-timeout must be positive");
}

FallbackClient::~FallbackClient() = default;

FallbackAnswer FallbackClient::ask(Endpoint endpoint, std::string_view request_body) const {
  const auto start = std::chrono::steady_clock::now();
  FallbackAnswer answer;
  const auto done = [&](std::string error) {
    answer.error = std::move(error);
    answer.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return answer;
  };
  Json request = Json::parse(request_body, nullptr, false);
  if (!request.is_object()) return done("the request is not a JSON object");  // parsed already: cannot happen
  request["model"] = options_.model;
  request["stream"] = false;
  request.erase("stream_options");

  httplib::Client client(scheme_host_port_);
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::duration<double>(options_.timeout_seconds));
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  httplib::Headers headers;
  if (!options_.api_key.empty()) headers.emplace("Authorization", "Bearer " + options_.api_key);
  const std::string path =
      base_path_ + (endpoint == Endpoint::ChatCompletions ? "/chat/completions" : "/completions");
  const httplib::Result result =
      client.Post(path, headers, request.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
  if (!result) return done(fmt::format("no answer: {}", httplib::to_string(result.error())));
  if (result->status != 200)
    return done(fmt::format("status {}: {}", result->status, error_message_of(result->body)));
  const Json body = Json::parse(result->body, nullptr, false);
  if (!body.is_object() || !body.contains("choices") || !body["choices"].is_array() || body["choices"].empty() ||
      !body["choices"][0].is_object())
    return done("the answer has no choices");
  const Json& choice = body["choices"][0];
  const bool has_answer = endpoint == Endpoint::ChatCompletions
                              ? choice.contains("message") && choice["message"].is_object()
                              : choice.contains("text") && choice["text"].is_string();
  if (!has_answer) return done(endpoint == Endpoint::ChatCompletions ? "the answer's choice has no message"
                                                                      : "the answer's choice has no text");
  answer.ok = true;
  answer.body = result->body;
  return done({});
}

}  // namespace slm::server
