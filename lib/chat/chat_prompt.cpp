#include "lib/chat/chat_prompt.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "slm/chat_template.hpp"

namespace slm::chat {

namespace {

// ChatML (Qwen, SmolLM, many fine-tunes).
constexpr std::string_view chatml_source = R"({%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%})";

// Llama 3. The content is not trimmed (Meta's template trims it), so that a reply renders
// exactly as it was generated and the next turn can extend the cached tokens.
constexpr std::string_view llama3_source = R"({{- bos_token -}}
{%- for message in messages -%}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
{%- endif -%})";

// A transcript any model can continue. The generation prompt ends with "Assistant:" and a
// reply usually starts with a space, so a space is added only when the reply lacks one.
constexpr std::string_view plain_source = R"({%- for message in messages -%}
{%- if message['role'] == 'system' -%}
{{- message['content'] + '\n\n' -}}
{%- elif message['role'] == 'user' -%}
{{- 'User: ' + message['content'] + '\n' -}}
{%- elif message['role'] == 'assistant' -%}
{{- 'Assistant:' + ('' if message['content'].startswith(' ') else ' ') + message['content'] + '\n' -}}
{%- else -%}
{{- message['role'] | capitalize + ': ' + message['content'] + '\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- 'Assistant:' -}}
{%- endif -%})";

std::string read_template_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot read the chat template file {}", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

jinja::Template parse_template(std::string_view source, std::string_view origin) {
  try {
    return jinja::Template::parse(source);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", origin, e.what()));
  }
}

ChatTemplate builtin_chat_template(BuiltinChatFormat format) {
  ChatTemplate chat_template;
  chat_template.origin = fmt::format("built-in {}", builtin_format_name(format));
  chat_template.source = builtin_template_source(format);
  chat_template.parsed = jinja::Template::parse(chat_template.source);
  if (format == BuiltinChatFormat::Plain) chat_template.stop_strings = {"\nUser:"};
  return chat_template;
}

}  // namespace

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

std::string_view builtin_template_source(BuiltinChatFormat format) {
  switch (format) {
    case BuiltinChatFormat::ChatMl: return chatml_source;
    case BuiltinChatFormat::Llama3: return llama3_source;
    case BuiltinChatFormat::Plain: return plain_source;
  }
  return plain_source;
}

std::optional<std::string> special_token_text(const Tokenizer& tokenizer, TokenId id) {
  if (id < 0) return std::nullopt;
  return tokenizer.token_to_piece(id, true);
}

std::optional<BuiltinChatFormat> builtin_format_from_name(std::string_view name) {
  for (const BuiltinChatFormat format : {BuiltinChatFormat::ChatMl, BuiltinChatFormat::Llama3, BuiltinChatFormat::Plain})
    if (name == builtin_format_name(format)) return format;
  return std::nullopt;
}

ChatTemplate choose_chat_template(const Model* model, const TemplateRequest& request, std::string& warning) {
  ChatTemplate chat_template;
  if (!request.file.empty()) {
    chat_template.origin = fmt::format("file {}", request.file);
    chat_template.source = read_template_file(request.file);
    chat_template.parsed = parse_template(chat_template.source, request.file);
  } else if (request.builtin) {
    chat_template = builtin_chat_template(*request.builtin);
  } else {
    if (model == nullptr) throw Error("no chat template: give -m MODEL, --chat-template-file FILE or --builtin-template NAME");
    const std::string own_source = model->chat_template();
    bool use_own = !own_source.empty();
    if (use_own) {
      try {
        chat_template.parsed = jinja::Template::parse(own_source);
        chat_template.source = own_source;
        chat_template.origin = "the model's tokenizer.chat_template";
      } catch (const Error& e) {
        warning = fmt::format("the model's chat template does not parse ({}); using a built-in one", e.what());
        use_own = false;
      }
    }
    if (!use_own) {
      chat_template = builtin_chat_template(pick_builtin_format(*model));
      if (own_source.empty()) chat_template.origin += " (the model has no tokenizer.chat_template)";
    }
  }
  if (model != nullptr) {
    chat_template.bos_token = special_token_text(model->tokenizer(), model->tokenizer().bos());
    chat_template.eos_token = special_token_text(model->tokenizer(), model->tokenizer().eos());
  }
  return chat_template;
}

namespace {

// A call's arguments as the template sees them: the parsed JSON, or the text when it is not JSON.
jinja::Value arguments_value(const std::string& arguments) {
  try {
    return jinja::value_from_json(arguments);
  } catch (const Error&) {
    return jinja::Value(arguments);
  }
}

}  // namespace

jinja::Value messages_to_value(const std::vector<ChatMessage>& messages) {
  jinja::Value list = jinja::Value::list();
  for (const ChatMessage& message : messages) {
    jinja::Value value = jinja::Value::dict({{"role", message.role}, {"content", message.content}});
    if (!message.tool_calls.empty()) {
      jinja::Value calls = jinja::Value::list();
      for (const ChatToolCall& call : message.tool_calls)
        calls.push_back(jinja::Value::dict(
            {{"id", call.id},
             {"type", "function"},
             {"function", jinja::Value::dict({{"name", call.name}, {"arguments", arguments_value(call.arguments)}})}}));
      value.set(jinja::Value("tool_calls"), calls);
    }
    if (!message.tool_call_id.empty()) value.set(jinja::Value("tool_call_id"), jinja::Value(message.tool_call_id));
    if (!message.name.empty()) value.set(jinja::Value("name"), jinja::Value(message.name));
    list.push_back(value);
  }
  return list;
}

std::string render_chat(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, const jinja::Value& tools) {
  return apply_chat_template(chat_template.parsed, messages_to_value(messages), tools, add_generation_prompt,
                             chat_template.bos_token, chat_template.eos_token, chat_template.extra_vars);
}

ConversationFile parse_conversation_file(std::string_view json_text) {
  const jinja::Value root = jinja::value_from_json(json_text);
  if (!root.is_dict()) throw Error("the conversation file must hold a JSON object {\"messages\": [...]}");
  ConversationFile conversation;
  conversation.messages = jinja::Value::list();
  conversation.extra_vars = jinja::Value::dict();
  for (const auto& [key, value] : root.as_dict().entries) {
    const std::string name = key.str();
    if (name == "messages") {
      if (!value.is_list()) throw Error("the conversation file's \"messages\" must be a list");
      conversation.messages = value;
    } else if (name == "tools") {
      conversation.tools = value;
    } else if (name == "add_generation_prompt") {
      conversation.add_generation_prompt = value.truthy();
    } else {
      conversation.extra_vars.set(key, value);
    }
  }
  return conversation;
}

std::string render_conversation_file(const ChatTemplate& chat_template, const ConversationFile& conversation) {
  jinja::Value variables = jinja::Value::dict();
  for (const jinja::Value* source : {&chat_template.extra_vars, &conversation.extra_vars})
    if (source->is_dict())
      for (const auto& [name, value] : source->as_dict().entries) variables.set(name, value);
  return apply_chat_template(chat_template.parsed, conversation.messages, conversation.tools,
                             conversation.add_generation_prompt, chat_template.bos_token, chat_template.eos_token,
                             variables);
}

}  // namespace slm::chat
