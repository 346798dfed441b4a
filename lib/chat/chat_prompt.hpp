// Turning a conversation into the prompt text a model was trained on. There is one way to
// render: a Jinja chat template, run by slm's engine exactly as transformers runs it. The
// template is the model's own (tokenizer.chat_template), a file given by the user, or, for
// a model without one, a built-in template source chosen from the model's special tokens.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slm/jinja.hpp"
#include "slm/model.hpp"

namespace slm::chat {

// A call an assistant message made (OpenAI's message.tool_calls[i]).
struct ChatToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the API carries it; templates see it parsed
};

struct ChatMessage {
  std::string role;  // system, user, assistant, tool
  std::string content;
  std::vector<ChatToolCall> tool_calls = {};  // assistant
  std::string tool_call_id = {};               // tool: the call it answers
  std::string name = {};                       // tool: the function's name, when given
};

enum class BuiltinChatFormat { ChatMl, Llama3, Plain };

struct ChatTemplate {
  std::string origin;  // for --verbose: "the model's tokenizer.chat_template", "file x.jinja", "built-in chatml"
  jinja::Template parsed;
  std::string source;  // the Jinja text (which tool-call format it teaches: lib/chat/tool_calls.hpp)
  // Text that ends a reply besides the end-of-generation tokens ("\nUser:" for the plain transcript,
  // whose turns have no special tokens).
  std::vector<std::string> stop_strings;
  // The text of the model's BOS / EOS tokens; nullopt leaves the template variable undefined.
  std::optional<std::string> bos_token, eos_token;
  // More template variables (--chat-template-kwargs, e.g. {"enable_thinking": false}): a dict, or undefined.
  jinja::Value extra_vars;
};

// The built-in format that suits a model without a template: ChatML when the vocabulary has
// <|im_start|>, Llama 3 when it has <|start_header_id|>, else a plain transcript.
BuiltinChatFormat pick_builtin_format(const Model& model);
const char* builtin_format_name(BuiltinChatFormat format);
// The Jinja source of a built-in format.
std::string_view builtin_template_source(BuiltinChatFormat format);

// What the user asked for; both empty: the model's own template.
struct TemplateRequest {
  std::string file;                         // --chat-template-file
  std::optional<BuiltinChatFormat> builtin;  // --builtin-template
};

// "chatml", "llama3", "plain".
std::optional<BuiltinChatFormat> builtin_format_from_name(std::string_view name);

// The template a chat uses: the requested file or built-in one, else the model's own, else the
// built-in one that suits the model. `model` may be null only when a template is requested.
// bos_token / eos_token come from the model's tokenizer (when it has those tokens).
// Throws slm::Error when the file cannot be read or a template does not parse; a model's own
// template that does not parse falls back to the built-in one, with `warning` saying why.
ChatTemplate choose_chat_template(const Model* model, const TemplateRequest& request, std::string& warning);

// A special token's text (e.g. "<|im_end|>"), or nullopt for id < 0.
std::optional<std::string> special_token_text(const Tokenizer& tokenizer, TokenId id);

// The messages as transformers passes them: role and content, and only when present tool_calls
// (arguments parsed from their JSON text), tool_call_id and name. The API's content null (an
// assistant's calls alone) is "": most templates concatenate content and fail on None. A key is left out when absent: templates test `'tool_calls' in message`.
jinja::Value messages_to_value(const std::vector<ChatMessage>& messages);

// Renders with the standard context (see slm::apply_chat_template) and the real clock.
// `tools` is the OpenAI tools list as a template value (undefined: none).
// Throws slm::Error on template errors, jinja::TemplateException for raise_exception().
std::string render_chat(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, const jinja::Value& tools = jinja::Value());

// A conversation file for --print-prompt: {"messages": [...], "tools": [...],
// "add_generation_prompt": true, <any other key>: <template variable>}.
struct ConversationFile {
  jinja::Value messages;  // a list
  jinja::Value tools;     // undefined when absent (the template then sees None)
  bool add_generation_prompt = true;
  jinja::Value extra_vars;  // a dict of the other top-level keys, in file order
};

// Parses the JSON keeping key order. Throws slm::Error naming what is wrong.
ConversationFile parse_conversation_file(std::string_view json_text);

// Renders a conversation file exactly as a model would see it. Its variables override the
// template's extra_vars of the same name.
std::string render_conversation_file(const ChatTemplate& chat_template, const ConversationFile& conversation);

}  // namespace slm::chat
