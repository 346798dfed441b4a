// The token history of a conversation, so that each turn evaluates only its new tokens.
//
// Re-tokenizing the whole conversation every turn would break the KV cache's prefix wherever
// a reply re-tokenizes differently from the tokens that were sampled. So the history keeps
// the exact tokens the model saw and produced, with the text they spell; when the next
// rendered prompt starts with that text, only the remaining text is tokenized.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "slm/generate.hpp"
#include "slm/tokenizer.hpp"

namespace slm::chat {

struct TokenHistory {
  std::vector<TokenId> tokens;  // prompt tokens + generated tokens + the end token of every turn so far
  std::string text;             // the text they spell (a BOS added by tokenization is not in it)
};

struct PromptTokens {
  std::vector<TokenId> tokens;
  bool extends_history = false;  // the history's tokens are a prefix of `tokens`
};

// The whole rendered prompt: special tokens parsed, BOS prepended when the model wants one
// and the text does not already start with it. Never EOS.
std::vector<TokenId> tokenize_prompt(const Tokenizer& tokenizer, std::string_view rendered);

// History tokens + the tokenized remainder when `rendered` starts with history.text,
// else the whole rendered text tokenized.
PromptTokens tokens_for_prompt(const Tokenizer& tokenizer, const TokenHistory& history, std::string_view rendered);

// After a reply: the history becomes the prompt (tokens and rendered text) + the generated
// tokens + the end-of-generation token that ended the reply, if any.
TokenHistory history_after_reply(const Tokenizer& tokenizer, std::vector<TokenId> prompt_tokens,
                                 std::string rendered_prompt, const GenerateResult& reply);

}  // namespace slm::chat
