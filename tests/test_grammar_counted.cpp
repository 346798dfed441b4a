// Counted repetitions x{m,n}: the mask at a position inside one is derived from the item's
// canonical chain (CountedFrame in lib/grammar/compiled_grammar.hpp) instead of a walk of its
// own. The derived mask must be exactly the tokens whose bytes the grammar accepts: checked here
// against that definition on random grammars, random counts and random texts, over a vocabulary
// of every short string of an alphabet that has quotes, escapes and a two-byte character, plus
// longer random pieces (tokens that take many items, or leave the repetition and go on).
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "lib/grammar/compiled_grammar.hpp"
#include "slm/grammar.hpp"
#include "support/grammar_random_texts.hpp"

namespace {

std::vector<std::string> test_pieces(std::mt19937& rng) {
  const std::vector<std::string> alphabet = {"a", "b", "c", "x", "\"", "\\", "n", "\xC3\xA9"};
  std::vector<std::string> pieces = {""};  // token 0: the end of generation
  for (const std::string& a : alphabet) {
    pieces.push_back(a);
    for (const std::string& b : alphabet) {
      pieces.push_back(a + b);
      for (const std::string& c : alphabet) pieces.push_back(a + b + c);
    }
  }
  for (int i = 0; i < 400; ++i) {
    std::string piece;
    const size_t length = 4 + rng() % 12;
    while (piece.size() < length) piece += alphabet[rng() % alphabet.size()];
    pieces.push_back(piece);
  }
  return pieces;
}

// Grammars with a counted repetition "{M,N}" where the text says so; "*" in N: unbounded.
const char* const grammar_templates[] = {
    // A JSON string of bounded length, then more text.
    R"(root ::= "\"" char{M,N} "\"" ("x" | "ab")
char ::= [^"\\] | "\\" ["\\n])",
    // A single-byte item (becomes an item rule of its own), its exit sharing bytes with the item.
    R"(root ::= [ab]{M,N} "b" "c"?)",
    // An item of several bytes, and the repetition nested in another.
    R"(root ::= ("ab" | "c" | "\xC3\xA9"){M,N} ("x"{2,3} "a"){1,2})",
    // An ambiguous item ("a" "a" or "aa"): the counts cannot be derived; the position is walked as is.
    R"(root ::= ("a" | "aa" | "b"){M,N} "x")",
    // A nullable item: no counted frames at all.
    R"(root ::= ("a"? "b"?){M,N} "x")",
};

std::string with_counts(std::string text, int32_t min, int32_t max) {
  const size_t at = text.find("{M,N}");
  return text.replace(at, 5, "{" + std::to_string(min) + "," + (max < 0 ? "" : std::to_string(max)) + "}");
}

TEST(GrammarCounted, DerivedMasksAreExactlyTheTokensTheGrammarAcceptsOnRandomGrammarsAndCounts) {
  slm::test::RandomTextsOnPieces texts(test_pieces);
  std::mt19937& rng = texts.rng;  // the counts are drawn from the same sequence as the texts
  int32_t counted_grammars = 0;
  for (int round = 0; round < 200; ++round) {
    const int32_t min = int32_t(rng() % 6), span = int32_t(rng() % 8);
    const size_t which = size_t(round) % std::size(grammar_templates);
    // Unbounded (x{m,}), but not for the nullable item: that is a left recursion, an error.
    const int32_t max = rng() % 5 == 0 && which != 4 ? -1 : std::max(min + span, 2);
    const std::string text = with_counts(grammar_templates[which], min, max);
    SCOPED_TRACE(text);
    const slm::Grammar grammar = slm::compile_gbnf(text);
    counted_grammars += !grammar.compiled->counted_frames.empty();
    texts.expect_masks_follow_their_definition_on_a_random_text(grammar, 30);
    if (HasFatalFailure()) return;
  }
  EXPECT_GE(counted_grammars, 120);  // every template but the nullable item's has them, but for x{0,}
}

TEST(GrammarCounted, ARepetitionAcceptsExactlyItsCounts) {
  const slm::Grammar grammar = slm::compile_gbnf(R"(root ::= "<" ("ab" | "c"){2,4} ">")");
  for (const char* text : {"<abc>", "<cc>", "<ababcab>", "<cccc>"}) {
    slm::GrammarMatcher m(grammar, slm::make_grammar_vocabulary(std::vector<std::string>{"x"}, {}));
    EXPECT_TRUE(m.accept_bytes(text) && m.is_complete()) << text;
  }
  for (const char* text : {"<c>", "<ccccc>", "<abababab>c", "<a>"}) {
    slm::GrammarMatcher m(grammar, slm::make_grammar_vocabulary(std::vector<std::string>{"x"}, {}));
    EXPECT_FALSE(m.accept_bytes(text) && m.is_complete()) << text;
  }
}

}  // namespace
