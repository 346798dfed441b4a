#include "common/chat_session.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "lib/chat/chat_think.hpp"

namespace slm::tools {

ChatSession::ChatSession(std::shared_ptr<const Model> model, const SessionOptions& session_options,
                         const SamplerParams& sampler_params, ChatTemplate chat_template, ChatSettings settings,
                         ChatOutput& output)
    : model_(std::move(model)),
      session_(model_, session_options),
      sampler_(sampler_params),
      chat_template_(std::move(chat_template)),
      settings_(settings),
      output_(output) {
  if (settings_.grammar)
    grammar_ = std::make_unique<GrammarMatcher>(*settings_.grammar, make_grammar_vocabulary(model_->tokenizer()));

  if (settings_.draft_model || settings_.speculative.lookup_ngram > 0) {
    SessionOptions draft_options = session_options;
    draft_options.n_ctx = session_.n_ctx();  // the draft follows the conversation to the same length
    speculator_ = std::make_unique<Speculator>(*model_, settings_.draft_model, settings_.speculative, draft_options);
  }
}

TurnOutcome ChatSession::reply_to(const std::string& user_text, const std::atomic<bool>* cancel) {
  messages_.push_back({"user", user_text});
  TurnOutcome outcome = TurnOutcome::Replied;
  const std::optional<PreparedPrompt> prompt = prepare_prompt(outcome);
  if (!prompt) {
    messages_.pop_back();
    return outcome;
  }
  GenerateResult reply;
  try {
    reply = generate_reply(prompt->tokens, ends_inside_thinking(prompt->rendered), cancel);
  } catch (const Error& e) {  // e.g. a template that renders nothing: no tokens to start from
    output_.error(e.what());
    messages_.pop_back();
    return TurnOutcome::MessageRefused;
  }
  messages_.push_back({"assistant", reply.text});
  history_ = history_after_reply(model_->tokenizer(), prompt->tokens, prompt->rendered, reply);
  return TurnOutcome::Replied;
}

void ChatSession::complete_raw(const std::string& text, const std::atomic<bool>* cancel) {
  const std::vector<TokenId> tokens = model_->tokenizer().tokenize(text, true, false);
  if (!fits(tokens.size())) {
    output_.error(fmt::format("text of {} tokens does not fit the context of {} tokens ({} are kept for the reply)",
                              tokens.size(), session_.n_ctx(), reply_reserve()));
    return;
  }
  try {
    generate_reply(tokens, false, cancel);
  } catch (const Error& e) {
    output_.error(e.what());
  }
}

GenerateResult ChatSession::generate_reply(const std::vector<TokenId>& prompt_tokens,
                                           bool prompt_ends_inside_thinking, const std::atomic<bool>* cancel) {
  GenerateOptions options;
  options.max_tokens = settings_.n_predict;
  options.stop_strings = chat_template_.stop_strings;
  options.cancel = cancel;
  if (grammar_) {
    grammar_->reset();  // each reply is one sentence of the grammar
    options.grammar = grammar_.get();
  }
  options.speculator = speculator_.get();
  output_.begin_reply(prompt_ends_inside_thinking);
  const GenerateResult result = generate(session_, sampler_, prompt_tokens, options, [this](std::string_view piece) {
    output_.reply_text(piece);
    return true;
  });
  output_.end_reply(result);
  return result;
}

std::optional<ChatSession::PreparedPrompt> ChatSession::prepare_prompt(TurnOutcome& outcome) {
  try {
    PreparedPrompt prompt = render_and_tokenize();
    if (fits(prompt.tokens.size())) return prompt;
    if (settings_.context_policy == ContextPolicy::Stop) {
      output_.error(fmt::format(
          "the conversation needs {} tokens plus {} for the reply, more than the context of {} tokens; "
          "ending it (--context-policy stop)",
          prompt.tokens.size(), reply_reserve(), session_.n_ctx()));
      outcome = TurnOutcome::ConversationFull;
      return std::nullopt;
    }
    return drop_oldest_turns(std::move(prompt), outcome);
  } catch (const Error& e) {  // template errors, including raise_exception("...") from the template
    output_.error(e.what());
    outcome = TurnOutcome::MessageRefused;
    return std::nullopt;
  }
}

// drop-oldest: first refuse a message that would not fit even after every older turn is
// dropped, keeping the conversation as it was; otherwise drop turns until the prompt fits.
std::optional<ChatSession::PreparedPrompt> ChatSession::drop_oldest_turns(PreparedPrompt prompt, TurnOutcome& outcome) {
  std::vector<ChatMessage> system_and_message;
  if (messages_.front().role == "system" && messages_.size() > 1) system_and_message.push_back(messages_.front());
  system_and_message.push_back(messages_.back());
  const size_t n_alone =
      tokenize_prompt(model_->tokenizer(), render_chat(chat_template_, system_and_message, true)).size();
  if (!fits(n_alone)) {
    refuse_newest_message(n_alone);
    outcome = TurnOutcome::MessageRefused;
    return std::nullopt;
  }
  const size_t first = messages_.front().role == "system" ? 1 : 0;
  int dropped = 0;
  while (!fits(prompt.tokens.size())) {
    const size_t end = end_of_oldest_turn();
    if (end == 0) {  // only when the history's tokens count differently from a fresh tokenization
      refuse_newest_message(prompt.tokens.size());
      outcome = TurnOutcome::MessageRefused;
      return std::nullopt;
    }
    dropped += int(end - first);
    messages_.erase(messages_.begin() + std::ptrdiff_t(first), messages_.begin() + std::ptrdiff_t(end));
    prompt = render_and_tokenize();
  }
  output_.context_trimmed(dropped, int(prompt.tokens.size()));
  return prompt;
}

void ChatSession::refuse_newest_message(size_t n_prompt_tokens) {
  const size_t n_message = model_->tokenizer().tokenize(messages_.back().content, false, false).size();
  output_.error(fmt::format("message of {} tokens does not fit the context of {} tokens (with the template and the "
                            "system prompt it needs {}, and {} are kept for the reply); it was dropped",
                            n_message, session_.n_ctx(), n_prompt_tokens, reply_reserve()));
}

ChatSession::PreparedPrompt ChatSession::render_and_tokenize() {
  PreparedPrompt prompt;
  prompt.rendered = render_chat(chat_template_, messages_, true);
  prompt.tokens = tokens_for_prompt(model_->tokenizer(), history_, prompt.rendered).tokens;
  return prompt;
}

int32_t ChatSession::reply_reserve() const {
  return std::min(settings_.n_predict > 0 ? settings_.n_predict : 256, session_.n_ctx() / 2);
}

bool ChatSession::fits(size_t n_prompt_tokens) const {
  return n_prompt_tokens + size_t(reply_reserve()) <= size_t(session_.n_ctx());
}

size_t ChatSession::end_of_oldest_turn() const {
  if (messages_.empty()) return 0;
  const size_t first = messages_.front().role == "system" ? 1 : 0;
  const size_t newest = messages_.size() - 1;  // the user's new message is never dropped
  if (first >= newest) return 0;
  size_t end = first + 1;
  while (end < newest && messages_[end].role != "user") ++end;
  return end;
}

void ChatSession::reset() {
  if (!messages_.empty() && messages_.front().role == "system") messages_.resize(1);
  else messages_.clear();
  history_ = {};
  session_.reset();
  sampler_.reset();
}

void ChatSession::set_system_prompt(const std::string& text) {
  messages_.clear();
  if (!text.empty()) messages_.push_back({"system", text});
  reset();
}

void ChatSession::replace_messages(std::vector<ChatMessage> messages) {
  messages_ = std::move(messages);
  history_ = {};
}

}  // namespace slm::tools
