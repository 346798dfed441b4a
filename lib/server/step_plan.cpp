#include "lib/server/step_plan.hpp"

#include <algorithm>

namespace slm::server {

std::vector<PlannedChunk> plan_step_rows(std::span<const int32_t> remaining, int32_t batch_tokens) {
  std::vector<PlannedChunk> plan;
  int32_t n_generating = 0;
  for (size_t i = 0; i < remaining.size(); ++i)
    if (remaining[i] == 1) plan.push_back({i, 1}), ++n_generating;
  int32_t rows = n_generating;
  // At least one row per running request, so a prompt still moves when the streams alone fill
  // a small budget.
  const int32_t budget = std::max(batch_tokens, int32_t(remaining.size()));
  for (size_t i = 0; i < remaining.size() && rows < budget; ++i) {
    if (remaining[i] <= 1) continue;
    const int32_t n_rows = std::min(remaining[i], budget - rows);
    plan.push_back({i, n_rows});
    rows += n_rows;
    if (n_rows == remaining[i] && rows >= kMinStepRows) break;  // this prompt's first token ends the step
  }
  return plan;
}

}  // namespace slm::server
