// A trie subtree whose every path is text (JSON string characters, UTF-8 included) is accepted
// whole by a state that every text character leads back to (MatcherCache::loops_on_text). The
// masks must stay exactly the tokens whose bytes the grammar accepts: checked against that
// definition on random texts, over a vocabulary of every byte and of random runs of pieces that
// are text, partial characters, or not text (quotes, escapes, controls, 7F, overlong forms,
// surrogates, stray continuation bytes), for grammars whose strings take all text, all but one
// character, all but 7F, or ASCII only.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "lib/grammar/utf8_ranges.hpp"
#include "slm/grammar.hpp"
#include "support/grammar_random_texts.hpp"

namespace {

std::vector<std::string> text_test_pieces(std::mt19937& rng) {
  const std::vector<std::string> alphabet = {
      "a", " ", "Z", "\"", "\\", "\n", "\x7F", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xE4", "\xE4\xB8",
      "\xF0\x9F", "\xC0\x80", "\xED\xA0\x80", "\xE0\x80", "\x80", "\xF5", "\xF4\x90",
  };
  std::vector<std::string> pieces = {""};  // token 0: the end of generation
  for (int b = 1; b < 256; ++b) pieces.push_back(std::string(1, char(b)));
  for (int i = 0; i < 3000; ++i) {
    std::string piece;
    const size_t items = 1 + rng() % 6;
    // Mostly text ("a", " ", "é", "中", "😀"), so that whole subtrees are text.
    const size_t text_items[] = {0, 1, 7, 8, 9};
    for (size_t k = 0; k < items; ++k) piece += alphabet[rng() % 4 == 0 ? rng() % alphabet.size() : text_items[rng() % 5]];
    pieces.push_back(piece);
  }
  return pieces;
}

const char* const text_grammars[] = {
    // A JSON string, its characters all text.
    R"(root ::= "\"" char* "\"" "x"?
char ::= [^"\\\x00-\x1F] | "\\" ["\\nu])",
    // Strings in a list: the per-state walks below a cut.
    R"(root ::= "[" (str ",")* str "]"
str ::= "\"" [^"\\\x00-\x1F]* "\"")",
    // All text but one character (the state loops on plain text only).
    R"(root ::= "\"" [^"\\\x00-\x1F\u4E2D]* "\"")",
    // All text but 7F.
    R"(root ::= "\"" [^"\\\x00-\x1F\x7F]* "\"")",
    // ASCII only.
    R"(root ::= "\"" [ !#-\[\]-~]* "\"")",
    // A key that is not "ab": a trie of the name, then any text.
    R"(root ::= "\"" ("a" ("b" [^"\\\x00-\x1F]+ | [^"\\\x00-\x1Fb] [^"\\\x00-\x1F]*)? | [^"\\\x00-\x1Fa] [^"\\\x00-\x1F]*) "\"")",
};

TEST(GrammarText, SubtreesOfTextAreAcceptedExactlyAsTheGrammarAcceptsTheirTokens) {
  slm::test::RandomTextsOnPieces texts(text_test_pieces);
  int64_t accepted_with_utf8 = 0;
  for (int round = 0; round < 36; ++round) {
    const char* text = text_grammars[size_t(round) % std::size(text_grammars)];
    SCOPED_TRACE(text);
    const slm::Grammar grammar = slm::compile_gbnf(text);
    texts.expect_masks_follow_their_definition_on_a_random_text(
        grammar, 20, [&](slm::TokenId t) { accepted_with_utf8 += texts.pieces[size_t(t)].find('\xE4') != std::string::npos; });
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(accepted_with_utf8, 1000);  // the UTF-8 pieces were in play
}

TEST(GrammarText, TextStepFollowsUtf8WellFormedness) {
  using slm::grammar::text_step;
  const auto is_text = [](const std::string& bytes) {
    int q = slm::grammar::text_between_characters;
    for (char c : bytes)
      if ((q = text_step(q, uint8_t(c))) == slm::grammar::text_dead) return false;
    return true;
  };
  for (const char* text : {"abc \x7F", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF", "\xE4\xB8"})
    EXPECT_TRUE(is_text(text)) << text;
  for (const char* text : {"\"", "\\", "\n", "\xC0\x80", "\xC1\xBF", "\xE0\x9F\xBF", "\xED\xA0\x80", "\x80", "\xF4\x90\x80\x80", "\xF5", "\xC3\xC3"})
    EXPECT_FALSE(is_text(text)) << text;
}

}  // namespace
