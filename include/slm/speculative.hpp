// Speculative decoding: cheap guesses of the next tokens, checked by the model in one batched
// evaluation, so that several tokens can come out of one pass over the weights.
//
// A Speculator drafts up to k tokens after each generated token, from a smaller draft model
// with the same vocabulary or from prompt lookup (the continuation of the longest recent n-gram
// match in the prompt and the output so far). generate() (slm/generate.hpp) then evaluates the
// token and its drafts in one eval with every row's logits, and accepts drafts while the
// target's own choice agrees with them; the caches of both models are rewound past the rest.
//
// Guarantees:
//   - Greedy (temperature <= 0): the output is byte-identical to plain greedy decoding, because
//     slm's logits are bit-identical whatever the batch split, so each verification row is the
//     row one-token decoding would give, and the token is chosen from it by the same code.
//   Both hold with a cut draft head (SpeculativeOptions::draft_vocab): only the target's logits
//   choose or accept a token.
//   - Sampling: the standard rejection rule (Leviathan et al. 2023; Chen et al. 2023): a draft d
//     drawn from the draft's distribution q is accepted with probability min(1, p(d) / q(d)),
//     else a token is drawn from max(0, p - q) renormalized; each output token then follows the
//     target's distribution p (after the sampler's chain) exactly. The same seed gives the same
//     output with the same draft model and draft settings; it is not the output plain sampling
//     gives with that seed (the acceptance tests draw numbers from the same generator).
//
// One Speculator serves one sequence (one Session) at a time; the draft model's cache is its own.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "slm/sampler.hpp"
#include "slm/session.hpp"

namespace slm {

struct SpeculativeOptions {
  int32_t draft_max = 16;      // drafted tokens per verification at most
  int32_t draft_min = 0;       // adaptive k never goes below it; 0 lets it switch drafting off for a while
  float draft_p_min = 0.75f;   // the draft model stops drafting when its most likely token is below this
  int32_t lookup_ngram = 0;    // > 0: prompt lookup with n-grams of up to this many tokens
  // > 0: the draft model's head is cut to token ids below this and the end-of-generation tokens
  // (FR-Spec, Zhao et al. 2025: BPE ids follow merge rank, so the first ids are the frequent
  // ones, and the cut skips most of the head's bytes). Its q is 0 outside them, which the
  // rejection rule handles; the target still verifies with its whole head. 0: the whole head.
  int32_t draft_vocab = 0;
};

struct SpeculationStats {
  int64_t drafted = 0;        // tokens proposed to the target
  int64_t accepted = 0;       // of those, accepted
  int64_t verifications = 0;  // target evaluations of a token with drafts
  double acceptance_rate() const { return drafted > 0 ? double(accepted) / double(drafted) : 0.0; }
};

// The rejection rule for one draft: accepts `drafted` (drawn from the draft distribution
// `draft`; empty: the draft was certain of it) when u * q(drafted) < p(drafted), u uniform in [0, 1).
bool accepts_draft(std::span<const TokenCandidate> target, std::span<const TokenCandidate> draft, TokenId drafted,
                   double u);
// What a rejected draft is replaced from: max(0, p - q), renormalized.
std::vector<TokenCandidate> residual_distribution(std::span<const TokenCandidate> target,
                                                  std::span<const TokenCandidate> draft, TokenId drafted);

// Adaptive k weighs the acceptance rate against what drafting and verifying cost. Costs are in
// units of the time of one target token evaluated alone.
struct SpeculationCosts {
  double draft_token = 0.0;          // one draft-model token (0: prompt lookup drafts for free)
  std::vector<double> verification;  // [r - 1]: one target evaluation of r rows (a token and r - 1 drafts)
};
// Tokens one verification of k drafts yields on average when each draft is accepted with
// probability `acceptance` once the ones before it were: 1 + a + ... + a^k (the target's own
// token after the last accepted draft included).
double expected_tokens_per_verification(double acceptance, int32_t k);
// The draft length in [min_k, max_k] that yields the most tokens per unit of time:
// expected_tokens_per_verification(a, k) / (k * draft_token + verification[k]); k = 0 is plain
// decoding (1 token for verification[0]). Lengths without a verification cost are not chosen;
// ties go to the shorter draft.
int32_t choose_draft_length(double acceptance, const SpeculationCosts& costs, int32_t min_k, int32_t max_k);
// The costs from timings: verification_seconds[r - 1] is the average time of a target evaluation
// of r rows (0: never measured), draft_token_seconds a draft token's (0: never measured). A row
// count not measured gets the cost interpolated linearly between its measured neighbours, or
// extrapolated with the slope from the fewest to the most rows measured (with one count
// measured: each further row costs row_prior of one row). The unit is the resulting cost of one
// row. Nothing measured: the priors, 1 + row_prior (r - 1) and draft_prior. One cost per entry
// of verification_seconds.
SpeculationCosts measured_costs(std::span<const double> verification_seconds, double draft_token_seconds,
                                double row_prior, double draft_prior);

// Throws slm::Error naming the first difference when `draft` cannot draft for `target`: a
// different vocabulary size, token text or type, or special tokens.
void check_draft_vocabulary(const Model& target, const Model& draft);

// Throws slm::Error for invalid options (draft lengths, draft-p-min, lookup-ngram, a draft_vocab
// outside 1..n_vocab or without a draft model) or a draft model whose vocabulary differs.
void check_speculative_options(const SpeculativeOptions& options, const Model& target, const Model* draft_model);

class Speculator {
 public:
  // `draft_model` may be null (prompt lookup only). Throws slm::Error for invalid options or a
  // draft model whose vocabulary differs from the target's.
  Speculator(const Model& target, std::shared_ptr<const Model> draft_model, SpeculativeOptions options,
             SessionOptions draft_session_options = {});
  ~Speculator();
  Speculator(Speculator&&) noexcept;
  Speculator& operator=(Speculator&&) noexcept;

  // Called by generate(): starts a generation whose prompt the target session has evaluated.
  void begin(std::span<const TokenId> prompt, const Sampler& sampler);
  // The token to emit from `logits`, the target's row after the last emitted token: the
  // sampler's choice, or the rejection rule's when the row checks a sampled draft.
  TokenId pick(Sampler& sampler, std::span<const float> logits);
  // After `token` is emitted: the target's logits for the position after it, from the last
  // verification when `token` is the draft it checked, else from a new evaluation of `token`
  // and its drafts (at most max_rows - 1 of them: the logits still needed).
  std::span<const float> advance(Session& target, const Sampler& sampler, TokenId token, int32_t max_rows);

  // For a caller that evaluates the drafts itself, in a batch of its own (slm-server's
  // scheduler): begin(), then for each verification propose() the drafts, evaluate the last
  // emitted token and them with every row's logits, and for each row in turn pick() a token from
  // it, emit it and call emitted(); stop at the first false (the rows after it are void).
  // Up to max_drafts tokens to follow the tokens emitted so far (none while adaptive k pauses
  // drafting); counted as drafted, so the caller must verify them or call discard_drafts().
  const std::vector<TokenId>& propose(const Sampler& sampler, int32_t max_drafts);
  // The caller could not verify the drafts of the last propose().
  void discard_drafts();
  // `token` was emitted after the row pick() read: true when it is that row's draft (the next
  // row is then valid), false when the verification ends here (adaptive k learns from it).
  bool emitted(TokenId token);

  const SpeculationStats& stats() const { return stats_; }  // since begin()
  // What adaptive k currently believes: the per-draft acceptance and the costs.
  double estimated_acceptance() const;
  SpeculationCosts estimated_costs() const;
  const SpeculativeOptions& options() const { return options_; }
  bool has_draft_model() const { return draft_session_ != nullptr; }

 private:
  struct Draft {
    std::vector<TokenId> tokens;
    std::vector<std::vector<TokenCandidate>> distributions;  // q per token; empty: the token was certain
  };
  Draft draft_tokens(const Sampler& sampler, int32_t k);
  Draft lookup_draft(int32_t k) const;
  Draft model_draft(const Sampler& sampler, int32_t k);
  void adapt_k(int32_t n_drafted, int32_t n_accepted);
  void record_verification(int32_t rows, double seconds);

  SpeculativeOptions options_;
  std::unique_ptr<Session> draft_session_;
  std::mt19937_64 draft_rng_;       // draws sampled drafts, apart from the sampler's generator
  SpeculationStats stats_;
  std::vector<TokenId> history_;    // prompt and emitted tokens: what the target's cache should hold
  Draft draft_;                     // the drafts of the last verification
  std::span<const float> rows_;     // its logits, one row per draft plus one
  int32_t n_vocab_ = 0;
  int32_t row_ = 0;                 // the row the next pick() reads
  bool rejected_ = false;           // pick() refused the row's draft
  int32_t k_ = 0;                   // adaptive draft length
  int32_t cooldown_ = 0;            // tokens left without drafting (adaptive k reached 0)
  int32_t backoff_ = 0;             // the next cooldown
  // Acceptance: decayed counts of accepted drafts and of rejections (at most one per verification).
  double accepted_weight_ = 0.0, rejected_weight_ = 0.0;
  // Costs: measured in greedy generation only (timings vary from run to run, and a sampled
  // output must depend on its seed alone); each a moving average in seconds, 0 until measured.
  bool timed_ = false;
  std::vector<double> verification_seconds_;  // [r - 1]: target evaluations of r rows
  double draft_token_seconds_ = 0.0;
  double draft_token_prior_ = 0.0;            // the draft's weight bytes over the target's
};

}  // namespace slm
