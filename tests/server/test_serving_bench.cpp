// slm-bench --server, the serving benchmark, run as a process against a small OpenAI-compatible
// mock inside the test (whose answers and timings the test controls) and against a real
// slm-server: what it sends (distinct, deterministic prompts of the asked length, streamed,
// greedy, usage asked for), what it counts (tokens from usage, else from chunks; failures), and
// the table and JSON it prints.
#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "support/assets.hpp"
#include "support/process.hpp"
#include "support/server_process.hpp"

namespace slm::test {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

struct MockBehaviour {
  std::string required_key;       // empty: no key needed
  int fail_every = 0;             // > 0: every fail_every-th completion after the first gets a 503
  bool send_usage = true;         // the last chunk carries usage (stream_options.include_usage)
  int first_token_delay_ms = 0;
  int token_interval_ms = 0;
};

// An OpenAI-compatible server on a loopback port that streams max_tokens chunks of "ab" per
// completion and records every request body. Its events are cut at awkward places (inside
// "data:", between \r and \n) and mixed with SSE comments, as proxies and servers may send them.
class MockOpenAiServer {
 public:
  explicit MockOpenAiServer(MockBehaviour behaviour) : behaviour_(std::move(behaviour)) {
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"mock-model","object":"model"}]})", "application/json");
    });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { complete(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~MockOpenAiServer() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Json> bodies() const {
    const std::lock_guard lock(mutex_);
    return bodies_;
  }

 private:
  void complete(const httplib::Request& req, httplib::Response& res) {
    if (!behaviour_.required_key.empty() && req.get_header_value("Authorization") != "Bearer " + behaviour_.required_key) {
      res.status = 401;
      res.set_content(R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})",
                      "application/json");
      return;
    }
    const Json body = Json::parse(req.body);
    size_t number = 0;
    {
      const std::lock_guard lock(mutex_);
      number = bodies_.size();
      bodies_.push_back(body);
    }
    if (behaviour_.fail_every > 0 && number > 0 && number % size_t(behaviour_.fail_every) == 0) {
      res.status = 503;
      res.set_content(R"({"error":{"message":"the queue is full","type":"server_error","param":null,"code":"queue_full"}})",
                      "application/json");
      return;
    }
    const int n_tokens = body.at("max_tokens").get<int>();
    const int n_prompt = body.at("prompt").is_array() ? int(body.at("prompt").size()) : -1;
    const MockBehaviour behaviour = behaviour_;
    res.set_chunked_content_provider("text/event-stream", [=](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(std::chrono::milliseconds(behaviour.first_token_delay_ms));
      sink.write(": keep-alive comment\n\n", 22);
      for (int i = 0; i < n_tokens; ++i) {
        if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(behaviour.token_interval_ms));
        const std::string finish = i + 1 == n_tokens ? R"("length")" : "null";
        const std::string event = R"(data: {"object":"text_completion","choices":[{"index":0,"text":"ab","finish_reason":)" +
                                  finish + "}]}\r\n\r\n";
        sink.write(event.data(), 3);  // "dat", then the rest: the client must join the pieces
        sink.write(event.data() + 3, event.size() - 3);
      }
      if (behaviour.send_usage) {
        const std::string usage = R"(data: {"choices":[],"usage":{"prompt_tokens":)" + std::to_string(n_prompt) +
                                  R"(,"completion_tokens":)" + std::to_string(n_tokens) + "}}\n\n";
        sink.write(usage.data(), usage.size());
      }
      sink.write("data: [DONE]\n\n", 14);
      sink.done();
      return true;
    });
  }

  MockBehaviour behaviour_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Json> bodies_;
};

ProcessResult run_bench(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv{(bin_dir() / "slm-bench").string()};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return run_process(argv, {}, 120s);
}

Json json_output(const ProcessResult& run) {
  const Json out = Json::parse(run.stdout_text, nullptr, false);
  EXPECT_TRUE(out.is_object()) << run.stdout_text << run.stderr_text;
  return out;
}

class ServingBench : public testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(bin_dir() / "slm-bench")) GTEST_SKIP() << "slm-bench not built";
  }
};

TEST_F(ServingBench, SendsDistinctStreamedGreedyPromptsOfTheAskedLength) {
  MockOpenAiServer mock({});
  const ProcessResult run = run_bench({"--server", mock.url(), "--concurrency", "1,3", "--prompt-tokens", "16",
                                       "--gen-tokens", "5", "--requests", "6", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::vector<Json> bodies = mock.bodies();
  ASSERT_EQ(bodies.size(), 1u + 6u + 6u);  // the warm-up, then each level's requests
  std::set<Json> prompts;
  for (const Json& body : bodies) {
    EXPECT_EQ(body["model"], "mock-model");  // the first that /v1/models lists
    EXPECT_EQ(body["stream"], true);
    EXPECT_EQ(body["temperature"], 0);
    EXPECT_EQ(body["stream_options"]["include_usage"], true);
    ASSERT_EQ(body["prompt"].size(), 16u);
    for (const Json& id : body["prompt"]) EXPECT_TRUE(id.is_number_integer() && id >= 0 && id < 256) << id;
    prompts.insert(body["prompt"]);
  }
  EXPECT_EQ(prompts.size(), bodies.size()) << "every request has its own prompt";
  EXPECT_EQ(bodies[0]["max_tokens"], 5);
  EXPECT_EQ(bodies[1]["max_tokens"], 5);

  // The same seed gives the same prompts on another run.
  MockOpenAiServer again({});
  ASSERT_EQ(run_bench({"--server", again.url(), "--concurrency", "1,3", "--prompt-tokens", "16", "--gen-tokens", "5",
                       "--requests", "6", "-o", "json"}).exit_code, 0);
  std::set<Json> prompts_again;
  for (const Json& body : again.bodies()) prompts_again.insert(body["prompt"]);
  EXPECT_EQ(prompts_again, prompts);
}

TEST_F(ServingBench, ReportsTokensFromUsageAndTimesFromTheChunks) {
  MockOpenAiServer mock({.first_token_delay_ms = 40, .token_interval_ms = 25});
  const ProcessResult run = run_bench({"--server", mock.url(), "--concurrency", "1,2", "--prompt-tokens", "8",
                                       "--gen-tokens", "5", "--requests", "4", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const Json out = json_output(run);
  EXPECT_EQ(out["model"], "mock-model");
  ASSERT_EQ(out["levels"].size(), 2u);
  for (const Json& level : out["levels"]) {
    EXPECT_EQ(level["requests"], 4);
    EXPECT_EQ(level["failed"], 0);
    EXPECT_EQ(level["generated_tokens"], 20);
    EXPECT_EQ(level["min_tokens_per_request"], 5);
    EXPECT_EQ(level["max_tokens_per_request"], 5);
    EXPECT_EQ(level["mean_prompt_tokens"], 8.0);
    // The mock waits 40 ms for the first token and 25 ms between tokens (40 tokens/s): a lower
    // bound on the time to first token, and an upper bound on the stream's speed with room for
    // a late first chunk.
    EXPECT_GE(level["ttft_p50_ms"].get<double>(), 40.0);
    EXPECT_GE(level["ttft_p99_ms"].get<double>(), level["ttft_p50_ms"].get<double>());
    // 4 requests: the first `concurrency` sent together, the rest as those finish.
    EXPECT_GE(level["ttft_p50_first_wave_ms"].get<double>(), 40.0);
    EXPECT_GE(level["ttft_p50_later_ms"].get<double>(), 40.0);
    EXPECT_LE(level["stream_tokens_per_second_mean"].get<double>(), 50.0);
    EXPECT_GT(level["stream_tokens_per_second_mean"].get<double>(), 0.0);
    EXPECT_NEAR(level["aggregate_tokens_per_second"].get<double>(),
                level["generated_tokens"].get<double>() / level["wall_seconds"].get<double>(), 1e-6);
  }
  EXPECT_EQ(out["levels"][0]["concurrency"], 1);
  EXPECT_EQ(out["levels"][1]["concurrency"], 2);
}

TEST_F(ServingBench, CountsTextChunksWhenTheServerSendsNoUsage) {
  MockOpenAiServer mock({.send_usage = false});
  const ProcessResult run = run_bench({"--server", mock.url() + "/v1", "--concurrency", "2", "--prompt-tokens", "4",
                                       "--gen-tokens", "3", "--requests", "2", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const Json level = json_output(run)["levels"][0];
  EXPECT_EQ(level["generated_tokens"], 6);
  EXPECT_TRUE(level["mean_prompt_tokens"].is_null());
}

TEST_F(ServingBench, PrintsAMarkdownTableRowPerConcurrency) {
  MockOpenAiServer mock({});
  const ProcessResult run = run_bench({"--server", mock.url(), "--concurrency", "1,2", "--prompt-tokens", "4",
                                       "--gen-tokens", "3", "--requests", "2"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  std::istringstream lines(run.stdout_text);
  std::string header, rule, row1, row2;
  std::getline(lines, header), std::getline(lines, rule), std::getline(lines, row1), std::getline(lines, row2);
  EXPECT_EQ(header, "| concurrency | requests | failed | prompt tokens | gen tokens | aggregate t/s |   per-stream t/s | TTFT p50 ms | TTFT p99 ms | wave 1 TTFT p50 | later TTFT p50 |");
  EXPECT_EQ(rule, "| ----------: | -------: | -----: | ------------: | ---------: | ------------: | ---------------: | ----------: | ----------: | --------------: | -------------: |");
  // Two requests at concurrency 1: one in wave 1, one later; at 2: both in wave 1, none later.
  const std::string common = R"(\| +2 \| +0 \| +4 \| +3 \| +\d+\.\d\d \| +\d+\.\d\d ± \d+\.\d\d \| +\d+\.\d \| +\d+\.\d \| +\d+\.\d \|)";
  EXPECT_TRUE(std::regex_match(row1, std::regex(R"(\| +1 )" + common + R"( +\d+\.\d \|)"))) << row1;
  EXPECT_TRUE(std::regex_match(row2, std::regex(R"(\| +2 )" + common + R"( +- \|)"))) << row2;
  EXPECT_NE(run.stdout_text.find("server: " + mock.url() + ", model: mock-model"), std::string::npos) << run.stdout_text;
  EXPECT_NE(run.stderr_text.find("concurrency 2: 2 requests"), std::string::npos) << run.stderr_text;
}

TEST_F(ServingBench, TextPromptsAreWordsOfTheAskedCount) {
  MockOpenAiServer mock({});
  ASSERT_EQ(run_bench({"--server", mock.url(), "--concurrency", "1", "--prompt-tokens", "12", "--gen-tokens", "2",
                       "--requests", "2", "--prompt-kind", "text", "-o", "json"}).exit_code, 0);
  for (const Json& body : mock.bodies()) {
    ASSERT_TRUE(body["prompt"].is_string()) << body;
    const std::string text = body["prompt"];
    EXPECT_EQ(std::count(text.begin(), text.end(), ' '), 11) << text;
  }
}

TEST_F(ServingBench, CountsFailedRequestsAndExitsNonZero) {
  MockOpenAiServer mock({.fail_every = 3});  // completions 3 and 6 of 1 + 6 are refused
  const ProcessResult run = run_bench({"--server", mock.url(), "--concurrency", "1", "--prompt-tokens", "4",
                                       "--gen-tokens", "2", "--requests", "6", "-o", "json"});
  EXPECT_EQ(run.exit_code, 1) << run.stderr_text;
  const Json level = json_output(run)["levels"][0];
  EXPECT_EQ(level["requests"], 6);
  EXPECT_EQ(level["failed"], 2);
  EXPECT_EQ(level["generated_tokens"], 8);
  EXPECT_EQ(level["errors"], Json::array({"HTTP 503: the queue is full"}));
  EXPECT_NE(run.stderr_text.find("failed: HTTP 503: the queue is full"), std::string::npos) << run.stderr_text;
}

TEST_F(ServingBench, SendsTheApiKeyAndStopsAtTheWarmUpWhenItIsWrong) {
  MockOpenAiServer mock({.required_key = "secret"});
  const std::vector<std::string> quick{"--server", mock.url(), "--concurrency", "1", "--prompt-tokens", "4",
                                       "--gen-tokens", "2", "--requests", "1"};
  std::vector<std::string> right = quick, wrong = quick;
  right.insert(right.end(), {"--api-key", "secret"});
  wrong.insert(wrong.end(), {"--api-key", "guess"});
  EXPECT_EQ(run_bench(right).exit_code, 0);
  const ProcessResult refused = run_bench(wrong);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.stderr_text.find("warm-up request to " + mock.url() + " failed: HTTP 401: Incorrect API key provided"),
            std::string::npos)
      << refused.stderr_text;
}

TEST_F(ServingBench, RefusesWhatItCannotUse) {
  const ProcessResult not_http = run_bench({"--server", "ftp://127.0.0.1:1"});
  EXPECT_EQ(not_http.exit_code, 1);
  EXPECT_NE(not_http.stderr_text.find("server URL 'ftp://127.0.0.1:1': expected http://HOST:PORT"), std::string::npos)
      << not_http.stderr_text;
  const ProcessResult both = run_bench({"--server", "http://127.0.0.1:1", "-m", "x.gguf"});
  EXPECT_EQ(both.exit_code, 2);
  const ProcessResult unreachable = run_bench({"--server", "http://127.0.0.1:1", "--timeout", "5"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.stderr_text.find("http://127.0.0.1:1/v1/models: could not connect"), std::string::npos)
      << unreachable.stderr_text;
}

// The real server: every request answered, each generating at most max_tokens, the prompt
// counted as sent.
TEST_F(ServingBench, MeasuresARealSlmServer) {
  const std::filesystem::path model = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(model);
  if (!std::filesystem::exists(bin_dir() / "slm-server")) GTEST_SKIP() << "slm-server not built";
  SlmServerProcess server({"-m", model.string(), "--parallel", "2", "-t", "1", "-c", "256"});
  const ProcessResult run = run_bench({"--server", server.url(), "--concurrency", "1,2", "--prompt-tokens", "32",
                                       "--gen-tokens", "8", "--requests", "4", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const Json out = json_output(run);
  ASSERT_EQ(out["levels"].size(), 2u);
  for (const Json& level : out["levels"]) {
    EXPECT_EQ(level["failed"], 0);
    EXPECT_EQ(level["mean_prompt_tokens"], 32.0);
    EXPECT_GE(level["min_tokens_per_request"].get<int>(), 1);
    EXPECT_LE(level["max_tokens_per_request"].get<int>(), 8);
    EXPECT_GT(level["aggregate_tokens_per_second"].get<double>(), 0.0);
  }
  EXPECT_EQ(server.stop().exit_code, 0);
}

}  // namespace
}  // namespace slm::test
