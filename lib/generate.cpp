#include "slm/generate.hpp"

#include "lib/stop_strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace slm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfGeneration: return "end_of_generation";
    case StopReason::StopString: return "stop_string";
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::ContextFull: return "context_full";
    case StopReason::Cancelled: return "cancelled";
  }
  return "unknown";
}

GenerateResult generate(Session& session, Sampler& sampler, std::span<const TokenId> prompt,
                        const GenerateOptions& options, const TextCallback& on_text) {
  const Tokenizer& tokenizer = session.model().tokenizer();
  if (prompt.empty()) throw Error("the prompt has no tokens");
  if (int64_t(prompt.size()) > session.n_ctx())
    throw Error(fmt::format("the prompt has {} tokens, more than the context of {} tokens", prompt.size(), session.n_ctx()));

  GenerateResult result;
  result.n_prompt_tokens = int32_t(prompt.size());

  // Reuse the longest prefix the cache already holds; at least one token must be
  // evaluated to get logits.
  const std::vector<TokenId>& cached = session.cached_tokens();
  size_t reuse = std::mismatch(cached.begin(), cached.end(), prompt.begin(), prompt.end()).first - cached.begin();
  reuse = std::min(reuse, prompt.size() - 1);

  const auto start = Clock::now();
  std::span<const float> logits = session.eval(prompt.subspan(reuse), int32_t(reuse));
  result.prompt_seconds = seconds_since(start);
  result.n_prompt_evaluated = int32_t(prompt.size() - reuse);
  for (TokenId t : prompt) sampler.accept(t);

  Utf8StreamDecoder decoder;
  StopStringFilter stop_filter{options.stop_strings, {}};
  const auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    result.text += text;
    return on_text ? on_text(text) : true;
  };

  Clock::time_point generation_start;
  while (true) {
    if (options.cancel && options.cancel->load()) {
      result.stop_reason = StopReason::Cancelled;
      break;
    }
    if (options.max_tokens >= 0 && int32_t(result.tokens.size()) >= options.max_tokens) {
      result.stop_reason = StopReason::MaxTokens;
      break;
    }
    const TokenId token = sampler.sample(logits);
    sampler.accept(token);
    if (result.tokens.empty()) {
      result.time_to_first_token = seconds_since(start);
      generation_start = Clock::now();
    }
    if (options.stop_at_end_of_generation && tokenizer.is_end_of_generation(token)) {
      result.stop_reason = StopReason::EndOfGeneration;
      result.end_token = token;
      break;
    }
    result.tokens.push_back(token);

    bool hit_stop_string = false;
    const std::string text = stop_filter.push(decoder.push(tokenizer.token_to_piece(token)), hit_stop_string);
    if (!emit(text)) {
      result.stop_reason = StopReason::Cancelled;
      return result;
    }
    if (hit_stop_string) {
      result.stop_reason = StopReason::StopString;
      return result;
    }
    if (session.n_past() >= session.n_ctx()) {
      result.stop_reason = StopReason::ContextFull;
      break;
    }
    if (options.max_tokens >= 0 && int32_t(result.tokens.size()) >= options.max_tokens) continue;  // no need to eval
    const TokenId next[1] = {token};
    logits = session.eval(next);
    result.generation_seconds = seconds_since(generation_start);
  }
  bool ignored = false;
  emit(stop_filter.push(decoder.flush(), ignored) + stop_filter.pending);
  return result;
}

}  // namespace slm
