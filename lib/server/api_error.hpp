// The OpenAI error object, {"error": {"message", "type", "param", "code"}}, and the HTTP status
// it is sent with. Everything the server refuses is one of these; clients such as the official
// `openai` packages turn them into typed exceptions (BadRequestError, AuthenticationError, ...).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace slm::server {

class ApiError : public std::runtime_error {
 public:
  // An empty param or code is sent as null.
  ApiError(int status, const std::string& message, std::string type, std::string param = {}, std::string code = {});

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string type_, param_, code_;
};

// 400: malformed JSON, a wrong type or value; `param` names the field at fault.
ApiError invalid_request(const std::string& message, std::string param = {}, std::string code = {});
// 401: a missing or wrong API key.
ApiError invalid_api_key();
// 404: no such route.
ApiError unknown_route(const std::string& method, const std::string& path);
// 413: a body over the limit.
ApiError body_too_large(size_t limit_bytes);
// 503: the queue is full or the model is still loading; sent with Retry-After.
ApiError unavailable(const std::string& message, std::string code);
// 500: what should not happen (a bug, or out of memory); the server goes on serving.
ApiError internal_error(const std::string& message);

// The JSON body.
std::string error_body(const ApiError& error);

}  // namespace slm::server
