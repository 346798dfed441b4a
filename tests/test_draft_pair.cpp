// Draft/target pairs with controlled agreement (slm/draft_pair.hpp): what each knob promises of
// the models it writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <unistd.h>

#include "support/assets.hpp"
#include "slm/draft_pair.hpp"
#include "slm/error.hpp"
#include "slm/generate.hpp"
#include "slm/gguf.hpp"

namespace {

using namespace slm;

constexpr const char* kBase = "syn-llama-tiny-Q4_K_M.gguf";  // 2 layers, untied Q6_K output head

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("slm-test-draft-pair-" + std::to_string(::getpid()) + "-" + name);
}

struct WrittenPair {
  std::filesystem::path target, draft;
  ~WrittenPair() {
    std::filesystem::remove(target);
    std::filesystem::remove(draft);
  }
};

void write(const WrittenPair& pair, const DraftPairOptions& options) {
  write_draft_pair(test::shared_path(std::string("models/") + kBase).string(), pair.target.string(),
                   pair.draft.string(), options);
}

std::vector<TokenId> greedy(const std::shared_ptr<const Model>& model, const std::vector<TokenId>& prompt, int32_t n) {
  Session session(model, {.n_ctx = 256, .n_threads = 1});
  SamplerParams params;
  params.temperature = 0.0f;
  Sampler sampler(params);
  GenerateOptions options;
  options.max_tokens = n;
  options.stop_at_end_of_generation = false;
  return generate(session, sampler, prompt, options, nullptr).tokens;
}

std::vector<TokenId> random_prompt(const Model& model, size_t n) {
  std::mt19937 rng(11);
  std::vector<TokenId> prompt;
  for (size_t i = 0; i < n; ++i) prompt.push_back(TokenId(3 + rng() % uint32_t(model.config().n_vocab - 3)));
  return prompt;
}

TEST(DraftPair, DraftKeepsTheFirstLayersWithItsHeadInTheChosenType) {
  SLM_REQUIRE_ASSET(test::shared_path(std::string("models/") + kBase));
  const WrittenPair pair{temp_path("head-t.gguf"), temp_path("head-d.gguf")};
  write(pair, {.draft_layers = 1, .residual_scale = 0.5f, .draft_head_type = GgmlType::Q4_0});
  const GgufFile draft = GgufFile::open(pair.draft.string());
  EXPECT_EQ(draft.get_u32("llama.block_count"), 1u);
  EXPECT_EQ(draft.find_tensor("blk.1.attn_output.weight"), nullptr);
  ASSERT_NE(draft.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(draft.find_tensor("output.weight")->type, GgmlType::Q4_0);
  const GgufFile target = GgufFile::open(pair.target.string());
  EXPECT_EQ(target.find_tensor("output.weight")->type, GgmlType::Q6_K);  // the target's head as it was
  EXPECT_NO_THROW(Model::load(pair.draft.string()));
}

TEST(DraftPair, ResidualScaleZeroMakesTheTargetAgreeWithTheDraft) {
  SLM_REQUIRE_ASSET(test::shared_path(std::string("models/") + kBase));
  const WrittenPair pair{temp_path("zero-t.gguf"), temp_path("zero-d.gguf")};
  write(pair, {.draft_layers = 1, .residual_scale = 0.0f});
  const auto target = Model::load(pair.target.string());
  const auto draft = Model::load(pair.draft.string());
  const std::vector<TokenId> prompt = random_prompt(*target, 12);
  EXPECT_EQ(greedy(target, prompt, 24), greedy(draft, prompt, 24));
}

// What slm-bench --spec-extraction relies on: without attention the next token depends on the
// last one only, so the continuation G of a text X is the same after X, G, X as after X alone.
TEST(DraftPair, WithoutAttentionATextContinuesAsItDidEarlierInThePrompt) {
  SLM_REQUIRE_ASSET(test::shared_path(std::string("models/") + kBase));
  const WrittenPair pair{temp_path("attn-t.gguf"), temp_path("attn-d.gguf")};
  write(pair, {.draft_layers = 1, .residual_scale = 1.0f, .attention_scale = 0.0f});
  const auto target = Model::load(pair.target.string());
  const std::vector<TokenId> x = random_prompt(*target, 20);
  const std::vector<TokenId> g = greedy(target, x, 32);
  std::vector<TokenId> document = x;
  document.insert(document.end(), g.begin(), g.end());
  document.insert(document.end(), x.begin(), x.end());
  EXPECT_EQ(greedy(target, document, 32), g);
}

TEST(DraftPair, AHeadTypeThatIsNoWeightFormatIsAnError) {
  SLM_REQUIRE_ASSET(test::shared_path(std::string("models/") + kBase));
  const WrittenPair pair{temp_path("bad-t.gguf"), temp_path("bad-d.gguf")};
  EXPECT_THROW(write(pair, {.draft_layers = 1, .draft_head_type = GgmlType::Q8_K}), Error);
}

}  // namespace
