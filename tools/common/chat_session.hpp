// One conversation with a model: the messages, the token history that mirrors the KV cache,
// and the turn logic, including what happens when the context fills.
//
// Context policy, applied before every turn (the prompt must leave room for the reply:
// min(n_predict > 0 ? n_predict : 256, n_ctx / 2) tokens):
//   drop-oldest  drop whole turns (a user message and the replies to it) after the system
//                prompt, oldest first, until the prompt fits; the cache keeps the common
//                prefix (at least the system prompt). A message that does not fit even with
//                only the system prompt is refused with one line, and the conversation goes on.
//   stop         say so and end the conversation.
// A reply that runs into the end of the context stops with a note; the next turn applies
// the policy.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/chat_output.hpp"
#include "lib/chat/chat_prompt.hpp"
#include "lib/chat/chat_tokens.hpp"
#include "slm/generate.hpp"
#include "slm/grammar.hpp"

namespace slm::tools {

using namespace slm::chat;  // the chat rooms of the library (lib/chat/)

enum class ContextPolicy { DropOldest, Stop };

struct ChatSettings {
  int32_t n_predict = -1;  // tokens per reply at most; < 0: until the end of the turn or the context
  ContextPolicy context_policy = ContextPolicy::DropOldest;
  std::optional<Grammar> grammar;  // constrains every reply (--grammar, --json-schema, --json-object)
  // Speculative decoding: a draft model (may be null) and/or prompt lookup; off when neither.
  std::shared_ptr<const Model> draft_model;
  SpeculativeOptions speculative;
};

enum class TurnOutcome {
  Replied,
  MessageRefused,     // the message alone does not fit, or the template failed on it
  ConversationFull,   // --context-policy stop: the conversation is over
};

class ChatSession {
 public:
  ChatSession(std::shared_ptr<const Model> model, const SessionOptions& session_options,
              const SamplerParams& sampler_params, ChatTemplate chat_template, ChatSettings settings,
              ChatOutput& output);

  // Adds the user's message and streams the reply. `cancel` stops the reply early; the partial
  // reply is kept as the assistant's message.
  TurnOutcome reply_to(const std::string& user_text, const std::atomic<bool>* cancel);
  // No template: continues the text as it is (--raw). The cache reuses whatever prefix the
  // text shares with the previous one.
  void complete_raw(const std::string& text, const std::atomic<bool>* cancel);

  // Clears the conversation (keeps the system prompt), the cache and the sampler.
  void reset();
  // Sets or replaces the system prompt ("" removes it); resets.
  void set_system_prompt(const std::string& text);
  // Replaces the whole conversation (e.g. from /load); the next turn reuses what it can.
  void replace_messages(std::vector<ChatMessage> messages);

  const std::vector<ChatMessage>& messages() const { return messages_; }
  const ChatTemplate& chat_template() const { return chat_template_; }
  const Session& session() const { return session_; }

 private:
  struct PreparedPrompt {
    std::string rendered;
    std::vector<TokenId> tokens;
  };
  // Renders the conversation and applies the context policy; nullopt with `outcome` set
  // when the turn cannot go ahead (the user's message is then removed again).
  std::optional<PreparedPrompt> prepare_prompt(TurnOutcome& outcome);
  std::optional<PreparedPrompt> drop_oldest_turns(PreparedPrompt prompt, TurnOutcome& outcome);
  PreparedPrompt render_and_tokenize();
  // Says that the user's newest message cannot be answered (the caller removes it).
  void refuse_newest_message(size_t n_prompt_tokens);
  bool fits(size_t n_prompt_tokens) const;
  int32_t reply_reserve() const;
  // Index one past the oldest turn after the system prompt, or 0 when only the newest message is left.
  size_t end_of_oldest_turn() const;
  GenerateResult generate_reply(const std::vector<TokenId>& prompt_tokens, bool prompt_ends_inside_thinking,
                                const std::atomic<bool>* cancel);

  std::shared_ptr<const Model> model_;
  Session session_;
  Sampler sampler_;
  std::unique_ptr<GrammarMatcher> grammar_;  // null without a grammar
  std::unique_ptr<Speculator> speculator_;  // null without speculation
  ChatTemplate chat_template_;
  ChatSettings settings_;
  ChatOutput& output_;
  std::vector<ChatMessage> messages_;
  TokenHistory history_;
};

}  // namespace slm::tools
