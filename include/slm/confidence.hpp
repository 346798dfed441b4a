// How sure the model was of what it generated: a summary of the distributions its tokens were
// sampled from, for deciding whether an answer is good enough or should be asked of a bigger model.
//
// Every figure comes from the model's own distribution at each generated position: the
// log-softmax of the raw logits, before the repetition penalties, the grammar mask, top-k, top-p,
// min-p and the temperature. So it means the same at any temperature and with any sampler
// settings, and a token's logprob is the one the server reports in `logprobs`. Under a grammar,
// a token the grammar forces but the model did not expect lowers the figures: the model was out
// of its depth there.
//
// Cost: one pass over each row of logits (a running log-sum-exp over chunks that stay in the L1
// cache), with no sort; about as much as reading the row once more.
#pragma once

#include <cstdint>
#include <span>

#include "slm/tokenizer.hpp"

namespace slm {

// A position counts as a close call when the two most likely tokens' probabilities differ by
// less than this (p1 - p2 < 0.1: the model was torn between two continuations).
inline constexpr double kDefaultLowMarginThreshold = 0.1;

// Figures of one sampled position (natural logarithms, nats).
struct TokenConfidence {
  double logprob = 0;     // log p(sampled token)
  double entropy = 0;     // -sum p log p over the whole vocabulary
  double top2_margin = 0; // p1 - p2 of the two most likely tokens (0 on a tie), in [0, 1]
};

// The figures of one row of logits; `token` is the one sampled from it.
TokenConfidence token_confidence(std::span<const float> logits, TokenId token);

// Over every sampled token of a generation, the end-of-generation token included (it was a
// choice too). All zero when nothing was generated.
struct Confidence {
  int32_t n_tokens = 0;
  double mean_logprob = 0;      // mean of log p(sampled token): 0 is certain, lower is less sure
  double min_logprob = 0;       // the least likely token chosen
  double mean_entropy = 0;      // mean entropy of the distributions, nats
  double low_margin_share = 0;  // share of positions whose top-2 margin was below the threshold
  double low_margin_threshold = kDefaultLowMarginThreshold;
};

// Accumulates a Confidence as tokens are sampled.
class ConfidenceMeter {
 public:
  explicit ConfidenceMeter(double low_margin_threshold = kDefaultLowMarginThreshold)
      : low_margin_threshold_(low_margin_threshold) {}
  void add(std::span<const float> logits, TokenId token) { add(token_confidence(logits, token)); }
  void add(const TokenConfidence& token);
  Confidence summary() const;

 private:
  double low_margin_threshold_;
  int32_t n_tokens_ = 0, n_low_margin_ = 0;
  double sum_logprob_ = 0, min_logprob_ = 0, sum_entropy_ = 0;
};

}  // namespace slm
