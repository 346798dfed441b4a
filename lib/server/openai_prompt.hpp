// From a parsed request to the scheduler's GenerationRequest: the chat prompt rendered by the
// model's template and tokenized exactly as slm-chat does it (so that a greedy or seeded
// request gives the same text as slm-chat and slm::generate()), then checked against the
// context. These checks need the model, so they live here and not in the parser.
#pragma once

#include <cstdint>
#include <vector>

#include "lib/chat/chat_prompt.hpp"
#include "lib/server/openai_request.hpp"
#include "slm/scheduler.hpp"

namespace slm::server {

struct PreparedPrompt {
  std::vector<TokenId> tokens;
  bool starts_inside_thinking = false;  // the rendered prompt opens a <think> section (DeepSeek-R1's does)
  std::vector<std::string> template_stop_strings;  // the template's own ("\nUser:" for the plain transcript)
};

// Renders the messages with the template (the request's chat_template_kwargs added to the
// template's variables, its tools as the `tools` variable) and tokenizes with slm::chat::tokenize_prompt. A template that refuses
// the conversation (raise_exception) is a 400 naming 'messages'.
PreparedPrompt prepare_chat_prompt(const chat::ChatTemplate& chat_template, const Tokenizer& tokenizer,
                                   const ChatRequest& request);

// A string prompt is tokenized as a rendered chat prompt is (special tokens parsed, BOS added
// when the model wants one); token ids are checked against the vocabulary.
PreparedPrompt prepare_completion_prompt(const Tokenizer& tokenizer, const CompletionRequest& request);

// The request the scheduler runs. A prompt of n_ctx tokens or more is a 400
// (context_length_exceeded, naming `prompt_param`); max_tokens is capped by the room the
// context leaves (n_ctx - prompt tokens), and absent it is all of that room.
GenerationRequest make_generation_request(PreparedPrompt prompt, const GenerationParams& params, int32_t n_ctx,
                                          const char* prompt_param);

}  // namespace slm::server
