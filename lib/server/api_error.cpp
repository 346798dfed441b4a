#include "lib/server/api_error.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace slm::server {

ApiError::ApiError(int status, const std::string& message, std::string type, std::string param, std::string code)
    : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)),
      code_(std::move(code)) {}

ApiError invalid_request(const std::string& message, std::string param, std::string code) {
  return ApiError(400, message, "invalid_request_error", std::move(param), std::move(code));
}

ApiError invalid_api_key() {
  return ApiError(401, "Invalid or missing API key: send the header 'Authorization: Bearer <key>'",
                  "invalid_request_error", {}, "invalid_api_key");
}

ApiError unknown_route(const std::string& method, const std::string& path) {
  return ApiError(404, fmt::format("Invalid URL ({} {})", method, path), "invalid_request_error", {}, "not_found");
}

ApiError body_too_large(size_t limit_bytes) {
  return ApiError(413, fmt::format("The request body is larger than the limit of {} bytes", limit_bytes),
                  "invalid_request_error", {}, "request_too_large");
}

ApiError unavailable(const std::string& message, std::string code) {
  return ApiError(503, message, "server_error", {}, std::move(code));
}

ApiError internal_error(const std::string& message) {
  return ApiError(500, message, "server_error", {}, "internal_error");
}

std::string error_body(const ApiError& error) {
  using Json = nlohmann::ordered_json;  // OpenAI's key order, for people reading the bodies
  const auto or_null = [](const std::string& text) { return text.empty() ? Json(nullptr) : Json(text); };
  const Json body = {{"error",
                                {{"message", error.what()},
                                 {"type", error.type()},
                                 {"param", or_null(error.param())},
                                 {"code", or_null(error.code())}}}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace slm::server
