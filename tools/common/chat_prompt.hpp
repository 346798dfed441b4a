// Turning a conversation into the prompt text a model was trained on. The model's own
// Jinja template (tokenizer.chat_template) is used when it has one; otherwise one of the
// built-in formats, chosen from the model's special tokens.
#pragma once

#include <string>
#include <vector>

#include "slm/model.hpp"

namespace slm::tools {

struct ChatMessage {
  std::string role;  // system, user, assistant, tool
  std::string content;
};

enum class BuiltinChatFormat { ChatMl, Llama3, Plain };

// The built-in format that suits a model without a usable template.
BuiltinChatFormat pick_builtin_format(const Model& model);
const char* builtin_format_name(BuiltinChatFormat format);

// Renders messages in a built-in format, ending with the assistant's turn header when
// add_generation_prompt.
std::string render_builtin(BuiltinChatFormat format, const std::vector<ChatMessage>& messages,
                           bool add_generation_prompt);

}  // namespace slm::tools
