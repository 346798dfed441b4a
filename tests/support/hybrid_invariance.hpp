// The determinism check of a hybrid model (recurrent layers beside attention): every position's
// logits of a prompt, evaluated in one batch at 1 thread, against 2 threads, uneven batches with
// state checkpoints cutting the forward passes, and one token at a time: bit-identical.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "slm/session.hpp"

namespace slm::test {

inline void expect_hybrid_logits_invariant(const std::shared_ptr<const Model>& model, int n_tokens) {
  std::vector<TokenId> tokens;
  for (int i = 0; i < n_tokens; ++i) tokens.push_back(TokenId((i * 37 + 11) % model->config().n_vocab));
  const auto logits_of = [&](int threads, int32_t n_batch, int32_t interval, bool one_at_a_time) {
    Session session(model, {.n_ctx = n_tokens + 16, .n_threads = threads, .n_batch = n_batch,
                            .checkpoint_interval = interval});
    std::vector<float> out;
    for (size_t i = 0; i < tokens.size();) {
      const size_t n = one_at_a_time ? 1 : tokens.size();
      const auto logits = session.eval(std::span(tokens).subspan(i, n), true);
      out.insert(out.end(), logits.begin(), logits.end());
      i += n;
    }
    return out;
  };
  const std::vector<float> reference = logits_of(1, 512, 0, false);
  for (float v : reference) ASSERT_TRUE(std::isfinite(v));
  const auto same = [&](const std::vector<float>& other) {
    return other.size() == reference.size() && std::memcmp(other.data(), reference.data(), other.size() * 4) == 0;
  };
  EXPECT_TRUE(same(logits_of(2, 512, 0, false))) << "2 threads";
  EXPECT_TRUE(same(logits_of(1, 5, 0, false))) << "batches of 5";
  EXPECT_TRUE(same(logits_of(2, 13, 7, false))) << "batches of 13, checkpoints every 7, 2 threads";
  EXPECT_TRUE(same(logits_of(1, 512, 16, true))) << "one token at a time";
}

}  // namespace slm::test
