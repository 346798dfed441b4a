// Token sampling as a chain of stages over the candidate list.
//
// Default order (the same as llama.cpp's): penalties -> top_k -> top_p -> min_p ->
// temperature -> pick. A temperature <= 0 makes the pick greedy (the highest logit,
// lowest id on ties), and the stochastic stages are skipped. The random number
// generator is seeded: the same seed and settings give the same tokens.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "slm/tokenizer.hpp"

namespace slm {

enum class SamplerStage { Penalties, TopK, TopP, MinP, Temperature };

struct SamplerParams {
  float temperature = 0.8f;
  int32_t top_k = 40;          // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off
  float repeat_penalty = 1.0f; // 1: off. logit / penalty if positive, * penalty if negative
  float presence_penalty = 0.0f;   // subtracted once from every token seen in the window
  float frequency_penalty = 0.0f;  // subtracted per occurrence in the window
  int32_t penalty_last_n = 64;     // window of recent tokens the penalties look at
  uint64_t seed = 0xC0FFEE;
  std::vector<SamplerStage> order = {SamplerStage::Penalties, SamplerStage::TopK, SamplerStage::TopP,
                                     SamplerStage::MinP, SamplerStage::Temperature};
};

struct TokenCandidate {
  TokenId id;
  float logit;
  float prob;
};

class Sampler {
 public:
  explicit Sampler(SamplerParams params = {});

  // Chooses the next token from one row of logits. Does not record it: call accept().
  TokenId sample(std::span<const float> logits);
  // The distribution sample() draws from: the candidates left after the chain, most likely
  // first, with their probabilities (greedy: the one chosen token, probability 1).
  std::vector<TokenCandidate> distribution(std::span<const float> logits) const;
  // The next number in [0, 1) of the seeded generator (speculative sampling's acceptance test).
  double uniform();
  // Records a token (prompt or generated) in the penalty window.
  void accept(TokenId token);
  void reset();  // clears the penalty window and re-seeds the generator

  const SamplerParams& params() const { return params_; }

 private:
  bool penalties_apply() const;  // the penalty stage is in the order, has a window and changes a logit
  void apply_penalties(std::vector<TokenCandidate>& candidates) const;
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<TokenId> recent_;  // the penalty window, oldest first
};

// The candidate whose cumulative probability first exceeds u (u in [0, 1)); the last one of
// positive probability when rounding leaves the total below u.
TokenId pick_from_distribution(std::span<const TokenCandidate> distribution, double u);

// Index of the largest value, lowest index on ties.
TokenId argmax(std::span<const float> logits);

}  // namespace slm
