#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace slm::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? int(left) : 0;
}

// Reads what is available; false at the end of the stream.
bool read_available(int fd, std::string& into) {
  char chunk[65536];
  const ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n > 0) into.append(chunk, size_t(n));
  return n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN));
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  // A child that exits before reading all of its input must not kill the test with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(args[0], args.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  stderr_fd_ = err[0];
  ::fcntl(stdin_fd_, F_SETFL, O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  close_fd(stdin_fd_);
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
}

void ChildProcess::close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void ChildProcess::write_stdin(std::string_view bytes) { pending_stdin_ += bytes; }

void ChildProcess::close_stdin() {
  close_stdin_when_written_ = true;
  if (pending_stdin_.empty()) close_fd(stdin_fd_);
}

void ChildProcess::send_signal(int signal_number) { ::kill(pid_, signal_number); }

bool ChildProcess::pump(int timeout_ms) {
  pollfd fds[3];
  nfds_t count = 0;
  if (stdout_fd_ >= 0) fds[count++] = {stdout_fd_, POLLIN, 0};
  if (stderr_fd_ >= 0) fds[count++] = {stderr_fd_, POLLIN, 0};
  if (stdin_fd_ >= 0 && !pending_stdin_.empty()) fds[count++] = {stdin_fd_, POLLOUT, 0};
  if (count == 0) return false;
  if (::poll(fds, count, timeout_ms) <= 0) return true;
  for (nfds_t i = 0; i < count; ++i) {
    if (fds[i].revents == 0) continue;
    if (fds[i].fd == stdin_fd_) {
      const ssize_t n = ::write(stdin_fd_, pending_stdin_.data(), pending_stdin_.size());
      if (n > 0) pending_stdin_.erase(0, size_t(n));
      if (n < 0 && errno != EAGAIN && errno != EINTR) pending_stdin_.clear();  // the child closed its stdin
      if ((pending_stdin_.empty() && close_stdin_when_written_) || (n < 0 && errno == EPIPE)) close_fd(stdin_fd_);
    } else if (fds[i].fd == stdout_fd_) {
      if (!read_available(stdout_fd_, stdout_text_)) close_fd(stdout_fd_);
    } else if (!read_available(stderr_fd_, stderr_text_)) {
      close_fd(stderr_fd_);
    }
  }
  return true;
}

std::optional<std::string> ChildProcess::read_line(std::string& text, size_t& consumed, const int& fd,
                                                   std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const size_t newline = text.find('\n', consumed);
    if (newline != std::string::npos) {
      std::string line = text.substr(consumed, newline - consumed);
      consumed = newline + 1;
      return line;
    }
    if (fd < 0 || Clock::now() >= deadline) return std::nullopt;
    pump(remaining_ms(deadline));
  }
}

std::optional<std::string> ChildProcess::read_stdout_line(std::chrono::milliseconds timeout) {
  return read_line(stdout_text_, stdout_consumed_, stdout_fd_, timeout);
}

std::optional<std::string> ChildProcess::read_stderr_line(std::chrono::milliseconds timeout) {
  return read_line(stderr_text_, stderr_consumed_, stderr_fd_, timeout);
}

ProcessResult ChildProcess::wait(std::chrono::milliseconds timeout) {
  close_stdin();
  const auto deadline = Clock::now() + timeout;
  ProcessResult result;
  int status = 0;
  while (true) {
    if (stdout_fd_ < 0 && stderr_fd_ < 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) break;
    if (Clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      result.timed_out = true;
      break;
    }
    if (!pump(std::min(remaining_ms(deadline), 50))) ::usleep(1000);  // both outputs closed: waiting for the exit
  }
  pid_ = -1;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  result.stdout_text = stdout_text_.substr(stdout_consumed_);
  result.stderr_text = stderr_text_;
  return result;
}

ProcessResult run_process(const std::vector<std::string>& argv, std::string_view stdin_text,
                          std::chrono::milliseconds timeout) {
  ChildProcess child(argv);
  child.write_stdin(stdin_text);
  return child.wait(timeout);
}

}  // namespace slm::test
