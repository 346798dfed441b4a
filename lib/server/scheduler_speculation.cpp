// The continuous-batching loop's speculation (scheduler.cpp's header says how drafts ride a
// step): which requests draft, their drafts, and the tokens a verification's rows give.
#include <algorithm>
#include <climits>

#include "lib/server/scheduler_state.hpp"

namespace slm {

bool SchedulerState::may_speculate(const ActiveRequest& r) const {
  return (options.draft_model || options.speculative.lookup_ngram > 0) && r.request.sampling.temperature <= 0.0f &&
         !r.grammar;
}

// Drafts to follow a generating request's last token, within its max_tokens and its context.
std::vector<TokenId> SchedulerState::propose_drafts(ActiveRequest& r) {
  if (!r.speculator) {
    const int32_t draft_ctx = std::min(decoder.n_ctx(), options.draft_model ? options.draft_model->config().n_ctx_train : INT32_MAX);
    SessionOptions draft_session{.n_ctx = draft_ctx, .n_threads = decoder.n_threads()};
    r.speculator = std::make_unique<Speculator>(decoder.model(), options.draft_model, options.speculative, draft_session);
    r.speculator->begin(r.context, r.sampler);
  }
  const int32_t position = int32_t(r.context.size()) - 1;  // of the last token
  const int32_t max_drafts =
      std::min(r.request.max_tokens - r.n_generated - 1, decoder.n_ctx() - 1 - position);
  return r.speculator->propose(r.sampler, max_drafts);
}

// A verification's rows: the token each row gives, while the target agrees with the drafts, is
// picked first (on a copy of the sampler), so that the sequence is truncated to the positions
// that stay valid before the tokens are emitted (and a finished request caches only those).
void SchedulerState::emit_verified(ActiveRequest& r, const Planned& p, std::span<const float> rows) {
  const size_t n_vocab = size_t(decoder.model().config().n_vocab);
  Sampler sampler = r.sampler;
  std::vector<TokenId> tokens;
  for (size_t i = 0; i <= p.drafts.size(); ++i) {
    const TokenId token = r.speculator->pick(sampler, rows.subspan(i * n_vocab, n_vocab));
    sampler.accept(token);
    tokens.push_back(token);
    if (i == p.drafts.size() || token != p.drafts[i]) break;
  }
  // Positions of the last token and the agreeing drafts stay: the last picked token is not evaluated.
  decoder.truncate(r.sequence, int32_t(r.context.size()) - 1 + int32_t(tokens.size()));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::span<const float> row = rows.subspan(i * n_vocab, n_vocab);
    emit_token(r, tokens[i], token_confidence(row, tokens[i]), row);
    r.speculator->emitted(tokens[i]);
    if (r.sequence < 0) return;  // finished
  }
}

// One step: plans the batch, evaluates it, samples. False when there was nothing to do.

}  // namespace slm
