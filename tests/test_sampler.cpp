#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "slm/error.hpp"
#include "slm/sampler.hpp"

namespace slm {
namespace {

SamplerParams greedy_params() {
  SamplerParams p;
  p.temperature = 0.0f;
  return p;
}

// The order every stage sorts in: higher logit first, lower id on ties (-0 and +0 tie).
void expect_ranked(const std::vector<TokenCandidate>& sorted, std::set<TokenId> expected_ids) {
  ASSERT_EQ(sorted.size(), expected_ids.size());
  for (size_t i = 0; i + 1 < sorted.size(); ++i) {
    const TokenCandidate &a = sorted[i], &b = sorted[i + 1];
    ASSERT_TRUE(a.logit > b.logit || (a.logit == b.logit && a.id < b.id))
        << "position " << i << ": token " << a.id << " (" << a.logit << ") before token " << b.id << " (" << b.logit << ")";
  }
  for (const TokenCandidate& c : sorted) EXPECT_EQ(expected_ids.erase(c.id), 1u) << "token " << c.id;
}

// Logits drawn from a few values, so that most tokens tie with many others, both zeros included.
std::vector<float> tied_logits(size_t n) {
  const float values[] = {3.5f, 0.0f, -0.0f, -2.25f, 1e-30f, -1e-30f, 7.0f, -7.0f, 0.5f};
  std::vector<float> logits(n);
  for (size_t i = 0; i < n; ++i) logits[i] = values[(i * 7919 + i / 3) % 9] + (i % 97 == 0 ? float(i) * 1e-3f : 0.0f);
  return logits;
}

TEST(Sampler, AWholeVocabularyIsRankedByLogitThenIdAtAnySize) {
  // Small rows are sorted by comparison, a whole vocabulary (here Gemma 3's 262,144) by radix
  // passes; both must give the same order.
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  for (size_t n : {size_t(5), size_t(4095), size_t(4096), size_t(10007), size_t(262144)}) {
    std::set<TokenId> all;
    for (size_t i = 0; i < n; ++i) all.insert(TokenId(i));
    expect_ranked(Sampler(p).distribution(tied_logits(n)), all);
  }
}

TEST(Sampler, CandidatesOutOfIdOrderAreRankedByIdOnTies) {
  // Penalties after top-k change logits of candidates that top-k already sorted, so the final
  // sort sees ties in neither id nor rank order.
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 9000;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 2.0f;
  p.order = {SamplerStage::TopK, SamplerStage::Penalties, SamplerStage::Temperature};
  Sampler sampler(p);
  const std::vector<float> logits = tied_logits(20000);
  for (TokenId t = 0; t < 64; ++t) sampler.accept(t * 97);
  const std::vector<TokenCandidate> sorted = sampler.distribution(logits);
  std::vector<TokenCandidate> top(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) top[i] = {TokenId(i), logits[i], 0.0f};
  std::sort(top.begin(), top.end(), [](const TokenCandidate& a, const TokenCandidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
  std::set<TokenId> kept;
  for (size_t i = 0; i < 9000; ++i) kept.insert(top[i].id);
  expect_ranked(sorted, kept);
}

TEST(Sampler, GreedyPicksTheHighestLogitAndTheLowestIdOnTies) {
  Sampler sampler(greedy_params());
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(sampler.sample(logits), 1);
  EXPECT_EQ(argmax(logits), 1);
}

TEST(Sampler, GreedyGivesTheFullChainsFirstCandidateWithAndWithoutPenalties) {
  // Greedy without penalties takes the first maximum of the row without building the candidate
  // list; it must pick what ranking the whole vocabulary does (top-k 1 here), ties and -0 included.
  SamplerParams top1;
  top1.temperature = 1.0f;
  top1.top_k = 1;
  for (float repeat_penalty : {1.0f, 2.0f}) {
    SamplerParams greedy = greedy_params();
    greedy.repeat_penalty = top1.repeat_penalty = repeat_penalty;
    Sampler greedy_sampler(greedy), full_chain(top1);
    std::vector<float> logits = tied_logits(151936);
    for (size_t shift : {size_t(0), size_t(1), size_t(4242)}) {
      std::rotate(logits.begin(), logits.begin() + long(shift), logits.end());
      const TokenId expected = full_chain.distribution(logits).front().id;
      EXPECT_EQ(greedy_sampler.sample(logits), expected) << "repeat penalty " << repeat_penalty << ", shift " << shift;
      const std::vector<TokenCandidate> chosen = greedy_sampler.distribution(logits);
      ASSERT_EQ(chosen.size(), 1u);
      EXPECT_EQ(chosen[0].id, expected);
      EXPECT_EQ(chosen[0].prob, 1.0f);
      greedy_sampler.accept(expected);  // with a penalty, the best token drops out next time
      full_chain.accept(expected);
    }
  }
}

TEST(Sampler, SameSeedGivesTheSameTokensAndAnotherSeedDiffers) {
  const std::vector<float> logits = {1.0f, 1.1f, 0.9f, 1.05f, 0.95f, 1.02f};
  auto draw = [&](uint64_t seed) {
    SamplerParams p;
    p.seed = seed;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.temperature = 1.0f;
    Sampler sampler(p);
    std::vector<TokenId> out;
    for (int i = 0; i < 64; ++i) out.push_back(sampler.sample(logits));
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(Sampler, SamplesInProportionToSoftmaxProbabilities) {
  SamplerParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  p.seed = 1234;
  Sampler sampler(p);
  const std::vector<float> logits = {std::log(0.2f), std::log(0.8f)};
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += sampler.sample(logits) == 1;
  // Binomial(20000, 0.8): standard deviation 0.0028; 0.015 is over 5 sigma.
  EXPECT_NEAR(double(ones) / n, 0.8, 0.015);
}

TEST(Sampler, TopKOfOneIsGreedyAtAnyTemperature) {
  SamplerParams p;
  p.top_k = 1;
  p.temperature = 5.0f;
  Sampler sampler(p);
  const std::vector<float> logits = {0.1f, 0.3f, 0.2f};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sampler.sample(logits), 1);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  SamplerParams p;
  p.top_k = 0;
  p.min_p = 0.0f;
  p.top_p = 0.5f;  // token 2 alone holds 0.6
  p.temperature = 1.0f;
  Sampler sampler(p);
  const std::vector<float> logits = {std::log(0.25f), std::log(0.15f), std::log(0.6f)};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sampler.sample(logits), 2);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  SamplerParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // keeps tokens with p >= 0.5 * 0.5: ids 0 and 1
  p.temperature = 1.0f;
  Sampler sampler(p);
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  std::set<TokenId> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sampler.sample(logits));
  EXPECT_EQ(seen, (std::set<TokenId>{0, 1}));
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerParams p = greedy_params();
  p.repeat_penalty = 1.5f;
  Sampler sampler(p);
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(std::vector<float>{2.0f, 1.9f}), 1);    // 2.0 / 1.5 = 1.33 < 1.9
  EXPECT_EQ(sampler.sample(std::vector<float>{-1.0f, -1.4f}), 1);  // -1.0 * 1.5 = -1.5 < -1.4
}

TEST(Sampler, PresenceAndFrequencyPenaltiesSubtractPerSeenTokenAndPerOccurrence) {
  SamplerParams p = greedy_params();
  p.frequency_penalty = 0.3f;
  Sampler sampler(p);
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 0.8f}), 1);  // 1.0 - 0.3 = 0.7 < 0.8
  sampler.accept(1);
  sampler.accept(1);
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 1.2f}), 0);  // 1.2 - 2 * 0.3 = 0.6 < 0.7
}

TEST(Sampler, PenaltyWindowForgetsOldTokens) {
  SamplerParams p = greedy_params();
  p.presence_penalty = 1.0f;
  p.penalty_last_n = 2;
  Sampler sampler(p);
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 0.5f}), 1);
  sampler.accept(1);
  sampler.accept(1);  // token 0 has left the 2-token window
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 0.5f}), 0);
}

// u at or past the total (float probabilities sum to slightly less than 1) picks the last token
// that can be drawn: never one of probability 0, such as a token a cut draft head excludes
// (-infinity logit) or a grammar masks.
TEST(Sampler, PickPastTheTotalNeverPicksATokenOfProbabilityZero) {
  const std::vector<TokenCandidate> distribution = {{5, 1.0f, 0.5f}, {7, 0.5f, 0.25f}, {9, -1e30f, 0.0f}};
  EXPECT_EQ(pick_from_distribution(distribution, 0.6), 7);
  EXPECT_EQ(pick_from_distribution(distribution, 0.9), 7);  // past the total of 0.75
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  const float excluded = -std::numeric_limits<float>::infinity();
  const std::vector<TokenCandidate> cut = Sampler(p).distribution(std::vector<float>{0.0f, excluded, 1.0f, excluded});
  ASSERT_EQ(cut.size(), 4u);
  EXPECT_EQ(cut[2].prob, 0.0f);
  EXPECT_EQ(cut[3].prob, 0.0f);
  EXPECT_EQ(pick_from_distribution(cut, 1.0 - 0x1p-53), 0);
}

TEST(Sampler, RejectsInvalidParameters) {
  SamplerParams p;
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
  Sampler ok;
  EXPECT_THROW(ok.sample(std::vector<float>{}), Error);
}

}  // namespace
}  // namespace slm
