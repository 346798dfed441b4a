// A real slm-server process for end-to-end tests: started on a free loopback port, ready once
// it prints its URL, its stderr drained in the background (so its logging never blocks it), and
// stopped with a signal whose exit the test checks.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace slm::test {

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0), for a
// server that cannot be told --port 0 (nginx). Throws std::runtime_error when there is none.
int free_loopback_port();

class SlmServerProcess {
 public:
  // Starts bin_dir()/slm-server with `arguments` and --host 127.0.0.1 --port 0 (any free port),
  // and waits until it prints its URL on stderr. Throws std::runtime_error, with what the server
  // printed, when it exits or stays silent for `ready_timeout`.
  explicit SlmServerProcess(const std::vector<std::string>& arguments,
                            std::chrono::milliseconds ready_timeout = std::chrono::seconds(60));
  ~SlmServerProcess();  // kills a server that is still running
  SlmServerProcess(const SlmServerProcess&) = delete;
  SlmServerProcess& operator=(const SlmServerProcess&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return child_->pid(); }

  // Sends `signal_number` and waits for the exit; the result holds everything it printed.
  ProcessResult stop(int signal_number = 15 /* SIGTERM */,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

 private:
  void drain_stderr();

  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::thread drain_;
  std::mutex mutex_;
  std::condition_variable line_arrived_;
  std::vector<std::string> stderr_lines_;
  bool stderr_closed_ = false;
  bool stopping_ = false;
};

}  // namespace slm::test
