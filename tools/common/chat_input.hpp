// Reading the user's messages. At a terminal: a prompt, line editing and history through a
// line editor when slm-chat has one (libedit), a trailing '\' to continue a message on the
// next line, and a paste of several lines taken as one message (after a line, input that is
// already waiting belongs to the same message). From a pipe or file: one message per line.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace slm::tools {

// A line editor's two calls; empty functions mean none (plain reads, no history).
struct LineEditor {
  // Shows the prompt and reads one line without its newline; nullopt at the end of input.
  std::function<std::optional<std::string>(const std::string& prompt)> read_line;
  std::function<void(const std::string& entry)> add_history;
};

class MessageReader {
 public:
  // `terminal`: detect pastes and use `editor`; prompts are shown at a terminal unless
  // `show_prompts` is false (--json keeps stdout for events).
  MessageReader(int fd, bool terminal, bool show_prompts, LineEditor editor = {});

  // The next message; nullopt at the end of input.
  std::optional<std::string> read_message();

 private:
  std::optional<std::string> read_line(const std::string& prompt);
  std::optional<std::string> read_buffered_line();
  bool input_waiting() const;

  int fd_;
  bool terminal_;
  bool show_prompts_;
  LineEditor editor_;
  std::string buffer_;  // read but not yet returned (plain reads only)
  size_t scanned_ = 0;  // bytes of buffer_ known to hold no newline
  bool end_of_input_ = false;
};

}  // namespace slm::tools
