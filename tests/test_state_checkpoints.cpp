// A hybrid model's recurrent state beside the KV cache (slm/batch.hpp): checkpoints are kept at
// the ends of multi-row decodes and every checkpoint_interval positions, at most max_checkpoints
// per sequence (past it, the one closest to the one before it goes); a decode that starts before a sequence's end (truncate, fork, a new turn that
// re-renders the history) restores the latest checkpoint at or before it and re-evaluates only
// from there, and its logits are those of a fresh sequence, bit for bit. A Llama model, which
// can cut its cache anywhere, evaluates only the tokens after the common prefix. (The scheduler's
// prefix cache: tests/server/test_scheduler_checkpoints.cpp.)
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "slm/batch.hpp"
#include "slm/generate.hpp"
#include "slm/session.hpp"
#include "slm/speculative.hpp"
#include "support/assets.hpp"

namespace slm::test {
namespace {

constexpr const char* kHybrid = "models/syn-lfm2-tiny-Q4_K_M.gguf";
constexpr const char* kHybridDraft = "models/syn-lfm2-tiny-Q8_0.gguf";
constexpr const char* kLlama = "models/syn-llama-tiny-Q4_K_M.gguf";

std::shared_ptr<const Model> load(const char* path) { return Model::load(shared_path(path).string()); }

std::vector<TokenId> random_tokens(const Model& model, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<TokenId> tokens(n);
  for (TokenId& t : tokens) t = TokenId(3 + rng() % uint32_t(model.config().n_vocab - 3));
  return tokens;
}

std::vector<TokenId> concat(std::vector<TokenId> a, const std::vector<TokenId>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Every logit row of `tokens` in a fresh sequence.
std::vector<float> fresh_logits(const std::shared_ptr<const Model>& model, const std::vector<TokenId>& tokens) {
  Session session(model, {.n_ctx = 512, .n_threads = 1});
  const auto logits = session.eval(tokens, 0, true);
  return {logits.begin(), logits.end()};
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Rows [first, end) of a [n][n_vocab] logits block.
std::span<const float> rows_of(const std::vector<float>& logits, size_t n_vocab, size_t first, size_t end) {
  return std::span(logits).subspan(first * n_vocab, (end - first) * n_vocab);
}

TEST(StateCheckpoints, ForkAndTruncateRestoreTheLatestCheckpointAndMatchAFreshSequence) {
  SLM_REQUIRE_ASSET(shared_path(kHybrid));
  const auto model = load(kHybrid);
  const size_t V = size_t(model->config().n_vocab);
  const std::vector<TokenId> prompt = random_tokens(*model, 100, 1), other = random_tokens(*model, 25, 2);
  BatchDecoder decoder(model, {.n_ctx = 512, .n_threads = 1, .checkpoint_interval = 0});
  const SequenceId a = decoder.add_sequence();
  for (int32_t begin = 0; begin < 100; begin += 30) {  // decodes of 30, 30, 30, 10 rows: checkpoints at their ends
    std::vector<BatchRow> rows;
    for (int32_t p = begin; p < std::min(begin + 30, 100); ++p) rows.push_back({a, p, prompt[size_t(p)], false});
    decoder.decode(rows);
  }
  EXPECT_EQ(decoder.reusable_prefix(a, 100), 100);
  EXPECT_EQ(decoder.reusable_prefix(a, 75), 60);
  EXPECT_EQ(decoder.reusable_prefix(a, 29), 0);

  // A fork at 75 holds 75 tokens; its first decode re-evaluates 60..74, then the new rows.
  const SequenceId b = decoder.fork_sequence(a, 75);
  const uint64_t before = decoder.rows_evaluated();
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < other.size(); ++i) rows.push_back({b, int32_t(75 + i), other[i], true});
  const auto forked = decoder.decode(rows);
  EXPECT_EQ(decoder.rows_evaluated() - before, 15u + other.size());
  const std::vector<TokenId> fork_tokens = concat({prompt.begin(), prompt.begin() + 75}, other);
  const std::vector<float> expected = fresh_logits(model, fork_tokens);
  EXPECT_TRUE(same_bits(forked, rows_of(expected, V, 75, fork_tokens.size())));

  // The source is untouched by the fork; truncated to 45 it goes on from its checkpoint at 30.
  decoder.truncate(a, 45);
  EXPECT_EQ(decoder.reusable_prefix(a, 45), 30);
  rows.clear();
  for (size_t i = 0; i < other.size(); ++i) rows.push_back({a, int32_t(45 + i), other[i], true});
  const auto truncated = decoder.decode(rows);
  const std::vector<TokenId> cut_tokens = concat({prompt.begin(), prompt.begin() + 45}, other);
  EXPECT_TRUE(same_bits(truncated, rows_of(fresh_logits(model, cut_tokens), V, 45, cut_tokens.size())));
}

TEST(StateCheckpoints, AreBoundedPerSequenceAndDropTheOneClosestToTheOneBefore) {
  SLM_REQUIRE_ASSET(shared_path(kHybrid));
  const auto model = load(kHybrid);
  BatchDecoder decoder(model, {.n_ctx = 512, .n_threads = 1, .checkpoint_interval = 8, .max_checkpoints = 3});
  const SequenceId s = decoder.add_sequence();
  const std::vector<TokenId> prompt = random_tokens(*model, 100, 3);
  std::vector<BatchRow> rows;
  for (int32_t p = 0; p < 100; ++p) rows.push_back({s, p, prompt[size_t(p)], p == 99});
  // Checkpoints at 8, 16, ..., 96 and the end, 100; each time a fourth comes, the one closest to
  // the one before it goes (of equals, the earliest): 8 (8 after 0), then 24 (8 after 16), 16
  // (16 after 0), ..., which leaves 64, 96 and 100.
  decoder.decode(rows);
  EXPECT_EQ(decoder.reusable_prefix(s, 100), 100);
  EXPECT_EQ(decoder.reusable_prefix(s, 99), 96);
  EXPECT_EQ(decoder.reusable_prefix(s, 95), 64);
  EXPECT_EQ(decoder.reusable_prefix(s, 63), 0);
  EXPECT_EQ(decoder.state_bytes(), 4 * decoder.state_bytes_per_sequence());  // the state and 3 checkpoints
  const SequenceId fork = decoder.fork_sequence(s, 100);  // shares the checkpoints: one more state only
  EXPECT_EQ(decoder.state_bytes(), 5 * decoder.state_bytes_per_sequence());
  decoder.remove_sequence(fork);
  decoder.remove_sequence(s);
  EXPECT_EQ(decoder.state_bytes(), 0u);
}

// Speculative decoding verifies a few drafted tokens at a time, in decodes of several rows, each
// leaving a checkpoint at its end. Dropping the earliest checkpoint lost the prompt's end after
// max_checkpoints of them, so a next turn that re-renders the reply from its start evaluated the
// whole prompt again. The one closest to the one before it goes instead: never the prompt's end,
// 100 after the zero state, while the verifications' are 4 apart.
TEST(StateCheckpoints, ThePromptsEndOutlivesManyShortDecodesAfterIt) {
  SLM_REQUIRE_ASSET(shared_path(kHybrid));
  const auto model = load(kHybrid);
  const size_t V = size_t(model->config().n_vocab);
  BatchDecoder decoder(model, {.n_ctx = 512, .n_threads = 1, .checkpoint_interval = 0, .max_checkpoints = 3});
  const SequenceId s = decoder.add_sequence();
  const std::vector<TokenId> tokens = random_tokens(*model, 148, 6);
  auto decode = [&](int32_t begin, int32_t end) {
    std::vector<BatchRow> rows;
    for (int32_t p = begin; p < end; ++p) rows.push_back({s, p, tokens[size_t(p)], p + 1 == end});
    decoder.decode(rows);
  };
  decode(0, 100);  // the prompt: a checkpoint at 100
  for (int32_t begin = 100; begin < 148; begin += 4) decode(begin, begin + 4);  // verifications: 104, ..., 148
  // Kept: 100, 132 and the latest, 148. Dropping the earliest would have kept 140, 144 and 148.
  EXPECT_EQ(decoder.reusable_prefix(s, 100), 100);
  EXPECT_EQ(decoder.reusable_prefix(s, 131), 100);
  EXPECT_EQ(decoder.reusable_prefix(s, 147), 132);
  EXPECT_EQ(decoder.reusable_prefix(s, 148), 148);

  // A next turn whose history differs from the reply's start on evaluates only the new tokens,
  // with the logits of a fresh sequence.
  const std::vector<TokenId> reply = random_tokens(*model, 20, 7);
  const SequenceId turn = decoder.fork_sequence(s, 100);
  const uint64_t before = decoder.rows_evaluated();
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < reply.size(); ++i) rows.push_back({turn, int32_t(100 + i), reply[i], true});
  const auto logits = decoder.decode(rows);
  EXPECT_EQ(decoder.rows_evaluated() - before, reply.size());
  const std::vector<TokenId> turn_tokens = concat({tokens.begin(), tokens.begin() + 100}, reply);
  EXPECT_TRUE(same_bits(logits, rows_of(fresh_logits(model, turn_tokens), V, 100, turn_tokens.size())));
}

// The same with speculative decoding itself: a draft that mostly agrees (Q8_0 for Q4_K_M), 4
// tokens drafted at a time, and room for 3 checkpoints. draft-min = draft-max = 4: this test is
// about the checkpoints, and cost-aware adaptive k, timing this tiny model, may find that drafting
// does not pay and pause it (it drafted 5 tokens in 48 on a 2-core AMD EPYC, too few to test).
TEST(StateCheckpoints, SpeculativeDecodingKeepsThePromptsEndForTheNextTurn) {
  SLM_REQUIRE_ASSET(shared_path(kHybrid));
  SLM_REQUIRE_ASSET(shared_path(kHybridDraft));
  const auto model = load(kHybrid), draft = load(kHybridDraft);
  const SessionOptions options{.n_ctx = 512, .n_threads = 1, .checkpoint_interval = 0, .max_checkpoints = 3};
  Session session(model, options);
  Speculator speculator(*model, draft, {.draft_max = 4, .draft_min = 4, .draft_p_min = 0.0f}, options);
  SamplerParams greedy;
  greedy.temperature = 0.0f;
  Sampler sampler(greedy);
  const std::vector<TokenId> prompt = random_tokens(*model, 100, 8);
  GenerateOptions generate_options{.max_tokens = 48, .stop_at_end_of_generation = false};
  generate_options.speculator = &speculator;
  const GenerateResult reply = generate(session, sampler, prompt, generate_options, nullptr);
  ASSERT_GE(reply.speculation.drafted, 12);  // verifications enough to have dropped the earliest checkpoint
  EXPECT_EQ(session.reusable_prefix(100), 100);
  // A next turn whose history differs from the reply's start on evaluates only its new tokens.
  const std::vector<TokenId> next = concat(prompt, random_tokens(*model, 20, 9));
  Sampler next_sampler(greedy);
  const GenerateResult turn = generate(session, next_sampler, next, {.max_tokens = 1}, nullptr);
  EXPECT_EQ(turn.n_prompt_evaluated, 20);
}

struct TurnTwo {
  int32_t evaluated = 0;     // generate()'s count for turn 2
  uint64_t rows = 0;         // rows the decoder ran for it, re-evaluated ones included
  std::vector<TokenId> reply;
};

// Turn 1: a 300-token prompt and a 16-token greedy reply. Turn 2's prompt keeps the first
// `kept` tokens of turn 1's context and adds 40 new ones (kept = the whole context: the chat
// goes on; kept inside it: the template re-rendered the history differently from there).
TurnTwo second_turn(const std::shared_ptr<const Model>& model, size_t kept) {
  Session session(model, {.n_ctx = 512, .n_threads = 1, .checkpoint_interval = 64});
  SamplerParams greedy;
  greedy.temperature = 0.0f;
  const GenerateOptions options{.max_tokens = 16, .stop_at_end_of_generation = false};
  const std::vector<TokenId> prompt1 = random_tokens(*model, 300, 4);
  Sampler sampler1(greedy);
  const GenerateResult turn1 = generate(session, sampler1, prompt1, options, nullptr);
  const std::vector<TokenId> context = concat(prompt1, turn1.tokens);
  const std::vector<TokenId> prompt2 =
      concat({context.begin(), context.begin() + long(std::min(kept, context.size()))}, random_tokens(*model, 40, 5));
  const uint64_t before = session.rows_evaluated();
  Sampler sampler2(greedy);
  const GenerateResult turn2 = generate(session, sampler2, prompt2, options, nullptr);
  // The reply is that of a fresh session.
  Session fresh(model, {.n_ctx = 512, .n_threads = 1});
  Sampler sampler3(greedy);
  EXPECT_EQ(turn2.tokens, generate(fresh, sampler3, prompt2, options, nullptr).tokens);
  // The first turn2.n_prompt_evaluated rows: the prompt; then one row per generated token but the last.
  return {turn2.n_prompt_evaluated, session.rows_evaluated() - before - uint64_t(turn2.tokens.size() - 1), turn2.tokens};
}

TEST(StateCheckpoints, TurnTwoEvaluatesOnlyTheTokensAfterTheLastCheckpointInTheSharedPrefix) {
  SLM_REQUIRE_ASSET(shared_path(kHybrid));
  SLM_REQUIRE_ASSET(shared_path(kLlama));
  const auto hybrid = load(kHybrid), llama = load(kLlama);
  // The conversation goes on: turn 1's whole context is the prefix. Both evaluate the reply's
  // last token (sampled, never evaluated) and the 40 new ones.
  for (const auto& model : {hybrid, llama}) {
    const TurnTwo t = second_turn(model, 1000);
    EXPECT_EQ(t.evaluated, 41) << model->config().arch;
    EXPECT_EQ(t.rows, 41u) << model->config().arch;
  }
  // The history differs from inside the reply on (position 310): the hybrid model goes on from
  // its checkpoint at the end of turn 1's prompt (300), the Llama model from 310.
  EXPECT_EQ(second_turn(hybrid, 310).evaluated, 50);
  EXPECT_EQ(second_turn(llama, 310).evaluated, 40);
  // The prompt itself differs from position 250 on: checkpoints every 64 positions, so the
  // hybrid model goes on from 192.
  const TurnTwo cut = second_turn(hybrid, 250);
  EXPECT_EQ(cut.evaluated, 250 - 192 + 40);
  EXPECT_EQ(cut.rows, uint64_t(cut.evaluated));  // nothing re-evaluated behind generate()'s back
  EXPECT_EQ(second_turn(llama, 250).evaluated, 40);
}

}  // namespace
}  // namespace slm::test
