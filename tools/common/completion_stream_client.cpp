#include "common/completion_stream_client.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <regex>

#include "slm/error.hpp"

namespace slm::tools {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::vector<std::string> SseDataParser::feed(std::string_view bytes) {
  std::vector<std::string> events;
  for (char c : bytes) {
    if (c != '\n') {
      line_ += c;
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.empty()) {  // the blank line ends the event
      if (event_has_data_) events.push_back(std::move(event_data_));
      event_data_.clear();
      event_has_data_ = false;
    } else if (line_.starts_with("data:")) {
      std::string_view value = std::string_view(line_).substr(5);
      if (value.starts_with(' ')) value.remove_prefix(1);
      if (event_has_data_) event_data_ += '\n';
      event_data_ += value;
      event_has_data_ = true;
    }
    line_.clear();
  }
  return events;
}

ServerUrl parse_server_url(const std::string& url) {
  static const std::regex pattern(R"(^(https?)://([^/?#]+)(/[^?#]*)?$)");
  std::smatch match;
  if (!std::regex_match(url, match, pattern))
    throw Error(fmt::format("server URL '{}': expected http://HOST:PORT, optionally followed by a path such as /v1", url));
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (match[1] == "https")
    throw Error(fmt::format("server URL '{}': https needs cpp-httplib built with OpenSSL, and this one is not", url));
#endif
  std::string path = match[3].str();
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (!path.ends_with("/v1")) path += "/v1";
  return {fmt::format("{}://{}", match[1].str(), match[2].str()), path};
}

CompletionStreamClient::CompletionStreamClient(const std::string& url, const std::string& api_key,
                                               double timeout_seconds) {
  const ServerUrl parts = parse_server_url(url);
  client_ = std::make_unique<httplib::Client>(parts.scheme_host_port);
  server_ = parts.scheme_host_port;
  api_root_ = parts.api_root;
  const auto timeout = std::chrono::duration<double>(timeout_seconds);
  client_->set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  client_->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  client_->set_keep_alive(true);
  client_->set_tcp_nodelay(true);  // else Nagle holds the body back behind the headers for the peer's delayed ACK (40 ms)
  if (!api_key.empty()) client_->set_bearer_token_auth(api_key);
}

CompletionStreamClient::~CompletionStreamClient() = default;

namespace {

std::string transport_error_text(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: return "could not connect";
    case httplib::Error::ConnectionTimeout: return "the connection timed out";
    case httplib::Error::Read: return "the answer broke off or timed out";
    case httplib::Error::Write: return "the request could not be sent";
    default: return httplib::to_string(error);
  }
}

// The server's own words from an error body: OpenAI's {"error": {"message": ...}}, else the body.
std::string error_message(const std::string& body) {
  const Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("error")) {
    const Json& error = parsed["error"];
    if (error.is_object() && error.contains("message") && error["message"].is_string())
      return error["message"].get<std::string>();
    if (error.is_string()) return error.get<std::string>();
  }
  return body.size() > 200 ? body.substr(0, 200) + "..." : body;
}

// One event's data: a completion chunk. False when the stream reports an error.
bool read_chunk(const std::string& data, double seconds, StreamedCompletion& result) {
  const Json chunk = Json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!chunk.is_object()) {
    result.error = fmt::format("a stream event is not JSON: {}", data.substr(0, 120));
    return false;
  }
  if (chunk.contains("error")) {
    result.error = "the stream reported an error: " + error_message(data);
    return false;
  }
  if (chunk.contains("choices") && chunk["choices"].is_array() && !chunk["choices"].empty()) {
    const Json& choice = chunk["choices"][0];
    if (choice.contains("text") && choice["text"].is_string() && !choice["text"].get_ref<const std::string&>().empty()) {
      if (result.text_chunks == 0) result.seconds_to_first_token = seconds;
      result.seconds_to_last_token = seconds;
      ++result.text_chunks;
      result.text += choice["text"].get_ref<const std::string&>();
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string())
      result.finish_reason = choice["finish_reason"].get<std::string>();
  }
  if (chunk.contains("usage") && chunk["usage"].is_object()) {
    const Json& usage = chunk["usage"];
    if (usage.contains("completion_tokens") && usage["completion_tokens"].is_number_integer()) {
      result.completion_tokens = usage["completion_tokens"].get<int32_t>();
      result.usage_reported = true;
    }
    if (usage.contains("prompt_tokens") && usage["prompt_tokens"].is_number_integer())
      result.prompt_tokens = usage["prompt_tokens"].get<int32_t>();
  }
  return true;
}

}  // namespace

StreamedCompletion CompletionStreamClient::stream_completion(const Json& body) {
  StreamedCompletion result;
  SseDataParser parser;
  std::string error_body;  // the body of a refusal, which is not an event stream
  bool saw_done = false, stream_failed = false;
  int status = 0;
  const Clock::time_point start = Clock::now();
  const auto seconds_since_start = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };

  httplib::Request request;
  request.method = "POST";
  request.path = api_root_ + "/completions";
  request.body = body.dump();
  request.set_header("Content-Type", "application/json");
  request.set_header("Accept", "text/event-stream");
  request.response_handler = [&](const httplib::Response& response) {
    status = response.status;
    return true;
  };
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    if (status != 200) {
      error_body.append(data, std::min<size_t>(size, 4096 - std::min<size_t>(4096, error_body.size())));
      return true;
    }
    const double seconds = seconds_since_start();
    for (const std::string& event : parser.feed(std::string_view(data, size))) {
      if (event == "[DONE]") {
        saw_done = true;
      } else if (!read_chunk(event, seconds, result)) {
        stream_failed = true;
        return false;  // stop reading: the request failed
      }
    }
    return true;
  };

  httplib::Response response;
  httplib::Error transport_error = httplib::Error::Success;
  const bool sent = client_->send(request, response, transport_error);
  result.seconds_total = seconds_since_start();
  if (!result.usage_reported) result.completion_tokens = result.text_chunks;
  if (stream_failed) return result;
  if (!sent) {
    result.error = transport_error_text(transport_error);
  } else if (status != 200) {
    result.error = fmt::format("HTTP {}: {}", status, error_message(error_body));
  } else if (!saw_done && result.finish_reason.empty()) {
    result.error = "the stream ended before its last chunk";
  } else {
    result.ok = true;
  }
  return result;
}

std::vector<std::string> CompletionStreamClient::model_ids() {
  const httplib::Result response = client_->Get(api_root_ + "/models");
  if (!response)
    throw Error(fmt::format("GET {}{}/models: {}", server_, api_root_, transport_error_text(response.error())));
  if (response->status != 200)
    throw Error(fmt::format("GET {}{}/models: HTTP {}: {}", server_, api_root_, response->status, error_message(response->body)));
  const Json models = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> ids;
  if (models.is_object() && models.contains("data") && models["data"].is_array())
    for (const Json& model : models["data"])
      if (model.is_object() && model.contains("id") && model["id"].is_string()) ids.push_back(model["id"].get<std::string>());
  return ids;
}

}  // namespace slm::tools
