// slm-bench end to end on stories260K with tiny tests: the markdown table in llama-bench's
// layout, the generation-bandwidth table, the JSON fields, and the comma-list flags. Timings
// are not checked, only their format.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "slm/bench.hpp"
#include "slm/model.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"

namespace {

namespace fs = std::filesystem;

struct ToolRun {
  std::string out;  // stdout only
  int exit_code = -1;
};

ToolRun run_bench(const std::string& arguments) {
  const std::string command = (slm::test::bin_dir() / "slm-bench").string() + " " + arguments + " 2>/dev/null";
  ToolRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) run.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string stories() { return slm::test::shared_path("models/stories260K.gguf").string(); }

// Tiny tests and a small read-bandwidth buffer keep each run well under a second.
const std::string kQuick = " -r 2 --bw-mib 16 ";

class BenchTool : public testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(slm::test::bin_dir() / "slm-bench")) GTEST_SKIP() << "slm-bench not built";
    SLM_REQUIRE_ASSET(stories());
  }
};

TEST_F(BenchTool, PrintsLlamaBenchTableAndBandwidthTable) {
  const ToolRun run = run_bench("-m " + stories() + " -p 8 -n 4 -t 1" + kQuick);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const std::vector<std::string> lines = lines_of(run.out);
  ASSERT_GE(lines.size(), 4u) << run.out;
  // llama-bench's columns, widths and alignment (without its backend column).
  EXPECT_EQ(lines[0], "| model                          |       size |     params | threads |          test |                  t/s |");
  EXPECT_EQ(lines[1], "| ------------------------------ | ---------: | ---------: | ------: | ------------: | -------------------: |");
  // stories260K has no general.file_type: guessed from its tensors, as llama.cpp does.
  const std::regex row(R"(\| llama 0\.3M all F32 \(guessed\) +\|   1\.12 MiB \|     0\.29 M \|       1 \| +(pp8|tg4) \| +\d+\.\d\d ± \d+\.\d\d \|)");
  EXPECT_TRUE(std::regex_match(lines[2], row)) << lines[2];
  EXPECT_TRUE(std::regex_match(lines[3], row)) << lines[3];
  EXPECT_NE(lines[2].find("pp8"), std::string::npos);
  EXPECT_NE(lines[3].find("tg4"), std::string::npos);

  // The second table: generation rows only, with achieved and measured bandwidth.
  ASSERT_GE(lines.size(), 8u) << run.out;
  EXPECT_EQ(lines[4], "");
  EXPECT_NE(lines[5].find("| threads |"), std::string::npos) << lines[5];
  EXPECT_NE(lines[5].find("weights GB/s"), std::string::npos) << lines[5];
  EXPECT_NE(lines[5].find("machine read GB/s"), std::string::npos) << lines[5];
  EXPECT_TRUE(std::regex_match(lines[7], std::regex(R"(\| stories260K\.gguf +\| +1 \| +tg4 \| .* \| +\d+\.\d\d \| +\d+\.\d\d \| +\d+% \|)")))
      << lines[7];
  EXPECT_NE(run.out.find("kernels: "), std::string::npos);
}

TEST_F(BenchTool, JsonHasLlamaBenchFieldsAndBandwidth) {
  const ToolRun run = run_bench("-m " + stories() + " -p 8 -n 4 -t 1 -o json" + kQuick);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const nlohmann::json results = nlohmann::json::parse(run.out);
  ASSERT_TRUE(results.is_array());
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    for (const char* field : {"model_filename", "model_type", "model_size", "model_n_params", "n_threads", "n_prompt",
                              "n_gen", "avg_ts", "stddev_ts", "samples_ts", "read_bandwidth_gbs",
                              "gen_bandwidth_gbs", "gen_bandwidth_share"})
      EXPECT_TRUE(r.contains(field)) << field;
    EXPECT_EQ(r["model_filename"], stories());
    EXPECT_EQ(r["model_size"], 1171200);
    EXPECT_EQ(r["model_n_params"], 292800);
    EXPECT_EQ(r["n_threads"], 1);
    EXPECT_EQ(r["samples_ts"].size(), 2u);
    EXPECT_GT(r["avg_ts"].get<double>(), 0);
    EXPECT_GT(r["read_bandwidth_gbs"].get<double>(), 0);
  }
  EXPECT_EQ(results[0]["n_prompt"], 8);
  EXPECT_EQ(results[0]["n_gen"], 0);
  EXPECT_TRUE(results[0]["gen_bandwidth_gbs"].is_null()) << "a prompt test reads weights once per batch, not per token";
  EXPECT_EQ(results[1]["n_prompt"], 0);
  EXPECT_EQ(results[1]["n_gen"], 4);
  EXPECT_GT(results[1]["gen_bandwidth_gbs"].get<double>(), 0);
  EXPECT_NEAR(results[1]["gen_bandwidth_gbs"].get<double>(),
              1171200 * results[1]["avg_ts"].get<double>() / 1e9, 1e-9);
}

// --draft-vocab measures the whole draft head beside the cut one, against the same plain runs.
TEST_F(BenchTool, ACutDraftHeadIsMeasuredBesideTheWholeOne) {
  const ToolRun run =
      run_bench("-m " + stories() + " --model-draft " + stories() +
                " --draft-vocab 100 --draft-p-min 0 -p 0 -n 8 -t 1 -o json" + kQuick);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const nlohmann::json results = nlohmann::json::parse(run.out);
  std::vector<nlohmann::json> speculative;
  for (const auto& r : results)
    if (r.contains("speculative_samples_ts")) speculative.push_back(r);
  ASSERT_EQ(speculative.size(), 2u) << run.out;
  EXPECT_EQ(speculative[0]["draft_vocab"], 0);
  EXPECT_EQ(speculative[1]["draft_vocab"], 100);
  EXPECT_EQ(speculative[0]["plain_samples_ts"], speculative[1]["plain_samples_ts"]);
  for (const auto& r : speculative) {
    EXPECT_EQ(r["identical"], true);
    EXPECT_EQ(r["speculative_samples_ts"].size(), 2u);
  }
  EXPECT_EQ(speculative[0]["in_draft_vocab"], 1.0);  // the whole head keeps every token
}

TEST_F(BenchTool, CommaListsMakeOneRowPerCombinationAndZeroSkips) {
  // Two models x two thread counts x (pp4, pp8; no tg).
  const ToolRun run = run_bench("-m " + stories() + "," + stories() + " -p 4,8 -n 0 -t 1,2 -o json" + kQuick);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const nlohmann::json results = nlohmann::json::parse(run.out);
  ASSERT_EQ(results.size(), 8u);
  std::vector<std::pair<int, int>> threads_and_prompt;
  for (const auto& r : results) {
    EXPECT_EQ(r["n_gen"], 0);
    threads_and_prompt.emplace_back(r["n_threads"].get<int>(), r["n_prompt"].get<int>());
  }
  const std::vector<std::pair<int, int>> one_model = {{1, 4}, {1, 8}, {2, 4}, {2, 8}};
  EXPECT_EQ(std::vector(threads_and_prompt.begin(), threads_and_prompt.begin() + 4), one_model);
  EXPECT_EQ(std::vector(threads_and_prompt.begin() + 4, threads_and_prompt.end()), one_model);
}

TEST_F(BenchTool, HelpAndErrors) {
  const ToolRun help = run_bench("--help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"-m,--model", "-p,--n-prompt", "-n,--n-gen", "-r,--repetitions", "-t,--threads", "-o,--output",
                           "--kv-type", "-d,--n-depth", "--draft-vocab"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  EXPECT_EQ(run_bench("-m /nonexistent.gguf -p 4 -n 0" + kQuick).exit_code, 1);
  EXPECT_EQ(run_bench("-m " + stories() + " -o csv").exit_code, 2);
  // stories260K's context is 2048 tokens.
  EXPECT_EQ(run_bench("-m " + stories() + " -p 4096 -n 0" + kQuick).exit_code, 1);
  // A draft head cut to no token, or to more tokens than the vocabulary's 512.
  EXPECT_EQ(run_bench("-m " + stories() + " --model-draft " + stories() + " -p 0 -n 4 --draft-vocab 0" + kQuick).exit_code, 2);
  EXPECT_EQ(run_bench("-m " + stories() + " --model-draft " + stories() + " -p 0 -n 4 --draft-vocab 513" + kQuick).exit_code, 1);
}

TEST_F(BenchTool, DepthRunsEachTestAfterItsContext) {
  const ToolRun json_run = run_bench("-m " + stories() + " -p 8 -n 4 -d 0,64 -t 1 -o json" + kQuick);
  ASSERT_EQ(json_run.exit_code, 0) << json_run.out;
  const nlohmann::json results = nlohmann::json::parse(json_run.out);
  ASSERT_EQ(results.size(), 4u);
  const std::vector<std::array<int, 3>> expected = {{8, 0, 0}, {0, 4, 0}, {8, 0, 64}, {0, 4, 64}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(results[i]["n_prompt"], expected[i][0]) << i;
    EXPECT_EQ(results[i]["n_gen"], expected[i][1]) << i;
    EXPECT_EQ(results[i]["n_depth"], expected[i][2]) << i;
  }
  const ToolRun table = run_bench("-m " + stories() + " -p 8 -n 4 -d 64 -t 1" + kQuick);
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_NE(table.out.find("pp8 @ d64"), std::string::npos) << table.out;  // llama-bench's test names
  EXPECT_NE(table.out.find("tg4 @ d64"), std::string::npos) << table.out;
  // the depth counts against the context: stories260K's is 2048 tokens
  EXPECT_EQ(run_bench("-m " + stories() + " -p 8 -n 0 -d 2045" + kQuick).exit_code, 1);
}

// A timed run at depth evaluates its tokens after the context and leaves the context intact, so
// every repetition measures the same thing: the logits match one straight evaluation.
TEST(BenchLibrary, TimedRunsKeepTheirDepthContext) {
  const std::string path = stories();
  SLM_REQUIRE_ASSET(path);
  const std::shared_ptr<const slm::Model> model = slm::Model::load(path);
  const std::vector<slm::TokenId> tokens = slm::bench::random_tokens(*model, 48, 7);
  const std::span<const slm::TokenId> context = std::span(tokens).first(32), prompt = std::span(tokens).subspan(32);
  slm::SessionOptions options;
  options.n_threads = 1;
  options.n_ctx = 64;
  slm::Session straight(model, options);
  const std::span<const float> straight_logits = straight.eval(tokens, 0);  // the last token's
  const std::vector<float> expected(straight_logits.begin(), straight_logits.end());

  slm::Session session(model, options);
  session.eval(context, 0);
  for (int run = 0; run < 2; ++run) {
    slm::bench::time_prompt(session, prompt, 32);
    EXPECT_EQ(session.n_past(), 48);
    EXPECT_TRUE(std::equal(context.begin(), context.end(), session.cached_tokens().begin()));
  }
  session.truncate(47);
  const std::span<const float> last = session.eval(std::span(tokens).subspan(47), 47);
  EXPECT_TRUE(std::equal(last.begin(), last.end(), expected.begin()));

  slm::bench::time_generation(session, prompt[0], prompt.subspan(1), 32);
  EXPECT_EQ(session.n_past(), 48);
  EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), session.cached_tokens().begin()));
}

TEST(BenchLibrary, MeanAndSampleStddev) {
  const std::vector<double> values = {2, 4, 4, 4, 5, 5, 7, 9};
  const slm::bench::MeanStddev m = slm::bench::mean_stddev(values);
  EXPECT_DOUBLE_EQ(m.mean, 5.0);
  EXPECT_NEAR(m.stddev, 2.138089935, 1e-9);  // sqrt(32 / 7)
  const std::vector<double> one = {3};
  EXPECT_EQ(slm::bench::mean_stddev(one).stddev, 0.0);
}

TEST(BenchLibrary, ReadBandwidthIsPositive) {
  EXPECT_GT(slm::bench::measure_read_bandwidth(1 << 20, 1, 2), 0.0);
}

}  // namespace
