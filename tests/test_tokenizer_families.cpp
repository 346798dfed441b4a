// The tokenizers of the newer model families, on real vocabularies made into vocab-only GGUF
// files with one key changed: Qwen3.5 (qwen35), Phi-4-mini and Llama 4 (gpt-4o), Kimi-K2,
// Gemma 2/3 (SentencePiece without a space prefix), and Gemma 4's raw-UTF-8 BPE on a small
// vocabulary built here. Expected tokens are read off the vocabulary: a word that is itself a
// token comes out as that token.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "slm/error.hpp"
#include "slm/gguf.hpp"
#include "slm/gguf_writer.hpp"
#include "slm/tokenizer.hpp"
#include "support/assets.hpp"

namespace {

using slm::GgufValue;
using slm::GgufValueType;
using slm::TokenId;
using slm::Tokenizer;
using Pieces = std::vector<std::string>;

std::filesystem::path vocab_path(const std::string& name) {
  return slm::test::shared_path("vocab/ggml-vocab-" + name + ".gguf");
}

#define REQUIRE_VOCAB(name) SLM_REQUIRE_ASSET(vocab_path(name))

// Every key of shared/vocab/ggml-vocab-<name>.gguf, with each of `changes` set (added when
// absent) or, given nullopt, left out.
Tokenizer load_vocab_with(const std::string& name, const std::map<std::string, std::optional<GgufValue>>& changes) {
  const slm::GgufFile source = slm::GgufFile::open(vocab_path(name).string());
  slm::GgufWriter writer;
  for (const auto& entry : source.metadata()) {
    if (!changes.contains(entry.key)) writer.add(entry.key, entry.value);
  }
  for (const auto& [key, value] : changes) {
    if (value) writer.add(key, *value);
  }
  return Tokenizer::from_gguf(slm::GgufFile::from_bytes(writer.to_bytes(), name + " (changed)"));
}

GgufValue string_value(std::string text) { return GgufValue{GgufValueType::STRING, std::move(text)}; }
GgufValue bool_value(bool flag) { return GgufValue{GgufValueType::BOOL, flag}; }

Tokenizer load_vocab_as(const std::string& name, const std::string& pre) {
  return load_vocab_with(name, {{"tokenizer.ggml.pre", string_value(pre)}});
}

// The text of each token, as token_to_piece gives it.
Pieces pieces_of(const Tokenizer& tokenizer, const std::vector<TokenId>& ids) {
  Pieces pieces;
  for (const TokenId id : ids) pieces.push_back(tokenizer.token_to_piece(id));
  return pieces;
}

Pieces tokenize_to_pieces(const Tokenizer& tokenizer, std::string_view text) {
  return pieces_of(tokenizer, tokenizer.tokenize(text, /*add_special=*/false, /*parse_special=*/false));
}

// ---- byte-level BPE vocabularies under another pre-tokenizer's name -------------------------

TEST(RenamedVocabulary, Qwen35KeepsThaiSyllablesWithTheirMarks) {
  REQUIRE_VOCAB("qwen2");
  // ที่: THO THAHAN, SARA II and MAI EK, two combining marks. Qwen's vocabulary has the whole
  // syllable as one token; Qwen2's regex cuts it before the marks, Qwen3.5's does not.
  const std::string syllable = "\xE0\xB8\x97\xE0\xB8\xB5\xE0\xB9\x88";
  EXPECT_EQ(tokenize_to_pieces(load_vocab_as("qwen2", "qwen35"), syllable), (Pieces{syllable}));
  EXPECT_EQ(tokenize_to_pieces(load_vocab_as("qwen2", "qwen2"), syllable),
            (Pieces{"\xE0\xB8\x97", "\xE0\xB8\xB5\xE0\xB9\x88"}));
  const Tokenizer qwen35 = load_vocab_as("qwen2", "qwen35");
  EXPECT_EQ(qwen35.pre_tokenizer(), "qwen35");
  EXPECT_EQ(tokenize_to_pieces(qwen35, "In 2024"), (Pieces{"In", " ", "2", "0", "2", "4"}));
}

TEST(RenamedVocabulary, Gpt4oCutsCamelCaseWordsThatQwen2KeepsWhole) {
  REQUIRE_VOCAB("qwen2");
  EXPECT_EQ(tokenize_to_pieces(load_vocab_as("qwen2", "gpt-4o"), "toString"), (Pieces{"to", "String"}));
  EXPECT_EQ(tokenize_to_pieces(load_vocab_as("qwen2", "llama4"), "toString"), (Pieces{"to", "String"}));
  EXPECT_EQ(tokenize_to_pieces(load_vocab_as("qwen2", "qwen2"), "toString"), (Pieces{"toString"}));
}

TEST(RenamedVocabulary, KimiK2CutsKanaFromHanWhereQwen2KeepsTheWord) {
  REQUIRE_VOCAB("qwen2");
  const std::string to_omoimasu = "\xE3\x81\xA8\xE6\x80\x9D\xE3\x81\x84\xE3\x81\xBE\xE3\x81\x99";  // と思います
  EXPECT_EQ(tokenize_to_pieces(load_vocab_as("qwen2", "kimi-k2"), to_omoimasu),
            (Pieces{"\xE3\x81\xA8", "\xE6\x80\x9D", "\xE3\x81\x84\xE3\x81\xBE\xE3\x81\x99"}));
  EXPECT_EQ(tokenize_to_pieces(load_vocab_as("qwen2", "qwen2"), to_omoimasu), (Pieces{to_omoimasu}));
}

TEST(RenamedVocabulary, OnlyKimiK2MayLeaveOutTheMerges) {
  REQUIRE_VOCAB("qwen2");
  const std::map<std::string, std::optional<GgufValue>> no_merges = {
      {"tokenizer.ggml.pre", string_value("kimi-k2")}, {"tokenizer.ggml.merges", std::nullopt}};
  // Without merges every character stays its own token.
  EXPECT_EQ(tokenize_to_pieces(load_vocab_with("qwen2", no_merges), "abc"), (Pieces{"a", "b", "c"}));
  try {
    load_vocab_with("qwen2", {{"tokenizer.ggml.pre", string_value("qwen35")}, {"tokenizer.ggml.merges", std::nullopt}});
    ADD_FAILURE() << "a qwen35 vocabulary without merges loaded";
  } catch (const slm::Error& error) {
    EXPECT_NE(std::string(error.what()).find("missing key tokenizer.ggml.merges"), std::string::npos) << error.what();
  }
}

TEST(RenamedVocabulary, ThePreTokenizerNameSetsBosAndSpaceCleanup) {
  REQUIRE_VOCAB("llama-bpe");  // a file without add_bos_token: the name decides
  const Tokenizer lfm2 = load_vocab_as("llama-bpe", "lfm2");
  const Tokenizer gpt4o = load_vocab_as("llama-bpe", "gpt-4o");
  EXPECT_TRUE(lfm2.add_bos());
  EXPECT_FALSE(gpt4o.add_bos());
  // llama.cpp's detokenizer drops the space before ',' for Llama 3's names, not for gpt-4o's.
  EXPECT_EQ(lfm2.detokenize(lfm2.tokenize("a , b", false, false)), "a, b");
  EXPECT_EQ(gpt4o.detokenize(gpt4o.tokenize("a , b", false, false)), "a , b");
}

TEST(RenamedVocabulary, Phi4MiniIsByteLevelBpeWithTheGpt4oPreTokenizer) {
  REQUIRE_VOCAB("llama-bpe");
  const Tokenizer phi4_mini_like = load_vocab_as("llama-bpe", "gpt-4o");
  const std::string text = "HelloWorld he's 12345";
  EXPECT_EQ(tokenize_to_pieces(phi4_mini_like, text), (Pieces{"Hello", "World", " he", "'s", " ", "123", "45"}));
  EXPECT_EQ(phi4_mini_like.detokenize(phi4_mini_like.tokenize(text, true, false)), text);
}

TEST(RenamedVocabulary, AnUnknownNameIsACleanError) {
  REQUIRE_VOCAB("qwen2");
  try {
    load_vocab_as("qwen2", "qwen99");
    ADD_FAILURE() << "an unknown pre-tokenizer loaded";
  } catch (const slm::Error& error) {
    EXPECT_NE(std::string(error.what()).find("unknown pre-tokenizer tokenizer.ggml.pre = 'qwen99'"), std::string::npos)
        << error.what();
  }
}

// ---- Gemma 2 / 3: SentencePiece with byte fallback and no space prefix ----------------------

TEST(GemmaSentencePiece, NoSpaceIsAddedBeforeTheText) {
  REQUIRE_VOCAB("llama-spm");
  const Tokenizer gemma_like =
      load_vocab_with("llama-spm", {{"tokenizer.ggml.add_space_prefix", bool_value(false)}});
  const Tokenizer llama = load_vocab_with("llama-spm", {});
  EXPECT_FALSE(gemma_like.add_space_prefix());
  EXPECT_EQ(tokenize_to_pieces(gemma_like, "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(tokenize_to_pieces(llama, "Hello world"), (Pieces{" Hello", " world"}));
  // Nor after a special token: "<s>Hi" is <s>, "Hi".
  EXPECT_EQ(pieces_of(gemma_like, gemma_like.tokenize("<s>Hi", false, /*parse_special=*/true)), (Pieces{"<s>", "Hi"}));
  // A leading space is the text's own and survives the round trip.
  EXPECT_EQ(gemma_like.detokenize(gemma_like.tokenize(" Hi there", false, false)), " Hi there");
}

TEST(GemmaSentencePiece, CharactersOutsideTheVocabularyBecomeByteTokens) {
  REQUIRE_VOCAB("llama-spm");
  const Tokenizer gemma_like =
      load_vocab_with("llama-spm", {{"tokenizer.ggml.add_space_prefix", bool_value(false)}});
  const std::string llama_emoji = "\xF0\x9F\xA6\x99";  // U+1F999, not in the vocabulary
  const auto ids = gemma_like.tokenize(llama_emoji, false, false);
  EXPECT_EQ(pieces_of(gemma_like, ids), (Pieces{"\xF0", "\x9F", "\xA6", "\x99"}));
  for (const TokenId id : ids) EXPECT_EQ(gemma_like.token_type(id), slm::TokenType::Byte);
  EXPECT_EQ(gemma_like.detokenize(ids), llama_emoji);
}

// ---- Gemma 4: BPE over raw UTF-8, '▁' for ' ', <0xNN> byte fallback -------------------------

#define SPM_SPACE "\xE2\x96\x81"  // U+2581

// Specials 0-2, "a", "b", "▁", "▁a", "ab", "▁ab", "\n", "\n\n", and the byte tokens of 'c' and
// of U+00E9's two bytes.
slm::TokenizerMetadata gemma4_metadata() {
  slm::TokenizerMetadata metadata;
  metadata.model = "gemma4";
  metadata.pre = "anything";  // Gemma 4's tokenizer model decides the pre-tokenizer
  metadata.tokens = {"<pad>", "<eos>", "<bos>", "a", "b", SPM_SPACE, SPM_SPACE "a", "ab", SPM_SPACE "ab", "\n", "\n\n",
                     "<0x63>", "<0xC3>", "<0xA9>"};
  metadata.token_types = {3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6, 6};
  metadata.merges = {SPM_SPACE " a", "a b", SPM_SPACE "a b"};
  metadata.bos_id = 2;
  metadata.eos_id = 1;
  metadata.add_bos = false;  // llama.cpp adds Gemma 4's BOS whatever the file says
  return metadata;
}

constexpr TokenId kGemma4Bos = 2, kGemma4A = 3, kGemma4B = 4, kGemma4Ab = 7, kGemma4SpaceAb = 8, kGemma4Newline = 9,
                  kGemma4TwoNewlines = 10, kGemma4ByteC = 11, kGemma4ByteC3 = 12, kGemma4ByteA9 = 13;

TEST(Gemma4Bpe, SpacesBecomeSpmSpacesAndMergeWithTheWordAfter) {
  const Tokenizer tokenizer = Tokenizer::from_metadata(gemma4_metadata());
  EXPECT_EQ(tokenizer.pre_tokenizer(), "gemma4");
  EXPECT_TRUE(tokenizer.add_bos());
  // "ab▁ab": ▁+a first (rank 0), then a+b (rank 1), then ▁a+b (rank 2).
  EXPECT_EQ(tokenizer.tokenize("ab ab", true, false), (std::vector<TokenId>{kGemma4Bos, kGemma4Ab, kGemma4SpaceAb}));
  EXPECT_EQ(tokenizer.detokenize(std::vector<TokenId>{kGemma4Ab, kGemma4SpaceAb}), "ab ab");
}

TEST(Gemma4Bpe, LinesAreWordsAndANewlineRunThatIsATokenStaysWhole) {
  const Tokenizer tokenizer = Tokenizer::from_metadata(gemma4_metadata());
  EXPECT_EQ(tokenizer.tokenize("a\n\nb", false, false), (std::vector<TokenId>{kGemma4A, kGemma4TwoNewlines, kGemma4B}));
  // Sarvam splits the same way but merges newline runs only through the merges (none here).
  slm::TokenizerMetadata sarvam = gemma4_metadata();
  sarvam.model = "gpt2";
  sarvam.pre = "sarvam-moe";
  EXPECT_EQ(Tokenizer::from_metadata(sarvam).tokenize("a\n\nb", false, false),
            (std::vector<TokenId>{kGemma4A, kGemma4Newline, kGemma4Newline, kGemma4B}));
}

TEST(Gemma4Bpe, UnknownCharactersFallBackToByteTokens) {
  const Tokenizer tokenizer = Tokenizer::from_metadata(gemma4_metadata());
  EXPECT_EQ(tokenizer.tokenize("c\xC3\xA9", false, false),
            (std::vector<TokenId>{kGemma4ByteC, kGemma4ByteC3, kGemma4ByteA9}));
  EXPECT_EQ(tokenizer.detokenize(std::vector<TokenId>{kGemma4ByteC3, kGemma4ByteA9}), "\xC3\xA9");
}

}  // namespace
