// Speculative decoding: drafting, the rejection rule and adaptive k; see include/slm/speculative.hpp.
#include "slm/speculative.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <unordered_map>

#include "slm/error.hpp"

namespace slm {

namespace {

// Adaptive k starts here (or at draft_max when smaller): a few drafts cost little when they
// fail, and all-accepted rounds double it quickly.
constexpr int32_t kInitialDraftLength = 4;
// Tokens without drafting after adaptive k reached 0; doubled after every failed probe.
constexpr int32_t kInitialCooldown = 8;
constexpr int32_t kMaxCooldown = 64;

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

Speculator::Speculator(const Model& target, std::shared_ptr<const Model> draft_model, SpeculativeOptions options,
                       SessionOptions draft_session_options)
    : options_(options), n_vocab_(target.config().n_vocab) {
  if (options_.draft_max < 0 || options_.draft_min < 0 || options_.draft_min > options_.draft_max)
    throw Error(fmt::format("draft lengths must satisfy 0 <= draft-min ({}) <= draft-max ({})", options_.draft_min,
                            options_.draft_max));
  if (!(options_.draft_p_min >= 0.0f && options_.draft_p_min <= 1.0f))
    throw Error(fmt::format("draft-p-min must be within [0, 1], not {}", options_.draft_p_min));
  if (options_.lookup_ngram < 0) throw Error("lookup-ngram must not be negative");
  if (draft_model) {
    check_draft_vocabulary(target, *draft_model);
    draft_session_ = std::make_unique<Session>(std::move(draft_model), draft_session_options);
  }
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
  k_ = std::min(options_.draft_max, std::max(options_.draft_min, kInitialDraftLength));
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
  if (drafts.empty()) return target.eval(std::span<const TokenId>(&token, 1), position);
  std::vector<TokenId> batch{token};
  batch.insert(batch.end(), drafts.begin(), drafts.end());
  rows_ = target.eval(batch, position, /*all_logits=*/true);
  return rows_.subspan(0, size_t(n_vocab_));
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

// All accepted: double k. A rejection: k follows the accepted run (plus one), and when even one
// draft is too many, drafting pauses for a cooldown that doubles while probes keep failing, so
// that a draft that never agrees costs little more than nothing.
void Speculator::adapt_k(int32_t n_drafted, int32_t n_accepted) {
  if (n_accepted > 0) backoff_ = kInitialCooldown;
  if (n_accepted == n_drafted) {
    k_ = std::min(options_.draft_max, std::max(1, 2 * k_));
    return;
  }
  k_ = std::max(options_.draft_min, std::min(k_ - 1, n_accepted + 1));
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
  std::span<const float> logits = session.eval(std::span(history_).subspan(reuse), int32_t(reuse));

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
      token = pick_from_distribution(q, double(draft_rng_() >> 11) * 0x1p-53);
    }
    draft_sampler.accept(token);
    draft.tokens.push_back(token);
    draft.distributions.push_back(std::move(q));
    if (j + 1 < k) logits = session.eval(std::span<const TokenId>(&token, 1));
  }
  return draft;
}

}  // namespace slm
