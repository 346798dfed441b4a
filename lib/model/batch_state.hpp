// What a BatchDecoder owns: the KV block pool, each sequence's block table and tokens, and
// scratch rows sized for one forward pass, allocated once so the forward pass never allocates.
#pragma once

#include <unordered_map>
#include <vector>

#include "lib/model/scratch_rows.hpp"
#include "lib/ops/kv_pool.hpp"
#include "lib/ops/moe.hpp"
#include "lib/ops/recurrent_state.hpp"
#include "slm/batch.hpp"

namespace slm {

// Scratch for up to n_rows rows: [n_rows][width] each.
struct ForwardScratch {
  int32_t n_rows = 0;
  int n_threads = 1;
  ScratchRows x;         // residual stream, n_embd
  ScratchRows x_norm;    // normalized input of a block, n_embd
  ScratchRows q;         // n_head * head_dim
  ScratchRows k;         // n_head_kv * head_dim
  ScratchRows v;         // n_head_kv * head_dim
  ScratchRows attn;      // attention output, n_head * head_dim
  ScratchRows block_out; // a block's projection back to n_embd
  ScratchRows gate;      // n_ff (empty for a mixture of experts)
  ScratchRows up;        // n_ff (empty for a mixture of experts)
  ScratchRows rope;      // cos/sin pairs, n_rot
  ScratchRows rope_swa;  // the same with the sliding-window layers' base and scale (Gemma 3)
  ops::MoeScratch moe;          // a mixture of experts' routing and gathered rows
  ScratchRows recurrent; // a recurrent layer's projections, config.recurrent_row_floats

  ForwardScratch(const ModelConfig& config, int32_t n_rows, int n_threads);
};

struct SequenceState {
  std::vector<int32_t> blocks;   // block table: position p is in blocks[p / kKvBlockRows]
  std::vector<TokenId> tokens;   // the tokens whose keys and values the blocks hold
  ops::SequenceRecurrentState recurrent;  // hybrid models: the state, empty for the others
};

struct BatchDecoderState {
  int32_t n_ctx = 0;
  ops::KvPool pool;
  ForwardScratch scratch;
  std::unordered_map<SequenceId, SequenceState> sequences;
  SequenceId next_sequence = 0;
  std::vector<float> logits;  // what decode() returns
  ops::RecurrentStateLayout state_layout;
  int32_t checkpoint_interval = 0, max_checkpoints = 0;
  int32_t logit_vocab = 0;  // BatchDecoderOptions::logit_vocab
  uint64_t rows_evaluated = 0;

  BatchDecoderState(const ModelConfig& config, int32_t n_ctx, int32_t n_blocks, int32_t n_rows, int n_threads,
                    KvType kv_type);
};

}  // namespace slm
