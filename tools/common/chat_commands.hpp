// slm-chat's slash commands: /help, /reset, /system TEXT, /save FILE, /load FILE, /exit.
// A message starting with "//" is not a command: it is sent with one '/' removed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/chat_output.hpp"
#include "common/chat_session.hpp"

namespace slm::tools {

enum class CommandOutcome { Continue, Exit };

// The commands, one per line, for /help and --help.
extern const char* const chat_commands_help;

bool is_command(std::string_view message);
CommandOutcome run_command(const std::string& message, ChatSession& chat, ChatOutput& output);

// {"messages": [{"role": ..., "content": ...}, ...]}, the format of /save and /load.
std::string conversation_to_json(const std::vector<ChatMessage>& messages);
// Throws slm::Error naming what is wrong.
std::vector<ChatMessage> conversation_from_json(std::string_view json_text);

}  // namespace slm::tools
