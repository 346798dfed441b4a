// The batch API over paged KV: a sequence's logits are bit-identical alone and batched with
// other sequences (at other positions, with any chunking of its prompt, at any thread count);
// forks share blocks and copy a shared block before writing into it; running out of blocks
// refuses a batch without touching any sequence. The same with a Q8_0 cache.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "slm/batch.hpp"
#include "support/assets.hpp"

namespace slm::test {
namespace {

std::shared_ptr<const Model> load_shared(const std::string& stem) {
  return Model::load(shared_path("models/" + stem + ".gguf").string());
}

// Tokens of a pseudo-random prompt (ids in the vocabulary, fixed by `seed`).
std::vector<TokenId> random_tokens(const Model& model, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<TokenId> tokens(n);
  for (TokenId& t : tokens) t = TokenId(rng() % uint32_t(model.config().n_vocab));
  return tokens;
}

// Every position's logits of `tokens`, evaluated alone, in one pass, with one thread.
std::vector<float> logits_alone(const std::shared_ptr<const Model>& model, const std::vector<TokenId>& tokens,
                                KvType kv_type = KvType::F16) {
  BatchDecoder decoder(model, {.n_ctx = 256, .n_threads = 1, .kv_type = kv_type});
  const SequenceId seq = decoder.add_sequence();
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < tokens.size(); ++i) rows.push_back({seq, int32_t(i), tokens[i], true});
  const auto logits = decoder.decode(rows);
  return {logits.begin(), logits.end()};
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class BatchInvariance : public ::testing::TestWithParam<std::tuple<std::string, KvType>> {};

// Eight sequences of different lengths, their prompts fed in chunks of different sizes,
// interleaved step by step as a continuous-batching scheduler does: each sequence's logits
// at every position equal its logits alone, bit for bit, at 1 and 2 threads.
TEST_P(BatchInvariance, EachSequenceMatchesItsRunAlone) {
  const auto [stem, kv_type] = GetParam();
  const auto path = shared_path("models/" + stem + ".gguf");
  SLM_REQUIRE_ASSET(path);
  const auto model = Model::load(path.string());
  const size_t n_vocab = size_t(model->config().n_vocab);
  constexpr int kSequences = 8;
  std::vector<std::vector<TokenId>> prompts;
  std::vector<std::vector<float>> expected;
  for (int i = 0; i < kSequences; ++i) {
    prompts.push_back(random_tokens(*model, size_t(9 + 13 * i), uint32_t(100 + i)));
    expected.push_back(logits_alone(model, prompts.back(), kv_type));
  }
  for (int threads : {1, 2}) {
    BatchDecoder decoder(model,
                         {.n_ctx = 256, .kv_tokens = 2048, .n_threads = threads, .max_batch_rows = 40, .kv_type = kv_type});
    std::vector<SequenceId> ids;
    std::vector<size_t> done(kSequences, 0);
    for (int i = 0; i < kSequences; ++i) ids.push_back(decoder.add_sequence());
    std::map<std::pair<int, size_t>, std::vector<float>> got;  // (sequence, position) -> logits
    for (int step = 0; step < 200; ++step) {
      std::vector<BatchRow> rows;
      std::vector<std::pair<int, size_t>> wanted;
      for (int i = (step % kSequences); i < kSequences + (step % kSequences); ++i) {  // the order rotates
        const int s = i % kSequences;
        const size_t chunk = size_t(1 + (step * 7 + s * 3) % 11);  // uneven chunks
        for (size_t c = 0; c < chunk && done[size_t(s)] < prompts[size_t(s)].size(); ++c, ++done[size_t(s)]) {
          rows.push_back({ids[size_t(s)], int32_t(done[size_t(s)]), prompts[size_t(s)][done[size_t(s)]], true});
          wanted.push_back({s, done[size_t(s)]});
        }
      }
      if (rows.empty()) break;
      const auto logits = decoder.decode(rows);
      for (size_t r = 0; r < wanted.size(); ++r)
        got[wanted[r]].assign(logits.begin() + long(r * n_vocab), logits.begin() + long((r + 1) * n_vocab));
    }
    for (int s = 0; s < kSequences; ++s)
      for (size_t p = 0; p < prompts[size_t(s)].size(); ++p) {
        const std::span<const float> alone(expected[size_t(s)].data() + p * n_vocab, n_vocab);
        ASSERT_TRUE(same_bits(got.at({s, p}), alone)) << "sequence " << s << " position " << p << ", " << threads
                                                      << " threads";
      }
  }
}

std::string test_name(const ::testing::TestParamInfo<std::tuple<std::string, KvType>>& info) {
  std::string name = std::get<0>(info.param) + "_kv" + kv_type_name(std::get<1>(info.param));
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(SharedModels, BatchInvariance,
                         ::testing::Combine(::testing::Values("stories260K", "syn-llama-tiny-Q4_K_M", "syn-qwen2-tiny-Q8_0",
                                                              "syn-qwen3-tiny-Q4_K_M", "syn-qwen3moe-tiny-Q4_K_M",
                                                              "syn-phi3-tiny-Q4_K_M", "syn-gemma3-tiny-Q4_K_M",
                                                              "syn-gemma2-tiny-Q8_0", "syn-lfm2-tiny-Q4_K_M",
                                                              "syn-qwen35-tiny-Q4_K_M"),
                                            ::testing::Values(KvType::F16)),
                         test_name);

// A Q8_0 cache: sliding windows and soft caps (gemma), a hybrid's recurrent layers (qwen35).
INSTANTIATE_TEST_SUITE_P(QuantizedCache, BatchInvariance,
                         ::testing::Combine(::testing::Values("syn-llama-tiny-Q4_K_M", "syn-gemma3-tiny-Q4_K_M",
                                                              "syn-gemma2-tiny-Q8_0", "syn-qwen35-tiny-Q4_K_M"),
                                            ::testing::Values(KvType::Q8_0)),
                         test_name);

class Fork : public ::testing::TestWithParam<KvType> {};

TEST_P(Fork, SharesBlocksAndCopiesOnlyWhatItWritesInto) {
  const KvType kv_type = GetParam();
  const auto path = shared_path("models/syn-llama-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  const auto model = Model::load(path.string());
  const size_t n_vocab = size_t(model->config().n_vocab);
  const auto prefix = random_tokens(*model, 70, 1);  // 2 whole blocks and 6 positions of a third
  const auto tail_a = random_tokens(*model, 5, 2), tail_b = random_tokens(*model, 5, 3);
  BatchDecoder decoder(model, {.n_ctx = 256, .kv_tokens = 10 * kKvBlockTokens, .n_threads = 1, .kv_type = kv_type});
  const SequenceId a = decoder.add_sequence();
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < prefix.size(); ++i) rows.push_back({a, int32_t(i), prefix[i], false});
  decoder.decode(rows);
  EXPECT_EQ(decoder.n_free_blocks(), 7);

  const SequenceId b = decoder.fork_sequence(a, 70);
  EXPECT_EQ(decoder.n_free_blocks(), 7) << "a fork copies nothing";
  EXPECT_EQ(decoder.tokens(b), prefix);
  EXPECT_EQ(decoder.blocks_needed(b, 75), 1) << "the shared third block is copied before b writes into it";

  // Both continue the shared prefix with their own tokens, in one batch.
  rows.clear();
  for (size_t i = 0; i < 5; ++i) rows.push_back({a, int32_t(70 + i), tail_a[i], true});
  for (size_t i = 0; i < 5; ++i) rows.push_back({b, int32_t(70 + i), tail_b[i], true});
  const auto logits = decoder.decode(rows);
  EXPECT_EQ(decoder.n_free_blocks(), 6);

  for (const auto& [tail, offset] : {std::pair{tail_a, size_t(0)}, std::pair{tail_b, size_t(5)}}) {
    std::vector<TokenId> whole = prefix;
    whole.insert(whole.end(), tail.begin(), tail.end());
    const auto alone = logits_alone(model, whole, kv_type);
    EXPECT_TRUE(same_bits(logits.subspan(offset * n_vocab, 5 * n_vocab),
                          std::span(alone).subspan(70 * n_vocab, 5 * n_vocab)));
  }

  decoder.remove_sequence(a);
  EXPECT_EQ(decoder.n_free_blocks(), 7) << "a's own third block is freed; the shared two stay with b";
  decoder.remove_sequence(b);
  EXPECT_EQ(decoder.n_free_blocks(), 10);
}

INSTANTIATE_TEST_SUITE_P(BatchDecoder, Fork, ::testing::Values(KvType::F16, KvType::Q8_0),
                         [](const auto& info) { return std::string(kv_type_name(info.param)); });

TEST(BatchDecoder, RunningOutOfBlocksRefusesTheBatchAndChangesNothing) {
  const auto path = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(path);
  const auto model = Model::load(path.string());
  BatchDecoder decoder(model, {.n_ctx = 256, .kv_tokens = 3 * kKvBlockTokens, .n_threads = 1});
  const SequenceId a = decoder.add_sequence(), b = decoder.add_sequence();
  const auto tokens = random_tokens(*model, 80, 4);
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < 40; ++i) rows.push_back({a, int32_t(i), tokens[i], false});
  decoder.decode(rows);  // 2 blocks
  rows.clear();
  for (size_t i = 0; i < 40; ++i) rows.push_back({b, int32_t(i), tokens[i], false});
  EXPECT_THROW(decoder.decode(rows), Error) << "b needs 2 blocks, 1 is free";
  EXPECT_TRUE(decoder.tokens(b).empty());
  EXPECT_EQ(decoder.tokens(a).size(), 40u);
  EXPECT_EQ(decoder.n_free_blocks(), 1);

  // a goes on undisturbed, and its logits are those of its run alone.
  const std::vector<BatchRow> next = {{a, 40, tokens[40], true}};
  const auto logits = decoder.decode(next);
  const auto alone = logits_alone(model, std::vector<TokenId>(tokens.begin(), tokens.begin() + 41));
  const size_t n_vocab = size_t(model->config().n_vocab);
  EXPECT_TRUE(same_bits(logits, std::span(alone).subspan(40 * n_vocab, n_vocab)));

  // Rewriting a's own positions reuses its blocks: no new block is needed.
  rows.clear();
  for (size_t i = 0; i < 60; ++i) rows.push_back({a, int32_t(i), tokens[i + 10], false});
  EXPECT_NO_THROW(decoder.decode(rows));
}

TEST(BatchDecoder, InvalidRowsAreRefused) {
  const auto path = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(path);
  const auto model = Model::load(path.string());
  BatchDecoder decoder(model, {.n_ctx = 64, .n_threads = 1});
  const SequenceId a = decoder.add_sequence(), b = decoder.add_sequence();
  const auto refused = [&](std::vector<BatchRow> rows) { EXPECT_THROW(decoder.decode(rows), Error); };
  refused({});
  refused({{a, 1, 5, true}});                              // past the sequence's end
  refused({{a, 0, 5, true}, {a, 2, 5, true}});             // positions not consecutive
  refused({{a, 0, 5, true}, {b, 0, 5, true}, {a, 1, 5, true}});  // a's rows not contiguous
  refused({{99, 0, 5, true}});                             // unknown sequence
  refused({{a, 0, -1, true}});                             // token outside the vocabulary
  refused({{a, 0, model->config().n_vocab, true}});
  std::vector<BatchRow> too_long;
  for (int32_t i = 0; i < 65; ++i) too_long.push_back({a, i, 5, false});
  refused(too_long);                                       // past n_ctx
  EXPECT_TRUE(decoder.tokens(a).empty());
  EXPECT_THROW(decoder.fork_sequence(a, 1), Error);
  EXPECT_THROW(decoder.tokens(99), Error);
  EXPECT_THROW(BatchDecoder(model, {.n_ctx = 1 << 30}), Error);
}

}  // namespace
}  // namespace slm::test
