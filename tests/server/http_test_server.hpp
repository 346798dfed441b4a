// Helpers of the HTTP server tests: an in-process slm-server on an ephemeral loopback port,
// clients for it, Server-Sent Events and /metrics read back.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "lib/chat/chat_prompt.hpp"
#include "lib/server/http_server.hpp"
#include "slm/model.hpp"
#include "slm/scheduler.hpp"
#include "support/assets.hpp"

namespace slm::test {

using Json = nlohmann::json;

inline std::filesystem::path stories_model() { return shared_path("models/stories260K.gguf"); }
// The Qwen2.5 tokenizer and chat template on a tiny random model: about 5 ms per token on one
// thread, slow enough to cancel a long generation in the middle.
inline std::filesystem::path qwen_vocab_model() { return shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf"); }

inline SchedulerOptions small_scheduler(int32_t parallel = 2, int32_t queue = 4) {
  SchedulerOptions options;
  options.parallel = parallel;
  options.queue = queue;
  options.decoder.n_threads = 1;
  return options;
}

// slm-server's library in this process, on 127.0.0.1 and a port the system picks.
class InProcessServer {
 public:
  // `model_path` empty: the server never gets a model (it stays "loading"). `chat_template_file`
  // empty: the model's own template.
  InProcessServer(const std::filesystem::path& model_path, SchedulerOptions scheduler_options,
                  server::HttpServerOptions http_options = {}, const std::string& chat_template_file = {}) {
    http_options.host = "127.0.0.1";
    http_options.port = 0;
    if (http_options.model_name.empty()) http_options.model_name = model_path.filename().string();
    http_options.http_threads = scheduler_options.parallel + scheduler_options.queue + 8;
    http_ = std::make_unique<server::HttpServer>(http_options);
    port_ = http_->bind();
    serving_ = std::thread([this] { http_->serve(); });
    if (model_path.empty()) return;
    model_ = Model::load(model_path.string());
    scheduler_ = std::make_shared<Scheduler>(model_, scheduler_options);
    std::string warning;
    chat_template_ = chat::choose_chat_template(model_.get(), {chat_template_file, {}}, warning);
    http_->set_model({scheduler_, chat_template_});
  }
  ~InProcessServer() {
    http_->cancel_requests_in_flight();
    if (scheduler_) scheduler_->shutdown(false);
    http_->stop();
    serving_.join();
  }
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  int port() const { return port_; }
  const std::shared_ptr<const Model>& model() const { return model_; }
  const chat::ChatTemplate& chat_template() const { return chat_template_; }
  Scheduler& scheduler() { return *scheduler_; }
  server::HttpServer& http() { return *http_; }

  std::unique_ptr<httplib::Client> client() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client->set_read_timeout(60, 0);
    return client;
  }

 private:
  std::unique_ptr<server::HttpServer> http_;
  int port_ = 0;
  std::thread serving_;
  std::shared_ptr<const Model> model_;
  std::shared_ptr<Scheduler> scheduler_;
  chat::ChatTemplate chat_template_;
};

// The payloads of the `data: ...` lines of an event stream.
inline std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> events;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    events.push_back(body.substr(at + 6, (end == std::string::npos ? body.size() : end) - at - 6));
    at = end == std::string::npos ? body.size() : end + 2;
  }
  return events;
}

// A sample's value in Prometheus text ("name" or "name{label=...}"); -1 when absent.
inline double metric_value(const std::string& text, const std::string& sample) {
  const size_t at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + sample.size() + 2));
}

inline double server_metric(httplib::Client& client, const std::string& sample) {
  const httplib::Result result = client.Get("/metrics");
  return result && result->status == 200 ? metric_value(result->body, sample) : -1;
}

// Polls until `done()` or the deadline; true when done.
template <typename Condition>
bool eventually(Condition done, std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace slm::test
