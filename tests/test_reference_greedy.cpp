// Long greedy generations against an independent float64 reference
// (tests/reference/ref_forward.py: its own GGUF reader and forward pass in numpy). The shared
// goldens stop at 32 tokens; the bar for stories260K is 200 tokens from BOS.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "slm/generate.hpp"
#include "support/assets.hpp"
#include "support/process.hpp"

namespace slm::test {
namespace {

using namespace std::chrono_literals;

bool python_with_numpy_available() {
  ChildProcess probe({"/usr/bin/python3", "-c", "import numpy"});
  return probe.wait(60s).exit_code == 0;
}

std::vector<TokenId> reference_greedy(const std::filesystem::path& model, int n_tokens) {
  ChildProcess ref({"/usr/bin/python3", std::string(SLM_SOURCE_DIR) + "/tests/reference/ref_forward.py", model.string(),
                    std::to_string(n_tokens)});
  const ProcessResult r = ref.wait(600s);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  std::istringstream in(r.stdout_text);
  std::vector<TokenId> ids;
  for (TokenId id; in >> id;) ids.push_back(id);
  return ids;
}

TEST(ReferenceGreedy, Stories260KTwoHundredTokensFromBosMatchTheFloat64Reference) {
  const auto model_path = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(model_path);
  if (!std::filesystem::exists("/usr/bin/python3") || !python_with_numpy_available())
    GTEST_SKIP() << "python3 with numpy is needed for the float64 reference (apt-get install python3-numpy)";
  constexpr int kTokens = 200;
  const std::vector<TokenId> expected = reference_greedy(model_path, kTokens);
  ASSERT_EQ(expected.size(), size_t(kTokens));

  auto model = Model::load(model_path.string());
  Session session(model);  // the default F16 KV cache: the promise holds for what users run
  SamplerParams greedy;
  greedy.temperature = 0.0f;
  Sampler sampler(greedy);
  GenerateOptions options;
  options.max_tokens = kTokens;
  options.stop_at_end_of_generation = false;
  const auto result = generate(session, sampler, std::vector<TokenId>{model->tokenizer().bos()}, options, nullptr);
  EXPECT_EQ(result.tokens, expected);
  std::string expected_text;
  for (TokenId id : expected) expected_text += model->tokenizer().token_to_piece(id);
  EXPECT_EQ(result.text, expected_text);
}

}  // namespace
}  // namespace slm::test
