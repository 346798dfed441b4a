#include "common/chat_input.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace slm::tools {

namespace {

constexpr const char* first_line_prompt = "> ";
constexpr const char* continuation_prompt = ". ";

}  // namespace

MessageReader::MessageReader(int fd, bool terminal, bool show_prompts, LineEditor editor)
    : fd_(fd),
      terminal_(terminal),
      show_prompts_(terminal && show_prompts),
      editor_(terminal && editor.read_line ? std::move(editor) : LineEditor{}) {}

std::optional<std::string> MessageReader::read_message() {
  std::optional<std::string> message = read_line(first_line_prompt);
  if (!message) return std::nullopt;
  while (true) {
    const bool continued = !message->empty() && message->back() == '\\';
    if (continued) message->pop_back();
    else if (!terminal_ || !input_waiting()) break;
    const std::optional<std::string> next = read_line(continued ? continuation_prompt : "");
    if (!next) break;
    *message += '\n';
    *message += *next;
  }
  if (editor_.add_history && !message->empty()) editor_.add_history(*message);
  return message;
}

std::optional<std::string> MessageReader::read_line(const std::string& prompt) {
  if (editor_.read_line) return editor_.read_line(show_prompts_ ? prompt : "");
  if (show_prompts_) {
    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  std::optional<std::string> line = read_buffered_line();
  if (line && !line->empty() && line->back() == '\r') line->pop_back();  // CRLF input
  return line;
}

std::optional<std::string> MessageReader::read_buffered_line() {
  while (true) {
    const size_t newline = buffer_.find('\n', scanned_);
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      scanned_ = 0;
      return line;
    }
    scanned_ = buffer_.size();
    if (end_of_input_) {
      if (buffer_.empty()) return std::nullopt;
      std::string last = std::move(buffer_);  // a last line without a newline
      buffer_.clear();
      scanned_ = 0;
      return last;
    }
    char chunk[65536];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n > 0) buffer_.append(chunk, size_t(n));
    else if (n == 0 || errno != EINTR) end_of_input_ = true;
  }
}

bool MessageReader::input_waiting() const {
  if (!buffer_.empty()) return true;
  pollfd input{fd_, POLLIN, 0};
  return ::poll(&input, 1, 0) > 0 && (input.revents & POLLIN) != 0;
}

}  // namespace slm::tools
