#include "lib/chat/chat_tokens.hpp"

namespace slm::chat {

std::vector<TokenId> tokenize_prompt(const Tokenizer& tokenizer, std::string_view rendered) {
  // add_special would also append EOS for models that set add_eos, which ends a chat prompt.
  std::vector<TokenId> tokens = tokenizer.tokenize(rendered, false, true);
  const TokenId bos = tokenizer.bos();
  if (tokenizer.add_bos() && bos >= 0 && (tokens.empty() || tokens.front() != bos)) tokens.insert(tokens.begin(), bos);
  return tokens;
}

PromptTokens tokens_for_prompt(const Tokenizer& tokenizer, const TokenHistory& history, std::string_view rendered) {
  PromptTokens prompt;
  if (!history.tokens.empty() && rendered.starts_with(history.text)) {
    prompt.tokens = history.tokens;
    const std::vector<TokenId> remainder = tokenizer.tokenize(rendered.substr(history.text.size()), false, true);
    prompt.tokens.insert(prompt.tokens.end(), remainder.begin(), remainder.end());
    prompt.extends_history = true;
  } else {
    prompt.tokens = tokenize_prompt(tokenizer, rendered);
  }
  return prompt;
}

TokenHistory history_after_reply(const Tokenizer& tokenizer, std::vector<TokenId> prompt_tokens,
                                 std::string rendered_prompt, const GenerateResult& reply) {
  TokenHistory history{std::move(prompt_tokens), std::move(rendered_prompt)};
  // The pieces, not reply.text: the text stops before a stop string, the tokens do not.
  for (const TokenId id : reply.tokens) {
    history.tokens.push_back(id);
    history.text += tokenizer.token_to_piece(id, true);
  }
  if (reply.end_token >= 0) {
    history.tokens.push_back(reply.end_token);
    history.text += tokenizer.token_to_piece(reply.end_token, true);
  }
  return history;
}

}  // namespace slm::chat
