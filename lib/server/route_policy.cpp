#include "lib/server/route_policy.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "slm/error.hpp"

namespace slm::server {

namespace {

template <typename Number>
Number parse_number(std::string_view text, std::string_view part) {
  Number value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty())
    throw Error(fmt::format("--route: '{}' needs a number after the colon", part));
  return value;
}

}  // namespace

RoutePolicy parse_route_policy(std::string_view text) {
  RoutePolicy policy;
  if (text.empty()) throw Error("--route: no policy given (confidence:T, prompt-tokens:N, model:auto)");
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string_view part = text.substr(at, comma - at);
    at = comma + 1;
    const size_t colon = part.find(':');
    const std::string_view name = part.substr(0, colon);
    const std::string_view value = colon == std::string_view::npos ? std::string_view() : part.substr(colon + 1);
    if (name == "confidence") {
      if (policy.min_mean_logprob) throw Error("--route: confidence is given twice");
      const double threshold = parse_number<double>(value, part);
      if (!std::isfinite(threshold) || threshold > 0)
        throw Error(fmt::format("--route: '{}': T is a mean log-probability, at most 0 (e.g. confidence:-1.5)", part));
      policy.min_mean_logprob = threshold;
    } else if (name == "prompt-tokens") {
      if (policy.max_local_prompt_tokens) throw Error("--route: prompt-tokens is given twice");
      const int32_t n = parse_number<int32_t>(value, part);
      if (n < 0) throw Error(fmt::format("--route: '{}': N must not be negative", part));
      policy.max_local_prompt_tokens = n;
    } else if (name == "model" && value == "auto") {
      policy.only_model_auto = true;
    } else {
      throw Error(fmt::format("--route: unknown policy '{}' (confidence:T, prompt-tokens:N, model:auto)", part));
    }
  }
  return policy;
}

std::string_view route_name(Route route) { return route == Route::Fallback ? "fallback" : "local"; }

std::string_view route_reason_name(RouteReason reason) {
  switch (reason) {
    case RouteReason::ModelNamed: return "model_named";
    case RouteReason::PromptWithinLimit: return "prompt_within_limit";
    case RouteReason::Confident: return "confident";
    case RouteReason::FallbackFailed: return "fallback_failed";
    case RouteReason::ModelAuto: return "model_auto";
    case RouteReason::PromptTokens: return "prompt_tokens";
    case RouteReason::LowConfidence: return "low_confidence";
  }
  return "unknown";
}

PromptDecision decide_on_prompt(const RoutePolicy& policy, std::string_view requested_model, int32_t prompt_tokens) {
  if (policy.only_model_auto && requested_model != "auto") return {false, false, RouteReason::ModelNamed};
  if (policy.max_local_prompt_tokens && prompt_tokens > *policy.max_local_prompt_tokens)
    return {true, false, RouteReason::PromptTokens};
  if (policy.min_mean_logprob) return {false, true, RouteReason::Confident};
  if (policy.only_model_auto && !policy.max_local_prompt_tokens) return {true, false, RouteReason::ModelAuto};
  return {false, false, RouteReason::PromptWithinLimit};
}

bool confidence_too_low(const RoutePolicy& policy, const Confidence& local) {
  return policy.min_mean_logprob && local.n_tokens > 0 && local.mean_logprob < *policy.min_mean_logprob;
}

}  // namespace slm::server
