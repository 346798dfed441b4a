// The tokenizer's lookup tables (lib/tokenizer/id_hash_table.hpp): text -> id over the
// vocabulary and (left, right) -> rank over the merges answer exactly as the std::unordered_map
// of copied strings they replaced, on every token and merge of the shared vocabularies, and
// keep its rules for duplicates (the later token, the first merge).
#include <gtest/gtest.h>

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/tokenizer/bpe.hpp"
#include "lib/tokenizer/id_hash_table.hpp"
#include "lib/tokenizer/vocabulary.hpp"
#include "slm/gguf.hpp"
#include "slm/tokenizer.hpp"
#include "support/assets.hpp"

namespace {

using slm::TokenId;
using slm::Tokenizer;
using slm::tokenizer::IdHashTable;

TEST(IdHashTable, FindsEveryKeyWhenAllHashesCollideAndProbingWrapsAround) {
  const std::vector<int> keys = {5, 17, 3, 99, 42, 8, 61, 70, 11, 12, 13, 14};  // id i holds keys[i]
  IdHashTable table(keys.size());
  const uint64_t one_hash = ~uint64_t{0};  // the last slot: the probes wrap to the first
  for (size_t id = 0; id < keys.size(); ++id)
    table.insert(one_hash, int32_t(id), [&](int32_t other) { return keys[size_t(other)] == keys[id]; });
  for (size_t id = 0; id < keys.size(); ++id)
    EXPECT_EQ(table.find(one_hash, [&](int32_t other) { return keys[size_t(other)] == keys[id]; }), int32_t(id));
  EXPECT_EQ(table.find(one_hash, [&](int32_t other) { return keys[size_t(other)] == 1000; }), -1);
  EXPECT_EQ(table.find(12345, [](int32_t) { return true; }), -1) << "an empty slot ends the search";
  EXPECT_EQ(IdHashTable().find(one_hash, [](int32_t) { return true; }), -1) << "a table never built holds nothing";
}

TEST(IdHashTable, InsertingAKeyAgainGivesItsSlotToOverwriteOrKeep) {
  const std::vector<std::string> texts = {"a", "b", "a"};
  IdHashTable table(texts.size());
  const auto same_text = [&](size_t id) { return [&, id](int32_t other) { return texts[size_t(other)] == texts[id]; }; };
  table.insert(7, 0, same_text(0));
  table.insert(8, 1, same_text(1));
  int32_t& slot = table.insert(7, 2, same_text(2));
  EXPECT_EQ(slot, 0) << "the earlier id is kept unless the caller overwrites it";
  slot = 2;
  EXPECT_EQ(table.find(7, same_text(0)), 2);
  EXPECT_EQ(table.find(8, same_text(1)), 1);
}

TEST(TokenizerTables, ATextTwiceInTheVocabularyFindsItsLaterId) {
  slm::TokenizerMetadata metadata;
  metadata.model = "gpt2";
  metadata.tokens = {"a", "b", "ab", "a"};
  metadata.merges = {"a b"};
  const Tokenizer tokenizer = Tokenizer::from_metadata(metadata);
  EXPECT_EQ(tokenizer.find_token("a"), std::optional<TokenId>(3));
  EXPECT_EQ(tokenizer.find_token("ab"), std::optional<TokenId>(2));
  EXPECT_EQ(tokenizer.find_token("ba"), std::nullopt);
}

TEST(TokenizerTables, AMergeListedTwiceKeepsItsFirstRank) {
  // "abc": with a+b at rank 0, "ab" + "c"; were the repeat at rank 2 to win, b+c (rank 1) would
  // go first and give "a" + "bc".
  slm::TokenizerMetadata metadata;
  metadata.model = "gpt2";
  metadata.tokens = {"a", "b", "c", "ab", "bc"};
  metadata.merges = {"a b", "b c", "a b"};
  EXPECT_EQ(Tokenizer::from_metadata(metadata).tokenize("abc", false, false), (std::vector<TokenId>{3, 2}));
  metadata.merges = {"b c", "a b", "b c"};
  EXPECT_EQ(Tokenizer::from_metadata(metadata).tokenize("abc", false, false), (std::vector<TokenId>{0, 4}));
}

// Every text and merge of a real vocabulary against the maps the tables replaced.
void expect_tables_match_maps(const std::string& name) {
  const slm::GgufFile file = slm::GgufFile::open(slm::test::shared_path("vocab/ggml-vocab-" + name + ".gguf").string());
  slm::tokenizer::Vocabulary vocabulary;
  vocabulary.texts = file.get_array("tokenizer.ggml.tokens").strings;
  vocabulary.index_texts();
  std::unordered_map<std::string, TokenId> text_to_id;
  for (size_t i = 0; i < vocabulary.texts.size(); ++i) text_to_id.insert_or_assign(vocabulary.texts[i], TokenId(i));
  for (const std::string& text : vocabulary.texts) ASSERT_EQ(vocabulary.find(text), text_to_id.at(text)) << text;
  EXPECT_EQ(vocabulary.find("no such token \x01"), -1);

  const slm::GgufArray* merges = file.get_array_opt("tokenizer.ggml.merges");
  if (!merges) return;
  const auto model = slm::tokenizer::BpeModel::build(merges->strings, vocabulary, {}, name);
  std::unordered_map<std::string, int32_t> rank_of_line;  // "left right" -> first rank
  for (size_t rank = 0; rank < merges->strings.size(); ++rank) rank_of_line.emplace(merges->strings[rank], int32_t(rank));
  for (const std::string& line : merges->strings) {
    const size_t space = line.find(' ', 1);
    ASSERT_EQ(model.rank_of(line.substr(0, space), line.substr(space + 1)), rank_of_line.at(line)) << line;
  }
  EXPECT_EQ(model.rank_of(vocabulary.texts[0], "no such token \x01"), -1);
  EXPECT_GT(merges->strings.size(), 10000u);
}

TEST(TokenizerTables, EveryTokenAndMergeOfTheSharedVocabulariesLooksUpAsTheMapsDid) {
  for (const std::string name : {"llama-bpe", "qwen2", "gpt-2", "llama-spm", "phi-3"}) {
    SCOPED_TRACE(name);
    SLM_REQUIRE_ASSET(slm::test::shared_path("vocab/ggml-vocab-" + name + ".gguf"));
    expect_tables_match_maps(name);
  }
}

}  // namespace
