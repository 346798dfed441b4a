#include "common/chat_commands.hpp"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace slm::tools {

namespace {

using Json = nlohmann::ordered_json;

struct ParsedCommand {
  std::string name;      // without the '/'
  std::string argument;  // the rest of the line, spaces around it removed
};

ParsedCommand parse_command(std::string_view message) {
  message.remove_prefix(1);
  const size_t name_end = std::min(message.find_first_of(" \t\n"), message.size());
  ParsedCommand command{std::string(message.substr(0, name_end)), {}};
  std::string_view argument = message.substr(name_end);
  const size_t start = argument.find_first_not_of(" \t\n");
  if (start != std::string_view::npos) {
    argument.remove_prefix(start);
    argument.remove_suffix(argument.size() - 1 - argument.find_last_not_of(" \t\n"));
    command.argument = std::string(argument);
  }
  return command;
}

void save_conversation(const std::string& path, const ChatSession& chat, ChatOutput& output) {
  std::ofstream out(path, std::ios::binary);
  out << conversation_to_json(chat.messages());
  if (!out.flush()) {
    output.error(fmt::format("cannot write {}", path));
    return;
  }
  output.notice(fmt::format("saved {} messages to {}", chat.messages().size(), path));
}

void load_conversation(const std::string& path, ChatSession& chat, ChatOutput& output) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    output.error(fmt::format("cannot read {}", path));
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  try {
    chat.replace_messages(conversation_from_json(text.str()));
  } catch (const Error& e) {
    output.error(fmt::format("{}: {}", path, e.what()));
    return;
  }
  output.notice(fmt::format("loaded {} messages from {}", chat.messages().size(), path));
}

}  // namespace

const char* const chat_commands_help =
    "/help          this list\n"
    "/reset         forget the conversation and the cache; the system prompt stays\n"
    "/system TEXT   set the system prompt and start a new conversation (/system alone removes it)\n"
    "/save FILE     write the conversation as JSON: {\"messages\": [{\"role\": ..., \"content\": ...}]}\n"
    "/load FILE     replace the conversation with one written by /save\n"
    "/exit          leave (so do Ctrl-D, and Ctrl-C at the prompt)\n"
    "//text         send \"/text\" as a message";

bool is_command(std::string_view message) { return message.starts_with('/') && !message.starts_with("//"); }

CommandOutcome run_command(const std::string& message, ChatSession& chat, ChatOutput& output) {
  const ParsedCommand command = parse_command(message);
  const bool needs_argument = command.name == "save" || command.name == "load";
  if (needs_argument && command.argument.empty()) {
    output.error(fmt::format("/{} needs a file name", command.name));
  } else if (command.name == "help") {
    output.notice(chat_commands_help);
  } else if (command.name == "reset") {
    chat.reset();
    output.notice("conversation cleared");
  } else if (command.name == "system") {
    chat.set_system_prompt(command.argument);
    output.notice(command.argument.empty() ? "system prompt removed; new conversation"
                                           : "system prompt set; new conversation");
  } else if (command.name == "save") {
    save_conversation(command.argument, chat, output);
  } else if (command.name == "load") {
    load_conversation(command.argument, chat, output);
  } else if (command.name == "exit" || command.name == "quit") {
    return CommandOutcome::Exit;
  } else {
    output.error(fmt::format("unknown command /{}; /help lists the commands (start with // to send a '/')",
                             command.name));
  }
  return CommandOutcome::Continue;
}

std::string conversation_to_json(const std::vector<ChatMessage>& messages) {
  Json list = Json::array();
  for (const ChatMessage& message : messages) list.push_back({{"role", message.role}, {"content", message.content}});
  return Json{{"messages", list}}.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::vector<ChatMessage> conversation_from_json(std::string_view json_text) {
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::exception& e) {
    throw Error(fmt::format("not valid JSON: {}", e.what()));
  }
  if (!root.is_object() || !root.contains("messages") || !root["messages"].is_array())
    throw Error("expected {\"messages\": [...]}");
  std::vector<ChatMessage> messages;
  for (const Json& entry : root["messages"]) {
    if (!entry.is_object() || !entry.contains("role") || !entry["role"].is_string())
      throw Error(fmt::format("message {}: expected {{\"role\": \"...\", \"content\": \"...\"}}", messages.size()));
    const Json& content = entry.contains("content") ? entry["content"] : Json();
    if (!content.is_string() && !content.is_null())
      throw Error(fmt::format("message {}: \"content\" must be a string", messages.size()));
    messages.push_back({entry["role"].get<std::string>(), content.is_string() ? content.get<std::string>() : ""});
  }
  return messages;
}

}  // namespace slm::tools
