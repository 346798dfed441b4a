#include "common/chat_prompt.hpp"

namespace slm::tools {

BuiltinChatFormat pick_builtin_format(const Model& model) {
  const Tokenizer& tokenizer = model.tokenizer();
  if (tokenizer.find_token("<|im_start|>")) return BuiltinChatFormat::ChatMl;
  if (tokenizer.find_token("<|start_header_id|>")) return BuiltinChatFormat::Llama3;
  return BuiltinChatFormat::Plain;
}

const char* builtin_format_name(BuiltinChatFormat format) {
  switch (format) {
    case BuiltinChatFormat::ChatMl: return "chatml";
    case BuiltinChatFormat::Llama3: return "llama3";
    case BuiltinChatFormat::Plain: return "plain";
  }
  return "plain";
}

std::string render_builtin(BuiltinChatFormat format, const std::vector<ChatMessage>& messages,
                           bool add_generation_prompt) {
  std::string out;
  switch (format) {
    case BuiltinChatFormat::ChatMl:
      for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    case BuiltinChatFormat::Llama3:
      out += "<|begin_of_text|>";
      for (const auto& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case BuiltinChatFormat::Plain:
      // No chat tokens: a transcript the model can continue.
      for (const auto& m : messages) {
        if (m.role == "system") out += m.content + "\n\n";
        else out += (m.role == "user" ? "User: " : "Assistant: ") + m.content + "\n";
      }
      if (add_generation_prompt) out += "Assistant:";
      break;
  }
  return out;
}

}  // namespace slm::tools
