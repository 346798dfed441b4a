// tools/nginx/slm-replicas.conf at work: nginx, run by the test as its own process on a loopback
// port with its own prefix, pid and temp paths (never the system nginx), in front of two real
// slm-server replicas. Requests are spread over both, a session id keeps to one replica, a
// stopped replica is skipped, and stopping one in the middle of a run loses no request.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "support/assets.hpp"
#include "support/process.hpp"
#include "support/server_process.hpp"

namespace slm::test {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;

fs::path find_nginx() {
  for (const char* directory : {"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"})
    if (fs::exists(fs::path(directory) / "nginx")) return fs::path(directory) / "nginx";
  return {};
}

// The committed config with the test's ports in place of 8080 (nginx), 8081 and 8082 (replicas).
std::string replicas_config(int nginx_port, int replica_a, int replica_b) {
  std::string text = read_file(fs::path(SLM_SOURCE_DIR) / "tools/nginx/slm-replicas.conf");
  const auto replace_all = [&](const std::string& from, const std::string& to) {
    const std::string before = text;
    text = std::regex_replace(text, std::regex(from), to);
    if (text == before) throw std::runtime_error("tools/nginx/slm-replicas.conf has no " + from);
  };
  replace_all(R"(listen 127\.0\.0\.1:8080;)", "listen 127.0.0.1:" + std::to_string(nginx_port) + ";");
  replace_all(R"(127\.0\.0\.1:8081 )", "127.0.0.1:" + std::to_string(replica_a) + " ");
  replace_all(R"(127\.0\.0\.1:8082 )", "127.0.0.1:" + std::to_string(replica_b) + " ");
  return text;
}

// nginx in the foreground with everything it writes in a temporary folder of its own.
class NginxProcess {
 public:
  NginxProcess(const fs::path& nginx, int replica_a, int replica_b) {
    char pattern[] = "/tmp/slm-nginx-test-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    directory_ = pattern;
    // nginx cannot be given port 0 and say which port it got: the test picks a free one, and
    // starts again on another if something took it in between.
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = free_loopback_port();
      write_configs(replica_a, replica_b);
      child_ = std::make_unique<ChildProcess>(std::vector<std::string>{
          nginx.string(), "-p", directory_.string(), "-c", (directory_ / "nginx.conf").string(), "-g", "daemon off;"});
      if (wait_until_healthy()) return;
      stop();
      if (read_file(directory_ / "error.log").find("in use") == std::string::npos) break;
    }
    throw std::runtime_error("nginx did not start; its error log:\n" + read_file(directory_ / "error.log"));
  }
  ~NginxProcess() {
    stop();
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }

  int port() const { return port_; }

 private:
  // SIGTERM to the master, which ends its workers before it exits; a SIGKILL would orphan them.
  void stop() {
    if (!child_) return;
    child_->send_signal(SIGTERM);
    child_->wait(10s);
    child_.reset();
  }

  void write_configs(int replica_a, int replica_b) {
    std::ofstream(directory_ / "slm-replicas.conf") << replicas_config(port_, replica_a, replica_b);
    const std::string d = directory_.string();
    std::ofstream(directory_ / "nginx.conf")
        // As root, nginx would hand its workers to "nobody", who cannot enter this folder.
        << (::geteuid() == 0 ? "user root;\n" : "") << "worker_processes 1;\n"
        << "pid " << d << "/nginx.pid;\n"
        << "error_log " << d << "/error.log notice;\n"
        << "events { worker_connections 256; }\n"
        << "http {\n"
        << "  access_log " << d << "/access.log;\n"
        << "  client_body_temp_path " << d << "/client_body;\n"
        << "  proxy_temp_path " << d << "/proxy;\n"
        << "  fastcgi_temp_path " << d << "/fastcgi;\n"
        << "  uwsgi_temp_path " << d << "/uwsgi;\n"
        << "  scgi_temp_path " << d << "/scgi;\n"
        << "  include " << d << "/slm-replicas.conf;\n"
        << "}\n";
  }

  bool wait_until_healthy() {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(1s);
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (const auto response = client.Get("/health"); response && response->status == 200) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  fs::path directory_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

struct Answer {
  int status = 0;
  std::string replica;  // the port that answered
  int completion_tokens = 0;
  std::string what;     // the replicas tried and the body, for a failure's message
};

Answer complete(httplib::Client& client, const std::string& session_id = {}) {
  httplib::Headers headers;
  if (!session_id.empty()) headers.emplace("X-Session-Id", session_id);
  const auto response = client.Post("/v1/completions", headers,
                                    R"({"prompt": "Once upon a time", "max_tokens": 48, "temperature": 0})",
                                    "application/json");
  Answer answer;
  if (!response) return answer;
  answer.status = response->status;
  const std::string tried = response->get_header_value("X-Slm-Replica");
  answer.replica = tried.substr(tried.rfind(':') + 1);
  answer.what = "tried " + tried + ": " + response->body;
  const Json body = Json::parse(response->body, nullptr, false);
  if (body.is_object() && body.contains("usage")) answer.completion_tokens = body["usage"]["completion_tokens"];
  return answer;
}

class NginxReplicas : public testing::Test {
 protected:
  void SetUp() override {
    nginx_path_ = find_nginx();
    if (nginx_path_.empty()) GTEST_SKIP() << "nginx is not installed (Debian: apt-get install nginx-light)";
    if (!fs::exists(bin_dir() / "slm-server")) GTEST_SKIP() << "slm-server not built";
    const fs::path model = shared_path("models/stories260K.gguf");
    SLM_REQUIRE_ASSET(model);
    const std::vector<std::string> arguments{"-m", model.string(), "-t", "1", "--parallel", "2", "-c", "256"};
    replica_a_ = std::make_unique<SlmServerProcess>(arguments);
    replica_b_ = std::make_unique<SlmServerProcess>(arguments);
    nginx_ = std::make_unique<NginxProcess>(nginx_path_, replica_a_->port(), replica_b_->port());
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", nginx_->port());
    c.set_keep_alive(true);
    c.set_read_timeout(60s);
    return c;
  }
  std::string port_a() const { return std::to_string(replica_a_->port()); }
  std::string port_b() const { return std::to_string(replica_b_->port()); }

  fs::path nginx_path_;
  std::unique_ptr<SlmServerProcess> replica_a_, replica_b_;
  std::unique_ptr<NginxProcess> nginx_;
};

TEST_F(NginxReplicas, SpreadsRequestsOverBothReplicas) {
  httplib::Client c = client();
  std::map<std::string, int> answered_by;
  for (int i = 0; i < 10; ++i) {
    const Answer answer = complete(c);
    ASSERT_EQ(answer.status, 200);
    ++answered_by[answer.replica];
  }
  EXPECT_GT(answered_by[port_a()], 0);
  EXPECT_GT(answered_by[port_b()], 0);
  EXPECT_EQ(answered_by[port_a()] + answered_by[port_b()], 10);
}

TEST_F(NginxReplicas, StreamsThroughAndKeepsASessionOnOneReplica) {
  httplib::Client c = client();
  const auto streamed = c.Post("/v1/completions", R"({"prompt": "Once", "max_tokens": 8, "stream": true})",
                               "application/json");
  ASSERT_TRUE(streamed);
  EXPECT_EQ(streamed->status, 200);
  EXPECT_EQ(streamed->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  EXPECT_NE(streamed->body.find("data: [DONE]"), std::string::npos) << streamed->body;

  std::map<std::string, int> sessions_on;
  for (int session = 0; session < 16; ++session) {
    const std::string id = "session-" + std::to_string(session);
    const std::string first = complete(c, id).replica;
    for (int turn = 0; turn < 3; ++turn) EXPECT_EQ(complete(c, id).replica, first) << id;
    ++sessions_on[first];
  }
  EXPECT_GT(sessions_on[port_a()], 0);  // 16 ids all hashing to one of 2 replicas: odds 1 in 32768
  EXPECT_GT(sessions_on[port_b()], 0);
}

TEST_F(NginxReplicas, SkipsAStoppedReplica) {
  EXPECT_EQ(replica_b_->stop().exit_code, 0);
  httplib::Client c = client();
  for (int i = 0; i < 6; ++i) {
    const Answer answer = complete(c);
    EXPECT_EQ(answer.status, 200);
    EXPECT_EQ(answer.replica, port_a());
  }
  EXPECT_EQ(complete(c, "a-session-that-hashed-anywhere").status, 200);
}

TEST_F(NginxReplicas, LosesNoRequestWhenAReplicaStopsMidRun) {
  constexpr int kRequests = 40, kConnections = 4;
  std::vector<Answer> answers(kRequests);
  std::atomic<int> next{0}, done{0};
  std::vector<std::thread> connections;
  for (int c = 0; c < kConnections; ++c)
    connections.emplace_back([&] {
      httplib::Client connection = client();
      for (int i = next++; i < kRequests; i = next++) {
        answers[size_t(i)] = complete(connection);
        ++done;
      }
    });
  while (done < kRequests / 2) std::this_thread::sleep_for(1ms);
  const int done_when_stopped = done;
  const ProcessResult stopped = replica_b_->stop();  // SIGTERM: B finishes what it has, refuses the rest
  for (std::thread& connection : connections) connection.join();

  EXPECT_EQ(stopped.exit_code, 0) << stopped.stderr_text;
  EXPECT_LT(done_when_stopped, kRequests) << "the replica stopped after the run, not in the middle";
  std::map<std::string, int> answered_by;
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(answers[size_t(i)].status, 200) << "request " << i << ", " << answers[size_t(i)].what;
    EXPECT_GE(answers[size_t(i)].completion_tokens, 1) << "request " << i;
    ++answered_by[answers[size_t(i)].replica];
  }
  EXPECT_GT(answered_by[port_b()], 0) << "the stopped replica took part before it stopped";
  std::fprintf(stderr, "stopped after %d of %d; answered by A %d, by B %d\n", done_when_stopped, kRequests,
               answered_by[port_a()], answered_by[port_b()]);
}

}  // namespace
}  // namespace slm::test
