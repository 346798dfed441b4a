// The continuous-batching scheduler's state (include/slm/scheduler.hpp): the requests it runs and
// the loop's own bookkeeping. Shared by the loop (scheduler.cpp) and its speculation steps
// (scheduler_speculation.cpp); internal to lib/server.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "lib/stop_strings.hpp"
#include "slm/scheduler.hpp"

namespace slm {

using Clock = std::chrono::steady_clock;
inline constexpr int32_t kMaxTopLogprobs = 20;
inline constexpr size_t kMaxCachedSequences = 64;  // bounds the prefix search

inline double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct ActiveRequest {
  std::shared_ptr<RequestStream> stream;
  GenerationRequest request;
  Sampler sampler;
  std::vector<TokenId> context;   // prompt + generated tokens
  int32_t n_generated = 0;
  SequenceId sequence = -1;       // -1: none yet (queued, or preempted)
  int32_t cached_tokens = -1;     // of the prompt, reused at first admission
  Utf8StreamDecoder utf8;
  StopStringFilter stop_filter;
  Clock::time_point submitted, first_step, first_token;
  bool started = false;
  ConfidenceMeter confidence;
  std::optional<GrammarMatcher> grammar;  // with request.grammar; its state survives preemption
  TokenMask mask;                         // the grammar's buffers, reused every step
  std::vector<float> masked_logits;
  std::unique_ptr<Speculator> speculator;  // created when the request first drafts

  ActiveRequest(std::shared_ptr<RequestStream> s, GenerationRequest r)
      : stream(std::move(s)), request(std::move(r)), sampler(request.sampling), context(request.prompt),
        stop_filter{request.stop, {}}, submitted(Clock::now()) {
    for (TokenId t : request.prompt) sampler.accept(t);
  }
};

struct CachedSequence {
  SequenceId sequence;
  uint64_t last_used;
};

// One request's rows in this step's batch: n_rows of its context, or its last token and drafts.
struct Planned {
  ActiveRequest* request;
  int32_t n_rows;
  bool wants_logits;
  std::vector<TokenId> drafts;  // each row wants logits
};


struct SchedulerState {
  SchedulerOptions options;
  BatchDecoder decoder;
  const Tokenizer& tokenizer;

  mutable std::mutex mutex;  // guards queue, accepting, stopping, drain and stats
  std::condition_variable wake;
  std::deque<std::unique_ptr<ActiveRequest>> queue;
  bool accepting = true, stopping = false, drain = false;
  int32_t in_flight = 0;  // submitted and not finished: the capacity check counts these
  SchedulerStats stats;

  // The loop thread's own.
  std::vector<std::unique_ptr<ActiveRequest>> running;  // in admission order
  std::vector<CachedSequence> cached;
  uint64_t clock = 0;
  std::thread loop;

  // Every token's bytes for grammar masks: built by the first request with a grammar, then shared.
  std::mutex grammar_vocabulary_mutex;
  std::shared_ptr<const GrammarVocabulary> grammar_vocabulary;

  SchedulerState(std::shared_ptr<const Model> model, const SchedulerOptions& o)
      : options(o), decoder(std::move(model), o.decoder), tokenizer(decoder.model().tokenizer()) {}

  std::shared_ptr<const GrammarVocabulary> vocabulary_for_grammars() {
    std::lock_guard lock(grammar_vocabulary_mutex);
    if (!grammar_vocabulary) grammar_vocabulary = make_grammar_vocabulary(tokenizer);
    return grammar_vocabulary;
  }

  void run();
  bool step();
  void admit();
  void finish(ActiveRequest& r, FinishReason reason, std::string error = {});
  bool free_blocks_for(int32_t needed, const std::vector<Planned>& planned, const ActiveRequest* asking, bool may_preempt);
  void preempt(ActiveRequest& r);
  void drop_oldest_cached();
  void emit_token(ActiveRequest& r, TokenId token, const TokenConfidence& confidence, std::span<const float> logits);
  bool may_speculate(const ActiveRequest& r) const;
  std::vector<TokenId> propose_drafts(ActiveRequest& r);
  void emit_verified(ActiveRequest& r, const Planned& p, std::span<const float> rows);
  void publish_stats();
};

}  // namespace slm
