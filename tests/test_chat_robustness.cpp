// No input crashes slm-chat or breaks its --json output: template errors, empty and huge
// messages, binary bytes, and Ctrl-C in the middle of a reply or at the prompt.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/assets.hpp"
#include "support/process.hpp"

namespace slm::test {
namespace {

using Json = nlohmann::ordered_json;
using std::chrono::seconds;

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("slm-test-chat-robust-" + std::to_string(::getpid()) + "-" + name);
}

std::string stories() { return shared_path("models/stories260K.gguf").string(); }
std::string chat_template(const std::string& name) { return shared_path("templates/" + name + ".jinja").string(); }

std::vector<std::string> chat_command(const std::string& model, std::vector<std::string> arguments) {
  std::vector<std::string> argv = {(bin_dir() / "slm-chat").string(), "-m", model, "-t", "1", "--temp", "0", "--json"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return argv;
}

// The events, each stdout line parsed as JSON (a line that is not valid JSON fails the test).
std::vector<Json> events_of(const std::string& stdout_text) {
  std::vector<Json> events;
  std::istringstream lines(stdout_text);
  for (std::string line; std::getline(lines, line);) {
    Json event = Json::parse(line, nullptr, false);
    EXPECT_TRUE(event.is_object()) << "not JSON: " << line;
    events.push_back(std::move(event));
  }
  return events;
}

std::vector<Json> named(const std::vector<Json>& events, const std::string& name) {
  std::vector<Json> found;
  for (const Json& event : events)
    if (event.is_object() && event["event"] == name) found.push_back(event);
  return found;
}

// Reads events until one named `name` arrives (nullopt after the timeout or at the end of output).
std::optional<Json> next_event_named(ChildProcess& chat, const std::string& name) {
  while (std::optional<std::string> line = chat.read_stdout_line(seconds(60))) {
    const Json event = Json::parse(*line, nullptr, false);
    if (event.is_object() && event["event"] == name) return event;
  }
  return std::nullopt;
}

class ChatRobustness : public testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(bin_dir() / "slm-chat")) GTEST_SKIP() << "slm-chat not built";
    SLM_REQUIRE_ASSET(shared_path("models/stories260K.gguf"));
  }
};

TEST_F(ChatRobustness, ATemplateErrorIsReportedAndTheChatGoesOn) {
  // Gemma's template refuses a system message; once it is removed the chat works.
  const ProcessResult run = run_process(
      chat_command(stories(), {"--chat-template-file", chat_template("google-gemma-2-2b-it"), "--system", "Be kind.", "-n", "4"}),
      "Hello\n/system\nHello\n");
  EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::vector<Json> events = events_of(run.stdout_text);
  const std::vector<Json> errors = named(events, "error");
  ASSERT_EQ(errors.size(), 1u) << run.stdout_text;
  EXPECT_EQ(errors[0]["message"], "System role not supported");
  EXPECT_EQ(named(events, "reply").size(), 1u);
}

TEST_F(ChatRobustness, EmptyLinesAreSkippedAndABackslashContinuesAMessage) {
  const auto saved = temp_path("continued.json");
  const ProcessResult run =
      run_process(chat_command(stories(), {"-n", "4"}), "\n\nOnce upon\\\na time\n\n/save " + saved.string() + "\n");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(named(events_of(run.stdout_text), "reply").size(), 1u);
  const Json conversation = Json::parse(read_file(saved));
  std::filesystem::remove(saved);
  EXPECT_EQ(conversation["messages"][0]["content"], "Once upon\na time");
}

TEST_F(ChatRobustness, AOneMegabyteMessageIsRefusedWithoutHarm) {
  std::string huge;
  while (huge.size() < (1u << 20)) huge += "the little dog ran to the big park ";
  const ProcessResult run = run_process(chat_command(stories(), {"-c", "256", "-n", "4"}), huge + "\nHello\n");
  EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::vector<Json> events = events_of(run.stdout_text);
  const std::vector<Json> errors = named(events, "error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0]["message"].get<std::string>().find("does not fit the context of 256 tokens"), std::string::npos);
  EXPECT_EQ(named(events, "reply").size(), 1u);
}

TEST_F(ChatRobustness, BinaryBytesInAMessageKeepTheJsonValid) {
  const auto saved = temp_path("binary.json");
  const std::string binary_line = std::string("a\xff\xfe") + std::string(1, '\0') + "b\x01\x1b[31m\xc3";
  const ProcessResult run =
      run_process(chat_command(stories(), {"-n", "8"}), binary_line + "\n/save " + saved.string() + "\n");
  EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_EQ(named(events_of(run.stdout_text), "reply").size(), 1u);
  const Json conversation = Json::parse(read_file(saved), nullptr, false);
  std::filesystem::remove(saved);
  ASSERT_TRUE(conversation.is_object());
  EXPECT_EQ(conversation["messages"].size(), 2u);
}

TEST_F(ChatRobustness, CtrlCStopsTheReplyKeepsTheConversationAndEndOfInputExitsCleanly) {
  // The random-weight Qwen model is slow enough (a 151936-token vocabulary) that a reply is
  // still streaming when the signal arrives.
  const std::string qwen = shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf").string();
  SLM_REQUIRE_ASSET(qwen);
  const auto saved = temp_path("interrupted.json");
  ChildProcess chat(chat_command(qwen, {"-n", "3000"}));
  chat.write_stdin("Tell me a long story\n");
  ASSERT_TRUE(next_event_named(chat, "token"));
  chat.send_signal(SIGINT);
  const std::optional<Json> first = next_event_named(chat, "reply");
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)["stop_reason"], "cancelled");
  EXPECT_LT((*first)["n_generated"].get<int>(), 3000);

  chat.write_stdin("/save " + saved.string() + "\nAnd then?\n");
  ASSERT_TRUE(next_event_named(chat, "token"));
  chat.send_signal(SIGINT);
  const std::optional<Json> second = next_event_named(chat, "reply");
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["stop_reason"], "cancelled");
  // The conversation was kept: turn 2 extends turn 1 and reuses its cache.
  EXPECT_LT((*second)["n_prompt_evaluated"].get<int>(), (*second)["n_prompt_tokens"].get<int>());
  EXPECT_GT((*second)["n_prompt_tokens"].get<int>(), (*first)["n_prompt_tokens"].get<int>());

  const ProcessResult end = chat.wait(seconds(60));
  EXPECT_EQ(end.exit_code, 0) << end.stderr_text;
  const Json conversation = Json::parse(read_file(saved), nullptr, false);
  std::filesystem::remove(saved);
  ASSERT_TRUE(conversation.is_object());
  ASSERT_EQ(conversation["messages"].size(), 2u);
  EXPECT_EQ(conversation["messages"][1]["role"], "assistant");
  EXPECT_EQ(conversation["messages"][1]["content"], (*first)["text"]);
}

TEST_F(ChatRobustness, CtrlCAtThePromptExits) {
  ChildProcess chat(chat_command(stories(), {}));
  chat.write_stdin("/help\n");
  ASSERT_TRUE(next_event_named(chat, "info"));
  chat.send_signal(SIGINT);
  const ProcessResult end = chat.wait(seconds(30));
  EXPECT_EQ(end.exit_code, 130);
  EXPECT_FALSE(end.timed_out);
}

TEST_F(ChatRobustness, AMissingModelOrTemplateFileIsOneErrorLine) {
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{(bin_dir() / "slm-chat").string(), "-m", "/nonexistent/model.gguf", "-p", "Hi"},
        chat_command(stories(), {"--chat-template-file", "/nonexistent/template.jinja", "-p", "Hi"})}) {
    const ProcessResult run = run_process(argv);
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(run.stderr_text.starts_with("slm-chat: error: ")) << run.stderr_text;
    EXPECT_EQ(std::count(run.stderr_text.begin(), run.stderr_text.end(), '\n'), 1) << run.stderr_text;
  }
}

}  // namespace
}  // namespace slm::test
