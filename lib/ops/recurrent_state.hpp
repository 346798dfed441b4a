// Recurrent state: what a recurrent layer (a short convolution, a delta-rule linear attention)
// carries from one token to the next, in place of a KV cache that grows with the context.
//
// How an architecture declares and uses its state
//   1. Its read_config marks the recurrent layers from the file's metadata:
//      ModelConfig::recurrent_layers[layer] = true (lfm2: head_count_kv[layer] == 0). Only the
//      other layers get KV rows in the pool, under index config.kv_layer(layer).
//   2. Its ArchSpec::recurrent_state_floats(config, layer) says how many floats a recurrent layer
//      keeps per sequence, e.g. lfm2's short conv (L_cache - 1) x n_embd, or a delta-rule layer's
//      heads x d_k x d_v plus its own conv's (K - 1) x channels. Its layout inside is the
//      architecture's business; it starts at zero for a new sequence.
//   3. Its forward function finds a sequence's state through the span of its rows:
//      span.state + batch.state_layout->layer_offset[layer] is the layer's state at position
//      span.pos0. The forward pass consumes the span's rows in order and leaves the state at
//      position pos0 + n_rows (a sequence may straddle two forward passes: the second goes on
//      from where the first stopped).
// Everything else is the BatchDecoder's (lib/model/batch_decoder.cpp), the same for every
// architecture: zero state for a new sequence, a copy on fork, checkpoints (snapshots at chosen
// positions), and rolling back: a decode that starts before a sequence's end (truncate, a
// shorter fork, rejected speculative drafts) restores the latest checkpoint at or before its
// first position and first re-evaluates the held tokens from there, so that the state is always
// exactly what evaluating the tokens from position 0 would give.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace slm::ops {

// Where each layer's state lives in a sequence's state block.
struct RecurrentStateLayout {
  std::vector<int64_t> layer_offset;  // per layer: first float of its state, -1 for a layer without
  int64_t floats_per_sequence = 0;    // 0: the model has no recurrent layer
  bool empty() const { return floats_per_sequence == 0; }
  uint64_t bytes_per_sequence() const { return uint64_t(floats_per_sequence) * sizeof(float); }
};

// A snapshot of a sequence's whole state after its first `position` tokens. Immutable, so that
// a fork shares its source's snapshots instead of copying them.
struct StateCheckpoint {
  int32_t position = 0;
  std::shared_ptr<const std::vector<float>> state;
};

// One sequence's state: the current one and its checkpoints.
struct SequenceRecurrentState {
  std::vector<float> current;  // the state after `position` tokens
  int32_t position = 0;        // -1: current is stale (the sequence was cut below it)
  std::vector<StateCheckpoint> checkpoints;  // ascending positions

  // The latest position <= n at which a state is at hand (current or a checkpoint); 0 (the
  // zero state) when there is none.
  int32_t latest_at_or_before(int32_t n) const;
  // Makes current the state at latest_at_or_before(n) and returns that position.
  int32_t restore(int32_t n);
  // Snapshots current (at `position`) unless a checkpoint is there already; past
  // max_checkpoints the one whose loss costs least is dropped (cheapest_to_drop), so that a
  // prompt's end outlives the many short decodes after it (speculative verifications).
  void keep_checkpoint(int32_t max_checkpoints);
  // The index of the checkpoint, never the latest, closest to the one before it (or to position
  // 0): a restore to its position loses least without it. Of equals, the earliest: evenly spaced
  // checkpoints thin out from the start.
  size_t cheapest_to_drop() const;
  // Forgets what lies past position n: checkpoints after it, and current if it is after it.
  void forget_after(int32_t n);
};

}  // namespace slm::ops
