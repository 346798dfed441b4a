// Reading a scheduler's request stream to its end, for the scheduler tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "slm/scheduler.hpp"

namespace slm::test {

struct Collected {
  std::vector<TokenId> tokens;
  std::string text;
  GenerationSummary summary;
  std::vector<float> logprobs;
};

// Reads a stream to its end (bounded: a test never waits forever; 120 s is a failure).
inline Collected collect(RequestStream& stream) {
  using namespace std::chrono_literals;
  Collected out;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    StreamEvent event;
    if (!stream.next(event, 100ms)) continue;
    if (event.token) {
      out.tokens.push_back(event.token->token);
      out.text += event.token->text;
      out.logprobs.push_back(event.token->sampled.logprob);
    }
    if (event.done) {
      out.summary = *event.done;
      out.text += out.summary.text_tail;
      return out;
    }
  }
  ADD_FAILURE() << "the stream did not end within 120 s";
  return out;
}

}  // namespace slm::test
