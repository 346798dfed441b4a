#include "support/server_process.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <stdexcept>

#include "support/assets.hpp"

namespace slm::test {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// slm-server's ready line, "slm-server: listening on http://127.0.0.1:PORT (...)": the port it
// bound, or 0 for another line.
int port_of_ready_line(const std::string& line) {
  static const std::regex ready(R"(listening on http://127\.0\.0\.1:(\d+))");
  std::smatch match;
  return std::regex_search(line, match, ready) ? std::stoi(match[1].str()) : 0;
}

}  // namespace

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) throw std::runtime_error("no free loopback port");
  return ntohs(address.sin_port);
}

// --port 0: the kernel picks a free port, and the server prints it once ready; no other
// process can take it in between.
SlmServerProcess::SlmServerProcess(const std::vector<std::string>& arguments, std::chrono::milliseconds ready_timeout) {
  std::vector<std::string> argv{(bin_dir() / "slm-server").string(), "--host", "127.0.0.1", "--port", "0"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  child_ = std::make_unique<ChildProcess>(argv);
  drain_ = std::thread([this] { drain_stderr(); });

  std::unique_lock lock(mutex_);
  size_t checked = 0;
  line_arrived_.wait_until(lock, Clock::now() + ready_timeout, [&] {
    for (; checked < stderr_lines_.size() && port_ == 0; ++checked) port_ = port_of_ready_line(stderr_lines_[checked]);
    return port_ != 0 || stderr_closed_;
  });
  lock.unlock();
  if (port_ != 0) return;
  const ProcessResult result = stop(9 /* SIGKILL */);
  throw std::runtime_error("slm-server did not say it was ready; it printed:\n" + result.stderr_text);
}

SlmServerProcess::~SlmServerProcess() {
  if (drain_.joinable()) stop(9 /* SIGKILL */, 10s);
}

void SlmServerProcess::drain_stderr() {
  while (true) {
    const Clock::time_point asked = Clock::now();
    const std::optional<std::string> line = child_->read_stderr_line(100ms);
    const std::lock_guard lock(mutex_);
    if (line) {
      stderr_lines_.push_back(*line);
    } else if (Clock::now() - asked < 100ms) {  // answered before the timeout: stderr is closed
      stderr_closed_ = true;
    }
    line_arrived_.notify_all();
    if (stderr_closed_ || (stopping_ && !line)) return;
  }
}

ProcessResult SlmServerProcess::stop(int signal_number, std::chrono::milliseconds timeout) {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  if (drain_.joinable()) drain_.join();  // from here on, wait() reads the rest
  child_->send_signal(signal_number);
  return child_->wait(timeout);
}

}  // namespace slm::test
