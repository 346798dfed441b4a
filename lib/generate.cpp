#include "slm/generate.hpp"

#include "lib/stop_strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <limits>

#include "slm/grammar.hpp"
#include <cstdint>

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
    case StopReason::GrammarComplete: return "grammar_complete";
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
  reuse = size_t(session.reusable_prefix(int32_t(std::min(reuse, prompt.size() - 1))));  // hybrid: a state checkpoint

  const auto start = Clock::now();
  std::span<const float> logits = session.eval(prompt.subspan(reuse), int32_t(reuse));
  result.prompt_seconds = seconds_since(start);
  result.n_prompt_evaluated = int32_t(prompt.size() - reuse);
  for (TokenId t : prompt) sampler.accept(t);
  Speculator* const speculator = options.speculator;
  if (speculator && options.grammar) throw Error("speculative decoding with a grammar is not supported yet");
  if (speculator) speculator->begin(prompt, sampler);

  GrammarMatcher* const grammar = options.grammar;
  TokenMask mask;
  std::vector<float> masked_logits;

  Utf8StreamDecoder decoder;
  StopStringFilter stop_filter{options.stop_strings, {}};
  const auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    result.text += text;
    return on_text ? on_text(text) : true;
  };

  ConfidenceMeter confidence;
  // Every way out of the loop passes here, with the summary of the tokens sampled so far.
  const auto finished = [&] {
    result.confidence = confidence.summary();
    return result;
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
    const TokenId token = grammar ? sample_with_grammar(sampler, logits, *grammar, mask, masked_logits)
                          : speculator ? speculator->pick(sampler, logits) : sampler.sample(logits);
    sampler.accept(token);
    confidence.add(logits, token);  // the raw row: before the grammar's mask, penalties and temperature
    if (grammar && !grammar->accept_token(token)) throw Error("grammar: the sampled token does not continue the grammar");
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
      return finished();
    }
    if (hit_stop_string) {
      result.stop_reason = StopReason::StopString;
      return finished();
    }
    if (grammar && grammar->is_complete()) {
      result.stop_reason = StopReason::GrammarComplete;
      break;
    }
    if (int64_t(prompt.size() + result.tokens.size()) > session.n_ctx()) {  // no room for the token's keys
      result.stop_reason = StopReason::ContextFull;
      break;
    }
    const int32_t n_left = options.max_tokens < 0 ? INT32_MAX : options.max_tokens - int32_t(result.tokens.size());
    if (n_left <= 0) continue;  // no need to eval
    if (speculator) {
      logits = speculator->advance(session, sampler, token, n_left);
      result.speculation = speculator->stats();
    } else {
      const TokenId next[1] = {token};
      logits = session.eval(next);
    }
    result.generation_seconds = seconds_since(generation_start);
  }
  bool ignored = false;
  emit(stop_filter.push(decoder.flush(), ignored) + stop_filter.pending);
  return finished();
}

}  // namespace slm
