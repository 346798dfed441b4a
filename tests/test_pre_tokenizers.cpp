// Every pre-tokenizer llama.cpp knows by its tokenizer.ggml.pre name. The words each one makes
// of a few texts are worked out by hand from its regexes, read the way llama.cpp runs them
// (lib/tokenizer/llama_regex.hpp); then real vocabularies are loaded under other names, as
// vocab-only GGUF files, to show the names reach the tokenizer; then the tokenizers of the
// Gemma and Phi-4-mini families.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lib/tokenizer/llama_regex.hpp"
#include "lib/tokenizer/pre_tokenizer.hpp"
#include "slm/error.hpp"
#include "slm/gguf.hpp"
#include "slm/gguf_writer.hpp"
#include "slm/tokenizer.hpp"
#include "support/assets.hpp"

namespace {

using slm::TokenId;
using slm::Tokenizer;
using slm::tokenizer::find_pre_tokenizer_spec;
using slm::tokenizer::PreTokenizer;
using Words = std::vector<std::string>;

Words split_by(std::vector<std::string_view> patterns, std::string_view text) {
  const PreTokenizer pre_tokenizer(patterns);
  Words words;
  for (const auto word : pre_tokenizer.split(text)) words.emplace_back(word);
  return words;
}

Words split_with(std::string_view pre_name, std::string_view text) {
  const auto* spec = find_pre_tokenizer_spec(pre_name);
  if (spec == nullptr) {
    ADD_FAILURE() << "unknown pre-tokenizer " << pre_name;
    return {};
  }
  return split_by({spec->patterns.begin(), spec->patterns.end()}, text);
}

// ---- llama.cpp's reading of a regex -----------------------------------------------------------

TEST(LlamaRegexDialect, LetterSubcategoriesMatchEveryLetter) {
  EXPECT_EQ(split_by({R"re([\p{Lu}]+)re"}, "abCD\xC3\xA9"), (Words{"abCD\xC3\xA9"}));
}

TEST(LlamaRegexDialect, SymbolCategoryLeavesOutTilde) {
  EXPECT_EQ(split_by({R"re([\p{S}]+)re"}, "$~+"), (Words{"$", "~", "+"}));
  EXPECT_EQ(split_by({R"re([^\p{S}]+)re"}, "a~$b"), (Words{"a~", "$", "b"}));
  EXPECT_EQ(split_by({R"re(\p{S}+)re"}, "<~>"), (Words{"<", "~", ">"}));
}

TEST(LlamaRegexDialect, ClassesNeverMatchNonAsciiWhitespaceButSpaceEscapesDo) {
  // U+2FFF..U+3001 holds U+3000 IDEOGRAPHIC SPACE, which llama.cpp's text holds as U+000B.
  EXPECT_EQ(split_by({R"re([\x{2FFF}-\x{3001}]+)re"}, "\xE2\xBF\xBF\xE3\x80\x80\xE3\x80\x81"),
            (Words{"\xE2\xBF\xBF", "\xE3\x80\x80", "\xE3\x80\x81"}));
  EXPECT_EQ(split_by({R"re(\s+)re"}, "a\xE3\x80\x80" "b"), (Words{"a", "\xE3\x80\x80", "b"}));
}

TEST(LlamaRegexDialect, DigitEscapeIsAscii) {
  // Arabic-Indic one, two: \p{N}, but not std::regex's \d.
  EXPECT_EQ(split_by({R"re(\d+)re"}, "12\xD9\xA1\xD9\xA2"), (Words{"12", "\xD9\xA1\xD9\xA2"}));
  EXPECT_EQ(split_by({R"re(\p{N}+)re"}, "12\xD9\xA1\xD9\xA2"), (Words{"12\xD9\xA1\xD9\xA2"}));
}

TEST(LlamaRegexDialect, EmptyMatchesSplitTheText) {
  EXPECT_EQ(split_by({R"re((?=(\d{3})+(?!\d)))re"}, "1234567"), (Words{"1", "234", "567"}));
}

TEST(LlamaRegexDialect, ConstructsOutsideTheDialectAreErrors) {
  using slm::tokenizer::translate_llama_regex;
  EXPECT_THROW(translate_llama_regex(R"re([\S])re"), slm::Error);
  EXPECT_THROW(translate_llama_regex(R"re(\P{L})re"), slm::Error);
  EXPECT_THROW(translate_llama_regex(R"re(\P{S})re"), slm::Error);
  EXPECT_THROW(translate_llama_regex(R"re(\p{Han}+)re"), slm::Error);
  EXPECT_THROW(translate_llama_regex(R"re([~\p{S}])re"), slm::Error);
  EXPECT_THROW(translate_llama_regex(R"re(a\x{3000}b)re"), slm::Error);
}

// ---- the words of each pre-tokenizer ----------------------------------------------------------

TEST(PreTokenizerWords, Qwen35JoinsCombiningMarksToLetters) {
  const std::string cafes = " cafe\xCC\x81s";  // e + U+0301 COMBINING ACUTE ACCENT
  EXPECT_EQ(split_with("qwen35", cafes), (Words{cafes}));
  EXPECT_EQ(split_with("qwen2", cafes), (Words{" cafe", "\xCC\x81s"}));
  const std::string ki = "\xE0\xA4\x95\xE0\xA4\xBF";  // Devanagari KA + vowel sign I (a mark)
  EXPECT_EQ(split_with("qwen35", ki), (Words{ki}));
  EXPECT_EQ(split_with("qwen2", ki), (Words{"\xE0\xA4\x95", "\xE0\xA4\xBF"}));
}

TEST(PreTokenizerWords, Qwen35SplitsDigitsOneByOneAndContractionsOff) {
  EXPECT_EQ(split_with("qwen35", "In 2024, I'M here"),
            (Words{"In", " ", "2", "0", "2", "4", ",", " I", "'M", " here"}));
}

TEST(PreTokenizerWords, Gpt4oSplitsCasedWordsKeepsContractionsAndGroupsDigitsByThree) {
  EXPECT_EQ(split_with("gpt-4o", "HelloWorld he's 12345"), (Words{"Hello", "World", " he's", " ", "123", "45"}));
  EXPECT_EQ(split_with("gpt-4o", "getHTTPResponse"), (Words{"get", "HTTPResponse"}));
  EXPECT_EQ(split_with("gpt-4o", "a/\n/b"), (Words{"a", "/\n/", "b"}));
  // A combining mark is no letter here: it starts the next word.
  EXPECT_EQ(split_with("gpt-4o", "nai\xCC\x88ve"), (Words{"nai", "\xCC\x88ve"}));
  EXPECT_EQ(split_with("granite-embed-multi-97m", "nai\xCC\x88ve"), (Words{"nai\xCC\x88ve"}));
}

TEST(PreTokenizerWords, KimiK2KeepsHanApartFromOtherLetters) {
  EXPECT_EQ(split_with("kimi-k2", "Hello\xE4\xB8\x96\xE7\x95\x8C" "abc"),  // Hello世界abc
            (Words{"Hello", "\xE4\xB8\x96\xE7\x95\x8C", "abc"}));
  // と思います: kana, a Han ideograph, kana.
  EXPECT_EQ(split_with("kimi-k2", "\xE3\x81\xA8\xE6\x80\x9D\xE3\x81\x84\xE3\x81\xBE\xE3\x81\x99"),
            (Words{"\xE3\x81\xA8", "\xE6\x80\x9D", "\xE3\x81\x84\xE3\x81\xBE\xE3\x81\x99"}));
  // 佐々木: U+3005 (々) is of the Han script but outside llama.cpp's ideograph blocks.
  EXPECT_EQ(split_with("kimi-k2", "\xE4\xBD\x90\xE3\x80\x85\xE6\x9C\xA8"),
            (Words{"\xE4\xBD\x90", "\xE3\x80\x85", "\xE6\x9C\xA8"}));
  EXPECT_EQ(split_with("kimi-k2", "toString it's 12345"), (Words{"toString", " it's", " ", "123", "45"}));
  EXPECT_EQ(split_with("kimi-k2", "e\xCC\x81"), (Words{"e", "\xCC\x81"}));
}

TEST(PreTokenizerWords, DeepseekV3LeavesTildeOutOfSymbols) {
  EXPECT_EQ(split_with("deepseek-v3", "x ~~ y"), (Words{"x", " ", "~~", " y"}));
  EXPECT_EQ(split_with("deepseek-v3", "x ++ y"), (Words{"x", " ++", " y"}));
}

TEST(PreTokenizerWords, DeepseekLlmReadsIdeographicSpaceAsWhitespaceOnly) {
  // 。 U+3000 我: U+3000 lies in both the punctuation and the CJK ranges as llama.cpp writes them.
  EXPECT_EQ(split_with("deepseek-llm", "\xE3\x80\x82\xE3\x80\x80\xE6\x88\x91"),
            (Words{"\xE3\x80\x82", "\xE3\x80\x80", "\xE6\x88\x91"}));
}

TEST(PreTokenizerWords, AfmoeGroupsDigitsFromTheFrontAndJoinsTheTextBeforeThem) {
  EXPECT_EQ(split_with("afmoe", "1234567"), (Words{"1", "234", "567"}));
  EXPECT_EQ(split_with("afmoe", "ab 1234 cd"), (Words{"ab", " ", "1", "234", " cd"}));
  // "a   1" and "2" first; the last space before the digit then stands alone.
  EXPECT_EQ(split_with("afmoe", "a   12"), (Words{"a", "  ", " ", "12"}));
}

TEST(PreTokenizerWords, SuperBpeSplitsDigitRunsIntoThreesFromTheEnd) {
  EXPECT_EQ(split_with("superbpe", "1234567 89"), (Words{"1", "234", "567", " ", "89"}));
  EXPECT_EQ(split_with("superbpe", "\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4"), (Words{"\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4"}));
}

TEST(PreTokenizerWords, TinyAyaIgnoresCaseAndGroupsDigitsFromTheFront) {
  EXPECT_EQ(split_with("tiny_aya", "x HelloWorld"), (Words{"x", " HelloWorld"}));
  EXPECT_EQ(split_with("tiny_aya", "x 12345"), (Words{"x", " ", "12", "345"}));
}

TEST(PreTokenizerWords, YoutuKeepsHangulAndCjkPunctuationRuns) {
  const std::string annyeong = "\xEC\x95\x88\xEB\x85\x95", haseyo = "\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94";
  const std::string two_fullwidth_bangs = "\xEF\xBC\x81\xEF\xBC\x81";  // U+FF01 twice
  EXPECT_EQ(split_with("youtu", annyeong + " " + haseyo + two_fullwidth_bangs),
            (Words{annyeong, " ", haseyo, two_fullwidth_bangs}));
}

TEST(PreTokenizerWords, Jais2CutsSpaceRunsIntoPowersOfTwo) {
  EXPECT_EQ(split_with("jais-2", "a       b"), (Words{"a", "    ", "  ", " b"}));
  EXPECT_EQ(split_with("llama3", "a       b"), (Words{"a", "      ", " b"}));
}

TEST(PreTokenizerWords, ExaoneMoeJoinsWordsSeparatedBySingleSpaces) {
  EXPECT_EQ(split_with("exaone-moe", " New York 12"), (Words{" New York", " ", "1", "2"}));
}

TEST(PreTokenizerWords, SeedCoderAndSpark25KeepNewlinesApartFromPunctuation) {
  EXPECT_EQ(split_with("seed-coder", "!!\nx"), (Words{"!!", "\n", "x"}));
  EXPECT_EQ(split_with("qwen2", "!!\nx"), (Words{"!!\n", "x"}));
  EXPECT_EQ(split_with("spark2_5", "!!\n\nx"), (Words{"!!", "\n", "\n", "x"}));
  EXPECT_EQ(split_with("spark2_5", "1234"), (Words{"1", "2", "3", "4"}));
}

TEST(PreTokenizerWords, UfakzekaKeepsSuffixesAfterAnApostrophe) {
  EXPECT_EQ(split_with("ufakzeka", "Ankara'da"), (Words{"Ankara", "'da"}));
  EXPECT_EQ(split_with("qwen2", "Ankara'da"), (Words{"Ankara", "'d", "a"}));
}

TEST(PreTokenizerWords, MiniCpm5LagunaChameleonBailingAndWhitespace) {
  EXPECT_EQ(split_with("minicpm5", "ab12345"), (Words{"ab", "123", "45"}));
  EXPECT_EQ(split_with("laguna", "a\n\nb c"), (Words{"a", "\n\n", "b", " c"}));
  EXPECT_EQ(split_with("chameleon", "xIMGIMGABZy"), (Words{"x", "IMGIMGABZ", "y"}));
  EXPECT_EQ(split_with("chameleon", "a  b!!"), (Words{"a", "  ", "b", "!", "!"}));
  EXPECT_EQ(split_with("bailingmoe", "I'M 2024"), (Words{"I", "'M", " ", "2", "0", "2", "4"}));
  EXPECT_EQ(split_with("whitespace", "a,b  c"), (Words{"a,b", "  ", "c"}));
  EXPECT_EQ(split_with("gemma4", "Hello world\n\nok"), (Words{"Hello world", "\n\n", "ok"}));
}

// Names llama.cpp maps to the pre-tokenizer of another.
TEST(PreTokenizerWords, AliasesSplitLikeTheNameTheyStandFor) {
  const std::pair<const char*, const char*> aliases[] = {
      {"llama3", "llama-bpe"},     {"llama-v3", "llama-bpe"},  {"falcon3", "llama-bpe"},
      {"falcon-h1", "llama-bpe"},  {"pixtral", "llama-bpe"},   {"midm-2.0", "llama-bpe"},
      {"lfm2", "llama-bpe"},       {"jina-v5-nano", "llama-bpe"}, {"dbrx", "llama-bpe"},
      {"smaug-bpe", "llama-bpe"},  {"glm4", "llama-bpe"},      {"chatglm-bpe", "llama-bpe"},
      {"llama4", "gpt-4o"},        {"kanana2", "gpt-4o"},      {"talkie", "gpt-4o"},
      {"minimax-m2", "gpt-4o"},    {"deepseek-r1-qwen", "qwen2"}, {"kormo", "qwen2"},
      {"f2llmv2", "qwen2"},        {"stablelm2", "qwen2"},     {"megrez", "qwen2"},
      {"hunyuan", "qwen2"},        {"solar-open", "qwen2"},    {"grok-2", "qwen2"},
      {"hunyuan-dense", "deepseek-v3"}, {"hy_v4", "deepseek-v3"}, {"joyai-llm", "deepseek-v3"},
      {"cohere2moe", "tiny_aya"},  {"bailingmoe2", "bailingmoe"}, {"llada-moe", "bailingmoe"},
      {"mpt", "gpt-2"},            {"olmo", "gpt-2"},          {"jais", "gpt-2"},
      {"exaone4", "gpt-2"},        {"trillion", "gpt-2"},      {"granite-docling", "gpt-2"},
      {"a.x-4.0", "gpt-2"},        {"mellum", "gpt-2"},        {"modern-bert", "gpt-2"},
      {"phi-2", "gpt-2"},          {"roberta-bpe", "gpt-2"},   {"refact", "starcoder"},
      {"command-r", "starcoder"},  {"smollm", "starcoder"},    {"codeshell", "starcoder"},
      {"exaone", "starcoder"},     {"minerva-7b", "starcoder"}, {"mellum2", "starcoder"},
      {"bloom", "poro-chat"},      {"gpt3-finnish", "poro-chat"}, {"sarvam-moe", "gemma4"},
      {"granite-embed-multi-311m", "gemma4"}};
  const std::string text = "Don't 12345 caf\xC3\xA9 HelloWorld \xE4\xB8\x96\xE7\x95\x8C!!\n\n  x\xCC\x81 ~y";
  for (const auto& [alias, name] : aliases) EXPECT_EQ(split_with(alias, text), split_with(name, text)) << alias;
}

// Every tokenizer.ggml.pre value llama.cpp's llama_vocab::impl::load accepts, and no other.
TEST(PreTokenizerWords, EveryNameLlamaCppKnowsIsKnownAndCoversTheText) {
  const std::set<std::string> llama_cpp_names = {
      "default", "minicpm5", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
      "lfm2", "jina-v5-nano", "deepseek-llm", "deepseek-coder", "deepseek-v3", "spark2_5", "youtu", "falcon", "mpt",
      "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
      "mellum", "modern-bert", "jais-2", "gemma4", "granite-embed-multi-311m", "sarvam-moe", "jina-v1-en",
      "jina-v2-code", "roberta-bpe", "whitespace", "refact", "command-r", "qwen2", "deepseek-r1-qwen", "kormo",
      "f2llmv2", "qwen35", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "glm4", "chatglm-bpe", "viking",
      "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "exaone4", "exaone-moe",
      "chameleon", "minerva-7b", "megrez", "gpt-4o", "llama4", "kanana2", "talkie", "granite-embed-multi-97m",
      "tiny_aya", "cohere2moe", "superbpe", "trillion", "granite-docling", "bailingmoe", "bailingmoe2",
      "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "hy_v4", "joyai-llm", "kimi-k2", "ufakzeka", "grok-2",
      "afmoe", "laguna", "minimax-m2", "solar-open", "mellum2"};
  std::set<std::string> known;
  for (const auto& spec : slm::tokenizer::all_pre_tokenizer_specs()) known.emplace(spec.pre_name);
  EXPECT_EQ(known, llama_cpp_names);
  EXPECT_EQ(find_pre_tokenizer_spec("no-such-pre"), nullptr);
  const std::string text = "Hello, y'all! 3.14159 \xE6\x88\x91\xE6\x83\xB3 \xF0\x9F\x9A\x80  e\xCC\x81 ~\t end \r\n\n";
  for (const auto& name : llama_cpp_names) {
    std::string joined;
    for (const auto& word : split_with(name, text)) joined += word;
    EXPECT_EQ(joined, text) << name;
  }
}

TEST(PreTokenizerWords, FlagsAreTheOnesLlamaCppSets) {
  const auto& lfm2 = *find_pre_tokenizer_spec("lfm2");
  EXPECT_TRUE(lfm2.add_bos && lfm2.ignore_merges && lfm2.clean_spaces);
  const auto& qwen35 = *find_pre_tokenizer_spec("qwen35");
  EXPECT_TRUE(!qwen35.add_bos && !qwen35.ignore_merges && !qwen35.clean_spaces && qwen35.byte_level);
  const auto& gpt4o = *find_pre_tokenizer_spec("gpt-4o");
  EXPECT_TRUE(!gpt4o.add_bos && !gpt4o.clean_spaces);
  EXPECT_TRUE(find_pre_tokenizer_spec("megrez")->clean_spaces);
  EXPECT_TRUE(find_pre_tokenizer_spec("youtu")->ignore_merges);
  EXPECT_TRUE(find_pre_tokenizer_spec("chameleon")->add_bos);
  const auto& gemma4 = *find_pre_tokenizer_spec("gemma4");
  EXPECT_TRUE(gemma4.always_add_bos && !gemma4.byte_level && gemma4.escape_spaces && gemma4.newline_runs_whole);
  const auto& sarvam = *find_pre_tokenizer_spec("sarvam-moe");
  EXPECT_TRUE(!sarvam.always_add_bos && !sarvam.byte_level && sarvam.escape_spaces && !sarvam.newline_runs_whole);
  EXPECT_FALSE(find_pre_tokenizer_spec("whitespace")->byte_level);
}

}  // namespace
