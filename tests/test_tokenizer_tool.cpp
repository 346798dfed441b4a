// slm-tokenize's output formats, which scripts rely on (they are llama-tokenize's).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "support/assets.hpp"

namespace {

struct ToolRun {
  std::string output;  // stdout
  int exit_code = -1;
};

// Single-quotes an argument for /bin/sh.
std::string shell_quote(const std::string& argument) {
  std::string quoted = "'";
  for (const char c : argument) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

ToolRun run_tokenize(const std::string& arguments, const std::string& stdin_text = "") {
  const std::string tool = (slm::test::bin_dir() / "slm-tokenize").string();
  std::string command = shell_quote(tool) + " " + arguments + " 2>/dev/null";
  if (!stdin_text.empty()) command = "printf '%s' " + shell_quote(stdin_text) + " | " + command;
  ToolRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) run.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string vocab(const std::string& name) {
  return slm::test::shared_path("vocab/ggml-vocab-" + name + ".gguf").string();
}

class SlmTokenizeTool : public testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(slm::test::bin_dir() / "slm-tokenize")) GTEST_SKIP() << "slm-tokenize not built";
    SLM_REQUIRE_ASSET(vocab("llama-spm"));
    SLM_REQUIRE_ASSET(vocab("qwen2"));
  }
};

TEST_F(SlmTokenizeTool, IdsPrintsOneJsonArrayLine) {
  const auto run = run_tokenize("-m " + shell_quote(vocab("llama-spm")) + " -p 'Hello world' --ids");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.output, "[1, 15043, 3186]\n");
}

TEST_F(SlmTokenizeTool, DefaultPrintsIdAndPiecePerLine) {
  const auto run = run_tokenize("-m " + shell_quote(vocab("llama-spm")) + " -p 'Hello world'");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.output, "     1 -> '<s>'\n 15043 -> ' Hello'\n  3186 -> ' world'\n");
}

TEST_F(SlmTokenizeTool, BosFlagsAndParseSpecial) {
  const std::string qwen = "-m " + shell_quote(vocab("qwen2")) + " --ids";
  EXPECT_EQ(run_tokenize(qwen + " -p Hello").output, "[9707]\n");  // qwen2 adds no BOS
  EXPECT_EQ(run_tokenize(qwen + " -p Hello --bos").output, "[151643, 9707]\n");
  EXPECT_EQ(run_tokenize("-m " + shell_quote(vocab("llama-spm")) + " --ids --no-bos -p Hello").output, "[15043]\n");
  EXPECT_EQ(run_tokenize(qwen + " -p '<|im_start|>' --parse-special").output, "[151644]\n");
  EXPECT_NE(run_tokenize(qwen + " -p '<|im_start|>'").output, "[151644]\n");
}

TEST_F(SlmTokenizeTool, DetokenizeReadsIdsAndPrintsTheExactText) {
  const std::string spm = "-m " + shell_quote(vocab("llama-spm")) + " --detokenize";
  EXPECT_EQ(run_tokenize(spm + " -p '[15043, 3186]'").output, "Hello world");
  EXPECT_EQ(run_tokenize(spm, "15043 3186\n").output, "Hello world");
}

TEST_F(SlmTokenizeTool, ErrorsExitNonZero) {
  EXPECT_NE(run_tokenize("-m /no/such/model.gguf -p hi").exit_code, 0);
  EXPECT_NE(run_tokenize("-m " + shell_quote(vocab("llama-spm")) + " --bos --no-bos -p hi").exit_code, 0);
  EXPECT_NE(run_tokenize("-m " + shell_quote(vocab("llama-spm")) + " --detokenize -p '[1, 999999]'").exit_code, 0);
}

}  // namespace
