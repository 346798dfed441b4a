// Which rows one step of the scheduler evaluates (the policy), before KV blocks are counted:
// lib/server/scheduler.cpp then gives each planned chunk its blocks, in this order.
//
// Every generating request's next token comes first, in every step, so a prompt never stalls
// the streams (chunked prefill). The rest of the token budget goes to prompts in admission
// order, the oldest first, and the step ends with the first prompt it completes, once the step
// holds kMinStepRows rows. A prompt's first token then comes when its own prefill ends, not when
// a whole budget of other prompts' chunks does: eight 128-token prompts arriving together get
// their first tokens after 128, 256, ..., 1024 prompt tokens, not four after 512 and four after
// 1024. Below kMinStepRows a step costs about what a one-row step does (every weight is read
// once per step), so short prompts are still packed together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace slm::server {

constexpr int32_t kMinStepRows = 64;

struct PlannedChunk {
  size_t request;  // index into plan_step_rows' `remaining`
  int32_t n_rows;  // the request's next n_rows context tokens
  bool operator==(const PlannedChunk&) const = default;
};

// remaining[i]: the context tokens request i's sequence does not hold yet, requests in admission
// order; 1 when it is generating (its last sampled token), 0 when it has nothing to evaluate.
// Generating requests first (each one row, whatever the budget), then prompt chunks within
// max(batch_tokens, the number of requests) rows in all.
std::vector<PlannedChunk> plan_step_rows(std::span<const int32_t> remaining, int32_t batch_tokens);

}  // namespace slm::server
