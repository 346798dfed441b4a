// Tiered routing's decisions (slm-server --route): which requests a bigger, OpenAI-compatible
// model (the fallback) answers instead of the local one. Pure functions over the request's
// model name, its prompt's length and the local answer's confidence; the HTTP flow that acts on
// them is route_request.cpp.
//
//   confidence:T     answer locally; when the answer's mean token logprob is below T, ask the
//                    fallback and return its answer
//   prompt-tokens:N  a prompt of more than N tokens goes straight to the fallback
//   model:auto       route only requests for the model "auto"; a named model is always local.
//                    Alone, it sends every "auto" request to the fallback.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "slm/confidence.hpp"

namespace slm::server {

struct RoutePolicy {
  std::optional<double> min_mean_logprob;        // confidence:T
  std::optional<int32_t> max_local_prompt_tokens; // prompt-tokens:N
  bool only_model_auto = false;                  // model:auto
};

// "confidence:-1.5,prompt-tokens:2000,model:auto" (any order, each at most once). Throws
// slm::Error naming the part at fault.
RoutePolicy parse_route_policy(std::string_view text);

enum class Route { Local, Fallback };
std::string_view route_name(Route route);  // "local", "fallback"

// Why a request went where it went: the `reason` of slm_route, the route log and /metrics.
enum class RouteReason {
  ModelNamed,         // local: model:auto, and the request named a model
  PromptWithinLimit,  // local: no policy sent it away
  Confident,          // local: its mean logprob was at least T
  FallbackFailed,     // local: the fallback was asked and failed (or timed out)
  ModelAuto,          // fallback: model:auto alone, and the request asked for "auto"
  PromptTokens,       // fallback: the prompt was longer than N tokens
  LowConfidence,      // fallback: the local answer's mean logprob was below T
};
std::string_view route_reason_name(RouteReason reason);

// What the prompt alone decides.
struct PromptDecision {
  bool to_fallback = false;
  bool check_confidence = false;  // answer locally, then compare its confidence with T
  RouteReason reason = RouteReason::PromptWithinLimit;
};
PromptDecision decide_on_prompt(const RoutePolicy& policy, std::string_view requested_model, int32_t prompt_tokens);

// After a local answer, with decide_on_prompt()'s check_confidence.
bool confidence_too_low(const RoutePolicy& policy, const Confidence& local);

}  // namespace slm::server
