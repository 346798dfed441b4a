// Token masks against their definition: a token is allowed exactly when the grammar accepts its
// bytes after the text so far. Checked on the real Qwen2.5 vocabulary (151,936 tokens, tokens
// that span a string's closing quote and what follows), at every step of a document, for several
// grammars on one vocabulary, so that the positions they share (PositionTokensCache) are reused.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "lib/grammar/compiled_grammar.hpp"
#include "lib/grammar/grammar_vocabulary.hpp"
#include "lib/grammar/position_key.hpp"
#include "slm/gguf.hpp"
#include "slm/grammar.hpp"
#include "slm/tokenizer.hpp"
#include "support/assets.hpp"

namespace {

struct MaskCase {
  const char* schema;  // nullptr: json_object_grammar()
  const char* document;
};

const MaskCase cases[] = {
    {nullptr, R"({"name": "Ada", "tags": ["x", "y z"], "n": {"k": -1.5e3, "ok": true}})"},
    {R"({"type":"object","properties":{"label":{"enum":["billing","other"]},"reason":{"type":"string","maxLength":12},"id":{"type":"string","format":"uuid"}},"required":["label","reason"]})",
     R"({"label": "other", "reason": "it broke\n", "id": "123e4567-e89b-12d3-a456-426614174000"})"},
    {R"({"$defs":{"n":{"type":"object","properties":{"v":{"type":"string"},"k":{"type":"array","items":{"$ref":"#/$defs/n"}}},"required":["v"]}},"$ref":"#/$defs/n"})",
     R"({"v": "a\"b", "k": [{"v": ""}, {"v": "é, ok", "k": []}]})"},
};

// Every mask along `document` equals the tokens whose bytes the grammar accepts after the text so far.
void expect_masks_follow_their_definition(const slm::Grammar& grammar, const std::string& document,
                                          const slm::Tokenizer& tokenizer,
                                          const std::shared_ptr<const slm::GrammarVocabulary>& vocabulary) {
  SCOPED_TRACE(document);
  slm::GrammarMatcher matcher(grammar, vocabulary);
  slm::GrammarMatcher reference(grammar, vocabulary);
  slm::TokenMask mask;
  std::string text;
  const std::vector<slm::TokenId> tokens = tokenizer.tokenize(document, false, false);
  for (size_t step = 0; step <= tokens.size(); ++step) {
    matcher.fill_mask(mask);
    int32_t wrong = 0, allowed = 0;
    for (slm::TokenId t = 0; t < tokenizer.n_vocab(); ++t) {
      reference.reset();
      const bool accepts = reference.accept_bytes(text) && reference.accept_token(t);
      wrong += mask.allows(t) != accepts;
      allowed += accepts;
    }
    ASSERT_EQ(wrong, 0) << "at token " << step << " after '" << text << "' (" << allowed << " allowed)";
    if (step == tokens.size()) break;
    ASSERT_TRUE(matcher.accept_token(tokens[step]));
    text += tokenizer.token_to_piece(tokens[step], false);
  }
  EXPECT_TRUE(matcher.can_end());
}

TEST(GrammarMask, AllowsExactlyTheTokensWhoseBytesTheGrammarAcceptsOnTheQwenVocabulary) {
  const auto vocab_path = slm::test::shared_path("vocab/ggml-vocab-qwen2.gguf");
  SLM_REQUIRE_ASSET(vocab_path);
  const slm::Tokenizer tokenizer = slm::Tokenizer::from_gguf(slm::GgufFile::open(vocab_path.string()));
  const auto vocabulary = slm::make_grammar_vocabulary(tokenizer);
  for (const MaskCase& c : cases)
    expect_masks_follow_their_definition(c.schema ? slm::grammar_from_json_schema(c.schema) : slm::json_object_grammar(),
                                         c.document, tokenizer, vocabulary);
}

// An object of many properties: a position inside it has too many rules below to be shared
// between grammars as a whole, so its mask is found from fewer frames and the rest walked per
// state (MatcherCache::cut_stack).
TEST(GrammarMask, PositionsInsideALargeObjectAllowExactlyTheTokensOfTheDefinition) {
  const auto vocab_path = slm::test::shared_path("vocab/ggml-vocab-qwen2.gguf");
  SLM_REQUIRE_ASSET(vocab_path);
  const slm::Tokenizer tokenizer = slm::Tokenizer::from_gguf(slm::GgufFile::open(vocab_path.string()));
  const auto vocabulary = slm::make_grammar_vocabulary(tokenizer);
  std::string schema = R"({"type":"object","additionalProperties":false,"properties":{)";
  const char* const types[] = {R"({"type":"integer"})", R"({"type":"number"})", R"({"type":"boolean"})",
                               R"({"type":"string","minLength":1})"};
  for (int i = 0; i < 80; ++i) schema += (i ? "," : "") + ("\"p" + std::to_string(i) + "\":") + types[i % 4];
  schema += "}}";
  expect_masks_follow_their_definition(slm::grammar_from_json_schema(schema),
                                       R"({"p0": 12, "p1": -0.5, "p2": true, "p3": "ab", "p41": 7, "p79": "z"})",
                                       tokenizer, vocabulary);
}

// A rule of thousands of alternatives (a large enum) makes a position too large to share
// between grammars: its key is given up as soon as it is too large, and the position is walked
// for this grammar alone, with the same tokens.
TEST(GrammarMask, PositionsInsideALargeEnumAllowExactlyTheTokensOfTheDefinition) {
  const auto vocab_path = slm::test::shared_path("vocab/ggml-vocab-qwen2.gguf");
  SLM_REQUIRE_ASSET(vocab_path);
  const slm::Tokenizer tokenizer = slm::Tokenizer::from_gguf(slm::GgufFile::open(vocab_path.string()));
  const auto vocabulary = slm::make_grammar_vocabulary(tokenizer);
  std::string schema = R"({"type":"object","properties":{"code":{"enum":[)";
  for (int i = 0; i < 3000; ++i) schema += (i ? ",\"c" : "\"c") + std::to_string(i * 7) + "\"";
  schema += R"(]},"note":{"type":"string"}},"required":["code","note"],"additionalProperties":false})";
  expect_masks_follow_their_definition(slm::grammar_from_json_schema(schema), R"({"code": "c2107", "note": "ok"})",
                                       tokenizer, vocabulary);
}

// The cache of positions shared by the grammars on a vocabulary holds at most max_bytes.
TEST(GrammarMask, TheSharedCacheOfPositionsStaysWithinItsBytes) {
  slm::PositionTokensCache cache;
  size_t most = 0;
  for (int i = 0; i < 4000; ++i) {
    auto tokens = std::make_shared<slm::PositionTokens>();
    tokens->words.assign(2374, uint64_t(i));  // a bitset of the Qwen2.5 vocabulary
    const std::string key = "position " + std::to_string(i);
    cache.insert(key, tokens);
    ASSERT_EQ(cache.find(key), tokens);
    most = std::max(most, cache.bytes);
  }
  EXPECT_LE(most, slm::PositionTokensCache::max_bytes);
  EXPECT_GT(most, slm::PositionTokensCache::max_bytes / 2);
}

// Positions of different grammars share their tokens through their keys: a key numbers rules
// in the order it meets them, so the same rules under other indices give the same key, and a key
// does not depend on the keys made before it (nor on one abandoned for its length).
TEST(GrammarPositionKey, SameRulesSameKeyWhateverTheirIndicesAndWhateverWasKeyedBefore) {
  const slm::Grammar list = slm::compile_gbnf("root ::= \"[\" item (\",\" item)* \"]\"\nitem ::= [a-z]+ | \"x\" item\n");
  const slm::Grammar shifted = slm::compile_gbnf(
      "unused ::= \"u\" unused2\nunused2 ::= \"v\"\nroot ::= \"[\" item (\",\" item)* \"]\"\nitem ::= [a-z]+ | \"x\" item\n");
  const slm::Grammar other = slm::compile_gbnf("root ::= \"[\" item (\";\" item)* \"]\"\nitem ::= [a-z]+ | \"x\" item\n");
  const auto key = [](const slm::Grammar& g, size_t max_bytes) {
    const slm::grammar::CompiledGrammar& c = *g.compiled;
    return slm::grammar::position_key(c, {c.rule_alternatives[size_t(c.root)][0] + 1}, true, max_bytes);
  };
  const std::string first = key(list, 4096);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(key(shifted, 4096), first);
  EXPECT_NE(key(other, 4096), first);
  EXPECT_EQ(key(list, 8), "");  // too long: not shared
  EXPECT_EQ(key(list, 4096), first);
}

}  // namespace
