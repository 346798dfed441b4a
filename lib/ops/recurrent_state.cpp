#include "lib/ops/recurrent_state.hpp"

#include <algorithm>
#include <cstdint>

namespace slm::ops {

int32_t SequenceRecurrentState::latest_at_or_before(int32_t n) const {
  int32_t best = position >= 0 && position <= n ? position : 0;
  for (const StateCheckpoint& c : checkpoints)
    if (c.position <= n) best = std::max(best, c.position);
  return best;
}

int32_t SequenceRecurrentState::restore(int32_t n) {
  const int32_t target = latest_at_or_before(n);
  if (target == position) return target;
  const auto found = std::find_if(checkpoints.begin(), checkpoints.end(),
                                  [&](const StateCheckpoint& c) { return c.position == target; });
  if (found != checkpoints.end())
    std::copy(found->state->begin(), found->state->end(), current.begin());
  else
    std::fill(current.begin(), current.end(), 0.0f);  // position 0: a new sequence's state
  position = target;
  return target;
}

void SequenceRecurrentState::keep_checkpoint(int32_t max_checkpoints) {
  if (max_checkpoints <= 0 || position <= 0) return;
  const auto at = std::lower_bound(checkpoints.begin(), checkpoints.end(), position,
                                   [](const StateCheckpoint& c, int32_t p) { return c.position < p; });
  if (at != checkpoints.end() && at->position == position) return;
  checkpoints.insert(at, {position, std::make_shared<const std::vector<float>>(current)});
  if (int32_t(checkpoints.size()) > max_checkpoints) checkpoints.erase(checkpoints.begin() + cheapest_to_drop());
}

size_t SequenceRecurrentState::cheapest_to_drop() const {
  // Without checkpoint i, a restore to its position (the end of a prompt or a turn: where a later
  // prompt is likely to differ) goes back to checkpoint i - 1, or to the zero state at 0: that
  // gap is what dropping it costs. The latest is kept: it is where the sequence goes on.
  size_t cheapest = 0;
  int32_t cheapest_gap = INT32_MAX;
  for (size_t i = 0; i + 1 < checkpoints.size(); ++i) {
    const int32_t gap = checkpoints[i].position - (i > 0 ? checkpoints[i - 1].position : 0);
    if (gap < cheapest_gap) cheapest = i, cheapest_gap = gap;
  }
  return cheapest;
}

void SequenceRecurrentState::forget_after(int32_t n) {
  std::erase_if(checkpoints, [&](const StateCheckpoint& c) { return c.position > n; });
  if (position > n) position = -1;
}

}  // namespace slm::ops
