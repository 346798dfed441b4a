// slm-plan end to end: the --json contract (memory.weights_bytes, memory.kv_bytes,
// memory.total_bytes, memory.available_bytes, fits, predicted.pp512_tokens_per_second,
// predicted.tg128_tokens_per_second), --compare's rows, --help, and one-line errors for bad
// flags and files. Predicted speeds are checked for presence, not value (no timed tests).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "support/assets.hpp"
#include "support/gguf_bytes.hpp"
#include "support/process.hpp"

namespace {

using nlohmann::json;

slm::test::ProcessResult run_plan(std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), (slm::test::bin_dir() / "slm-plan").string());
  // A cache directory of its own: no calibration stored by a user changes what the test sees.
  setenv("XDG_CACHE_HOME", (slm::test::scratch_dir() / "cache").c_str(), 1);
  slm::test::ChildProcess process(arguments);
  return process.wait(std::chrono::seconds(120));
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string model(const char* name) { return slm::test::shared_path(std::string("models/") + name).string(); }

TEST(PlanTool, JsonHoldsTheContractKeysAndTheyAddUp) {
  SLM_REQUIRE_ASSET(model("syn-llama-tiny-Q8_0.gguf"));
  const slm::test::ProcessResult run = run_plan({model("syn-llama-tiny-Q8_0.gguf"), "--json", "-c", "256", "-t", "1"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const json plan = json::parse(run.stdout_text);
  const json& memory = plan.at("memory");
  for (const char* key : {"weights_bytes", "kv_bytes", "total_bytes", "available_bytes"})
    EXPECT_TRUE(memory.at(key).is_number_unsigned()) << key;
  EXPECT_EQ(memory.at("total_bytes").get<uint64_t>(),
            memory.at("weights_bytes").get<uint64_t>() + memory.at("kv_bytes").get<uint64_t>() +
                memory.at("scratch_bytes").get<uint64_t>() + memory.at("runtime_bytes").get<uint64_t>());
  EXPECT_EQ(memory.at("kv_bytes").get<uint64_t>(), 256u * 1024);  // 2 layers x 2 KV heads x 64 x K,V x 2 bytes
  const std::string fits = plan.at("fits").get<std::string>();
  EXPECT_TRUE(fits == "yes" || fits == "mmap" || fits == "no") << fits;
  EXPECT_EQ(fits == "yes", memory.at("total_bytes").get<uint64_t>() <= memory.at("available_bytes").get<uint64_t>());
  const json& predicted = plan.at("predicted");
  EXPECT_GT(predicted.at("pp512_tokens_per_second").get<double>(), 0.0);
  EXPECT_GT(predicted.at("tg128_tokens_per_second").get<double>(), 0.0);
  EXPECT_EQ(predicted.at("machine").at("source").get<std::string>(), "quick probe");
  EXPECT_EQ(predicted.at("machine").at("n_threads").get<int>(), 1);
}

TEST(PlanTool, MemoryOnlyGivesNullPredictions) {
  SLM_REQUIRE_ASSET(model("syn-qwen3-tiny-Q8_0.gguf"));
  const slm::test::ProcessResult run = run_plan({model("syn-qwen3-tiny-Q8_0.gguf"), "--json", "--memory-only"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const json plan = json::parse(run.stdout_text);
  EXPECT_TRUE(plan.at("predicted").at("pp512_tokens_per_second").is_null());
  EXPECT_TRUE(plan.at("predicted").at("tg128_tokens_per_second").is_null());
}

TEST(PlanTool, CompareGivesOneRowPerFile) {
  SLM_REQUIRE_ASSET(model("syn-qwen2-tiny-Q8_0.gguf"));
  SLM_REQUIRE_ASSET(model("syn-qwen2-tiny-Q4_K_M.gguf"));
  const slm::test::ProcessResult run = run_plan(
      {"--compare", "--memory-only", model("syn-qwen2-tiny-Q8_0.gguf"), model("syn-qwen2-tiny-Q4_K_M.gguf")});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::vector<std::string> lines = lines_of(run.stdout_text);
  ASSERT_EQ(lines.size(), 4u) << run.stdout_text;  // titles, rule, two rows
  EXPECT_NE(lines[0].find("| model file"), std::string::npos);
  EXPECT_NE(lines[2].find("syn-qwen2-tiny-Q8_0.gguf"), std::string::npos);
  EXPECT_NE(lines[3].find("syn-qwen2-tiny-Q4_K_M.gguf"), std::string::npos);

  const slm::test::ProcessResult as_json = run_plan(
      {"--compare", "--json", "--memory-only", model("syn-qwen2-tiny-Q8_0.gguf"), model("syn-qwen2-tiny-Q4_K_M.gguf")});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.stderr_text;
  EXPECT_EQ(json::parse(as_json.stdout_text).size(), 2u);
}

TEST(PlanTool, HelpNamesEveryFlag) {
  const slm::test::ProcessResult run = run_plan({"--help"});
  ASSERT_EQ(run.exit_code, 0);
  for (const char* flag : {"--ctx-size", "--parallel", "--kv-type", "--batch-size", "--threads", "--json", "--compare",
                           "--calibrate", "--memory-only"})
    EXPECT_NE(run.stdout_text.find(flag), std::string::npos) << flag;
}

TEST(PlanTool, BadFlagsAndFilesAreOneLineErrors) {
  SLM_REQUIRE_ASSET(model("syn-llama-tiny-Q8_0.gguf"));
  std::ifstream in(model("syn-llama-tiny-Q8_0.gguf"), std::ios::binary);
  std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  bytes.resize(100);  // inside the metadata
  const std::string truncated = slm::test::write_scratch_file("plan-truncated.gguf", bytes).string();
  struct Case {
    std::vector<std::string> arguments;
    int exit_code;
    std::string message;
  };
  const Case cases[] = {
      {{model("syn-llama-tiny-Q8_0.gguf"), "--parallel", "0"}, 2, "--parallel"},
      {{model("syn-llama-tiny-Q8_0.gguf"), "--kv-type", "q4"}, 2, "--kv-type"},
      {{model("syn-llama-tiny-Q8_0.gguf"), "--no-such-flag"}, 2, "--no-such-flag"},
      {{"--memory-only"}, 1, "no model file"},
      {{"/nonexistent/model.gguf", "--memory-only"}, 1, "cannot open"},
      {{truncated, "--memory-only"}, 1, "truncated"},
      {{model("syn-llama-tiny-Q8_0.gguf"), model("syn-llama-tiny-Q8_0.gguf"), "--memory-only"}, 1, "--compare"},
      {{model("syn-llama-tiny-Q8_0.gguf"), "-c", "100000", "--memory-only"}, 1, "exceeds the model's maximum"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.arguments.front() + " " + c.arguments.back());
    const slm::test::ProcessResult run = run_plan(c.arguments);
    EXPECT_EQ(run.exit_code, c.exit_code);
    EXPECT_TRUE(run.stdout_text.empty()) << run.stdout_text;
    const std::vector<std::string> lines = lines_of(run.stderr_text);
    ASSERT_EQ(lines.size(), 1u) << run.stderr_text;
    EXPECT_NE(lines[0].find(c.message), std::string::npos) << lines[0];
  }
}

}  // namespace
