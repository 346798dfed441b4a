// Running a built tool as a child process with pipes on stdin, stdout and stderr, for tests
// that drive a tool the way a script or a user would: write to its stdin, read its output
// line by line, send it a signal, close stdin and collect the rest.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slm::test {

struct ProcessResult {
  std::string stdout_text, stderr_text;
  int exit_code = -1;     // when it exited
  int term_signal = 0;    // when a signal ended it
  bool timed_out = false; // killed after the deadline
};

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the arguments. Throws std::runtime_error when it cannot.
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();  // kills and reaps a child that is still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Queues bytes for stdin; they are written while the other calls wait.
  void write_stdin(std::string_view bytes);
  // Closes stdin once the queued bytes are written.
  void close_stdin();
  // The next stdout line without its newline; nullopt at the deadline or when stdout closes.
  std::optional<std::string> read_stdout_line(std::chrono::milliseconds timeout);
  // The same for stderr (a server's "listening on ..." line). Lines read here stay in the
  // stderr_text that wait() returns.
  std::optional<std::string> read_stderr_line(std::chrono::milliseconds timeout);
  void send_signal(int signal_number);
  // Closes stdin, waits for the exit and returns everything not yet read (stdout lines
  // returned by read_stdout_line are left out). Kills the child at the deadline.
  ProcessResult wait(std::chrono::milliseconds timeout);

 private:
  // Moves bytes between the pipes for up to `timeout_ms`; false when nothing is open any more.
  bool pump(int timeout_ms);
  void close_fd(int& fd);

  pid_t pid_ = -1;
  int stdin_fd_ = -1, stdout_fd_ = -1, stderr_fd_ = -1;
  std::string pending_stdin_;
  bool close_stdin_when_written_ = false;
  // The next line of `text` from `consumed` on, pumping until it arrives, `fd` closes or the deadline.
  std::optional<std::string> read_line(std::string& text, size_t& consumed, const int& fd,
                                       std::chrono::milliseconds timeout);

  std::string stdout_text_, stderr_text_;
  size_t stdout_consumed_ = 0, stderr_consumed_ = 0;
};

// Runs to the end with `stdin_text` as the whole input.
ProcessResult run_process(const std::vector<std::string>& argv, std::string_view stdin_text = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace slm::test
