// The scheduler's step policy (lib/server/step_plan.hpp): decode tokens of every generating
// request in every step, then prompts oldest first, the step ending with the first prompt it
// completes once it holds kMinStepRows rows.
#include <gtest/gtest.h>

#include "lib/server/step_plan.hpp"

namespace slm::server {

void PrintTo(const PlannedChunk& c, std::ostream* os) { *os << "{request " << c.request << ", " << c.n_rows << " rows}"; }

namespace {

using Plan = std::vector<PlannedChunk>;

TEST(StepPlan, PromptsArrivingTogetherCompleteOnePerStep) {
  // Eight 128-token prompts: the first step completes the oldest alone, not four of them.
  EXPECT_EQ(plan_step_rows(std::vector<int32_t>(8, 128), 512), (Plan{{0, 128}}));
  // One step later the oldest generates, and the next prompt completes with its token.
  EXPECT_EQ(plan_step_rows(std::vector<int32_t>{1, 128, 128, 128}, 512), (Plan{{0, 1}, {1, 128}}));
}

TEST(StepPlan, GeneratingRequestsGoInEveryStepFirst) {
  EXPECT_EQ(plan_step_rows(std::vector<int32_t>{300, 1, 0, 1}, 512), (Plan{{1, 1}, {3, 1}, {0, 300}}));
  // More generating requests than the budget: each still gets its token, and the budget grows
  // to one row per request, so the prompt is not starved.
  EXPECT_EQ(plan_step_rows(std::vector<int32_t>{1, 1, 1, 50}, 2), (Plan{{0, 1}, {1, 1}, {2, 1}, {3, 1}}));
}

TEST(StepPlan, ALongPromptIsChunkedToTheBudget) {
  EXPECT_EQ(plan_step_rows(std::vector<int32_t>{1, 2000, 100}, 512), (Plan{{0, 1}, {1, 511}}));
  // Its last chunk completes it; the budget left goes to nobody else in that step.
  EXPECT_EQ(plan_step_rows(std::vector<int32_t>{1, 200, 100}, 512), (Plan{{0, 1}, {1, 200}}));
}

TEST(StepPlan, ShortPromptsArePackedUpToTheMinimumStep) {
  // A step of fewer than kMinStepRows rows costs about what one row does: keep packing.
  static_assert(kMinStepRows == 64);
  EXPECT_EQ(plan_step_rows(std::vector<int32_t>{10, 20, 40, 30}, 512), (Plan{{0, 10}, {1, 20}, {2, 40}}));
  // The oldest prompt's rest is short: the next prompt starts in the same step, and is chunked
  // by the budget like any other.
  EXPECT_EQ(plan_step_rows(std::vector<int32_t>{5, 300}, 128), (Plan{{0, 5}, {1, 123}}));
}

TEST(StepPlan, NothingToDoPlansNothing) {
  EXPECT_TRUE(plan_step_rows(std::vector<int32_t>{}, 512).empty());
  EXPECT_TRUE(plan_step_rows(std::vector<int32_t>{0, 0}, 512).empty());
}

}  // namespace
}  // namespace slm::server
