// BatchDecoder: sequences over a pool of KV blocks, and decode() over rows of any of them.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

#include "lib/model/arch.hpp"
#include "lib/model/batch_state.hpp"
#include "slm/batch.hpp"

namespace slm {

static_assert(kKvBlockTokens == ops::kKvBlockRows);

namespace {

constexpr int32_t kDefaultContext = 4096;

int32_t blocks_for(int64_t n_positions) { return int32_t((n_positions + kKvBlockTokens - 1) / kKvBlockTokens); }

SequenceState& find_sequence(BatchDecoderState& s, SequenceId id) {
  const auto it = s.sequences.find(id);
  if (it == s.sequences.end()) throw Error(fmt::format("no sequence {}", id));
  return it->second;
}

// Where a decode of `seq` whose first row is at pos0 starts evaluating: pos0, or for a hybrid
// model the latest state at or before it (the held tokens from there are evaluated again).
int32_t decode_start(const BatchDecoderState& s, const SequenceState& seq, int32_t pos0) {
  return s.state_layout.empty() ? pos0 : seq.recurrent.latest_at_or_before(pos0);
}

// One sequence's rows of a batch: rows [first_row, first_row + n_rows) at positions pos0...
struct SequenceRows {
  SequenceId sequence;
  int32_t first_row, n_rows, pos0;
};

// What growing `seq` to hold positions [0, end) after dropping those >= keep takes: blocks
// to allocate (new ones, and a copy of a shared block it would write into), and blocks the
// drop frees (held by it alone).
struct BlockPlan {
  int32_t to_allocate = 0;
  int32_t freed = 0;
};

BlockPlan plan_blocks(const ops::KvPool& pool, const SequenceState& seq, int32_t keep, int32_t end) {
  BlockPlan plan;
  const int32_t kept = std::min<int32_t>(blocks_for(keep), int32_t(seq.blocks.size()));
  for (size_t b = size_t(kept); b < seq.blocks.size(); ++b) plan.freed += pool.ref_counts[size_t(seq.blocks[b])] == 1;
  plan.to_allocate = std::max(0, blocks_for(end) - kept);
  // Writing into the last kept block, which another sequence shares: it is copied first.
  const bool writes_into_kept = end > keep && keep % kKvBlockTokens != 0;
  if (writes_into_kept && pool.ref_counts[size_t(seq.blocks[size_t(kept) - 1])] > 1) ++plan.to_allocate;
  return plan;
}

void drop_positions(ops::KvPool& pool, SequenceState& seq, int32_t keep) {
  const size_t kept = size_t(std::min<int32_t>(blocks_for(keep), int32_t(seq.blocks.size())));
  for (size_t b = kept; b < seq.blocks.size(); ++b) pool.release(seq.blocks[b]);
  seq.blocks.resize(kept);
  if (size_t(keep) < seq.tokens.size()) seq.tokens.resize(size_t(keep));
}

// Makes `seq` (already cut to `keep` positions) hold blocks for positions [0, end).
void grow(ops::KvPool& pool, SequenceState& seq, int32_t keep, int32_t end) {
  if (end > keep && keep % kKvBlockTokens != 0) {
    int32_t& last = seq.blocks.back();
    if (pool.ref_counts[size_t(last)] > 1) {  // copy on write
      const int32_t copy = pool.allocate();
      pool.copy_block(last, copy);
      pool.release(last);
      last = copy;
    }
  }
  while (int32_t(seq.blocks.size()) < blocks_for(end)) seq.blocks.push_back(pool.allocate());
}

}  // namespace

ForwardScratch::ForwardScratch(const ModelConfig& c, int32_t n_rows_, int n_threads_)
    : n_rows(n_rows_), n_threads(n_threads_) {
  const auto rows = [&](int64_t width) { return ScratchRows(size_t(n_rows) * size_t(width)); };
  x = rows(c.n_embd);
  x_norm = rows(c.n_embd);
  q = rows(int64_t(c.n_head) * c.head_dim);
  k = rows(int64_t(c.n_head_kv) * c.head_dim);
  v = rows(int64_t(c.n_head_kv) * c.head_dim);
  attn = rows(int64_t(c.n_head) * c.head_dim);
  block_out = rows(c.n_embd);
  const int64_t dense_ff = c.n_expert > 0 ? 0 : c.n_ff;  // a mixture of experts has no dense FFN
  gate = rows(dense_ff);
  up = rows(dense_ff);
  rope = rows(c.n_rot);
  if (!c.sliding_layers.empty()) rope_swa = rows(c.n_rot);
  moe = ops::MoeScratch(c, n_rows);
  recurrent = rows(c.recurrent_row_floats);
}

// The pool keeps rows for the attention layers only (at least one, for a model of recurrent layers alone).
BatchDecoderState::BatchDecoderState(const ModelConfig& c, int32_t n_ctx_, int32_t n_blocks, int32_t n_rows,
                                     int n_threads, KvType kv_type)
    : n_ctx(n_ctx_),
      pool(kv_type, n_blocks, std::max(1, c.n_kv_layers()), c.n_head_kv, c.head_dim),
      scratch(c, n_rows, n_threads) {}

ops::RecurrentStateLayout recurrent_state_layout(const ArchSpec& spec, const ModelConfig& c) {
  ops::RecurrentStateLayout layout;
  layout.layer_offset.assign(size_t(c.n_layer), -1);
  for (int32_t layer = 0; layer < c.n_layer; ++layer) {
    if (!c.is_recurrent(layer) || !spec.recurrent_state_floats) continue;
    layout.layer_offset[size_t(layer)] = layout.floats_per_sequence;
    layout.floats_per_sequence += spec.recurrent_state_floats(c, layer);
  }
  return layout;
}

BatchDecoder::BatchDecoder(std::shared_ptr<const Model> model, BatchDecoderOptions options) : model_(std::move(model)) {
  if (!model_) throw Error("BatchDecoder needs a model");
  const ModelConfig& c = model_->config();
  int32_t n_ctx = options.n_ctx;
  if (n_ctx < 0) throw Error(fmt::format("context size {} is negative", n_ctx));
  if (n_ctx == 0) n_ctx = std::min(c.n_ctx_train, kDefaultContext);
  if (n_ctx > c.n_ctx_train)
    throw Error(fmt::format("context size {} exceeds the model's maximum of {} ({}.context_length)", n_ctx,
                            c.n_ctx_train, c.arch));
  if (options.kv_tokens < 0) throw Error(fmt::format("KV pool size {} is negative", options.kv_tokens));
  const int64_t kv_tokens = options.kv_tokens > 0 ? options.kv_tokens : n_ctx;
  if (options.max_batch_rows < 1) throw Error(fmt::format("batch size {} must be at least 1", options.max_batch_rows));
  if (options.n_threads < 0) throw Error(fmt::format("thread count {} is negative", options.n_threads));
  const int n_threads = options.n_threads > 0 ? options.n_threads : default_thread_count();
  if (options.checkpoint_interval < 0 || options.max_checkpoints < 0)
    throw Error(fmt::format("checkpoint interval {} and count {} must not be negative", options.checkpoint_interval,
                            options.max_checkpoints));
  if (options.logit_vocab < 0 || options.logit_vocab > c.n_vocab)
    throw Error(fmt::format("the logits' vocabulary cut {} must be within 1..{} (the vocabulary), or 0 for all of it",
                            options.logit_vocab, c.n_vocab));
  const int32_t n_rows = std::min(options.max_batch_rows, n_ctx);
  state_ = std::make_unique<BatchDecoderState>(c, n_ctx, blocks_for(kv_tokens), n_rows, n_threads, options.kv_type);
  state_->state_layout = recurrent_state_layout(*find_arch(c.arch), c);
  state_->checkpoint_interval = options.checkpoint_interval;
  state_->max_checkpoints = options.max_checkpoints;
  state_->logit_vocab = options.logit_vocab;
}

BatchDecoder::~BatchDecoder() = default;
BatchDecoder::BatchDecoder(BatchDecoder&&) noexcept = default;
BatchDecoder& BatchDecoder::operator=(BatchDecoder&&) noexcept = default;

SequenceId BatchDecoder::add_sequence() {
  const SequenceId id = state_->next_sequence++;
  SequenceState seq;
  seq.recurrent.current.assign(size_t(state_->state_layout.floats_per_sequence), 0.0f);
  state_->sequences.emplace(id, std::move(seq));
  return id;
}

SequenceId BatchDecoder::fork_sequence(SequenceId from, int32_t n_positions) {
  const SequenceState& source = find_sequence(*state_, from);
  if (n_positions < 0 || size_t(n_positions) > source.tokens.size())
    throw Error(fmt::format("cannot fork {} positions of sequence {}, which holds {}", n_positions, from,
                            source.tokens.size()));
  SequenceState copy;
  copy.tokens.assign(source.tokens.begin(), source.tokens.begin() + n_positions);
  copy.blocks.assign(source.blocks.begin(), source.blocks.begin() + blocks_for(n_positions));
  for (int32_t block : copy.blocks) state_->pool.retain(block);
  copy.recurrent = source.recurrent;  // checkpoints shared; the next decode restores the latest <= n_positions
  copy.recurrent.forget_after(n_positions);
  const SequenceId id = state_->next_sequence++;
  state_->sequences.emplace(id, std::move(copy));
  return id;
}

void BatchDecoder::remove_sequence(SequenceId sequence) {
  SequenceState& seq = find_sequence(*state_, sequence);
  drop_positions(state_->pool, seq, 0);
  state_->sequences.erase(sequence);
}

void BatchDecoder::truncate(SequenceId sequence, int32_t n_keep) {
  if (n_keep < 0) throw Error(fmt::format("cannot truncate to {} positions", n_keep));
  SequenceState& seq = find_sequence(*state_, sequence);
  if (size_t(n_keep) < seq.tokens.size()) {
    drop_positions(state_->pool, seq, n_keep);
    seq.recurrent.forget_after(n_keep);
  }
}

bool BatchDecoder::has_sequence(SequenceId sequence) const { return state_->sequences.contains(sequence); }

const std::vector<TokenId>& BatchDecoder::tokens(SequenceId sequence) const {
  return find_sequence(*state_, sequence).tokens;
}

int32_t BatchDecoder::blocks_needed(SequenceId sequence, int32_t n_positions) const {
  const SequenceState& seq = find_sequence(*state_, sequence);
  const int32_t held = int32_t(seq.tokens.size());
  if (n_positions <= held) return 0;
  return plan_blocks(state_->pool, seq, decode_start(*state_, seq, held), n_positions).to_allocate;
}

int32_t BatchDecoder::reusable_prefix(SequenceId sequence, int32_t n) const {
  const SequenceState& seq = find_sequence(*state_, sequence);
  return decode_start(*state_, seq, std::clamp(n, 0, int32_t(seq.tokens.size())));
}

uint64_t BatchDecoder::state_bytes_per_sequence() const { return state_->state_layout.bytes_per_sequence(); }

uint64_t BatchDecoder::state_bytes() const {
  std::unordered_set<const std::vector<float>*> snapshots;
  uint64_t floats = 0;
  for (const auto& [id, seq] : state_->sequences) {
    floats += seq.recurrent.current.size();
    for (const ops::StateCheckpoint& c : seq.recurrent.checkpoints)
      if (snapshots.insert(c.state.get()).second) floats += c.state->size();
  }
  return floats * sizeof(float);
}

uint64_t BatchDecoder::rows_evaluated() const { return state_->rows_evaluated; }

int32_t BatchDecoder::n_blocks() const { return state_->pool.n_blocks; }
int32_t BatchDecoder::n_free_blocks() const { return state_->pool.n_free(); }
int32_t BatchDecoder::n_ctx() const { return state_->n_ctx; }
int32_t BatchDecoder::n_threads() const { return state_->scratch.n_threads; }
int32_t BatchDecoder::max_batch_rows() const { return state_->scratch.n_rows; }

std::span<const float> BatchDecoder::decode(std::span<const BatchRow> requested) {
  BatchDecoderState& s = *state_;
  const ModelConfig& c = model_->config();
  if (requested.empty()) throw Error("decode needs at least one row");

  // Check everything before changing anything.
  std::vector<SequenceRows> groups;
  for (size_t r = 0; r < requested.size(); ++r) {
    const BatchRow& row = requested[r];
    if (row.token < 0 || row.token >= c.n_vocab)
      throw Error(fmt::format("token id {} is outside the vocabulary (0..{})", row.token, c.n_vocab - 1));
    if (!groups.empty() && groups.back().sequence == row.sequence) {
      SequenceRows& g = groups.back();
      if (row.position != g.pos0 + g.n_rows)
        throw Error(fmt::format("sequence {}: row at position {} does not follow position {}", row.sequence,
                                row.position, g.pos0 + g.n_rows - 1));
      ++g.n_rows;
      continue;
    }
    for (const SequenceRows& g : groups)
      if (g.sequence == row.sequence)
        throw Error(fmt::format("the rows of sequence {} are not contiguous in the batch", row.sequence));
    const SequenceState& seq = find_sequence(s, row.sequence);
    if (row.position < 0 || size_t(row.position) > seq.tokens.size())
      throw Error(fmt::format("sequence {}: position {}, but it holds only {} positions", row.sequence, row.position,
                              seq.tokens.size()));
    groups.push_back({row.sequence, int32_t(r), 1, row.position});
  }

  // A hybrid model's sequence goes on from its latest state at or before the first row: the held
  // tokens between that state and the row are evaluated again, first.
  std::vector<BatchRow> rows;
  rows.reserve(requested.size());
  for (SequenceRows& g : groups) {
    const SequenceState& seq = s.sequences.at(g.sequence);
    const int32_t start = decode_start(s, seq, g.pos0);
    const int32_t first_row = int32_t(rows.size());
    for (int32_t p = start; p < g.pos0; ++p) rows.push_back({g.sequence, p, seq.tokens[size_t(p)], false});
    rows.insert(rows.end(), requested.begin() + g.first_row, requested.begin() + g.first_row + g.n_rows);
    g = {g.sequence, first_row, g.n_rows + (g.pos0 - start), start};
  }

  int64_t to_allocate = 0, freed = 0;
  for (const SequenceRows& g : groups) {
    if (int64_t(g.pos0) + g.n_rows > s.n_ctx)
      throw Error(fmt::format("sequence {}: {} tokens at position {} do not fit in the context of {} tokens", g.sequence,
                              g.n_rows, g.pos0, s.n_ctx));
    const BlockPlan plan = plan_blocks(s.pool, s.sequences.at(g.sequence), g.pos0, g.pos0 + g.n_rows);
    to_allocate += plan.to_allocate;
    freed += plan.freed;
  }
  if (to_allocate > s.pool.n_free() + freed)
    throw Error(fmt::format("the KV pool has {} free blocks of {} positions; this batch needs {}",
                            s.pool.n_free() + freed, kKvBlockTokens, to_allocate));

  // Blocks for every position first, so that each forward pass below finds its keys; the state
  // at each sequence's first row, kept as a checkpoint before a decode of several rows moves it.
  const bool recurrent = !s.state_layout.empty();
  for (const SequenceRows& g : groups) {
    SequenceState& seq = s.sequences.at(g.sequence);
    drop_positions(s.pool, seq, g.pos0);
    grow(s.pool, seq, g.pos0, g.pos0 + g.n_rows);
    if (!recurrent) continue;
    seq.recurrent.forget_after(g.pos0);
    seq.recurrent.restore(g.pos0);
    if (g.n_rows > 1) seq.recurrent.keep_checkpoint(s.max_checkpoints);
  }

  std::vector<int32_t> logit_rows;
  for (size_t r = 0; r < rows.size(); ++r)
    if (rows[r].wants_logits) logit_rows.push_back(int32_t(r));
  s.logits.resize(logit_rows.size() * size_t(c.n_vocab));

  // Forward passes of at most scratch.n_rows rows; a sequence may straddle two of them. A hybrid
  // model's pass also ends where a sequence reaches a multiple of the checkpoint interval.
  const ArchSpec* spec = find_arch(c.arch);
  const int32_t interval = recurrent && s.max_checkpoints > 0 ? s.checkpoint_interval : 0;
  std::vector<TokenId> tokens(rows.size());
  std::vector<int32_t> positions(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    tokens[r] = rows[r].token;
    positions[r] = rows[r].position;
  }
  size_t next_logit = 0;
  for (int32_t begin = 0, end = 0; begin < int32_t(rows.size()); begin = end) {
    end = std::min<int32_t>(int32_t(rows.size()), begin + s.scratch.n_rows);
    for (const SequenceRows& g : groups) {
      const int32_t first = std::max(begin, g.first_row);
      if (interval == 0 || first >= std::min(end, g.first_row + g.n_rows)) continue;
      const int32_t next_checkpoint = (positions[size_t(first)] / interval + 1) * interval;
      end = std::min(end, first + (next_checkpoint - positions[size_t(first)]));
    }
    std::vector<ops::AttentionSpan> spans;
    for (const SequenceRows& g : groups) {
      const int32_t first = std::max(begin, g.first_row), last = std::min(end, g.first_row + g.n_rows);
      SequenceState& seq = s.sequences.at(g.sequence);
      if (first < last)
        spans.push_back({first - begin, last - first, g.pos0 + (first - g.first_row), seq.blocks.data(),
                         recurrent ? seq.recurrent.current.data() : nullptr});
    }
    std::vector<int32_t> chunk_logit_rows;
    const size_t first_logit = next_logit;
    while (next_logit < logit_rows.size() && logit_rows[next_logit] < end) chunk_logit_rows.push_back(logit_rows[next_logit++] - begin);
    const ForwardBatch batch{std::span(tokens).subspan(size_t(begin), size_t(end - begin)),
                             std::span(positions).subspan(size_t(begin), size_t(end - begin)), spans, chunk_logit_rows,
                             s.n_ctx, &s.state_layout, s.logit_vocab};
    spec->forward(*model_, s.scratch, s.pool, batch, s.logits.data() + first_logit * size_t(c.n_vocab));
    if (!recurrent) continue;
    for (const SequenceRows& g : groups) {
      const int32_t last = std::min(end, g.first_row + g.n_rows);
      if (last <= std::max(begin, g.first_row)) continue;
      ops::SequenceRecurrentState& state = s.sequences.at(g.sequence).recurrent;
      state.position = positions[size_t(last - 1)] + 1;
      const bool group_ends = last == g.first_row + g.n_rows;
      if ((interval > 0 && state.position % interval == 0) || (group_ends && g.n_rows > 1))
        state.keep_checkpoint(s.max_checkpoints);
    }
  }
  s.rows_evaluated += rows.size();
  for (const SequenceRows& g : groups) {
    SequenceState& seq = s.sequences.at(g.sequence);
    for (int32_t i = 0; i < g.n_rows; ++i) seq.tokens.push_back(rows[size_t(g.first_row + i)].token);
  }
  return s.logits;
}

}  // namespace slm
