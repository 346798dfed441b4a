// Tiered routing end to end on loopback: real slm-server processes, a local one with the tiny
// stories260K and a fallback one with another model (the Qwen2.5 tokenizer on a tiny random
// model) that wants an API key. Each policy routes as specified; the header, slm_route and
// /metrics say who answered; a dead fallback gives the local answer; the key, given in an
// environment variable, never appears in the local server's output or its route log.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include "http_test_server.hpp"
#include "support/process.hpp"
#include "support/server_process.hpp"

namespace slm::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kKeyVariable = "SLM_TEST_FALLBACK_KEY";
constexpr const char* kFallbackModel = "big-model";
constexpr const char* kPromptMarker = "Zanzibar";  // in every prompt: must not reach a log without --route-log-prompts

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("slm-test-routing-" + std::to_string(::getpid()) + "-" + name);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Answer {
  int status = 0;
  std::string route;  // the x-slm-route header
  Json body;          // whole: the body; streamed: the chunk with finish_reason
  std::string text;   // the answer's text (streamed: the deltas joined)
  std::vector<Json> chunks;
};

Answer post(int port, const std::string& path, const Json& request, const std::string& key = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  httplib::Headers headers;
  if (!key.empty()) headers.emplace("Authorization", "Bearer " + key);
  const httplib::Result result = client.Post(path, headers, request.dump(), "application/json");
  Answer answer;
  if (!result) {
    ADD_FAILURE() << path << ": no response";
    return answer;
  }
  answer.status = result->status;
  answer.route = result->get_header_value("x-slm-route");
  const bool chat = path.find("chat") != std::string::npos;
  if (!request.value("stream", false)) {
    answer.body = Json::parse(result->body);
    if (answer.status == 200)
      answer.text = chat ? answer.body["choices"][0]["message"]["content"].get<std::string>()
                         : answer.body["choices"][0]["text"].get<std::string>();
    return answer;
  }
  for (const std::string& data : sse_data(result->body)) {
    if (data == "[DONE]") continue;
    Json chunk = Json::parse(data);
    if (!chunk["choices"].empty()) {
      const Json& choice = chunk["choices"][0];
      if (chat && choice["delta"].contains("content")) answer.text += choice["delta"]["content"].get<std::string>();
      if (!chat) answer.text += choice["text"].get<std::string>();
      if (!choice["finish_reason"].is_null()) answer.body = chunk;
    }
    answer.chunks.push_back(std::move(chunk));
  }
  return answer;
}

Json chat_request(const std::string& content, const std::string& model = "auto") {
  return {{"model", model},
          {"messages", {{{"role", "user"}, {"content", content}}}},
          {"max_tokens", 8},
          {"temperature", 0}};
}

std::string long_message() {
  std::string text = kPromptMarker;
  for (int i = 0; i < 30; ++i) text += " and the little dog ran";
  return text;
}

std::vector<Json> log_lines(const std::filesystem::path& path) {
  std::vector<Json> lines;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) lines.push_back(Json::parse(line));
  return lines;
}

class HttpRouting : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(stories_model()) || !std::filesystem::exists(qwen_vocab_model()) ||
        !std::filesystem::exists(bin_dir() / "slm-server"))
      return;  // SetUp() skips, saying which
    std::random_device random;
    key_ = "slm-route-key-" + std::to_string(::getpid()) + "-" + std::to_string(random()) + std::to_string(random());
    ::setenv(kKeyVariable, key_.c_str(), 1);
    key_file_ = temp_path("fallback.key");
    std::ofstream(key_file_) << key_ << "\n";
    fallback_ = new SlmServerProcess({"-m", qwen_vocab_model().string(), "-t", "1", "--parallel", "2",
                                      "--api-key-file", key_file_.string(), "--no-webui"});
  }
  static void TearDownTestSuite() {
    delete fallback_;
    fallback_ = nullptr;
    std::filesystem::remove(key_file_);
  }
  void SetUp() override {
    SLM_REQUIRE_ASSET(stories_model());
    SLM_REQUIRE_ASSET(qwen_vocab_model());
    if (!std::filesystem::exists(bin_dir() / "slm-server")) GTEST_SKIP() << "slm-server not built";
  }

  // A local server with stories260K routing to `fallback_url` by `policy`, its key from the
  // environment, logging routes to `route_log`.
  static std::unique_ptr<SlmServerProcess> local_server(const std::string& fallback_url, const std::string& policy,
                                                        const std::filesystem::path& route_log,
                                                        std::vector<std::string> more = {}) {
    std::vector<std::string> arguments = {"-m", stories_model().string(), "-t", "1", "--parallel", "2",
                                          "--no-webui", "--fallback-url", fallback_url,
                                          "--fallback-model", kFallbackModel, "--fallback-api-key-env", kKeyVariable,
                                          "--fallback-timeout", "20", "--route", policy,
                                          "--route-log", route_log.string()};
    arguments.insert(arguments.end(), more.begin(), more.end());
    return std::make_unique<SlmServerProcess>(arguments);
  }

  // What the fallback answers when asked directly, as the router asks it.
  static Answer fallback_direct(const std::string& path, Json request) {
    request["model"] = kFallbackModel;
    request["stream"] = false;
    request.erase("stream_options");
    return post(fallback_->port(), path, request, key_);
  }

  // Stops the local server: its stderr and the route log hold neither the key nor, without
  // --route-log-prompts, the prompts.
  static void expect_no_secrets(SlmServerProcess& local, const std::filesystem::path& route_log, bool prompts_logged) {
    const ProcessResult exit = local.stop(SIGTERM, 30s);
    EXPECT_EQ(exit.exit_code, 0) << exit.stderr_text;
    EXPECT_NE(exit.stderr_text.find("routing"), std::string::npos) << exit.stderr_text;
    EXPECT_EQ(exit.stderr_text.find(key_), std::string::npos) << exit.stderr_text;
    const std::string log = read_file(route_log);
    EXPECT_FALSE(log.empty());
    EXPECT_EQ(log.find(key_), std::string::npos) << log;
    EXPECT_EQ(log.find(kPromptMarker) != std::string::npos, prompts_logged) << log;
  }

  static std::string key_;
  static std::filesystem::path key_file_;
  static SlmServerProcess* fallback_;
};
std::string HttpRouting::key_;
std::filesystem::path HttpRouting::key_file_;
SlmServerProcess* HttpRouting::fallback_ = nullptr;

TEST_F(HttpRouting, ModelAutoWithConfidenceSendsUnsureAutoRequestsToTheFallbackAndNamedOnesNever) {
  const std::filesystem::path route_log = temp_path("auto.jsonl");
  auto local = local_server(fallback_->url() + "/v1", "model:auto,confidence:0", route_log);
  const int port = local->port();
  const std::string message = std::string(kPromptMarker) + " was a little cat.";

  // "auto": answered locally, unsure (every mean logprob is below 0), so the fallback's answer.
  const Answer routed = post(port, "/v1/chat/completions", chat_request(message));
  ASSERT_EQ(routed.status, 200) << routed.body.dump();
  EXPECT_EQ(routed.route, "fallback");
  EXPECT_EQ(routed.body["model"], kFallbackModel);
  EXPECT_EQ(routed.text, fallback_direct("/v1/chat/completions", chat_request(message)).text);
  const Json& route = routed.body["slm_route"];
  EXPECT_EQ(route["route"], "fallback");
  EXPECT_EQ(route["reason"], "low_confidence");
  EXPECT_EQ(route["threshold"], 0.0);
  EXPECT_LT(route["confidence"]["mean_logprob"].get<double>(), 0.0);  // the local answer's, which decided it
  EXPECT_GT(route["confidence"]["n_tokens"].get<int>(), 0);

  // A named model: always local, streamed as generated.
  Json named = chat_request(message, "stories");
  const Answer local_answer = post(port, "/v1/chat/completions", named);
  ASSERT_EQ(local_answer.status, 200);
  EXPECT_EQ(local_answer.route, "local");
  EXPECT_EQ(local_answer.body["model"], "stories");
  EXPECT_EQ(local_answer.body["slm_route"]["route"], "local");
  EXPECT_EQ(local_answer.body["slm_route"]["reason"], "model_named");
  EXPECT_EQ(local_answer.body["slm_route"]["confidence"], local_answer.body["confidence"]);
  named["stream"] = true;
  const Answer local_stream = post(port, "/v1/chat/completions", named);
  EXPECT_EQ(local_stream.route, "local");
  EXPECT_EQ(local_stream.text, local_answer.text);
  EXPECT_EQ(local_stream.body["slm_route"]["reason"], "model_named");

  // Completions, streamed with usage: the fallback's whole answer re-sent as chunks.
  const Json completion = {{"model", "auto"}, {"prompt", message}, {"max_tokens", 8}, {"temperature", 0},
                           {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  const Answer streamed = post(port, "/v1/completions", completion);
  ASSERT_EQ(streamed.status, 200);
  EXPECT_EQ(streamed.route, "fallback");
  EXPECT_EQ(streamed.text, fallback_direct("/v1/completions", completion).text);
  EXPECT_EQ(streamed.body["slm_route"]["route"], "fallback");
  ASSERT_FALSE(streamed.chunks.empty());
  EXPECT_TRUE(streamed.chunks.back()["choices"].empty());  // the usage chunk comes last
  EXPECT_GT(streamed.chunks.back()["usage"]["completion_tokens"].get<int>(), 0);

  httplib::Client observer("127.0.0.1", port);
  EXPECT_EQ(server_metric(observer, R"(slm_route_total{route="fallback",reason="low_confidence"})"), 2);
  EXPECT_EQ(server_metric(observer, R"(slm_route_total{route="local",reason="model_named"})"), 2);
  EXPECT_EQ(server_metric(observer, "slm_fallback_seconds_count"), 2);
  EXPECT_GT(server_metric(observer, "slm_fallback_seconds_sum"), 0);
  EXPECT_EQ(server_metric(observer, "slm_fallback_failures_total"), 0);

  expect_no_secrets(*local, route_log, /*prompts_logged=*/false);
  const std::vector<Json> lines = log_lines(route_log);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["route"], "fallback");
  EXPECT_EQ(lines[0]["reason"], "low_confidence");
  EXPECT_EQ(lines[0]["endpoint"], "chat.completions");
  EXPECT_EQ(lines[0]["model"], "auto");
  EXPECT_TRUE(lines[0]["fallback_seconds"].is_number());
  EXPECT_EQ(lines[0]["confidence"], route["confidence"]);
  EXPECT_EQ(lines[1]["reason"], "model_named");
  EXPECT_EQ(lines[3]["endpoint"], "completions");
  EXPECT_TRUE(lines[3]["stream"].get<bool>());
  std::filesystem::remove(route_log);
}

TEST_F(HttpRouting, PromptTokensSendsLongPromptsAwayAndConfidenceKeepsSureAnswersLocal) {
  const std::filesystem::path route_log = temp_path("prompt.jsonl");
  auto local = local_server(fallback_->url() + "/v1", "prompt-tokens:40,confidence:-50", route_log,
                            {"--route-log-prompts"});
  const int port = local->port();

  const Answer long_prompt = post(port, "/v1/chat/completions", chat_request(long_message()));
  ASSERT_EQ(long_prompt.status, 200) << long_prompt.body.dump();
  EXPECT_EQ(long_prompt.route, "fallback");
  EXPECT_EQ(long_prompt.body["slm_route"]["reason"], "prompt_tokens");
  EXPECT_TRUE(long_prompt.body["slm_route"]["confidence"].is_null());  // no local answer was made
  EXPECT_EQ(long_prompt.text, fallback_direct("/v1/chat/completions", chat_request(long_message())).text);

  const std::string message = std::string(kPromptMarker) + " had a red ball.";
  const Answer sure = post(port, "/v1/chat/completions", chat_request(message));
  ASSERT_EQ(sure.status, 200);
  EXPECT_EQ(sure.route, "local");
  EXPECT_EQ(sure.body["slm_route"]["reason"], "confident");
  EXPECT_GT(sure.body["slm_route"]["confidence"]["mean_logprob"].get<double>(), -50.0);
  EXPECT_EQ(sure.body["slm_route"]["confidence"], sure.body["confidence"]);

  // Streamed with confidence:T: the local answer is buffered, then sent as the same stream.
  Json streamed_request = chat_request(message);
  streamed_request["stream"] = true;
  const Answer streamed = post(port, "/v1/chat/completions", streamed_request);
  EXPECT_EQ(streamed.route, "local");
  EXPECT_EQ(streamed.text, sure.text);
  EXPECT_EQ(streamed.body["slm_route"]["reason"], "confident");
  EXPECT_EQ(streamed.body["confidence"], sure.body["confidence"]);
  EXPECT_EQ(streamed.chunks.front()["choices"][0]["delta"]["role"], "assistant");

  expect_no_secrets(*local, route_log, /*prompts_logged=*/true);
  const std::vector<Json> lines = log_lines(route_log);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["reason"], "prompt_tokens");
  EXPECT_GT(lines[0]["prompt_tokens"].get<int>(), 40);
  EXPECT_EQ(lines[1]["prompt"][0]["content"], message);  // --route-log-prompts: the messages as sent
  std::filesystem::remove(route_log);
}

TEST_F(HttpRouting, ADeadFallbackGivesTheLocalAnswerMarkedSo) {
  const std::filesystem::path route_log = temp_path("dead.jsonl");
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_loopback_port()) + "/v1";
  auto local = local_server(dead, "prompt-tokens:40,confidence:0", route_log);
  const int port = local->port();
  const std::string message = std::string(kPromptMarker) + " saw a bird.";

  // Unsure (confidence:0), the fallback is asked and fails: the buffered local answer.
  const Answer unsure = post(port, "/v1/chat/completions", chat_request(message));
  ASSERT_EQ(unsure.status, 200) << unsure.body.dump();
  EXPECT_EQ(unsure.route, "local");
  EXPECT_EQ(unsure.body["slm_route"]["route"], "local");
  EXPECT_EQ(unsure.body["slm_route"]["reason"], "fallback_failed");
  EXPECT_FALSE(unsure.body["slm_route"]["fallback_error"].get<std::string>().empty());
  EXPECT_FALSE(unsure.text.empty());

  // A long prompt meant for the fallback: answered locally, streamed or whole.
  const Answer long_prompt = post(port, "/v1/chat/completions", chat_request(long_message()));
  ASSERT_EQ(long_prompt.status, 200);
  EXPECT_EQ(long_prompt.route, "local");
  EXPECT_EQ(long_prompt.body["slm_route"]["reason"], "fallback_failed");
  Json streamed_request = chat_request(long_message());
  streamed_request["stream"] = true;
  const Answer long_stream = post(port, "/v1/chat/completions", streamed_request);
  EXPECT_EQ(long_stream.route, "local");
  EXPECT_EQ(long_stream.text, long_prompt.text);
  EXPECT_EQ(long_stream.body["slm_route"]["reason"], "fallback_failed");

  httplib::Client observer("127.0.0.1", port);
  EXPECT_EQ(server_metric(observer, R"(slm_route_total{route="local",reason="fallback_failed"})"), 3);
  EXPECT_EQ(server_metric(observer, "slm_fallback_failures_total"), 3);

  expect_no_secrets(*local, route_log, /*prompts_logged=*/false);
  for (const Json& line : log_lines(route_log)) {
    EXPECT_EQ(line["reason"], "fallback_failed");
    EXPECT_TRUE(line["fallback_error"].is_string());
  }
  std::filesystem::remove(route_log);
}

TEST_F(HttpRouting, BadRoutingFlagsAreOneLineAndAnExitCode) {
  const std::string server = (bin_dir() / "slm-server").string();
  const std::string model = stories_model().string();
  const ProcessResult unknown = run_process({server, "-m", model, "--port", "0", "--fallback-url",
                                             "http://127.0.0.1:1/v1", "--fallback-model", "big", "--route", "fast"},
                                            {}, 30s);
  EXPECT_EQ(unknown.exit_code, 2) << unknown.stderr_text;
  EXPECT_NE(unknown.stderr_text.find("unknown policy 'fast'"), std::string::npos) << unknown.stderr_text;
  const ProcessResult no_policy =
      run_process({server, "-m", model, "--port", "0", "--fallback-url", "http://127.0.0.1:1/v1"}, {}, 30s);
  EXPECT_EQ(no_policy.exit_code, 2) << no_policy.stderr_text;
  const ProcessResult unset_key = run_process(
      {server, "-m", model, "--port", "0", "--fallback-url", "http://127.0.0.1:1/v1", "--fallback-model", "big",
       "--route", "model:auto", "--fallback-api-key-env", "SLM_TEST_VARIABLE_THAT_IS_NOT_SET"},
      {}, 30s);
  EXPECT_EQ(unset_key.exit_code, 1) << unset_key.stderr_text;
  EXPECT_NE(unset_key.stderr_text.find("SLM_TEST_VARIABLE_THAT_IS_NOT_SET"), std::string::npos);
}

}  // namespace
}  // namespace slm::test
