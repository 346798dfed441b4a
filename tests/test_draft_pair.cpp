// Draft/target pairs with controlled agreement (slm/draft_pair.hpp): what each knob promises of
// the models it writes.
#include <gtest/gtest.h>

#include <algorithm>
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

float write(const WrittenPair& pair, const DraftPairOptions& options, const char* base = kBase) {
  return write_draft_pair(test::shared_path(std::string("models/") + base).string(), pair.target.string(),
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

std::vector<TokenId> random_prompt(const Model& model, size_t n, uint32_t seed = 11) {
  std::mt19937 rng(seed);
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

// At the uniform share (N of n_vocab) the head is left as it is; a larger share needs the other
// rows scaled down, the more the larger; a share of 0 or 1 cannot be met.
TEST(DraftPair, FrequentHeadScaleIsOneAtTheUniformShareAndFallsAsTheShareGrows) {
  EXPECT_NEAR(frequent_head_scale(128, 512, 0.25), 1.0, 1e-3);
  EXPECT_NEAR(frequent_head_scale(32768, 151936, 32768.0 / 151936.0), 1.0, 1e-3);
  double previous = 1.0;
  for (double share : {0.5, 0.7, 0.836, 0.91, 0.97}) {
    const double scale = frequent_head_scale(32768, 151936, share);
    EXPECT_LT(scale, previous) << share;
    previous = scale;
  }
  EXPECT_THROW(frequent_head_scale(128, 512, 1.0), Error);
  EXPECT_THROW(frequent_head_scale(0, 512, 0.5), Error);
  EXPECT_THROW(frequent_head_scale(512, 512, 0.5), Error);
}

// The share of the target's greedy tokens below N: its first token after each of 200 random
// prompts (independent draws; later tokens of one generation repeat one another).
double greedy_share_below(const std::shared_ptr<const Model>& model, TokenId n) {
  int below = 0;
  constexpr int kPrompts = 200;
  Session session(model, {.n_ctx = 64, .n_threads = 1});
  for (uint32_t seed = 0; seed < kPrompts; ++seed) {
    const std::vector<TokenId> prompt = random_prompt(*model, 8, seed);
    below += argmax(session.eval(prompt, 0)) < n;
  }
  return double(below) / kPrompts;
}

// --frequent-vocab 128 --frequent-share 0.9 on a tied head (qwen2, as Qwen2.5-1.5B) and an untied
// one (llama): about 0.9 of the target's greedy tokens fall below 128 instead of a quarter; a tied
// head gets its own output.weight and the embeddings are the input's, byte for byte.
TEST(DraftPair, AFrequentVocabularyTakesItsShareOfTheTargetsGreedyTokens) {
  for (const char* base : {"syn-qwen2-tiny-Q4_K_M.gguf", kBase}) {
    SCOPED_TRACE(base);
    SLM_REQUIRE_ASSET(test::shared_path(std::string("models/") + base));
    const WrittenPair plain{temp_path("uniform-t.gguf"), temp_path("uniform-d.gguf")};
    const WrittenPair frequent{temp_path("frequent-t.gguf"), temp_path("frequent-d.gguf")};
    EXPECT_EQ(write(plain, {.draft_layers = 1, .residual_scale = 0.5f}, base), 1.0f);
    const float scale =
        write(frequent, {.draft_layers = 1, .residual_scale = 0.5f, .frequent_vocab = 128, .frequent_share = 0.9}, base);
    EXPECT_FLOAT_EQ(scale, float(frequent_head_scale(128, 512, 0.9)));
    const double uniform_share = greedy_share_below(Model::load(plain.target.string()), 128);
    const double frequent_share = greedy_share_below(Model::load(frequent.target.string()), 128);
    // Binomial over 200 draws: a standard deviation of 0.03 at 0.25 and 0.021 at 0.9.
    EXPECT_NEAR(uniform_share, 0.25, 0.1);
    EXPECT_NEAR(frequent_share, 0.9, 0.07);
    const GgufFile input = GgufFile::open(test::shared_path(std::string("models/") + base).string());
    const GgufFile target = GgufFile::open(frequent.target.string());
    const GgufFile draft = GgufFile::open(frequent.draft.string());
    ASSERT_NE(target.find_tensor("output.weight"), nullptr);
    ASSERT_NE(draft.find_tensor("output.weight"), nullptr);
    for (const GgufFile* written : {&target, &draft}) {
      const GgufTensor* embeddings = written->find_tensor("token_embd.weight");
      const GgufTensor* original = input.find_tensor("token_embd.weight");
      ASSERT_EQ(embeddings->n_bytes, original->n_bytes);
      EXPECT_TRUE(std::equal(original->data, original->data + original->n_bytes, embeddings->data));
    }
  }
}

}  // namespace
