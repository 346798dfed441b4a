// Many sequences in one forward pass, over one pool of KV blocks (paged attention).
//
// A BatchDecoder holds a pool of fixed-size KV blocks (kKvBlockTokens positions each) and a
// block table per sequence, so a short sequence holds only the blocks it uses. decode() runs
// one forward pass over rows from any sequences: every matmul sees all rows at once (each
// weight is read once per step), and attention runs per sequence over its own blocks.
//
// A sequence's logits are bit-identical whether it runs alone or beside other sequences, at
// any positions, with any split of its prompt into batches, and at any thread count: every
// output element is reduced in an order fixed by its own sequence alone.
//
// Sequences can share blocks: fork_sequence() gives a new sequence the first positions of
// another without copying them (prefix reuse); a shared block is copied only when one of
// them writes into it.
//
// Hybrid models (lfm2, qwen35) also give each sequence a fixed-size recurrent state, which
// describes its whole past and cannot be cut at an arbitrary position. The decoder keeps
// checkpoints of it: at the start and the end of every decode of more than one row of a
// sequence (a prompt, a turn's end, a speculative verification) and every checkpoint_interval
// positions, at most max_checkpoints per sequence (past it, the one closest to the one before it
// is dropped, so a prompt's end outlives the short decodes after it). A decode that starts before a
// sequence's end, or on a fork, restores the latest state at or before its first position and
// first re-evaluates the held tokens from there: results are those of evaluating from position
// 0, and reusable_prefix() says how much of a prefix is reused without re-evaluation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "slm/model.hpp"
#include "slm/session.hpp"

namespace slm {

using SequenceId = int32_t;

// Positions per KV block.
inline constexpr int32_t kKvBlockTokens = 32;

// One token of a batch: `token` at `position` of `sequence`.
struct BatchRow {
  SequenceId sequence = 0;
  int32_t position = 0;
  TokenId token = 0;
  bool wants_logits = false;
};

struct BatchDecoderOptions {
  int32_t n_ctx = 0;           // positions per sequence at most; 0: min(model's training context, 4096)
  int32_t kv_tokens = 0;       // the pool's positions (rounded up to whole blocks); 0: n_ctx
  int32_t n_threads = 0;       // 0: the number of physical cores
  int32_t max_batch_rows = 512;  // rows per forward pass; a larger batch is split (results are identical)
  KvType kv_type = KvType::F16;
  int32_t checkpoint_interval = 512;  // hybrid models: a state checkpoint every this many positions (0: none)
  int32_t max_checkpoints = 8;        // hybrid models: checkpoints kept per sequence (0: none); see above
  // > 0: a cut output head, for a draft model (slm/speculative.hpp's draft_vocab): only the logits
  // of token ids below this and of the end-of-generation tokens are computed, every other logit is
  // -infinity. 0: the whole head.
  int32_t logit_vocab = 0;
};

struct BatchDecoderState;  // lib/model/batch_state.hpp

class BatchDecoder {
 public:
  // Throws slm::Error for invalid options (n_ctx beyond the model's, a pool smaller than one block).
  BatchDecoder(std::shared_ptr<const Model> model, BatchDecoderOptions options = {});
  ~BatchDecoder();
  BatchDecoder(BatchDecoder&&) noexcept;
  BatchDecoder& operator=(BatchDecoder&&) noexcept;

  // A new, empty sequence.
  SequenceId add_sequence();
  // A new sequence holding the first n_positions of `from` (blocks shared, not copied).
  SequenceId fork_sequence(SequenceId from, int32_t n_positions);
  // Frees a sequence's blocks (those no other sequence shares).
  void remove_sequence(SequenceId sequence);
  // Forgets positions >= n_keep of a sequence.
  void truncate(SequenceId sequence, int32_t n_keep);
  bool has_sequence(SequenceId sequence) const;
  // The tokens whose keys and values a sequence holds, position by position.
  const std::vector<TokenId>& tokens(SequenceId sequence) const;

  // Evaluates the rows. The rows of one sequence must be contiguous, at consecutive positions,
  // the first at most the sequence's length (positions from there on are forgotten first).
  // Returns the logits of the rows with wants_logits, in row order ([n][n_vocab], valid until
  // the next decode). Throws slm::Error, with every sequence left as it was, for an unknown
  // sequence, a bad position or token, a sequence past n_ctx, or too few free blocks.
  std::span<const float> decode(std::span<const BatchRow> rows);

  // Free blocks needed to grow `sequence` to n_positions (0 when it has them already),
  // counting the copy of a shared block it would write into.
  int32_t blocks_needed(SequenceId sequence, int32_t n_positions) const;
  int32_t n_blocks() const;       // the pool's size
  int32_t n_free_blocks() const;  // not held by any sequence

  // The longest prefix of at most n positions of `sequence` that a decode can continue without
  // re-evaluating anything: min(n, its length), or for a hybrid model the latest state (its
  // end or a checkpoint) at or before that. Fork or truncate there to reuse exactly that much.
  int32_t reusable_prefix(SequenceId sequence, int32_t n) const;
  // Hybrid models: one sequence's recurrent state (a checkpoint takes as much), and what every
  // sequence's states and their checkpoints hold now (a checkpoint shared by forks counted once).
  uint64_t state_bytes_per_sequence() const;
  uint64_t state_bytes() const;
  // Rows run through the model since construction, re-evaluated ones included.
  uint64_t rows_evaluated() const;

  int32_t n_ctx() const;
  int32_t n_threads() const;
  int32_t max_batch_rows() const;
  const Model& model() const { return *model_; }
  const std::shared_ptr<const Model>& model_ptr() const { return model_; }

 private:
  std::shared_ptr<const Model> model_;
  std::unique_ptr<BatchDecoderState> state_;
};

}  // namespace slm
