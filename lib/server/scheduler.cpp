// The continuous-batching loop (include/slm/scheduler.hpp).
//
// A request's context is its prompt followed by its generated tokens; the last generated
// token is sampled but not yet evaluated. Each step evaluates, for every running request,
// the part of its context its sequence does not hold yet: one token when it is generating,
// a chunk of the prompt when it is prefilling. A request generates exactly as generate()
// does: every prompt token is accepted into its sampler, then sample, accept, evaluate.
//
// KV blocks are taken as sequences grow, never reserved. When a generating request needs a
// block and none is free, cached sequences are dropped (least recently used first), then the
// most recently admitted running request is preempted: its sequence is dropped and it goes
// back to the front of the queue with its sampler and generated tokens, to be evaluated
// again later. Evaluation is batch-invariant, so a preempted request's output is the same.
//
// Speculation: a generating greedy request's drafts follow its last token in the step's rows,
// each row with logits. Its tokens are then picked row by row while the target agrees with the
// drafts, the sequence is truncated after the last agreeing draft, and the tokens are emitted.
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <thread>

#include "lib/ops/thread_pool.hpp"
#include "lib/server/scheduler_state.hpp"
#include "lib/server/step_plan.hpp"
#include "slm/error.hpp"

namespace slm {
namespace {

size_t common_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  return size_t(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
}

// log-softmax of one token, and the best `n` tokens (highest logit first, lowest id on ties).
void fill_logprobs(std::span<const float> logits, TokenId sampled, int32_t n, GeneratedToken& out) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l) - max_logit);
  const double log_sum = std::log(sum) + max_logit;
  out.sampled = {sampled, float(double(logits[size_t(sampled)]) - log_sum)};
  std::vector<TokenId> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = TokenId(i);
  const auto better = [&](TokenId a, TokenId b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  };
  const size_t k = std::min(ids.size(), size_t(n));
  std::partial_sort(ids.begin(), ids.begin() + long(k), ids.end(), better);
  for (size_t i = 0; i < k; ++i) out.top.push_back({ids[i], float(double(logits[size_t(ids[i])]) - log_sum)});
}

}  // namespace

void SchedulerState::publish_stats() {
  std::lock_guard lock(mutex);
  stats.queued = int32_t(queue.size());
  stats.running = int32_t(running.size());
  stats.kv_blocks_total = decoder.n_blocks();
  stats.kv_blocks_used = decoder.n_blocks() - decoder.n_free_blocks();
  stats.cached_sequences = int32_t(cached.size());
  stats.state_bytes_per_sequence = decoder.state_bytes_per_sequence();
  stats.state_bytes = decoder.state_bytes();
}

void SchedulerState::finish(ActiveRequest& r, FinishReason reason, std::string error) {
  GenerationSummary summary;
  summary.finish = reason;
  summary.error = std::move(error);
  if (reason != FinishReason::Cancelled && reason != FinishReason::Error) {
    bool stopped = false;
    summary.text_tail = r.stop_filter.push(r.utf8.flush(), stopped);
    if (!stopped) summary.text_tail += r.stop_filter.pending;
  }
  summary.prompt_tokens = int32_t(r.request.prompt.size());
  summary.cached_tokens = std::max(0, r.cached_tokens);
  summary.completion_tokens = r.n_generated;
  summary.confidence = r.confidence.summary();
  if (r.speculator) summary.speculation = r.speculator->stats();
  {
    std::lock_guard lock(mutex);
    --in_flight;
    stats.prompt_tokens += uint64_t(summary.prompt_tokens);
    stats.cached_prompt_tokens += uint64_t(summary.cached_tokens);
    stats.draft_tokens += uint64_t(summary.speculation.drafted);
    stats.draft_accepted_tokens += uint64_t(summary.speculation.accepted);
  }
  const Clock::time_point now = Clock::now();
  if (r.started) summary.queue_seconds = seconds_between(r.submitted, r.first_step);
  if (r.n_generated > 0) {
    summary.time_to_first_token = seconds_between(r.submitted, r.first_token);
    summary.generation_seconds = seconds_between(r.first_token, now);
  }
  if (r.sequence >= 0 && reason == FinishReason::Cancelled) {  // its blocks are freed at once
    decoder.remove_sequence(r.sequence);
    r.sequence = -1;
  }
  if (r.sequence >= 0) {  // kept for prefix reuse
    cached.push_back({r.sequence, ++clock});
    r.sequence = -1;
    if (cached.size() > kMaxCachedSequences) drop_oldest_cached();
  }
  {
    // The running gauge drops before the client hears the end: a client that reads /metrics right
    // after its last answer must not still see its request running (publish_stats would only catch
    // up at the end of the step). Running requests are the ones that still hold a sequence.
    std::lock_guard lock(mutex);
    stats.running = int32_t(std::count_if(running.begin(), running.end(),
                                          [](const auto& other) { return other && other->sequence >= 0; }));
  }
  r.stream->push({std::nullopt, std::move(summary)});
}

// Drops the least recently used cached sequence (its blocks no other sequence shares are freed).
void SchedulerState::drop_oldest_cached() {
  const auto oldest = std::min_element(cached.begin(), cached.end(),
                                       [](const auto& a, const auto& b) { return a.last_used < b.last_used; });
  decoder.remove_sequence(oldest->sequence);
  cached.erase(oldest);
}

void SchedulerState::preempt(ActiveRequest& r) {
  decoder.remove_sequence(r.sequence);
  r.sequence = -1;
}

// Makes `needed` blocks free: drops cached sequences, then (with `may_preempt`) preempts running
// requests that are not in this step's batch, newest first. False when that is not enough.
bool SchedulerState::free_blocks_for(int32_t needed, const std::vector<Planned>& planned, const ActiveRequest* asking,
                                     bool may_preempt) {
  while (decoder.n_free_blocks() < needed && !cached.empty()) drop_oldest_cached();
  while (may_preempt && decoder.n_free_blocks() < needed) {
    ActiveRequest* victim = nullptr;
    for (auto it = running.rbegin(); it != running.rend() && !victim; ++it) {
      ActiveRequest* r = it->get();
      const bool in_batch = std::any_of(planned.begin(), planned.end(), [&](const Planned& p) { return p.request == r; });
      if (r != asking && r->sequence >= 0 && !in_batch) victim = r;
    }
    if (!victim) return false;
    preempt(*victim);
  }
  return true;
}

// Moves queued requests into the running set while there is a slot and KV room. A request
// forks the longest prefix of its context that any cached or running sequence holds, and is
// admitted when the blocks for the rest of its context (and one token more) are free once
// cached sequences are dropped; a request alone is always admitted (the pool holds a context).
void SchedulerState::admit() {
  while (int32_t(running.size()) < options.parallel) {
    std::unique_ptr<ActiveRequest> r;
    {
      std::lock_guard lock(mutex);
      if (queue.empty()) return;
      r = std::move(queue.front());
      queue.pop_front();
    }
    SequenceId best = -1;
    size_t best_length = 0;
    // At least one token is evaluated, for the logits of the last one; a hybrid model's sequence
    // is reused up to its latest state checkpoint inside the common prefix.
    const auto consider = [&](SequenceId id) {
      const size_t common = std::min(common_prefix(decoder.tokens(id), r->context), r->context.size() - 1);
      const size_t n = size_t(decoder.reusable_prefix(id, int32_t(common)));
      if (n > best_length) best = id, best_length = n;
    };
    for (const CachedSequence& c : cached) consider(c.sequence);
    for (const auto& other : running) consider(other->sequence);
    r->sequence = best >= 0 && best_length > 0 ? decoder.fork_sequence(best, int32_t(best_length)) : decoder.add_sequence();
    const int32_t needed = decoder.blocks_needed(r->sequence, int32_t(r->context.size()) + 1);
    if (!free_blocks_for(needed, {}, nullptr, /*preempt=*/false) && !running.empty()) {
      decoder.remove_sequence(r->sequence);  // waits, first in line
      r->sequence = -1;
      std::lock_guard lock(mutex);
      queue.push_front(std::move(r));
      return;
    }
    for (CachedSequence& c : cached)
      if (c.sequence == best) c.last_used = ++clock;
    if (r->cached_tokens < 0) r->cached_tokens = int32_t(best_length);
    if (!r->started) r->first_step = Clock::now(), r->started = true;
    running.push_back(std::move(r));
  }
}

// `confidence` is the token's, computed from `logits` in the parallel sampling loop.
void SchedulerState::emit_token(ActiveRequest& r, TokenId token, const TokenConfidence& confidence,
                                std::span<const float> logits) {
  if (r.grammar && !r.grammar->accept_token(token))  // sample_with_grammar() picks allowed tokens only
    return finish(r, FinishReason::Error, "grammar: the sampled token does not continue the grammar");
  GeneratedToken out;
  out.token = token;
  r.confidence.add(confidence);
  if (r.request.top_logprobs >= 0) fill_logprobs(logits, token, r.request.top_logprobs, out);
  r.sampler.accept(token);
  if (r.n_generated++ == 0) r.first_token = Clock::now();
  r.context.push_back(token);
  {
    std::lock_guard lock(mutex);
    ++stats.generated_tokens;
  }
  const int32_t n_evaluated = int32_t(r.context.size()) - 1;
  if (r.request.stop_at_end_of_generation && tokenizer.is_end_of_generation(token)) {
    r.stream->push({std::move(out), std::nullopt});
    return finish(r, FinishReason::Stop);
  }
  bool stopped = false;
  out.text = r.stop_filter.push(r.utf8.push(tokenizer.token_to_piece(token)), stopped);
  r.stream->push({std::move(out), std::nullopt});
  if (stopped) return finish(r, FinishReason::Stop);
  if (r.grammar && r.grammar->is_complete()) return finish(r, FinishReason::Stop);  // nothing more may follow
  if (r.n_generated >= r.request.max_tokens || n_evaluated >= decoder.n_ctx()) finish(r, FinishReason::Length);
}

bool SchedulerState::step() {
  // Cancelled requests leave first, queued or running.
  std::vector<std::unique_ptr<ActiveRequest>> cancelled;
  {
    std::lock_guard lock(mutex);
    for (auto it = queue.begin(); it != queue.end();)
      if ((*it)->stream->cancelled()) {
        cancelled.push_back(std::move(*it));
        it = queue.erase(it);
      } else {
        ++it;
      }
  }
  for (auto& r : cancelled) finish(*r, FinishReason::Cancelled);
  for (auto& r : running)
    if (r->stream->cancelled()) {
      finish(*r, FinishReason::Cancelled);
      r.reset();
    }
  std::erase(running, nullptr);
  admit();
  if (running.empty()) return false;

  // Generating requests first (one token each), then prompt chunks, oldest first
  // (lib/server/step_plan.hpp); each chunk then gets its KV blocks, in that order.
  std::vector<int32_t> remaining_tokens;
  for (const auto& r : running) {
    const int32_t held = r->sequence < 0 ? 0 : int32_t(decoder.tokens(r->sequence).size());
    remaining_tokens.push_back(r->sequence < 0 ? 0 : int32_t(r->context.size()) - held);
  }
  std::vector<Planned> planned;
  int32_t reserved = 0;  // blocks the requests planned so far will take from the free ones
  const bool speculating = int32_t(running.size()) <= options.speculation_max_running;
  for (const server::PlannedChunk& chunk : server::plan_step_rows(remaining_tokens, options.batch_tokens)) {
    ActiveRequest& r = *running[chunk.request];
    if (r.sequence < 0) continue;  // preempted in this step
    const int32_t held = int32_t(decoder.tokens(r.sequence).size());
    const int32_t remaining = int32_t(r.context.size()) - held;
    const bool generating = remaining == 1;
    int32_t n_rows = chunk.n_rows;
    std::vector<TokenId> drafts;
    if (generating && speculating && may_speculate(r)) drafts = propose_drafts(r);
    if (!drafts.empty()) {
      const int32_t with_drafts = decoder.blocks_needed(r.sequence, held + 1 + int32_t(drafts.size()));
      if (with_drafts + reserved <= decoder.n_free_blocks() ||
          free_blocks_for(with_drafts + reserved, planned, &r, /*may_preempt=*/false)) {
        n_rows += int32_t(drafts.size());
      } else {  // drafts never take a running request's blocks
        r.speculator->discard_drafts();
        drafts.clear();
      }
    }
    int32_t needed = decoder.blocks_needed(r.sequence, held + n_rows);
    if (needed + reserved > decoder.n_free_blocks() && !free_blocks_for(needed + reserved, planned, &r, true)) {
      if (generating) continue;  // waits for a block
      // A prompt chunk shrinks to the blocks there are.
      const int32_t room = (held + kKvBlockTokens - 1) / kKvBlockTokens * kKvBlockTokens - held +
                           (decoder.n_free_blocks() - reserved) * kKvBlockTokens;
      n_rows = std::min(n_rows, room);
      if (n_rows < 1) continue;
      needed = decoder.blocks_needed(r.sequence, held + n_rows);
      if (needed + reserved > decoder.n_free_blocks()) continue;
    }
    if (r.sequence < 0) continue;
    reserved += needed;
    planned.push_back({&r, n_rows, generating || n_rows == remaining, std::move(drafts)});
  }
  // A request preempted after it was planned cannot be: only unplanned ones are preempted.
  // Requests preempted this step go back to the front of the queue, oldest first.
  {
    std::lock_guard lock(mutex);
    for (auto it = running.rbegin(); it != running.rend(); ++it)
      if ((*it)->sequence < 0) queue.push_front(std::move(*it));
  }
  std::erase(running, nullptr);
  if (planned.empty()) {
    // Nothing fits: every block is held by requests that all wait for one. Cannot happen while
    // the pool holds a whole context (checked at construction), but never spin.
    if (!running.empty()) {
      ActiveRequest& newest = *running.back();
      finish(newest, FinishReason::Error, "the KV pool is too small for this request");
      running.pop_back();
    }
    return true;
  }

  std::vector<BatchRow> rows;
  for (const Planned& p : planned) {
    const int32_t held = int32_t(decoder.tokens(p.request->sequence).size());
    if (!p.drafts.empty()) {
      rows.push_back({p.request->sequence, held, p.request->context[size_t(held)], true});
      for (size_t i = 0; i < p.drafts.size(); ++i)
        rows.push_back({p.request->sequence, held + 1 + int32_t(i), p.drafts[i], true});
      continue;
    }
    for (int32_t i = 0; i < p.n_rows; ++i)
      rows.push_back({p.request->sequence, held + i, p.request->context[size_t(held + i)],
                      p.wants_logits && i + 1 == p.n_rows});
  }
  std::span<const float> logits;
  try {
    logits = decoder.decode(rows);
  } catch (const std::exception& e) {  // a bug, not bad input: fail these requests, keep serving
    for (const Planned& p : planned) {
      finish(*p.request, FinishReason::Error, e.what());
      for (auto& r : running)
        if (r.get() == p.request) r.reset();
    }
    std::erase(running, nullptr);
    return true;
  }
  {
    std::lock_guard lock(mutex);
    ++stats.steps;
  }

  // Sample every request that got logits, in parallel: each has its own sampler and grammar
  // matcher, so each sequence gets its own mask. The token's confidence (a pass over its row)
  // is computed there too; the emit step, which runs serially, only adds it up.
  // Verifications (several rows each) are picked afterwards, one request at a time.
  const size_t n_vocab = size_t(decoder.model().config().n_vocab);
  std::vector<ActiveRequest*> sampling;
  std::vector<size_t> sampling_rows;  // each one's logits row
  std::vector<std::pair<const Planned*, size_t>> verifying;
  size_t logit_row = 0;
  for (const Planned& p : planned) {
    if (!p.drafts.empty()) verifying.push_back({&p, logit_row});
    else if (p.wants_logits) sampling.push_back(p.request), sampling_rows.push_back(logit_row);
    logit_row += p.drafts.empty() ? (p.wants_logits ? 1 : 0) : 1 + p.drafts.size();
  }
  std::vector<TokenId> sampled(sampling.size());
  std::vector<TokenConfidence> confidences(sampling.size());
  std::vector<std::string> sampling_errors(sampling.size());
  ops::parallel_for(int64_t(sampling.size()), 1, decoder.n_threads(), [&](int64_t i, int64_t, int) {
    ActiveRequest& r = *sampling[size_t(i)];
    const std::span<const float> row = logits.subspan(sampling_rows[size_t(i)] * n_vocab, n_vocab);
    try {  // nothing may escape a worker thread
      sampled[size_t(i)] = r.grammar ? sample_with_grammar(r.sampler, row, *r.grammar, r.mask, r.masked_logits)
                                     : r.sampler.sample(row);
      confidences[size_t(i)] = token_confidence(row, sampled[size_t(i)]);
    } catch (const std::exception& e) {
      sampling_errors[size_t(i)] = e.what();
    }
  });
  for (size_t i = 0; i < sampling.size(); ++i) {
    ActiveRequest& r = *sampling[i];
    if (!sampling_errors[i].empty()) {
      finish(r, FinishReason::Error, sampling_errors[i]);
      continue;
    }
    emit_token(r, sampled[i], confidences[i], logits.subspan(sampling_rows[i] * n_vocab, n_vocab));
    if (r.speculator) r.speculator->emitted(sampled[i]);  // keeps its history; no drafts this step
  }
  for (const auto& [p, first_row] : verifying) emit_verified(*p->request, *p, logits.subspan(first_row * n_vocab));
  // Finished requests have handed their sequence to the cache.
  std::erase_if(running, [](const auto& r) { return r->sequence < 0; });
  return true;
}

void SchedulerState::run() {
  while (true) {
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [&] { return stopping || !queue.empty() || !running.empty(); });
      if (stopping && !drain) break;
      if (stopping && queue.empty() && running.empty()) break;
    }
    if (options.before_step) options.before_step();
    step();
    publish_stats();
  }
  // Whatever is left is cancelled.
  std::deque<std::unique_ptr<ActiveRequest>> left;
  {
    std::lock_guard lock(mutex);
    left.swap(queue);
  }
  for (auto& r : running) finish(*r, FinishReason::Cancelled);
  for (auto& r : left) finish(*r, FinishReason::Cancelled);
  running.clear();
  publish_stats();
}

Scheduler::Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options) {
  if (options.parallel < 1) throw Error(fmt::format("--parallel {} must be at least 1", options.parallel));
  if (options.queue < 0) throw Error(fmt::format("--queue {} must not be negative", options.queue));
  if (options.batch_tokens < 1) throw Error(fmt::format("--batch-tokens {} must be at least 1", options.batch_tokens));
  options.decoder.max_batch_rows = std::max(options.decoder.max_batch_rows, options.batch_tokens);
  if (options.speculation_max_running < 0)
    throw Error(fmt::format("--draft-max-running {} must not be negative", options.speculation_max_running));
  check_speculative_options(options.speculative, *model, options.draft_model.get());
  state_ = std::make_unique<SchedulerState>(std::move(model), options);
  if (int64_t(state_->decoder.n_blocks()) * kKvBlockTokens < state_->decoder.n_ctx())
    throw Error(fmt::format("the KV pool of {} positions is smaller than one context of {}",
                            int64_t(state_->decoder.n_blocks()) * kKvBlockTokens, state_->decoder.n_ctx()));
  state_->publish_stats();
  state_->loop = std::thread([s = state_.get()] { s->run(); });
}

Scheduler::~Scheduler() {
  shutdown(false);
  if (state_->loop.joinable()) state_->loop.join();
}

std::shared_ptr<RequestStream> Scheduler::submit(GenerationRequest request) {
  const ModelConfig& c = state_->decoder.model().config();
  if (request.prompt.empty()) throw Error("the prompt has no tokens");
  if (int64_t(request.prompt.size()) >= state_->decoder.n_ctx())
    throw Error(fmt::format("the prompt has {} tokens; the context holds {}, and at least one must be left to generate",
                            request.prompt.size(), state_->decoder.n_ctx()));
  for (TokenId t : request.prompt)
    if (t < 0 || t >= c.n_vocab) throw Error(fmt::format("token id {} is outside the vocabulary (0..{})", t, c.n_vocab - 1));
  if (request.max_tokens < 1) throw Error(fmt::format("max_tokens {} must be at least 1", request.max_tokens));
  if (request.top_logprobs > kMaxTopLogprobs)
    throw Error(fmt::format("top_logprobs {} is more than {}", request.top_logprobs, kMaxTopLogprobs));
  auto stream = std::make_shared<RequestStream>();
  auto active = std::make_unique<ActiveRequest>(stream, std::move(request));  // validates the sampler
  if (active->request.grammar)
    active->grammar.emplace(*active->request.grammar, state_->vocabulary_for_grammars());
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->accepting) return nullptr;
    if (state_->in_flight >= state_->options.queue + state_->options.parallel) return nullptr;
    ++state_->in_flight;
    state_->queue.push_back(std::move(active));
    state_->stats.queued = int32_t(state_->queue.size());
  }
  state_->wake.notify_one();
  return stream;
}

void Scheduler::shutdown(bool drain) {
  {
    std::lock_guard lock(state_->mutex);
    state_->accepting = false;
    state_->stopping = true;
    state_->drain = drain;
  }
  state_->wake.notify_one();
}

bool Scheduler::accepting() const {
  std::lock_guard lock(state_->mutex);
  return state_->accepting;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

int32_t Scheduler::n_ctx() const { return state_->decoder.n_ctx(); }
const Model& Scheduler::model() const { return state_->decoder.model(); }

}  // namespace slm
