// slm-server's `confidence` extension field (slm/confidence.hpp): on whole answers and on the
// streamed chunk with finish_reason, chat and completions, equal to what slm::generate()
// reports for the same prompt and sampling; the scheduler's summary equal to generate()'s at
// any load.
#include <gtest/gtest.h>

#include "http_test_server.hpp"
#include "lib/chat/chat_tokens.hpp"
#include "slm/generate.hpp"

namespace slm::test {
namespace {

Json post(httplib::Client& client, const std::string& path, const Json& body) {
  const httplib::Result result = client.Post(path, body.dump(), "application/json");
  if (!result) {
    ADD_FAILURE() << path << ": no response";
    return Json();
  }
  EXPECT_EQ(result->status, 200) << result->body;
  return Json::parse(result->body);
}

Confidence generate_confidence(const InProcessServer& server, const std::vector<TokenId>& prompt,
                               const SamplerParams& sampling, int32_t max_tokens) {
  Session session(server.model(), {.n_ctx = 2048, .n_threads = 1});
  Sampler sampler(sampling);
  GenerateOptions options;
  options.max_tokens = max_tokens;
  return generate(session, sampler, prompt, options, nullptr).confidence;
}

void expect_confidence_json(const Json& json, const Confidence& expected) {
  ASSERT_TRUE(json.is_object()) << json.dump();
  EXPECT_EQ(json["n_tokens"], expected.n_tokens);
  EXPECT_DOUBLE_EQ(json["mean_logprob"].get<double>(), expected.mean_logprob);
  EXPECT_DOUBLE_EQ(json["min_logprob"].get<double>(), expected.min_logprob);
  EXPECT_DOUBLE_EQ(json["mean_entropy"].get<double>(), expected.mean_entropy);
  EXPECT_DOUBLE_EQ(json["low_margin_share"].get<double>(), expected.low_margin_share);
  EXPECT_DOUBLE_EQ(json["low_margin_threshold"].get<double>(), kDefaultLowMarginThreshold);
}

TEST(HttpConfidence, WholeAnswersCarryTheConfidenceGenerateReports) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  const std::vector<TokenId> ids = chat::tokenize_prompt(server.model()->tokenizer(), "Once upon a time");
  SamplerParams seeded;
  seeded.seed = 7;
  seeded.temperature = 1.1f;
  const Json sampled = post(*client, "/v1/completions",
                            {{"prompt", ids}, {"max_tokens", 20}, {"temperature", 1.1}, {"seed", 7}});
  expect_confidence_json(sampled["confidence"], generate_confidence(server, ids, seeded, 20));
  EXPECT_EQ(sampled["confidence"]["n_tokens"], sampled["usage"]["completion_tokens"]);

  const Json chat = post(*client, "/v1/chat/completions",
                         {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}},
                          {"max_tokens", 12}, {"temperature", 0}});
  ASSERT_TRUE(chat["confidence"].is_object()) << chat.dump();
  EXPECT_EQ(chat["confidence"]["n_tokens"], chat["usage"]["completion_tokens"]);
  EXPECT_LT(chat["confidence"]["mean_logprob"].get<double>(), 0.0);
}

TEST(HttpConfidence, TheStreamedChunkWithFinishReasonCarriesTheWholeAnswersConfidence) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    SCOPED_TRACE(path);
    Json request = {{"max_tokens", 10}, {"temperature", 0}};
    if (std::string(path) == "/v1/completions") request["prompt"] = "Once upon a time";
    else request["messages"] = {{{"role", "user"}, {"content", "Once upon a time"}}};
    const Json whole = post(*client, path, request);
    request["stream"] = true;
    request["stream_options"] = {{"include_usage", true}};
    const httplib::Result streamed = client->Post(path, request.dump(), "application/json");
    ASSERT_TRUE(streamed && streamed->status == 200);
    int n_with_confidence = 0;
    for (const std::string& data : sse_data(streamed->body)) {
      if (data == "[DONE]") continue;
      const Json chunk = Json::parse(data);
      if (!chunk.contains("confidence")) continue;
      ++n_with_confidence;
      EXPECT_FALSE(chunk["choices"][0]["finish_reason"].is_null()) << data;
      EXPECT_EQ(chunk["confidence"], whole["confidence"]);
    }
    EXPECT_EQ(n_with_confidence, 1);
  }
}

// Eight requests at once: each one's summary is what it has alone (the logits are batch-invariant
// and the figures are computed from them alone).
TEST(SchedulerConfidence, EachRequestsConfidenceIsTheSameUnderLoad) {
  SLM_REQUIRE_ASSET(stories_model());
  const std::shared_ptr<const Model> model = Model::load(stories_model().string());
  Scheduler scheduler(model, small_scheduler(/*parallel=*/8, /*queue=*/8));
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 8; ++i) {
    GenerationRequest request;
    request.prompt = model->tokenizer().tokenize("Lily had a " + std::string(size_t(i + 1), 'x'), true, false);
    request.sampling.seed = uint64_t(100 + i);
    request.max_tokens = 16;
    requests.push_back(request);
    streams.push_back(scheduler.submit(request));
    ASSERT_TRUE(streams.back());
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    std::optional<GenerationSummary> summary;
    while (!summary) {
      StreamEvent event;
      ASSERT_TRUE(streams[i]->next(event, std::chrono::seconds(30))) << "no event within 30 s";
      if (event.done) summary = event.done;
    }
    Session session(model, {.n_ctx = 2048, .n_threads = 1});
    Sampler sampler(requests[i].sampling);
    GenerateOptions options;
    options.max_tokens = requests[i].max_tokens;
    const Confidence alone = generate(session, sampler, requests[i].prompt, options, nullptr).confidence;
    EXPECT_EQ(summary->confidence.n_tokens, alone.n_tokens);
    EXPECT_EQ(summary->confidence.mean_logprob, alone.mean_logprob);
    EXPECT_EQ(summary->confidence.mean_entropy, alone.mean_entropy);
    EXPECT_EQ(summary->confidence.low_margin_share, alone.low_margin_share);
  }
}

}  // namespace
}  // namespace slm::test
