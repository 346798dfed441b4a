// The <think> section of a reasoning model's reply: found in streamed text whatever way the
// tags are split, also when the prompt already opened it; shown dimmed, or hidden.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

// The filter is plain logic in the tools' helper library, which tests do not link.
#include "support/assets.hpp"
#include "support/process.hpp"
#include "lib/chat/chat_think.hpp"

namespace slm::test {
namespace {

using chat::TextSegment;
using chat::ThinkFilter;

// Streams `pieces` through a filter; adjacent segments of the same kind are merged.
std::vector<TextSegment> filter(const std::vector<std::string>& pieces, bool starts_inside = false) {
  ThinkFilter think_filter(starts_inside);
  std::vector<TextSegment> all;
  auto append = [&](const std::vector<TextSegment>& segments) {
    for (const TextSegment& segment : segments) {
      EXPECT_FALSE(segment.text.empty());
      if (!all.empty() && all.back().thinking == segment.thinking) all.back().text += segment.text;
      else all.push_back(segment);
    }
  };
  for (const std::string& piece : pieces) append(think_filter.push(piece));
  append(think_filter.flush());
  return all;
}

TEST(ChatThinkFilter, SeparatesTheThinkingFromTheAnswer) {
  const std::vector<TextSegment> expected = {{"<think>plan</think>", true}, {"\nAnswer.", false}};
  EXPECT_EQ(filter({"<think>plan</think>\nAnswer."}), expected);
}

TEST(ChatThinkFilter, FindsTagsSplitAcrossPiecesAtEveryPoint) {
  const std::string reply = "Hi <think>a < b</think> done </thin";
  const std::vector<TextSegment> expected = {{"Hi ", false}, {"<think>a < b</think>", true}, {" done </thin", false}};
  for (size_t cut = 0; cut <= reply.size(); ++cut)
    for (size_t second_cut = cut; second_cut <= reply.size(); ++second_cut)
      EXPECT_EQ(filter({reply.substr(0, cut), reply.substr(cut, second_cut - cut), reply.substr(second_cut)}), expected)
          << cut << " " << second_cut;
  std::vector<std::string> bytes;
  for (const char c : reply) bytes.push_back(std::string(1, c));
  EXPECT_EQ(filter(bytes), expected);
}

TEST(ChatThinkFilter, APromptEndingInsideThinkStartsTheReplyInside) {
  EXPECT_TRUE(chat::ends_inside_thinking("<｜Assistant｜><think>\n"));
  EXPECT_FALSE(chat::ends_inside_thinking("<think>x</think>\n<|im_start|>assistant\n"));
  EXPECT_FALSE(chat::ends_inside_thinking("no tags"));
  const std::vector<TextSegment> expected = {{"reasoning</think>", true}, {"answer", false}};
  EXPECT_EQ(filter({"reason", "ing</th", "ink>answer"}, true), expected);
}

TEST(ChatThinkFilter, AnUnfinishedTagIsPlainTextAtTheEnd) {
  const std::vector<TextSegment> expected = {{"x <thi", false}};
  EXPECT_EQ(filter({"x <thi"}), expected);
}

class ChatThinkTool : public testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(bin_dir() / "slm-chat")) GTEST_SKIP() << "slm-chat not built";
    SLM_REQUIRE_ASSET(shared_path("models/stories260K.gguf"));
    template_file = std::filesystem::temp_directory_path() / ("slm-test-chat-think-" + std::to_string(::getpid()) + ".jinja");
    // Like DeepSeek-R1's: the generation prompt opens the thinking section.
    std::ofstream(template_file) << "{% for m in messages %}{{ m.content }}{% endfor %}"
                                    "{% if add_generation_prompt %}<think>\n{% endif %}";
  }
  void TearDown() override { std::filesystem::remove(template_file); }

  ProcessResult chat(std::vector<std::string> extra) {
    std::vector<std::string> argv = {(bin_dir() / "slm-chat").string(), "-m", shared_path("models/stories260K.gguf").string(),
                                     "-t", "1", "--temp", "0", "-n", "12", "--chat-template-file", template_file.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv, "Once upon a time\n");
  }
  std::filesystem::path template_file;
};

TEST_F(ChatThinkTool, AReplyInsideAnOpenThinkSectionIsMarkedThinkingOrHidden) {
  std::istringstream shown(chat({"--json"}).stdout_text);
  int thinking_tokens = 0;
  for (std::string line; std::getline(shown, line);) {
    const auto event = nlohmann::json::parse(line);
    if (event["event"] == "token") {
      EXPECT_EQ(event.value("thinking", false), true) << line;
      ++thinking_tokens;
    }
  }
  EXPECT_GT(thinking_tokens, 0);

  const std::string hidden = chat({"--json", "--hide-thinking"}).stdout_text;
  EXPECT_EQ(hidden.find("\"token\""), std::string::npos) << hidden;
  EXPECT_NE(hidden.find("\"reply\""), std::string::npos);

  const ProcessResult text = chat({"--hide-thinking"});
  EXPECT_EQ(text.stdout_text, "\n");  // the whole reply was thinking
  EXPECT_EQ(chat({}).stdout_text.find('\x1b'), std::string::npos);  // no colours when stdout is not a terminal
}

}  // namespace
}  // namespace slm::test
