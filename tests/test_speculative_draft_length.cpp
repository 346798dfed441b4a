// Adaptive k (slm/speculative.hpp): the draft length that yields the most tokens per unit of
// time, from the acceptance rate, the cost of a draft token and the cost of verifying r rows.
#include <gtest/gtest.h>

#include "slm/speculative.hpp"

namespace {

using namespace slm;

// Costs shaped like the measurements of the README's first pair (Qwen2.5-1.5B-shaped Q4_K_M
// target, its 2-layer draft): a draft token 0.28 of a target token, each further row 0.13.
SpeculationCosts linear_costs(double draft_token, double row_cost, int32_t max_k = 16) {
  SpeculationCosts costs{.draft_token = draft_token, .verification = {}};
  for (int32_t r = 1; r <= max_k + 1; ++r) costs.verification.push_back(1.0 + row_cost * (r - 1));
  return costs;
}

TEST(SpeculativeDraftLength, ExpectedTokensPerVerification) {
  EXPECT_DOUBLE_EQ(expected_tokens_per_verification(0.0, 5), 1.0);   // the target's own token
  EXPECT_DOUBLE_EQ(expected_tokens_per_verification(1.0, 4), 5.0);   // every draft and one more
  EXPECT_DOUBLE_EQ(expected_tokens_per_verification(0.5, 2), 1.75);  // 1 + 1/2 + 1/4
  EXPECT_DOUBLE_EQ(expected_tokens_per_verification(0.9, 0), 1.0);
}

TEST(SpeculativeDraftLength, TheMeasuredCostsGiveShortDraftsAndNoneAtLowAcceptance) {
  const SpeculationCosts costs = linear_costs(0.28, 0.13);
  // a = 0.8: 1 + 0.8 + 0.64 = 2.44 tokens for 2 x 0.28 + 1.26 = 1.82: 1.34 per token's time, more
  // than k = 1 (1.8 / 1.41 = 1.28) or k = 3 (2.952 / 2.23 = 1.32).
  EXPECT_EQ(choose_draft_length(0.8, costs, 0, 16), 2);
  EXPECT_EQ(choose_draft_length(0.9, costs, 0, 16), 4);  // 4.0951 / 2.64 = 1.55
  EXPECT_EQ(choose_draft_length(0.5, costs, 0, 16), 1);  // 1.5 / 1.41 = 1.06
  EXPECT_EQ(choose_draft_length(0.3, costs, 0, 16), 0);  // 1.3 / 1.41 < 1: plain decoding
  EXPECT_EQ(choose_draft_length(0.0, costs, 0, 16), 0);
}

TEST(SpeculativeDraftLength, BoundsAreKept) {
  const SpeculationCosts costs = linear_costs(0.28, 0.13);
  EXPECT_EQ(choose_draft_length(0.0, costs, 2, 16), 2);  // draft-min
  EXPECT_EQ(choose_draft_length(0.9, costs, 0, 3), 3);   // draft-max
  SpeculationCosts short_table = linear_costs(0.0, 0.0, 2);
  EXPECT_EQ(choose_draft_length(1.0, short_table, 0, 16), 2);  // no cost known for 3 drafts or more
}

TEST(SpeculativeDraftLength, FreeDraftsAndFreeRowsDraftTheMost) {
  EXPECT_EQ(choose_draft_length(0.5, linear_costs(0.0, 0.0), 0, 16), 16);
  EXPECT_EQ(choose_draft_length(1.0, linear_costs(0.0, 0.13), 0, 16), 16);  // prompt lookup of an exact copy
}

TEST(SpeculativeDraftLength, CostlierRowsOrDraftsNeverLengthenTheDraft) {
  for (double a = 0.0; a <= 1.0; a += 0.01) {
    SCOPED_TRACE(testing::Message() << "acceptance " << a);
    EXPECT_LE(choose_draft_length(a, linear_costs(0.0, 0.5), 0, 16), choose_draft_length(a, linear_costs(0.0, 0.13), 0, 16));
    EXPECT_LE(choose_draft_length(a, linear_costs(0.5, 0.13), 0, 16), choose_draft_length(a, linear_costs(0.1, 0.13), 0, 16));
  }
}

TEST(SpeculativeDraftLength, HigherAcceptanceNeverShortensTheDraft) {
  for (double draft_token : {0.0, 0.1, 0.28, 0.6}) {
    int32_t previous = 0;
    for (double a = 0.0; a <= 1.0; a += 0.01) {
      const int32_t k = choose_draft_length(a, linear_costs(draft_token, 0.13), 0, 16);
      EXPECT_GE(k, previous) << "draft token cost " << draft_token << ", acceptance " << a;
      previous = k;
    }
  }
}

// measured_costs: seconds chosen as binary fractions, so that every expectation is exact.
TEST(SpeculativeDraftLength, NothingMeasuredGivesThePriors) {
  const std::vector<double> none(4, 0.0);
  const SpeculationCosts costs = measured_costs(none, 0.0, 0.25, 0.375);
  EXPECT_EQ(costs.verification, (std::vector<double>{1.0, 1.25, 1.5, 1.75}));
  EXPECT_EQ(costs.draft_token, 0.375);
}

TEST(SpeculativeDraftLength, OneMeasuredRowCountTakesThePriorSlope) {
  // 3 rows took 0.75 s: with a further row at 0.25 of one row, one row is 0.5 s, a further 0.125 s.
  const std::vector<double> seconds{0.0, 0.0, 0.75, 0.0};
  const SpeculationCosts costs = measured_costs(seconds, 0.125, 0.25, 0.9);
  EXPECT_EQ(costs.verification, (std::vector<double>{1.0, 1.25, 1.5, 1.75}));
  EXPECT_EQ(costs.draft_token, 0.25);  // 0.125 s of 0.5 s: the measurement, not the prior
}

TEST(SpeculativeDraftLength, MeasuredRowCountsAreKeptAndTheOthersInterpolated) {
  // Measured: 2 rows 1.25 s, 4 rows 2 s, 5 rows 2 s. Slope (2 - 1.25) / (5 - 2) = 0.25 s a row,
  // so 1 row 1 s (the unit), 3 rows halfway between 2 and 4 (1.625), 6 rows 2 + 0.25.
  const std::vector<double> seconds{0.0, 1.25, 0.0, 2.0, 2.0, 0.0};
  const SpeculationCosts costs = measured_costs(seconds, 0.0, 0.5, 0.375);
  EXPECT_EQ(costs.verification, (std::vector<double>{1.0, 1.25, 1.625, 2.0, 2.0, 2.25}));
  EXPECT_EQ(costs.draft_token, 0.375);  // not measured: the prior
}

TEST(SpeculativeDraftLength, OneRowMeasuredIsTheUnit) {
  const std::vector<double> seconds{0.5, 0.0, 0.75};
  const SpeculationCosts costs = measured_costs(seconds, 0.25, 0.1, 0.9);
  EXPECT_EQ(costs.verification, (std::vector<double>{1.0, 1.25, 1.5}));
  EXPECT_EQ(costs.draft_token, 0.5);
}

TEST(SpeculativeDraftLength, ASlopeThatWouldMakeOneRowFreeFallsBackToThePrior) {
  // 3 rows 1.5 s, 5 rows 5.5 s: 2 s a row would make one row cost -2.5 s. The prior (0.25 of a
  // row) through 3 rows instead: one row 1 s, 0.25 s a further row beyond the measured counts.
  const std::vector<double> seconds{0.0, 0.0, 1.5, 0.0, 5.5, 0.0};
  const SpeculationCosts costs = measured_costs(seconds, 0.0, 0.25, 0.375);
  EXPECT_EQ(costs.verification, (std::vector<double>{1.0, 1.25, 1.5, 3.5, 5.5, 5.75}));
}

}  // namespace
