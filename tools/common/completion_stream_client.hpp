// A client of any OpenAI-compatible server (slm-server, llama-server, Ollama, vLLM) for
// slm-bench --server: streamed POST /v1/completions requests, timed chunk by chunk, on one
// kept-alive connection, as the `openai` clients send them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace httplib {
class Client;
}

namespace slm::tools {

// Splits a Server-Sent Events byte stream into the data of its events: the `data:` lines of an
// event joined by newlines, dispatched at the blank line that ends it. Other fields (event:,
// id:, comments) are skipped; lines may end in \n or \r\n and arrive in any pieces.
class SseDataParser {
 public:
  // Appends bytes; returns the data of every event they complete, in order.
  std::vector<std::string> feed(std::string_view bytes);

 private:
  std::string line_;         // the current line, until its newline arrives
  std::string event_data_;   // the data lines of the current event
  bool event_has_data_ = false;
};

// What one streamed completion gave, with times measured from just before the request was sent.
struct StreamedCompletion {
  bool ok = false;
  std::string error;               // when !ok: the HTTP status and the server's message, or what broke
  int32_t text_chunks = 0;         // chunks whose choice carried text
  int32_t completion_tokens = 0;   // usage.completion_tokens when the server sent usage, else text_chunks
  int32_t prompt_tokens = -1;      // usage.prompt_tokens; -1 when the server sent no usage
  bool usage_reported = false;
  std::string text;
  std::string finish_reason;
  double seconds_to_first_token = 0;  // to the first chunk with text
  double seconds_to_last_token = 0;   // to the last chunk with text
  double seconds_total = 0;           // to the end of the response
};

// The URL's parts: "http://host:port" (or https, with its certificate checked) and the API root, "/v1" or "<path>/v1" ("http://h:11434/v1"
// and "http://h:11434" both give "/v1"). Throws slm::Error for a URL it cannot use.
struct ServerUrl {
  std::string scheme_host_port;
  std::string api_root;
};
ServerUrl parse_server_url(const std::string& url);

class CompletionStreamClient {
 public:
  // `api_key` is sent as "Authorization: Bearer" when not empty. `timeout_seconds` bounds
  // connecting and each wait for bytes.
  CompletionStreamClient(const std::string& url, const std::string& api_key, double timeout_seconds);
  ~CompletionStreamClient();
  CompletionStreamClient(const CompletionStreamClient&) = delete;
  CompletionStreamClient& operator=(const CompletionStreamClient&) = delete;

  // POST <api root>/completions with `body` (its "stream" should be true). Never throws: a
  // refused or broken request comes back with ok == false.
  StreamedCompletion stream_completion(const nlohmann::json& body);

  // The ids GET <api root>/models lists. Throws slm::Error when the server does not answer them.
  std::vector<std::string> model_ids();

 private:
  std::unique_ptr<httplib::Client> client_;
  std::string server_;  // http://HOST:PORT
  std::string api_root_;
};

}  // namespace slm::tools
