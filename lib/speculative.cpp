// Speculative decoding: drafting, the rejection rule and adaptive k; see include/slm/speculative.hpp.
#include "slm/speculative.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <unordered_map>

#include "slm/error.hpp"
#include "lib/model/weights.hpp"
#include "slm/gguf.hpp"

namespace slm {

namespace {

// Tokens without drafting after adaptive k chose 0; doubled after every failed probe.
constexpr int32_t kInitialCooldown = 8;
constexpr int32_t kMaxCooldown = 64;
// Adaptive k's prior, before anything is measured (and always in sampled generation): each
// verification row past the first costs this fraction of a token. Measured for
// Qwen2.5-1.5B-shaped Q4_K_M on a 2-core AVX-512 VM: 62.7 ms a token, about 8 ms a further row.
constexpr double kVerificationRowPrior = 0.13;
// The acceptance estimate: one accepted draft and one rejection before any is seen, and each
// verification's counts weigh 1 / kAcceptanceDecay times the previous one's (about the last ten count).
constexpr double kPriorAccepted = 1.0, kPriorRejected = 1.0;
constexpr double kAcceptanceDecay = 0.9;
// The measured costs are moving averages; a new measurement weighs this much.
constexpr double kCostSmoothing = 0.2;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void smooth_into(double& average, double seconds) {
  average = average > 0.0 ? average + kCostSmoothing * (seconds - average) : seconds;
}

uint64_t weight_bytes(const Model& model) {
  uint64_t bytes = 0;
  for (const GgufTensor& tensor : model.gguf().tensors()) bytes += tensor.n_bytes;
  return bytes;
}

// The draft model's confidence: softmax probability of its most likely token at temperature 1.
float top_probability(std::span<const float> logits) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(double(l) - max_logit);
  return float(1.0 / sum);
}

float probability_of(std::span<const TokenCandidate> distribution, TokenId id) {
  for (const TokenCandidate& c : distribution)
    if (c.id == id) return c.prob;
  return 0.0f;
}

}  // namespace

bool accepts_draft(std::span<const TokenCandidate> target, std::span<const TokenCandidate> draft, TokenId drafted,
                   double u) {
  const double p = probability_of(target, drafted);
  const double q = draft.empty() ? 1.0 : probability_of(draft, drafted);
  return u * q < p;  // u < p / q, and q = 0 (a draft the draft could not draw) accepts when p > 0
}

std::vector<TokenCandidate> residual_distribution(std::span<const TokenCandidate> target,
                                                  std::span<const TokenCandidate> draft, TokenId drafted) {
  std::unordered_map<TokenId, float> q;
  if (draft.empty()) q[drafted] = 1.0f;
  for (const TokenCandidate& c : draft) q[c.id] = c.prob;
  std::vector<TokenCandidate> residual;
  double sum = 0.0;
  for (const TokenCandidate& c : target) {
    const auto found = q.find(c.id);
    const double r = double(c.prob) - (found == q.end() ? 0.0 : double(found->second));
    if (r <= 0.0) continue;
    residual.push_back({c.id, c.logit, float(r)});
    sum += r;
  }
  // p == q (up to rounding): the draft is accepted with probability 1, so this is never drawn from.
  if (residual.empty()) return {target.begin(), target.end()};
  for (TokenCandidate& c : residual) c.prob = float(c.prob / sum);
  return residual;
}

double expected_tokens_per_verification(double acceptance, int32_t k) {
  double tokens = 0.0, reach = 1.0;  // reach: the probability that the row after j drafts is reached
  for (int32_t j = 0; j <= k; ++j, reach *= acceptance) tokens += reach;
  return tokens;
}

int32_t choose_draft_length(double acceptance, const SpeculationCosts& costs, int32_t min_k, int32_t max_k) {
  const double a = std::clamp(acceptance, 0.0, 1.0);
  int32_t best = min_k;
  double best_rate = 0.0;
  for (int32_t k = std::max(0, min_k); k <= max_k && size_t(k) < costs.verification.size(); ++k) {
    const double seconds = double(k) * costs.draft_token + costs.verification[size_t(k)];
    if (!(seconds > 0.0)) continue;
    const double rate = expected_tokens_per_verification(a, k) / seconds;
    if (rate > best_rate) {
      best = k;
      best_rate = rate;
    }
  }
  return best;
}

SpeculationCosts measured_costs(std::span<const double> verification_seconds, double draft_token_seconds,
                                double row_prior, double draft_prior) {
  const size_t n = verification_seconds.size();
  std::vector<size_t> measured;  // row counts r, ascending
  for (size_t r = 1; r <= verification_seconds.size(); ++r)
    if (verification_seconds[r - 1] > 0.0) measured.push_back(r);
  SpeculationCosts costs{.draft_token = draft_prior, .verification = {}};
  if (measured.empty()) {
    for (size_t r = 1; r <= n; ++r) costs.verification.push_back(1.0 + row_prior * double(r - 1));
    return costs;
  }
  const auto at = [&](size_t r) { return verification_seconds[r - 1]; };
  const size_t fewest = measured.front(), most = measured.back();
  // Seconds per further row; one row's seconds when only one count was measured.
  double slope = most > fewest ? std::max(0.0, (at(most) - at(fewest)) / double(most - fewest)) : 0.0;
  double one_row = at(fewest) - slope * double(fewest - 1);
  if (most == fewest || !(one_row > 0.0)) {  // the prior's slope through the fewest rows measured
    one_row = at(fewest) / (1.0 + row_prior * double(fewest - 1));
    slope = row_prior * one_row;
  }
  size_t next = 0;  // the first measured count >= r
  for (size_t r = 1; r <= n; ++r) {
    while (measured[next] < r && next + 1 < measured.size()) ++next;
    double seconds;
    if (measured[next] == r) {
      seconds = at(r);
    } else if (r < fewest) {
      seconds = at(fewest) - slope * double(fewest - r);
    } else if (r > most) {
      seconds = at(most) + slope * double(r - most);
    } else {  // between measured[next - 1] and measured[next]
      const size_t lo = measured[next - 1], hi = measured[next];
      seconds = at(lo) + (at(hi) - at(lo)) * double(r - lo) / double(hi - lo);
    }
    costs.verification.push_back(seconds);
  }
  const double unit = costs.verification[0];  // > 0: measured, or one_row
  for (double& v : costs.verification) v /= unit;
  if (draft_token_seconds > 0.0) costs.draft_token = draft_token_seconds / unit;
  return costs;
}

void check_draft_vocabulary(const Model& target, const Model& draft) {
  const Tokenizer& t = target.tokenizer();
  const Tokenizer& d = draft.tokenizer();
  const auto mismatch = [&](const std::string& what) {
    return Error(fmt::format("the draft model {} cannot draft for {}: {}", draft.gguf().path(), target.gguf().path(), what));
  };
  if (target.config().n_vocab != draft.config().n_vocab || t.n_vocab() != d.n_vocab())
    throw mismatch(fmt::format("its vocabulary has {} tokens, the target's {}", d.n_vocab(), t.n_vocab()));
  if (t.kind() != d.kind()) throw mismatch("a different tokenizer model");
  for (TokenId id = 0; id < t.n_vocab(); ++id) {
    if (t.token_text(id) != d.token_text(id))
      throw mismatch(fmt::format("token {} is '{}' in the draft and '{}' in the target", id, d.token_text(id), t.token_text(id)));
    if (t.token_type(id) != d.token_type(id))
      throw mismatch(fmt::format("token {} ('{}') has type {} in the draft and {} in the target", id, t.token_text(id),
                                 int(d.token_type(id)), int(t.token_type(id))));
  }
  const struct {
    const char* name;
    TokenId draft_id, target_id;
  } specials[] = {{"BOS", d.bos(), t.bos()}, {"EOS", d.eos(), t.eos()}, {"EOT", d.eot(), t.eot()},
                  {"padding", d.pad(), t.pad()}, {"unknown", d.unknown(), t.unknown()}};
  for (const auto& s : specials)
    if (s.draft_id != s.target_id)
      throw mismatch(fmt::format("its {} token is {}, the target's {}", s.name, s.draft_id, s.target_id));
  if (t.add_bos() != d.add_bos() || t.add_eos() != d.add_eos())
    throw mismatch("it adds BOS/EOS differently");
  if (t.end_of_generation_ids() != d.end_of_generation_ids()) throw mismatch("different end-of-generation tokens");
}

void check_speculative_options(const SpeculativeOptions& options, const Model& target, const Model* draft_model) {
  if (options.draft_max < 0 || options.draft_min < 0 || options.draft_min > options.draft_max)
    throw Error(fmt::format("draft lengths must satisfy 0 <= draft-min ({}) <= draft-max ({})", options.draft_min,
                            options.draft_max));
  if (!(options.draft_p_min >= 0.0f && options.draft_p_min <= 1.0f))
    throw Error(fmt::format("draft-p-min must be within [0, 1], not {}", options.draft_p_min));
  if (options.lookup_ngram < 0) throw Error("lookup-ngram must not be negative");
  const int32_t n_vocab = target.config().n_vocab;
  if (options.draft_vocab < 0 || options.draft_vocab > n_vocab)
    throw Error(fmt::format("draft-vocab must be within 1..{} (the vocabulary), not {}", n_vocab, options.draft_vocab));
  if (options.draft_vocab > 0 && !draft_model) throw Error("draft-vocab cuts a draft model's head: it needs a draft model");
  if (draft_model) check_draft_vocabulary(target, *draft_model);
}

Speculator::Speculator(const Model& target, std::shared_ptr<const Model> draft_model, SpeculativeOptions options,
                       SessionOptions draft_session_options)
    : options_(options), n_vocab_(target.config().n_vocab) {
  check_speculative_options(options_, target, draft_model.get());
  if (draft_model) {
    // Decoding one token reads every weight once: the bytes are the cost, before it is measured;
    // a cut head reads only its leading rows.
    const uint64_t head_rows_skipped = options_.draft_vocab > 0 ? uint64_t(n_vocab_ - options_.draft_vocab) : 0;
    const uint64_t draft_bytes = weight_bytes(*draft_model) - head_rows_skipped * draft_model->weights().output.row_bytes;
    draft_token_prior_ = double(draft_bytes) / double(std::max<uint64_t>(1, weight_bytes(target)));
    draft_session_options.logit_vocab = options_.draft_vocab;
    draft_session_ = std::make_unique<Session>(std::move(draft_model), draft_session_options);
  }
  verification_seconds_.assign(size_t(options_.draft_max) + 1, 0.0);
}

Speculator::~Speculator() = default;
Speculator::Speculator(Speculator&&) noexcept = default;
Speculator& Speculator::operator=(Speculator&&) noexcept = default;

void Speculator::begin(std::span<const TokenId> prompt, const Sampler& sampler) {
  history_.assign(prompt.begin(), prompt.end());
  draft_ = {};
  rows_ = {};
  row_ = 0;
  stats_ = {};
  timed_ = sampler.params().temperature <= 0.0f;
  accepted_weight_ = rejected_weight_ = 0.0;
  // The first verification drafts at least one token, even when the prior advises none: only
  // drafting measures the acceptance.
  k_ = choose_draft_length(estimated_acceptance(), estimated_costs(), options_.draft_min, options_.draft_max);
  k_ = std::min(options_.draft_max, std::max(k_, 1));
  cooldown_ = 0;
  backoff_ = kInitialCooldown;
  draft_rng_.seed(sampler.params().seed ^ 0x9E3779B97F4A7C15ull);
}

TokenId Speculator::pick(Sampler& sampler, std::span<const float> logits) {
  const bool checks_draft = size_t(row_) < draft_.tokens.size();
  if (!checks_draft || sampler.params().temperature <= 0.0f) return sampler.sample(logits);
  const std::vector<TokenCandidate> p = sampler.distribution(logits);
  const std::vector<TokenCandidate>& q = draft_.distributions[size_t(row_)];
  const TokenId drafted = draft_.tokens[size_t(row_)];
  if (accepts_draft(p, q, drafted, sampler.uniform())) return drafted;
  return pick_from_distribution(residual_distribution(p, q, drafted), sampler.uniform());
}

std::span<const float> Speculator::advance(Session& target, const Sampler& sampler, TokenId token, int32_t max_rows) {
  if (emitted(token)) return rows_.subspan(size_t(row_) * size_t(n_vocab_), size_t(n_vocab_));
  const int32_t position = int32_t(history_.size()) - 1;  // of `token`; the target's cache keeps what precedes it
  const std::vector<TokenId>& drafts = propose(sampler, std::min(max_rows - 1, target.n_ctx() - 1 - position));
  const auto start = Clock::now();
  if (drafts.empty()) {
    const std::span<const float> logits = target.eval(std::span<const TokenId>(&token, 1), position);
    record_verification(1, seconds_since(start));
    return logits;
  }
  std::vector<TokenId> batch{token};
  batch.insert(batch.end(), drafts.begin(), drafts.end());
  rows_ = target.eval(batch, position, /*all_logits=*/true);
  record_verification(int32_t(batch.size()), seconds_since(start));
  return rows_.subspan(0, size_t(n_vocab_));
}

void Speculator::record_verification(int32_t rows, double seconds) {
  if (timed_ && rows >= 1 && size_t(rows) <= verification_seconds_.size())
    smooth_into(verification_seconds_[size_t(rows) - 1], seconds);
}

double Speculator::estimated_acceptance() const {
  return (kPriorAccepted + accepted_weight_) / (kPriorAccepted + kPriorRejected + accepted_weight_ + rejected_weight_);
}

// Greedy generation measures its costs; sampled generation keeps the priors, so that its output
// depends on its seed alone.
SpeculationCosts Speculator::estimated_costs() const {
  if (timed_) return measured_costs(verification_seconds_, draft_token_seconds_, kVerificationRowPrior, draft_token_prior_);
  const std::vector<double> unmeasured(verification_seconds_.size(), 0.0);
  return measured_costs(unmeasured, 0.0, kVerificationRowPrior, draft_token_prior_);
}

bool Speculator::emitted(TokenId token) {
  history_.push_back(token);
  const int32_t n_drafts = int32_t(draft_.tokens.size());
  if (row_ < n_drafts && token == draft_.tokens[size_t(row_)]) {  // the target agreed: its next row is ready
    ++stats_.accepted;
    ++row_;
    return true;
  }
  if (n_drafts > 0) adapt_k(n_drafts, row_);
  draft_ = {};
  row_ = 0;
  return false;
}

const std::vector<TokenId>& Speculator::propose(const Sampler& sampler, int32_t max_drafts) {
  draft_ = {};
  row_ = 0;
  int32_t k = std::min(k_, max_drafts);
  if (cooldown_ > 0) {
    --cooldown_;
    k = 0;
  }
  if (k > 0) draft_ = draft_tokens(sampler, k);
  if (!draft_.tokens.empty()) {
    stats_.drafted += int64_t(draft_.tokens.size());
    ++stats_.verifications;
  }
  return draft_.tokens;
}

void Speculator::discard_drafts() {
  if (draft_.tokens.empty()) return;
  stats_.drafted -= int64_t(draft_.tokens.size());
  --stats_.verifications;
  draft_ = {};
}

// The acceptance estimate learns from the verification, and k becomes the length that yields the
// most tokens per unit of time at the estimated acceptance and costs. When that is no drafting
// at all, drafting pauses for a cooldown that doubles while the probes after it keep failing, so
// that a draft that never agrees costs little more than nothing.
void Speculator::adapt_k(int32_t n_drafted, int32_t n_accepted) {
  accepted_weight_ = kAcceptanceDecay * accepted_weight_ + double(n_accepted);
  rejected_weight_ = kAcceptanceDecay * rejected_weight_ + (n_accepted < n_drafted ? 1.0 : 0.0);
  if (n_accepted > 0) backoff_ = kInitialCooldown;
  k_ = choose_draft_length(estimated_acceptance(), estimated_costs(), options_.draft_min, options_.draft_max);
  if (k_ == 0) {
    cooldown_ = backoff_;
    backoff_ = std::min(2 * backoff_, kMaxCooldown);
    k_ = std::min(options_.draft_max, 1);
  }
}

Speculator::Draft Speculator::draft_tokens(const Sampler& sampler, int32_t k) {
  if (options_.lookup_ngram > 0) {
    Draft found = lookup_draft(k);
    if (!found.tokens.empty()) return found;
  }
  if (draft_session_) return model_draft(sampler, k);
  return {};
}

// The longest n-gram (n = lookup_ngram down to 1) that ends the history and occurred before,
// at its most recent earlier occurrence: the tokens that followed it there.
Speculator::Draft Speculator::lookup_draft(int32_t k) const {
  Draft draft;
  const int64_t m = int64_t(history_.size());
  for (int64_t n = std::min<int64_t>(options_.lookup_ngram, m - 1); n >= 1; --n) {
    const auto suffix = history_.end() - n;
    for (int64_t start = m - n - 1; start >= 0; --start) {
      if (!std::equal(suffix, history_.end(), history_.begin() + start)) continue;
      const int64_t from = start + n, to = std::min(m, from + k);
      draft.tokens.assign(history_.begin() + from, history_.begin() + to);
      draft.distributions.resize(draft.tokens.size());  // certain: q is one-hot
      return draft;
    }
  }
  return draft;
}

Speculator::Draft Speculator::model_draft(const Sampler& sampler, int32_t k) {
  Session& session = *draft_session_;
  const int32_t position = int32_t(history_.size()) - 1;
  k = std::min(k, session.n_ctx() - position);  // drafts are evaluated up to position + k - 1
  if (k <= 0) return {};
  const std::vector<TokenId>& cached = session.cached_tokens();
  size_t reuse = std::mismatch(cached.begin(), cached.end(), history_.begin(), history_.end()).first - cached.begin();
  reuse = size_t(session.reusable_prefix(int32_t(std::min(reuse, history_.size() - 1))));
  auto start = Clock::now();
  const size_t catch_up = history_.size() - reuse;  // mostly 1, 2 after all drafts were accepted
  std::span<const float> logits = session.eval(std::span(history_).subspan(reuse), int32_t(reuse));
  // A draft token's cost, timed over single-token evaluations (and their choices) only: the
  // first evaluation counts when it caught up a token or two, not a cooldown's worth.
  int32_t n_timed = 1;
  if (catch_up > 2) {
    start = Clock::now();
    n_timed = 0;
  }

  // The draft chooses as the target's sampler would (same penalties, same chain), so that it
  // agrees as often as it can; sampled drafts draw from the Speculator's own generator.
  Sampler draft_sampler = sampler;
  const bool greedy = sampler.params().temperature <= 0.0f;
  Draft draft;
  for (int32_t j = 0; j < k; ++j) {
    if (options_.draft_p_min > 0.0f && top_probability(logits) < options_.draft_p_min) break;
    TokenId token;
    std::vector<TokenCandidate> q;
    if (greedy) {
      token = draft_sampler.sample(logits);
    } else {
      q = draft_sampler.distribution(logits);
      // Tokens a cut head excludes come last with probability 0: absent from q means q = 0.
      while (q.size() > 1 && q.back().prob == 0.0f) q.pop_back();
      token = pick_from_distribution(q, double(draft_rng_() >> 11) * 0x1p-53);
    }
    draft_sampler.accept(token);
    draft.tokens.push_back(token);
    draft.distributions.push_back(std::move(q));
    if (j + 1 < k) {
      logits = session.eval(std::span<const TokenId>(&token, 1));
      ++n_timed;
    }
  }
  if (timed_ && n_timed > 0 && !draft.tokens.empty())
    smooth_into(draft_token_seconds_, seconds_since(start) / double(n_timed));
  // Declined (below draft_p_min): a draft token's time for nothing, as a rejected first draft
  // costs; counted as one, or a draft that is never sure would be asked again after every token.
  if (draft.tokens.empty()) adapt_k(1, 0);
  return draft;
}

}  // namespace slm
