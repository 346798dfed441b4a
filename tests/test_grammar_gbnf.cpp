// GBNF: the parser (errors with line and column, limits) and the language each construct
// accepts, checked byte by byte through GrammarMatcher::accept_bytes / can_end.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "slm/error.hpp"
#include "slm/grammar.hpp"
#include "support/grammar_bytes.hpp"

namespace {

using slm::test::byte_vocabulary;

// The whole text is a sentence of the grammar.
bool matches(const std::string& gbnf, const std::string& text) {
  return slm::test::grammar_matches(slm::compile_gbnf(gbnf), text);
}

std::string parse_error(const std::string& gbnf) {
  return slm::test::error_of([&] { slm::compile_gbnf(gbnf); });
}

TEST(GbnfLanguage, StringLiteralsAndSequences) {
  EXPECT_TRUE(matches(R"(root ::= "ab" "c")", "abc"));
  EXPECT_FALSE(matches(R"(root ::= "ab" "c")", "ab"));
  EXPECT_FALSE(matches(R"(root ::= "ab" "c")", "abcd"));
  EXPECT_FALSE(matches(R"(root ::= "ab" "c")", "abd"));
}

TEST(GbnfLanguage, AlternationAndGrouping) {
  const std::string g = R"(root ::= ("a" | "bc") "d" | "x")";
  EXPECT_TRUE(matches(g, "ad"));
  EXPECT_TRUE(matches(g, "bcd"));
  EXPECT_TRUE(matches(g, "x"));
  EXPECT_FALSE(matches(g, "bd"));
  EXPECT_FALSE(matches(g, "xd"));
}

TEST(GbnfLanguage, RuleReferencesAndRecursion) {
  const std::string g = "root ::= list\nlist ::= \"(\" list* \")\"\n";
  EXPECT_TRUE(matches(g, "()"));
  EXPECT_TRUE(matches(g, "(()(()))"));
  EXPECT_FALSE(matches(g, "(()"));
  EXPECT_FALSE(matches(g, "())"));
}

TEST(GbnfLanguage, Repetitions) {
  EXPECT_TRUE(matches(R"(root ::= "a"*)", ""));
  EXPECT_TRUE(matches(R"(root ::= "a"*)", "aaaa"));
  EXPECT_FALSE(matches(R"(root ::= "a"+)", ""));
  EXPECT_TRUE(matches(R"(root ::= "a"+)", "aaa"));
  EXPECT_TRUE(matches(R"(root ::= "a"? "b")", "b"));
  EXPECT_TRUE(matches(R"(root ::= "a"? "b")", "ab"));
  EXPECT_FALSE(matches(R"(root ::= "a"? "b")", "aab"));
  EXPECT_FALSE(matches(R"(root ::= "a"{2,3})", "a"));
  EXPECT_TRUE(matches(R"(root ::= "a"{2,3})", "aa"));
  EXPECT_TRUE(matches(R"(root ::= "a"{2,3})", "aaa"));
  EXPECT_FALSE(matches(R"(root ::= "a"{2,3})", "aaaa"));
  EXPECT_TRUE(matches(R"(root ::= "ab"{2})", "abab"));
  EXPECT_FALSE(matches(R"(root ::= "ab"{2})", "ababab"));
  EXPECT_TRUE(matches(R"(root ::= "a"{2,})", "aaaaaa"));
  EXPECT_FALSE(matches(R"(root ::= "a"{2,})", "a"));
  EXPECT_TRUE(matches(R"(root ::= "a"{0,1} "b")", "b"));
}

TEST(GbnfLanguage, CharacterClasses) {
  EXPECT_TRUE(matches("root ::= [a-cx]+", "abcx"));
  EXPECT_FALSE(matches("root ::= [a-cx]+", "abd"));
  EXPECT_TRUE(matches("root ::= [^a-c]", "d"));
  EXPECT_FALSE(matches("root ::= [^a-c]", "b"));
  // A negated class matches whole UTF-8 characters, not single bytes.
  EXPECT_TRUE(matches("root ::= [^a-c]", "\xC3\xA9"));
  EXPECT_TRUE(matches("root ::= [^a-c]", "\xF0\x9F\x98\x80"));
  EXPECT_FALSE(matches("root ::= [^a-c]", "\xC3"));
  EXPECT_TRUE(matches("root ::= [à-ü]", "\xC3\xA9"));   // é
  EXPECT_FALSE(matches("root ::= [à-ü]", "\xC3\xBF"));  // ÿ
  EXPECT_TRUE(matches("root ::= .", "\xE2\x82\xAC"));   // €
  EXPECT_FALSE(matches("root ::= .", "ab"));
  EXPECT_TRUE(matches(R"(root ::= [\]\-\\])", "]"));
  EXPECT_TRUE(matches(R"(root ::= [\]\-\\])", "-"));
  EXPECT_TRUE(matches(R"(root ::= [\]\-\\])", "\\"));
  EXPECT_TRUE(matches(R"(root ::= [a-])", "-"));
  // A class written again is the same class (the parser looks it up by its text); classes that
  // differ only after an escaped ']' are not.
  EXPECT_TRUE(matches(R"(root ::= [\]a] [\]b] [\]a])", "ab]"));
  EXPECT_FALSE(matches(R"(root ::= [\]a] [\]b] [\]a])", "aa]"));
  EXPECT_FALSE(matches(R"(root ::= [\]a] [\]b] [\]a])", "abb"));
}

TEST(GbnfLanguage, Escapes) {
  EXPECT_TRUE(matches(R"(root ::= "\n\t\r\"\\")", "\n\t\r\"\\"));
  EXPECT_TRUE(matches(R"(root ::= "\x41\u00e9\U0001F600")", "A\xC3\xA9\xF0\x9F\x98\x80"));
  EXPECT_TRUE(matches(R"(root ::= [\x00-\x1F])", std::string(1, '\x05')));
  EXPECT_TRUE(matches(R"(root ::= [\u4e00-\u9fff]+)", "\xE4\xB8\xAD\xE6\x96\x87"));  // 中文
}

TEST(GbnfLanguage, CommentsAndLayout) {
  const std::string g =
      "# a comment line\n"
      "root ::= item (\n"
      "    \",\" item  # inside parentheses a rule goes on over lines\n"
      "  )*\n"
      "item ::= \"x\" |\n"
      "  \"y\"\n";
  EXPECT_TRUE(matches(g, "x,y,x"));
  EXPECT_FALSE(matches(g, "x,"));
}

TEST(GbnfLanguage, EmptyAlternativeAndCompletion) {
  slm::GrammarMatcher m(slm::compile_gbnf(R"(root ::= "a" ("b" | ""))"), byte_vocabulary());
  EXPECT_FALSE(m.can_end());
  ASSERT_TRUE(m.accept_bytes("a"));
  EXPECT_TRUE(m.can_end());
  EXPECT_FALSE(m.is_complete());  // "b" may still follow
  EXPECT_FALSE(m.accept_bytes("c"));
  ASSERT_TRUE(m.accept_bytes("b"));
  EXPECT_TRUE(m.is_complete());
  m.reset();
  EXPECT_FALSE(m.can_end());
}

TEST(GbnfParser, ErrorsNameLineAndColumn) {
  EXPECT_EQ(parse_error("root ::= \"a\"\nitem ::= [a-\n"), "grammar: line 2, column 13: unterminated character class");
  EXPECT_EQ(parse_error("root ::= foo\n"), "grammar: line 1, column 10: rule 'foo' is used but never defined");
  EXPECT_EQ(parse_error("root = \"a\"\n"), "grammar: line 1, column 6: expected '::=' after rule name 'root', found '='");
  EXPECT_EQ(parse_error("item ::= \"a\"\n"), "grammar: there is no rule 'root'");
  EXPECT_EQ(parse_error("root ::= \"a\n\""), "grammar: line 1, column 12: unterminated string literal");
  EXPECT_EQ(parse_error("root ::= \"\\q\""), "grammar: line 1, column 12: unknown escape '\\q'");
  EXPECT_EQ(parse_error("root ::= * \"a\""), "grammar: line 1, column 10: '*' has nothing before it to repeat");
  EXPECT_EQ(parse_error("root ::= \"a\"{3,2}"), "grammar: line 1, column 18: repetition {3,2} has its maximum below its minimum");
  EXPECT_EQ(parse_error("root ::= \"a\"\nroot ::= \"b\"\n"), "grammar: line 2, column 1: rule 'root' is defined twice");
  EXPECT_EQ(parse_error("root ::= [z-a]"), "grammar: line 1, column 14: character range U+7A-U+61 is reversed");
}

TEST(GbnfParser, LeftRecursionIsAnError) {
  EXPECT_NE(parse_error("root ::= root \"a\" | \"a\"").find("rule 'root' is left-recursive"), std::string::npos);
  EXPECT_NE(parse_error("root ::= x\nx ::= e root\ne ::= \"\"?\n").find("left-recursive"), std::string::npos);
  EXPECT_NE(parse_error("root ::= (\"a\"?)*").find("left-recursive"), std::string::npos);
  EXPECT_EQ(parse_error("root ::= \"a\" root | \"b\""), "(no error)");  // right recursion is fine
}

TEST(GbnfParser, HostileInputIsRefusedNotCrashed) {
  EXPECT_NE(parse_error("root ::= " + std::string(100, '(') + "\"a\"" + std::string(100, ')')).find("nested deeper than 64"),
            std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"{99999}").find("beyond the limit"), std::string::npos);
  // Groups become rules of their own, so nested repetitions stay small...
  EXPECT_EQ(parse_error("root ::= ((\"ab\"{10000}){10000}){10000}"), "(no error)");
  // ...and a grammar beyond the limits is refused.
  slm::GrammarLimits small;
  small.max_elements = 1000;
  EXPECT_THROW(slm::compile_gbnf("root ::= \"a\"{5000}", small), slm::Error);
  small.max_text_bytes = 8;
  EXPECT_THROW(slm::compile_gbnf("root ::= \"abc\"", small), slm::Error);
}

TEST(GrammarMask, AllowsExactlyTheTokensThatKeepTheGrammarAlive) {
  const std::vector<std::string> pieces = {"a", "ab", "abc", "b", "{", "", "ba", "c"};
  const slm::TokenId end[] = {5};
  const auto vocabulary = slm::make_grammar_vocabulary(pieces, end);
  slm::GrammarMatcher m(slm::compile_gbnf(R"(root ::= "a" "b"* "c"?)"), vocabulary);
  slm::TokenMask mask;
  m.fill_mask(mask);
  const auto allowed = [&] {
    std::string s;
    for (slm::TokenId t = 0; t < mask.n_tokens; ++t) s += mask.allows(t) ? '1' : '0';
    return s;
  };
  EXPECT_EQ(allowed(), "11100000");  // a ab abc; not the end token yet
  ASSERT_TRUE(m.accept_token(1));    // "ab"
  m.fill_mask(mask);
  EXPECT_EQ(allowed(), "00010101");  // b, the end token, c ("ba" is dead after its first byte)
  ASSERT_TRUE(m.accept_token(7));    // "c"
  EXPECT_TRUE(m.is_complete());
  m.fill_mask(mask);
  EXPECT_EQ(allowed(), "00000100");  // only the end
  EXPECT_FALSE(m.accept_token(0));
  EXPECT_TRUE(m.accept_token(5));
  m.fill_mask(mask);
  EXPECT_EQ(allowed(), "00000000");
}

}  // namespace
