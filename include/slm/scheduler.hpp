// Continuous batching: many generation requests share one BatchDecoder.
//
// A step of the scheduler's loop evaluates one decode token of every running request, then
// fills the rest of a token budget with chunks of waiting prompts, oldest first (chunked
// prefill), so a long prompt never freezes the other streams. A step ends with the first
// prompt it completes (once it holds 64 rows), so prompts arriving together get their first
// tokens one after another, not all at the end of one long step (lib/server/step_plan.hpp). At most `parallel` requests generate at once; the
// rest wait in a FIFO queue of at most `queue`; past that, submit() refuses.
//
// Each request samples with its own Sampler (its own seed), and a sequence's logits do not
// depend on the others in its batch, so a request's output is the same whatever else the
// scheduler is doing.
//
// A finished request's sequence stays cached; a new request forks the longest prefix it
// shares with any cached or running sequence (prefix reuse). Cached sequences are dropped,
// least recently used first, when their blocks are needed.
//
// Speculative decoding (slm/speculative.hpp), with a draft model or prompt lookup, applies per
// sequence: a generating request's drafts ride in the step's batch as rows after its token, and
// the rows its sequence then holds past the accepted drafts are truncated. Only greedy requests
// without a grammar draft (a sampled request's output for its seed would depend on whether its
// tokens were drafted, which depends on the load), so the output is byte-identical with or
// without speculation, and whatever else runs. Drafting stops while more than
// speculation_max_running requests run: their tokens already fill the batch's rows.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "slm/batch.hpp"
#include "slm/confidence.hpp"
#include "slm/grammar.hpp"
#include "slm/sampler.hpp"
#include "slm/speculative.hpp"

namespace slm {

struct SchedulerOptions {
  int32_t parallel = 4;        // requests generating at once
  int32_t queue = 64;          // requests waiting beyond those
  int32_t batch_tokens = 512;  // tokens per step at most: decode tokens first, then prefill chunks
  BatchDecoderOptions decoder; // n_ctx per sequence, kv_tokens of the shared pool, threads, KV type
  // Speculative decoding: on with a draft model (same vocabulary) or speculative.lookup_ngram > 0.
  std::shared_ptr<const Model> draft_model;
  SpeculativeOptions speculative;
  int32_t speculation_max_running = 1;  // requests running at most for drafting (measured: README)
  // Called on the scheduler's thread before each step: a test holds the loop with it to fill
  // the queue without a race against requests finishing.
  std::function<void()> before_step;
};

struct GenerationRequest {
  std::vector<TokenId> prompt;         // at least one token, at most n_ctx - 1
  SamplerParams sampling;
  int32_t max_tokens = 256;            // >= 1; generation also ends when the sequence reaches n_ctx
  std::vector<std::string> stop;       // stop strings: the text ends right before the first one
  bool stop_at_end_of_generation = true;
  int32_t top_logprobs = -1;           // -1: no logprobs; 0..20: the sampled token's and this many more
  // Constrained decoding (slm/grammar.hpp): each token is sampled from those the grammar allows,
  // the end of generation only where it may end; a completed grammar finishes with Stop.
  std::optional<Grammar> grammar;
};

// A token's log-probability under the model (log-softmax of its logits).
struct TokenLogprob {
  TokenId token = 0;
  float logprob = 0;
};

// One generated token and the text it completes (whole UTF-8 characters; text that may start
// a stop string is held back until it is known not to).
struct GeneratedToken {
  TokenId token = 0;
  std::string text;
  TokenLogprob sampled;              // with logprobs
  std::vector<TokenLogprob> top;     // with top_logprobs > 0: the most likely tokens, best first
};

enum class FinishReason { Stop, Length, Cancelled, Error };
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length", "cancelled", "error"

struct GenerationSummary {
  FinishReason finish = FinishReason::Stop;
  std::string error;                 // FinishReason::Error: what went wrong
  std::string text_tail;             // text held back until the end (it belongs after the last token's)
  int32_t prompt_tokens = 0;
  int32_t cached_tokens = 0;         // of the prompt, reused from the cache
  int32_t completion_tokens = 0;     // generated tokens, an end-of-generation token included
  double queue_seconds = 0;          // submitted -> first step
  double time_to_first_token = 0;    // submitted -> first token
  double generation_seconds = 0;     // first token -> last
  Confidence confidence;             // of every sampled token, as generate() reports it (slm/confidence.hpp)
  SpeculationStats speculation;      // drafted and accepted tokens (zero without speculation)
};

// What a request reports, in order: tokens, then exactly one summary.
struct StreamEvent {
  std::optional<GeneratedToken> token;
  std::optional<GenerationSummary> done;
};

// The consumer's end of a request: a thread-safe queue that the scheduler fills.
class RequestStream {
 public:
  // Waits up to `timeout` for the next event; false when none came.
  bool next(StreamEvent& event, std::chrono::milliseconds timeout);
  // Asks the scheduler to stop the request; it frees the sequence within one step and ends
  // the stream with FinishReason::Cancelled.
  void cancel();
  bool cancelled() const;

  // The scheduler's side.
  void push(StreamEvent event);

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<StreamEvent> events_;
  bool cancelled_ = false;
};

struct SchedulerStats {
  int32_t queued = 0;              // waiting for a slot
  int32_t running = 0;             // generating or prefilling
  int32_t kv_blocks_used = 0;
  int32_t kv_blocks_total = 0;
  int32_t cached_sequences = 0;    // finished, kept for prefix reuse
  uint64_t state_bytes_per_sequence = 0;  // hybrid models: one sequence's recurrent state
  uint64_t state_bytes = 0;        // hybrid models: every sequence's state and checkpoints
  uint64_t prompt_tokens = 0;      // totals since start
  uint64_t cached_prompt_tokens = 0;
  uint64_t generated_tokens = 0;
  uint64_t draft_tokens = 0;       // speculative decoding: drafted, and of those accepted (finished requests)
  uint64_t draft_accepted_tokens = 0;
  uint64_t steps = 0;
};

struct SchedulerState;  // lib/server/scheduler_state.hpp

class Scheduler {
 public:
  // Starts the loop thread. Throws slm::Error for invalid options.
  Scheduler(std::shared_ptr<const Model> model, SchedulerOptions options);
  // Cancels whatever is still queued or running and joins the loop.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request. nullptr when the queue is full. Throws slm::Error for a request that can
  // never run (no prompt, a prompt of n_ctx tokens or more, a token outside the vocabulary,
  // max_tokens < 1, top_logprobs > 20).
  std::shared_ptr<RequestStream> submit(GenerationRequest request);

  // Stops taking requests; running and queued ones finish (drain) or are cancelled.
  void shutdown(bool drain);
  // False once shutdown() was called: why submit() refuses, besides a full queue.
  bool accepting() const;
  SchedulerStats stats() const;

  int32_t n_ctx() const;
  const Model& model() const;

 private:
  std::unique_ptr<SchedulerState> state_;
};

}  // namespace slm
