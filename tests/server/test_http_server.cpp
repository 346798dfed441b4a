// slm-server's HTTP routes against an in-process server on a loopback port, with real models:
// the OpenAI shapes, greedy and seeded answers equal to slm::generate(), streaming, keep-alive,
// the error classes (each answered, the server healthy after), the API key and /metrics.
#include <gtest/gtest.h>

#include <atomic>

#include "http_test_server.hpp"
#include "lib/chat/chat_tokens.hpp"
#include "slm/generate.hpp"

namespace slm::test {
namespace {

Json post(httplib::Client& client, const std::string& path, const Json& body, int expected_status = 200) {
  const httplib::Result result = client.Post(path, body.dump(), "application/json");
  if (!result) {
    ADD_FAILURE() << path << ": no response (" << httplib::to_string(result.error()) << ")";
    return Json();
  }
  EXPECT_EQ(result->status, expected_status) << path << ": " << result->body;
  return Json::parse(result->body);
}

// What slm::generate() answers for these prompt tokens, with the server's settings.
GenerateResult generate_alone(const InProcessServer& server, const std::vector<TokenId>& prompt,
                              const SamplerParams& sampling, int32_t max_tokens,
                              const std::vector<std::string>& stop_strings) {
  Session session(server.model(), {.n_ctx = 2048, .n_threads = 1});
  Sampler sampler(sampling);
  GenerateOptions options;
  options.max_tokens = max_tokens;
  options.stop_strings = stop_strings;
  return generate(session, sampler, prompt, options, nullptr);
}

std::vector<TokenId> chat_prompt_tokens(const InProcessServer& server, const std::string& user_message) {
  const std::string rendered = chat::render_chat(server.chat_template(), {{"user", user_message}}, true);
  return chat::tokenize_prompt(server.model()->tokenizer(), rendered);
}

SamplerParams greedy() {
  SamplerParams params;
  params.temperature = 0;
  return params;
}

TEST(HttpServer, AnswersHealthAndEveryApiRouteWith503WhileTheModelLoads) {
  InProcessServer server("", small_scheduler());
  auto client = server.client();
  const httplib::Result health = client->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(health->get_header_value("Retry-After"), "1");
  EXPECT_EQ(Json::parse(health->body)["error"]["code"], "model_loading");
  EXPECT_EQ(client->Get("/v1/models")->status, 503);
  post(*client, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}}, 503);
}

TEST(HttpServer, ListsTheServedModelAndAcceptsAnyModelName) {
  SLM_REQUIRE_ASSET(stories_model());
  server::HttpServerOptions options;
  options.model_name = "my-alias";
  InProcessServer server(stories_model(), small_scheduler(), options);
  auto client = server.client();
  EXPECT_EQ(client->Get("/health")->status, 200);
  const Json models = Json::parse(client->Get("/v1/models")->body);
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["id"], "my-alias");
  EXPECT_EQ(models["data"][0]["object"], "model");
  const Json reply = post(*client, "/v1/completions", {{"model", "gpt-4o"}, {"prompt", "Once"}, {"max_tokens", 2}});
  EXPECT_EQ(reply["model"], "gpt-4o");
}

TEST(HttpServer, GreedyChatEqualsGenerateWithTheSamePromptTokens) {
  for (const std::filesystem::path& model : {stories_model(), qwen_vocab_model()}) {
    SLM_REQUIRE_ASSET(model);
    InProcessServer server(model, small_scheduler());
    auto client = server.client();
    const Json reply = post(*client, "/v1/chat/completions",
                            {{"messages", {{{"role", "user"}, {"content", "Tell me a story about a cat."}}}},
                             {"max_tokens", 24}, {"temperature", 0}});
    const std::vector<TokenId> prompt = chat_prompt_tokens(server, "Tell me a story about a cat.");
    const GenerateResult alone = generate_alone(server, prompt, greedy(), 24, server.chat_template().stop_strings);
    EXPECT_EQ(reply["object"], "chat.completion");
    EXPECT_EQ(reply["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(reply["choices"][0]["message"]["content"], alone.text) << model;
    EXPECT_EQ(reply["choices"][0]["finish_reason"], alone.stop_reason == StopReason::MaxTokens ? "length" : "stop");
    EXPECT_EQ(reply["usage"]["prompt_tokens"], prompt.size());
    EXPECT_EQ(reply["usage"]["completion_tokens"], alone.tokens.size() + (alone.end_token >= 0 ? 1 : 0));
    EXPECT_EQ(reply["usage"]["total_tokens"], reply["usage"]["prompt_tokens"].get<int>() +
                                                  reply["usage"]["completion_tokens"].get<int>());
    EXPECT_TRUE(reply["usage"]["prompt_tokens_details"]["cached_tokens"].is_number_integer());
  }
}

TEST(HttpServer, SeededSamplingEqualsGenerateAndRepeats) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  InProcessServer server(qwen_vocab_model(), small_scheduler());
  auto client = server.client();
  const Json request = {{"prompt", "Hello there"}, {"max_tokens", 16}, {"temperature", 0.8}, {"seed", 42}};
  const Json first = post(*client, "/v1/completions", request);
  const Json second = post(*client, "/v1/completions", request);
  SamplerParams sampling;
  sampling.seed = 42;
  const std::vector<TokenId> prompt = chat::tokenize_prompt(server.model()->tokenizer(), "Hello there");
  const GenerateResult alone = generate_alone(server, prompt, sampling, 16, {});
  EXPECT_EQ(first["choices"][0]["text"], alone.text);
  EXPECT_EQ(second["choices"][0]["text"], first["choices"][0]["text"]);
}

TEST(HttpServer, CompletionsTakeTokenIdsAsTheSamePromptAsText) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  const std::vector<TokenId> ids = chat::tokenize_prompt(server.model()->tokenizer(), "Once upon a time");
  const Json by_text = post(*client, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 12},
                                                         {"temperature", 0}});
  const Json by_ids = post(*client, "/v1/completions", {{"prompt", ids}, {"max_tokens", 12}, {"temperature", 0}});
  EXPECT_EQ(by_text["object"], "text_completion");
  EXPECT_EQ(by_ids["choices"][0]["text"], by_text["choices"][0]["text"]);
  EXPECT_EQ(by_ids["choices"][0]["text"], generate_alone(server, ids, greedy(), 12, {}).text);
  EXPECT_EQ(by_ids["usage"]["prompt_tokens"], ids.size());
}

TEST(HttpServer, StreamedDeltasJoinToTheWholeAnswerAndEndWithUsageAndDone) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  const Json request = {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}},
                        {"max_tokens", 20}, {"temperature", 0}};
  const Json whole = post(*client, "/v1/chat/completions", request);
  Json streamed_request = request;
  streamed_request["stream"] = true;
  streamed_request["stream_options"] = {{"include_usage", true}};
  const httplib::Result result = client->Post("/v1/chat/completions", streamed_request.dump(), "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<std::string> events = sse_data(result->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  const Json first = Json::parse(events.front());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  std::string finish_reason;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const Json chunk = Json::parse(events[i]);
    EXPECT_EQ(chunk["id"], first["id"]);
    EXPECT_TRUE(chunk["usage"].is_null());
    const Json& choice = chunk["choices"][0];
    if (choice["delta"].contains("content")) content += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) finish_reason = choice["finish_reason"];
  }
  EXPECT_EQ(content, whole["choices"][0]["message"]["content"]);
  EXPECT_EQ(finish_reason, whole["choices"][0]["finish_reason"]);
  const Json usage_chunk = Json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], whole["usage"]["completion_tokens"]);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], whole["usage"]["prompt_tokens"]);
}

TEST(HttpServer, StreamedCompletionsJoinToTheWholeText) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  const Json request = {{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"temperature", 0}};
  const Json whole = post(*client, "/v1/completions", request);
  Json streamed_request = request;
  streamed_request["stream"] = true;
  const httplib::Result result = client->Post("/v1/completions", streamed_request.dump(), "application/json");
  ASSERT_TRUE(result);
  const std::vector<std::string> events = sse_data(result->body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) text += Json::parse(events[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, whole["choices"][0]["text"]);
}

TEST(HttpServer, KeepsOneConnectionAcrossStreamedAndWholeRequests) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  client->set_keep_alive(true);
  std::atomic<int> sockets_opened = 0;
  client->set_socket_options([&](int) { ++sockets_opened; });
  const Json whole = {{"prompt", "Once"}, {"max_tokens", 4}};
  Json streamed = whole;
  streamed["stream"] = true;
  for (const Json& request : {whole, streamed, whole, streamed, streamed, whole}) {
    const httplib::Result result = client->Post("/v1/completions", request.dump(), "application/json");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200);
  }
  EXPECT_EQ(client->Get("/health")->status, 200);
  EXPECT_EQ(sockets_opened.load(), 1);
}

TEST(HttpServer, ChatLogprobsListTheSampledTokenAndTheMostLikelyOthers) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  const Json reply = post(*client, "/v1/chat/completions",
                          {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 5},
                           {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 3}});
  const Json& content = reply["choices"][0]["logprobs"]["content"];
  ASSERT_FALSE(content.empty());
  for (const Json& entry : content) {
    ASSERT_EQ(entry["top_logprobs"].size(), 3u);
    // Greedy: the sampled token is the most likely one.
    EXPECT_EQ(entry["token"], entry["top_logprobs"][0]["token"]);
    EXPECT_FLOAT_EQ(entry["logprob"].get<float>(), entry["top_logprobs"][0]["logprob"].get<float>());
    EXPECT_LE(entry["logprob"].get<float>(), 0.0f);
    std::string bytes;
    for (const Json& byte : entry["bytes"]) bytes += char(byte.get<int>());
    EXPECT_EQ(bytes, entry["token"]);
  }
}

TEST(HttpServer, LegacyCompletionsLogprobsAreParallelArrays) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  const Json reply = post(*client, "/v1/completions",
                          {{"prompt", "Once upon"}, {"max_tokens", 4}, {"temperature", 0}, {"logprobs", 2}});
  const Json& logprobs = reply["choices"][0]["logprobs"];
  ASSERT_EQ(logprobs["tokens"].size(), 4u);
  EXPECT_EQ(logprobs["token_logprobs"].size(), 4u);
  EXPECT_EQ(logprobs["text_offset"][0], 0);
  ASSERT_EQ(logprobs["top_logprobs"].size(), 4u);
  EXPECT_LE(logprobs["top_logprobs"][0].size(), 2u);
  EXPECT_GE(logprobs["top_logprobs"][0].size(), 1u);
}

TEST(HttpServer, TokenizeAndDetokenizeRoundTrip) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  const Json tokens = post(*client, "/tokenize", {{"content", "Once upon a time"}});
  const std::vector<TokenId> expected = server.model()->tokenizer().tokenize("Once upon a time", false, true);
  EXPECT_EQ(tokens["tokens"].get<std::vector<TokenId>>(), expected);
  EXPECT_EQ(post(*client, "/detokenize", {{"tokens", tokens["tokens"]}})["content"],
            server.model()->tokenizer().detokenize(expected));
  const Json pieces = post(*client, "/tokenize", {{"content", "Once"}, {"with_pieces", true}});
  ASSERT_FALSE(pieces["tokens"].empty());
  EXPECT_TRUE(pieces["tokens"][0].contains("piece"));
  EXPECT_EQ(post(*client, "/detokenize", {{"tokens", {1, 99999999}}}, 400)["error"]["param"], "tokens[1]");
}

// One request of each error class, each answered with its status and the OpenAI error object,
// and the server healthy after every one.
TEST(HttpServer, AnswersEveryErrorClassAndStaysHealthy) {
  SLM_REQUIRE_ASSET(stories_model());
  server::HttpServerOptions options;
  options.limits.max_body_bytes = 4096;
  SchedulerOptions scheduler = small_scheduler();
  scheduler.decoder.n_ctx = 64;
  InProcessServer server(stories_model(), scheduler, options);
  auto client = server.client();
  struct Case {
    std::string method, path, body;
    int status;
    std::string param;
  };
  const std::string long_prompt = Json{{"prompt", std::vector<int>(64, 1)}}.dump();
  const std::vector<Case> cases = {
      {"POST", "/v1/chat/completions", "{not json", 400, ""},
      {"POST", "/v1/chat/completions", R"({"messages": "Hi"})", 400, "messages"},
      {"POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0})", 400,
       "max_tokens"},
      {"POST", "/v1/completions", long_prompt, 400, "prompt"},
      {"POST", "/v1/completions", R"({"prompt": "Once", "temperature": "warm"})", 400, "temperature"},
      {"POST", "/v1/completions", R"({"prompt": [1, 2, 1000000]})", 400, "prompt[2]"},
      {"POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "Hi"}], "n": 3})", 400, "n"},
      {"GET", "/v1/nothing-here", "", 404, ""},
      {"POST", "/v1/chat/completions", std::string(8192, ' '), 413, ""},
  };
  for (const Case& c : cases) {
    const httplib::Result result = c.method == "GET" ? client->Get(c.path)
                                                     : client->Post(c.path, c.body, "application/json");
    ASSERT_TRUE(result) << c.path << " " << c.body.substr(0, 80);
    EXPECT_EQ(result->status, c.status) << c.body.substr(0, 80) << " -> " << result->body;
    const Json error = Json::parse(result->body)["error"];
    EXPECT_TRUE(error["message"].is_string()) << result->body;
    EXPECT_TRUE(error["type"].is_string()) << result->body;
    EXPECT_TRUE(error.contains("code")) << result->body;
    if (!c.param.empty()) EXPECT_EQ(error["param"], c.param) << result->body;
    else EXPECT_TRUE(error["param"].is_null()) << result->body;
    auto fresh = server.client();
    EXPECT_EQ(fresh->Get("/health")->status, 200) << "after " << c.body.substr(0, 80);
  }
  // max_tokens past the context is capped, not refused.
  const Json capped = post(*client, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 1000000}});
  EXPECT_LE(capped["usage"]["prompt_tokens"].get<int>() + capped["usage"]["completion_tokens"].get<int>(), 64);
}

TEST(HttpServer, AsksForTheKeyOnEveryRouteButHealth) {
  SLM_REQUIRE_ASSET(stories_model());
  server::HttpServerOptions options;
  options.api_key = "sk-local-test";
  InProcessServer server(stories_model(), small_scheduler(), options);
  auto anonymous = server.client();
  EXPECT_EQ(anonymous->Get("/health")->status, 200);
  for (const char* path : {"/v1/models", "/metrics"}) {
    const httplib::Result result = anonymous->Get(path);
    EXPECT_EQ(result->status, 401) << path;
    EXPECT_EQ(Json::parse(result->body)["error"]["code"], "invalid_api_key");
  }
  EXPECT_EQ(anonymous->Post("/v1/completions", R"({"prompt": "Once", "max_tokens": 2})", "application/json")->status,
            401);
  auto wrong = server.client();
  wrong->set_bearer_token_auth("sk-local-tesT");
  EXPECT_EQ(wrong->Get("/v1/models")->status, 401);
  wrong->set_bearer_token_auth("sk-local-test-and-more");
  EXPECT_EQ(wrong->Get("/v1/models")->status, 401);
  auto right = server.client();
  right->set_bearer_token_auth("sk-local-test");
  EXPECT_EQ(right->Get("/v1/models")->status, 200);
  EXPECT_EQ(right->Post("/v1/completions", R"({"prompt": "Once", "max_tokens": 2})", "application/json")->status, 200);
}

TEST(HttpServer, ComparesKeysWholly) {
  EXPECT_TRUE(server::equal_in_constant_time("sk-abc", "sk-abc"));
  EXPECT_FALSE(server::equal_in_constant_time("sk-abd", "sk-abc"));
  EXPECT_FALSE(server::equal_in_constant_time("sk-ab", "sk-abc"));
  EXPECT_FALSE(server::equal_in_constant_time("sk-abcsk-abc", "sk-abc"));
  EXPECT_FALSE(server::equal_in_constant_time("", "sk-abc"));
}

TEST(HttpServer, MetricsCountResponsesTokensAndThePool) {
  SLM_REQUIRE_ASSET(stories_model());
  InProcessServer server(stories_model(), small_scheduler());
  auto client = server.client();
  post(*client, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 3}});
  post(*client, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 0}}, 400);
  const httplib::Result result = client->Get("/metrics");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  const std::string& text = result->body;
  EXPECT_EQ(metric_value(text, "slm_http_responses_total{status=\"200\"}"), 1);
  EXPECT_EQ(metric_value(text, "slm_http_responses_total{status=\"400\"}"), 1);
  EXPECT_GE(metric_value(text, "slm_prompt_tokens_total"), 5);
  EXPECT_GE(metric_value(text, "slm_generated_tokens_total"), 1);
  EXPECT_EQ(metric_value(text, "slm_requests_running"), 0);
  EXPECT_EQ(metric_value(text, "slm_requests_queued"), 0);
  EXPECT_GT(metric_value(text, "slm_kv_blocks_total"), 0);
  EXPECT_GE(metric_value(text, "slm_kv_blocks_used"), 0);
  EXPECT_EQ(metric_value(text, "slm_time_to_first_token_seconds_count"), 1);
  EXPECT_EQ(metric_value(text, "slm_time_to_first_token_seconds_bucket{le=\"+Inf\"}"), 1);
  EXPECT_EQ(metric_value(text, "slm_time_per_output_token_seconds_count"), 1);
}

// Speculative decoding (here the model drafting for itself: every draft is accepted unless the
// draft's confidence stops it): the response's timings and /metrics count the drafted and accepted tokens, and the text is the
// one the server gives without speculation.
TEST(HttpServer, TimingsAndMetricsCountDraftedAndAcceptedTokens) {
  SLM_REQUIRE_ASSET(stories_model());
  const Json request = {{"prompt", "Once upon a time"}, {"max_tokens", 64}, {"temperature", 0}};
  std::string plain_text;
  {
    InProcessServer plain(stories_model(), small_scheduler());
    const Json body = post(*plain.client(), "/v1/completions", request);
    plain_text = body["choices"][0]["text"];
    EXPECT_EQ(body["timings"]["draft_n"], 0);
  }
  SchedulerOptions options = small_scheduler();
  options.draft_model = Model::load(stories_model().string());
  InProcessServer server(stories_model(), options);
  auto client = server.client();
  const Json body = post(*client, "/v1/completions", request);
  EXPECT_EQ(body["choices"][0]["text"], plain_text);
  const Json& timings = body["timings"];
  EXPECT_EQ(timings["predicted_n"], 64);
  const int64_t drafted = timings["draft_n"], accepted = timings["draft_n_accepted"];
  EXPECT_GT(drafted, 0);
  EXPECT_GT(accepted, 0);
  EXPECT_DOUBLE_EQ(timings["draft_acceptance_rate"].get<double>(), double(accepted) / double(drafted));
  const httplib::Result result = client->Get("/metrics");
  ASSERT_TRUE(result);
  EXPECT_EQ(metric_value(result->body, "slm_draft_tokens_total"), drafted);
  EXPECT_EQ(metric_value(result->body, "slm_draft_tokens_accepted_total"), accepted);
  EXPECT_NEAR(metric_value(result->body, "slm_draft_acceptance_rate"), double(accepted) / double(drafted), 1e-6);
}

}  // namespace
}  // namespace slm::test
