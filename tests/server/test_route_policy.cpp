// Tiered routing's pure parts: --route's policies parsed and refused, the decision each makes
// (lib/server/route_policy.hpp), the fallback's URL checked, and a fallback's whole answer
// re-sent as stream chunks (lib/server/route_request.hpp).
#include <gtest/gtest.h>

#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "lib/server/fallback_client.hpp"
#include "lib/server/route_policy.hpp"
#include "lib/server/route_request.hpp"
#include "slm/error.hpp"
#include "support/server_process.hpp"

namespace slm::server {
namespace {

using Json = nlohmann::ordered_json;

TEST(RoutePolicy, ParsesEachPolicyAndTheirCombination) {
  const RoutePolicy all = parse_route_policy("confidence:-1.5,prompt-tokens:2000,model:auto");
  EXPECT_EQ(all.min_mean_logprob, -1.5);
  EXPECT_EQ(all.max_local_prompt_tokens, 2000);
  EXPECT_TRUE(all.only_model_auto);
  const RoutePolicy one = parse_route_policy("prompt-tokens:0");
  EXPECT_FALSE(one.min_mean_logprob);
  EXPECT_EQ(one.max_local_prompt_tokens, 0);
  EXPECT_FALSE(one.only_model_auto);
}

TEST(RoutePolicy, RefusesWhatItDoesNotKnowNamingThePart) {
  for (const char* bad : {"", "confidence", "confidence:", "confidence:abc", "confidence:0.5", "confidence:nan",
                          "prompt-tokens:-1", "prompt-tokens:1.5", "model:gpt-4", "fast", "confidence:-1,",
                          "confidence:-1,confidence:-2", "prompt-tokens:10,prompt-tokens:20"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(parse_route_policy(bad), Error);
  }
  try {
    parse_route_policy("confidence:-1,fast:3");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fast:3'"), std::string::npos) << e.what();
  }
}

TEST(RoutePolicy, PromptTokensSendsLongPromptsStraightToTheFallback) {
  const RoutePolicy policy = parse_route_policy("prompt-tokens:100");
  const PromptDecision long_prompt = decide_on_prompt(policy, "any", 101);
  EXPECT_TRUE(long_prompt.to_fallback);
  EXPECT_EQ(long_prompt.reason, RouteReason::PromptTokens);
  const PromptDecision short_prompt = decide_on_prompt(policy, "any", 100);
  EXPECT_FALSE(short_prompt.to_fallback);
  EXPECT_FALSE(short_prompt.check_confidence);
  EXPECT_EQ(short_prompt.reason, RouteReason::PromptWithinLimit);
}

TEST(RoutePolicy, ConfidenceAnswersLocallyThenComparesTheMeanLogprobWithT) {
  const RoutePolicy policy = parse_route_policy("confidence:-1.5");
  const PromptDecision decision = decide_on_prompt(policy, "any", 5000);
  EXPECT_FALSE(decision.to_fallback);
  EXPECT_TRUE(decision.check_confidence);
  Confidence local;
  local.n_tokens = 10;
  local.mean_logprob = -1.6;
  EXPECT_TRUE(confidence_too_low(policy, local));
  local.mean_logprob = -1.5;
  EXPECT_FALSE(confidence_too_low(policy, local));
  local.n_tokens = 0;  // nothing generated: nothing to judge
  local.mean_logprob = 0;
  EXPECT_FALSE(confidence_too_low(policy, local));
}

TEST(RoutePolicy, ModelAutoRoutesOnlyRequestsForAutoAndAloneSendsThemToTheFallback) {
  const RoutePolicy alone = parse_route_policy("model:auto");
  EXPECT_EQ(decide_on_prompt(alone, "auto", 3).reason, RouteReason::ModelAuto);
  EXPECT_TRUE(decide_on_prompt(alone, "auto", 3).to_fallback);
  EXPECT_EQ(decide_on_prompt(alone, "qwen2.5-0.5b", 3).reason, RouteReason::ModelNamed);
  EXPECT_FALSE(decide_on_prompt(alone, "qwen2.5-0.5b", 3).to_fallback);

  const RoutePolicy gated = parse_route_policy("model:auto,prompt-tokens:10,confidence:-2");
  EXPECT_EQ(decide_on_prompt(gated, "named", 500).reason, RouteReason::ModelNamed);  // never routed
  EXPECT_FALSE(decide_on_prompt(gated, "named", 500).check_confidence);
  EXPECT_EQ(decide_on_prompt(gated, "auto", 500).reason, RouteReason::PromptTokens);
  EXPECT_TRUE(decide_on_prompt(gated, "auto", 5).check_confidence);
}

TEST(FallbackClient, TakesHttpAndHttpsUrlsOnly) {
  EXPECT_NO_THROW(FallbackClient({"http://127.0.0.1:8081/v1", "big", "", 5}));
  EXPECT_NO_THROW(FallbackClient({"http://localhost:8081", "big", "", 5}));
  EXPECT_THROW(FallbackClient({"ftp://example.org/v1", "big", "", 5}), Error);
  EXPECT_THROW(FallbackClient({"127.0.0.1:8081", "big", "", 5}), Error);
  EXPECT_THROW(FallbackClient({"http://", "big", "", 5}), Error);
  EXPECT_THROW(FallbackClient({"http://127.0.0.1:8081", "", "", 5}), Error);
}

TEST(FallbackClient, ANetworkFailureIsAnAnswerNotOkThatHoldsNoKey) {
  // A port the kernel just gave out and took back: nothing listens there.
  const std::string url = "http://127.0.0.1:" + std::to_string(test::free_loopback_port()) + "/v1";
  const FallbackClient client({url, "big", "key-that-must-not-leak", 2});
  const FallbackAnswer answer = client.ask(Endpoint::ChatCompletions, R"({"messages":[]})");
  EXPECT_FALSE(answer.ok);
  EXPECT_FALSE(answer.error.empty());
  EXPECT_EQ(answer.error.find("key-that-must-not-leak"), std::string::npos);
}

// A fallback on loopback that answers every request with `body` and `status`, and records what
// it was asked.
class FakeFallback {
 public:
  FakeFallback(int status, std::string body) {
    server_.Post(R"(/v1/.*)", [this, status, body](const httplib::Request& request, httplib::Response& response) {
      std::lock_guard lock(mutex_);
      paths_.push_back(request.path);
      bodies_.push_back(request.body);
      authorizations_.push_back(request.get_header_value("Authorization"));
      response.status = status;
      response.set_content(body, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });  // bound: connections wait for it
  }
  ~FakeFallback() {
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // stop() needs the loop
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  std::vector<std::string> paths_, bodies_, authorizations_;
  std::mutex mutex_;

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(FallbackClient, SendsTheBodyWithTheFallbacksModelUnstreamedAndTheKeyInTheHeader) {
  FakeFallback fake(200, R"({"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}]})");
  const FallbackClient client({fake.url(), "big", "secret", 10});
  const FallbackAnswer answer = client.ask(
      Endpoint::ChatCompletions, R"({"model":"auto","messages":[],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_TRUE(answer.ok) << answer.error;
  ASSERT_EQ(fake.paths_.size(), 1u);
  EXPECT_EQ(fake.paths_[0], "/v1/chat/completions");
  EXPECT_EQ(fake.authorizations_[0], "Bearer secret");
  const Json sent = Json::parse(fake.bodies_[0]);
  EXPECT_EQ(sent["model"], "big");
  EXPECT_EQ(sent["stream"], false);
  EXPECT_FALSE(sent.contains("stream_options"));
}

TEST(FallbackClient, AnErrorStatusOrAnAnswerOfTheWrongShapeIsNotOk) {
  const std::vector<std::pair<int, std::string>> bad = {
      {500, R"({"error":{"message":"overloaded"}})"}, {200, "not json"}, {200, R"({"choices":[]})"},
      {200, R"({"choices":[1]})"}, {200, R"({"choices":[{"text":"only completions have text"}]})"}};
  for (const auto& [status, body] : bad) {
    SCOPED_TRACE(body);
    FakeFallback fake(status, body);
    const FallbackAnswer answer = FallbackClient({fake.url(), "big", "", 10}).ask(Endpoint::ChatCompletions, "{}");
    EXPECT_FALSE(answer.ok);
    EXPECT_FALSE(answer.error.empty());
  }
  FakeFallback overloaded(500, R"({"error":{"message":"overloaded"}})");
  EXPECT_EQ(FallbackClient({overloaded.url(), "big", "", 10}).ask(Endpoint::Completions, "{}").error,
            "status 500: overloaded");
}

TEST(FallbackStream, AWholeChatAnswerBecomesRoleContentAndFinishChunksThenUsage) {
  const Json whole = {{"id", "chatcmpl-1"}, {"object", "chat.completion"}, {"created", 5}, {"model", "big"},
                      {"choices", {{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", "Hello!"},
                                                 {"reasoning_content", "think"}}},
                                    {"finish_reason", "stop"}}}},
                      {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}}};
  const std::vector<std::string> chunks =
      fallback_stream_chunks(Endpoint::ChatCompletions, whole.dump(), true, R"({"slm_route":{"route":"fallback"}})");
  ASSERT_EQ(chunks.size(), 4u);
  const Json role = Json::parse(chunks[0]), content = Json::parse(chunks[1]), finish = Json::parse(chunks[2]),
             usage = Json::parse(chunks[3]);
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(content["choices"][0]["delta"]["content"], "Hello!");
  EXPECT_EQ(content["choices"][0]["delta"]["reasoning_content"], "think");
  EXPECT_EQ(content["id"], "chatcmpl-1");
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(finish["slm_route"]["route"], "fallback");
  EXPECT_FALSE(content.contains("slm_route"));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 5);
}

TEST(FallbackStream, AWholeCompletionBecomesTextThenFinish) {
  const Json whole = {{"id", "cmpl-1"}, {"object", "text_completion"}, {"created", 5}, {"model", "big"},
                      {"choices", {{{"index", 0}, {"text", " there"}, {"finish_reason", "length"}}}}};
  const std::vector<std::string> chunks = fallback_stream_chunks(Endpoint::Completions, whole.dump(), false, "{}");
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(Json::parse(chunks[0])["choices"][0]["text"], " there");
  EXPECT_EQ(Json::parse(chunks[1])["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(Json::parse(chunks[1]).contains("usage"));
}

}  // namespace
}  // namespace slm::server
