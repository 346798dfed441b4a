// The fallback of tiered routing: any OpenAI-compatible endpoint (a hosted API, or another
// slm-server with a bigger model), asked with cpp-httplib's client. The request is the client's
// own body with `model` set to the fallback's model name and streaming off (the answer is
// relayed whole, or re-streamed by route_request.cpp).
//
// The API key goes only into the Authorization header: no error message, log line or
// response holds it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "lib/server/openai_response.hpp"

namespace httplib {
class Client;
}

namespace slm::server {

struct FallbackOptions {
  std::string url;          // the base URL, as the openai clients' base_url: http://host:port/v1
  std::string model;        // the `model` of every request to it
  std::string api_key;      // empty: no Authorization header
  double timeout_seconds = 60;  // to connect, and for the whole answer to arrive
};

struct FallbackAnswer {
  bool ok = false;
  std::string body;     // ok: the fallback's JSON response
  std::string error;    // not ok: what went wrong, without the key ("connection refused", "status 500: ...")
  double seconds = 0;   // the time it took
};

class FallbackClient {
 public:
  // Throws slm::Error for a URL that is not http:// or https:// (https needs cpp-httplib built
  // with OpenSSL; Debian's is).
  explicit FallbackClient(FallbackOptions options);
  ~FallbackClient();

  // Asks the fallback the request whose JSON body the client sent to this server. A network
  // error, a timeout, a status other than 200 or a body without a choice of the endpoint's
  // shape (chat: a message; completions: a text) is an answer not ok.
  FallbackAnswer ask(Endpoint endpoint, std::string_view request_body) const;

  const FallbackOptions& options() const { return options_; }

 private:
  FallbackOptions options_;
  std::string scheme_host_port_, base_path_;
};

}  // namespace slm::server
