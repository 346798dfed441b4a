// generate(): prompt in, streamed text out. It reuses whatever prefix of the prompt
// the session's KV cache already holds, so a chat turn evaluates only its new tokens.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slm/confidence.hpp"
#include "slm/sampler.hpp"
#include "slm/session.hpp"
#include "slm/speculative.hpp"

namespace slm {

class GrammarMatcher;

struct GenerateOptions {
  int32_t max_tokens = 256;                // generated tokens at most; < 0: until the context is full
  std::vector<std::string> stop_strings;   // generation ends before the first occurrence of any
  bool stop_at_end_of_generation = true;   // EOS / EOT and the other end-of-generation tokens
  const std::atomic<bool>* cancel = nullptr;  // set it (e.g. from a SIGINT handler) to stop early
  // Constrained decoding (slm/grammar.hpp): only tokens the grammar allows are sampled, the end
  // of generation only where it may end; a completed grammar stops with GrammarComplete. The
  // caller owns the matcher (reset() it between generations). Null: unconstrained.
  GrammarMatcher* grammar = nullptr;
  Speculator* speculator = nullptr;        // speculative decoding (slm/speculative.hpp); null: none
};

enum class StopReason { EndOfGeneration, StopString, MaxTokens, ContextFull, Cancelled, GrammarComplete };

struct GenerateResult {
  StopReason stop_reason = StopReason::MaxTokens;
  std::string text;                 // everything streamed to the callback
  std::vector<TokenId> tokens;      // the generated tokens (the end-of-generation token excluded)
  TokenId end_token = -1;           // the end-of-generation token that stopped it (sampled, never evaluated), or -1
  int32_t n_prompt_tokens = 0;      // tokens of the prompt
  int32_t n_prompt_evaluated = 0;   // of those, how many were evaluated (the rest came from the cache)
  double prompt_seconds = 0;        // evaluating the prompt
  double generation_seconds = 0;    // the generated tokens after the first
  double time_to_first_token = 0;   // prompt evaluation + the first sample
  SpeculationStats speculation;     // drafted and accepted tokens, with a speculator
  Confidence confidence;            // of every sampled token, the end token included (slm/confidence.hpp)
};

// Called with each piece of complete UTF-8 text as it is produced; return false to stop.
using TextCallback = std::function<bool(std::string_view piece)>;

// Throws slm::Error when the prompt does not fit in the context.
GenerateResult generate(Session& session, Sampler& sampler, std::span<const TokenId> prompt,
                        const GenerateOptions& options, const TextCallback& on_text);

std::string_view stop_reason_name(StopReason reason);

}  // namespace slm
