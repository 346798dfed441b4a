// Requests that end early: a client that disconnects (streamed or not) cancels its request and
// frees its slot; a full queue answers 503 with Retry-After; SIGTERM lets the requests in
// flight finish and exits 0, and a second signal cancels them.
#include <gtest/gtest.h>

#include <csignal>
#include <future>

#include "http_test_server.hpp"
#include "support/server_process.hpp"

namespace slm::test {
namespace {

using namespace std::chrono_literals;

// A greedy chat request long enough (about 10 s on the Qwen-vocabulary model) that it can only
// end early by being cancelled.
const int32_t long_generation = 2000;

Json long_chat_request(bool stream) {
  return {{"messages", {{{"role", "user"}, {"content", "Write a long story."}}}},
          {"max_tokens", long_generation},
          {"temperature", 0},
          {"stream", stream}};
}

bool server_is_idle(httplib::Client& client) {
  return server_metric(client, "slm_requests_running") == 0 && server_metric(client, "slm_requests_queued") == 0;
}

void expect_next_request_served(httplib::Client& client) {
  const httplib::Result next =
      client.Post("/v1/completions", R"({"prompt": "Hello", "max_tokens": 4})", "application/json");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200) << next->body;
}

// After a client left its long request: the request stopped early, its slot is free again and
// the next request is served (with one slot and no queue, it would otherwise get 503).
void expect_cancelled_and_slot_freed(InProcessServer& server) {
  auto observer = server.client();
  EXPECT_TRUE(eventually([&] { return server_is_idle(*observer); }, 3s)) << "the slot was not freed";
  EXPECT_LT(server_metric(*observer, "slm_generated_tokens_total"), long_generation / 2);
  expect_next_request_served(*observer);
}

TEST(HttpCancel, AClientThatLeavesAStreamFreesItsSlotForTheNextRequest) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  InProcessServer server(qwen_vocab_model(), small_scheduler(/*parallel=*/1, /*queue=*/0));
  auto leaving = server.client();
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  request.body = long_chat_request(true).dump();
  request.set_header("Content-Type", "application/json");
  int events_seen = 0;
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    events_seen += int(sse_data(std::string(data, size)).size());
    return events_seen < 3;  // the role chunk and two tokens, then hang up
  };
  const httplib::Result abandoned = leaving->send(request);
  EXPECT_FALSE(abandoned);  // the client cancelled it
  EXPECT_GE(events_seen, 3);

  expect_cancelled_and_slot_freed(server);
}

TEST(HttpCancel, AClientThatLeavesBeforeAWholeAnswerCancelsIt) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  InProcessServer server(qwen_vocab_model(), small_scheduler(/*parallel=*/1, /*queue=*/0));
  auto impatient = server.client();
  impatient->set_read_timeout(0, 300'000);  // gives up after 0.3 s and closes the connection
  const httplib::Result gave_up =
      impatient->Post("/v1/chat/completions", long_chat_request(false).dump(), "application/json");
  EXPECT_FALSE(gave_up);

  expect_cancelled_and_slot_freed(server);
}

TEST(HttpCancel, AFullQueueAnswers503WithRetryAfter) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  InProcessServer server(qwen_vocab_model(), small_scheduler(/*parallel=*/1, /*queue=*/0));
  auto busy = server.client();
  std::future<httplib::Result> running = std::async(std::launch::async, [&] {
    return busy->Post("/v1/chat/completions", long_chat_request(false).dump(), "application/json");
  });
  auto observer = server.client();
  ASSERT_TRUE(eventually([&] { return server_metric(*observer, "slm_requests_running") == 1; }, 5s));

  const httplib::Result refused =
      observer->Post("/v1/completions", R"({"prompt": "Hello", "max_tokens": 4})", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(Json::parse(refused->body)["error"]["code"], "queue_full");
  EXPECT_EQ(observer->Get("/health")->status, 200);

  server.http().cancel_requests_in_flight();
  const httplib::Result cancelled = running.get();
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 503);
  expect_next_request_served(*observer);
}

std::unique_ptr<httplib::Client> client_of(const SlmServerProcess& server) {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", server.port());
  client->set_read_timeout(60, 0);
  return client;
}

std::vector<std::string> qwen_server_arguments() {
  return {"-m", qwen_vocab_model().string(), "-t", "1", "--parallel", "2"};
}

TEST(HttpShutdown, SigtermFinishesTheRequestsInFlightAndExitsZero) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  SlmServerProcess server(qwen_server_arguments());
  auto working = client_of(server);
  std::future<httplib::Result> in_flight = std::async(std::launch::async, [&] {
    return working->Post("/v1/completions", R"({"prompt": "Hello", "max_tokens": 150, "temperature": 0})",
                         "application/json");
  });
  auto observer = client_of(server);
  ASSERT_TRUE(eventually([&] { return server_metric(*observer, "slm_requests_running") == 1; }, 10s));

  ::kill(server.pid(), SIGTERM);
  ASSERT_TRUE(eventually([&] {
    const httplib::Result health = client_of(server)->Get("/health");
    return !health || health->status == 503;  // refused, or no longer listening
  }, 5s));
  const httplib::Result finished = in_flight.get();
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->status, 200);
  EXPECT_EQ(Json::parse(finished->body)["usage"]["completion_tokens"], 150);
  const ProcessResult exit = server.stop(SIGTERM, 30s);  // a signal more to an exiting server changes nothing
  EXPECT_FALSE(exit.timed_out);
  EXPECT_EQ(exit.exit_code, 0) << exit.stderr_text;
  EXPECT_NE(exit.stderr_text.find("shutting down"), std::string::npos) << exit.stderr_text;
}

TEST(HttpShutdown, ASecondSignalCancelsTheRequestsInFlight) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  SlmServerProcess server(qwen_server_arguments());
  auto working = client_of(server);
  std::future<httplib::Result> in_flight = std::async(std::launch::async, [&] {
    return working->Post("/v1/chat/completions", long_chat_request(false).dump(), "application/json");
  });
  auto observer = client_of(server);
  ASSERT_TRUE(eventually([&] { return server_metric(*observer, "slm_requests_running") == 1; }, 10s));

  const auto start = std::chrono::steady_clock::now();
  ::kill(server.pid(), SIGTERM);
  std::this_thread::sleep_for(100ms);
  const ProcessResult exit = server.stop(SIGINT, 30s);
  const httplib::Result cancelled = in_flight.get();
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 503);
  EXPECT_EQ(Json::parse(cancelled->body)["error"]["code"], "cancelled");
  EXPECT_EQ(exit.exit_code, 0) << exit.stderr_text;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);  // the generation alone would take longer
}

TEST(HttpShutdown, AModelThatCannotLoadEndsTheServerWithOneErrorLine) {
  const ProcessResult result =
      run_process({(bin_dir() / "slm-server").string(), "-m", "/nonexistent/model.gguf", "--port", "0"}, {}, 30s);
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.stderr_text.find("slm-server: error: /nonexistent/model.gguf"), std::string::npos)
      << result.stderr_text;
}

}  // namespace
}  // namespace slm::test
