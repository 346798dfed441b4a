// The confidence summary (slm/confidence.hpp): each figure against a direct computation in
// double from the logits, on hand-made rows and on generate()'s tokens with stories260K; the
// same figures at any temperature.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "slm/confidence.hpp"
#include "slm/generate.hpp"
#include "support/assets.hpp"

namespace slm::test {
namespace {

// log-softmax in double, the definition.
struct Reference {
  double logprob = 0, entropy = 0, top2_margin = 0;
};

Reference reference(std::span<const float> logits, TokenId token) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l) - max);
  const double log_z = max + std::log(sum);
  Reference r;
  r.logprob = double(logits[size_t(token)]) - log_z;
  std::vector<double> probs;
  for (float l : logits) {
    const double p = std::exp(double(l) - log_z);
    if (p > 0) r.entropy -= p * (double(l) - log_z);
    probs.push_back(p);
  }
  std::partial_sort(probs.begin(), probs.begin() + 2, probs.end(), std::greater<>());
  r.top2_margin = probs[0] - probs[1];
  return r;
}

void expect_matches_reference(std::span<const float> logits, TokenId token) {
  const TokenConfidence c = token_confidence(logits, token);
  const Reference r = reference(logits, token);
  EXPECT_NEAR(c.logprob, r.logprob, 1e-5 * std::max(1.0, std::abs(r.logprob)));
  EXPECT_NEAR(c.entropy, r.entropy, 1e-5 * std::max(1.0, r.entropy));
  EXPECT_NEAR(c.top2_margin, r.top2_margin, 1e-6);
}

TEST(TokenConfidence, MatchesLogSoftmaxInDoubleOnRowsOfEverySize) {
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  // Sizes below, at and across the chunk and vector widths, up to Gemma 3's vocabulary.
  for (const size_t n : {size_t(2), size_t(3), size_t(5), size_t(512), size_t(2048), size_t(2049), size_t(6151),
                         size_t(262144)}) {
    SCOPED_TRACE(n);
    std::vector<float> logits(n);
    for (float& l : logits) l = normal(random);
    logits[n / 2] += 12.0f;  // a clear favourite in the middle of a chunk
    expect_matches_reference(logits, TokenId(n / 2));
    expect_matches_reference(logits, TokenId(n - 1));
  }
}

TEST(TokenConfidence, OneCertainTokenHasLogprobZeroNoEntropyAndMarginOne) {
  std::vector<float> logits(1000, -200.0f);
  logits[999] = 0.0f;
  const TokenConfidence c = token_confidence(logits, 999);
  EXPECT_NEAR(c.logprob, 0.0, 1e-9);
  EXPECT_NEAR(c.entropy, 0.0, 1e-6);
  EXPECT_NEAR(c.top2_margin, 1.0, 1e-9);
}

TEST(TokenConfidence, TwoTokensTiedForTheTopHaveMarginZeroEvenInDifferentChunks) {
  std::vector<float> logits(5000, 0.0f);
  logits[10] = logits[4500] = 5.0f;
  EXPECT_EQ(token_confidence(logits, 10).top2_margin, 0.0);
  logits[4500] = 4.0f;  // now a margin of p(5) - p(4)
  expect_matches_reference(logits, 10);
}

TEST(TokenConfidence, MinusInfinityLogitsCountAsProbabilityZero) {
  std::vector<float> logits(3000, -std::numeric_limits<float>::infinity());
  logits[100] = 1.0f;
  logits[2999] = 0.0f;
  const TokenConfidence c = token_confidence(logits, 2999);
  EXPECT_NEAR(c.logprob, 0.0 - (1.0 + std::log1p(std::exp(-1.0))), 1e-6);
  EXPECT_TRUE(std::isfinite(c.entropy));
  EXPECT_GT(c.entropy, 0.0);
}

TEST(TokenConfidence, ATokenOutsideTheRowIsAnError) {
  const std::vector<float> logits(4, 0.0f);
  EXPECT_THROW(token_confidence(logits, 4), Error);
  EXPECT_THROW(token_confidence(logits, -1), Error);
}

TEST(ConfidenceMeter, SummarizesMeanMinimumEntropyAndTheShareOfCloseCalls) {
  ConfidenceMeter meter(0.1);
  meter.add({-0.5, 1.0, 0.05});
  meter.add({-2.5, 3.0, 0.50});
  meter.add({-1.0, 2.0, 0.09});
  meter.add({-0.0, 0.0, 1.00});
  const Confidence c = meter.summary();
  EXPECT_EQ(c.n_tokens, 4);
  EXPECT_DOUBLE_EQ(c.mean_logprob, -1.0);
  EXPECT_DOUBLE_EQ(c.min_logprob, -2.5);
  EXPECT_DOUBLE_EQ(c.mean_entropy, 1.5);
  EXPECT_DOUBLE_EQ(c.low_margin_share, 0.5);
  EXPECT_DOUBLE_EQ(c.low_margin_threshold, 0.1);
  EXPECT_EQ(ConfidenceMeter().summary().n_tokens, 0);
  EXPECT_EQ(ConfidenceMeter().summary().mean_logprob, 0.0);
}

class StoriesConfidence : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto path = shared_path("models/stories260K.gguf");
    SLM_REQUIRE_ASSET(path);
    model = Model::load(path.string());
    prompt = model->tokenizer().tokenize("Once upon a time, a little dog", true, false);
  }

  GenerateResult run(SamplerParams params, int32_t max_tokens = 24) const {
    Session session(model);
    Sampler sampler(params);
    GenerateOptions options;
    options.max_tokens = max_tokens;
    return generate(session, sampler, prompt, options, nullptr);
  }

  // Every sampled token again, through a fresh Session's logits, summarized in double.
  Confidence replayed(const GenerateResult& result) const {
    std::vector<TokenId> sampled = result.tokens;
    if (result.end_token >= 0) sampled.push_back(result.end_token);
    std::vector<TokenId> context = prompt;
    context.insert(context.end(), sampled.begin(), sampled.end() - 1);
    Session session(model);
    const std::span<const float> rows = session.eval(context, 0, /*all_logits=*/true);
    const size_t n_vocab = size_t(model->config().n_vocab);
    ConfidenceMeter meter;
    for (size_t i = 0; i < sampled.size(); ++i) {
      const std::span<const float> row = rows.subspan((prompt.size() - 1 + i) * n_vocab, n_vocab);
      const Reference r = reference(row, sampled[i]);
      meter.add({r.logprob, r.entropy, r.top2_margin});
    }
    return meter.summary();
  }

  std::shared_ptr<const Model> model;
  std::vector<TokenId> prompt;
};

void expect_same_confidence(const Confidence& a, const Confidence& b, double tolerance) {
  EXPECT_EQ(a.n_tokens, b.n_tokens);
  EXPECT_NEAR(a.mean_logprob, b.mean_logprob, tolerance);
  EXPECT_NEAR(a.min_logprob, b.min_logprob, tolerance);
  EXPECT_NEAR(a.mean_entropy, b.mean_entropy, tolerance);
  EXPECT_DOUBLE_EQ(a.low_margin_share, b.low_margin_share);
}

TEST_F(StoriesConfidence, GenerateReportsTheFiguresOfTheRawLogitsOfEverySampledToken) {
  SamplerParams params;
  params.temperature = 0.9f;
  params.seed = 1234;
  params.repeat_penalty = 1.3f;  // the penalized logits are not what confidence reads
  const GenerateResult result = run(params);
  ASSERT_GT(result.confidence.n_tokens, 5);
  EXPECT_EQ(result.confidence.n_tokens, int32_t(result.tokens.size()) + (result.end_token >= 0 ? 1 : 0));
  expect_same_confidence(result.confidence, replayed(result), 1e-4);
  EXPECT_LT(result.confidence.mean_logprob, 0.0);
  EXPECT_LE(result.confidence.min_logprob, result.confidence.mean_logprob);
  EXPECT_GT(result.confidence.mean_entropy, 0.0);
}

// top_k 1 leaves only the most likely token, so the tokens are the same at any temperature,
// and only the temperature differs. A summary read after the sampler chain would say every
// token was certain (logprob 0, entropy 0); one read after the temperature would differ
// between 0.5 and 1.5. The raw distribution's does neither.
TEST_F(StoriesConfidence, TheSameTokensAtTemperatures0Point5And1Point5HaveTheSameConfidence) {
  SamplerParams params;
  params.top_k = 1;
  params.seed = 99;
  params.temperature = 0.5f;
  const GenerateResult cool = run(params);
  params.temperature = 1.5f;
  const GenerateResult hot = run(params);
  ASSERT_EQ(cool.tokens, hot.tokens);
  ASSERT_GT(cool.confidence.n_tokens, 5);
  expect_same_confidence(cool.confidence, hot.confidence, 0.0);
  EXPECT_LT(cool.confidence.mean_logprob, -0.01);
  EXPECT_GT(cool.confidence.mean_entropy, 0.01);
  expect_same_confidence(cool.confidence, replayed(cool), 1e-4);
}

TEST_F(StoriesConfidence, GreedyAndSampledRunsOfTheSameTokensAgree) {
  SamplerParams greedy;
  greedy.temperature = 0.0f;
  SamplerParams top1;
  top1.top_k = 1;
  top1.temperature = 1.0f;
  const GenerateResult a = run(greedy), b = run(top1);
  ASSERT_EQ(a.tokens, b.tokens);
  expect_same_confidence(a.confidence, b.confidence, 0.0);
}

TEST_F(StoriesConfidence, NothingGeneratedIsAllZero) {
  SamplerParams params;
  params.temperature = 0.0f;
  const GenerateResult result = run(params, 0);
  EXPECT_EQ(result.confidence.n_tokens, 0);
  EXPECT_EQ(result.confidence.mean_logprob, 0.0);
}

}  // namespace
}  // namespace slm::test
