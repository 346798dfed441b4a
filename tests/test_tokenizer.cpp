// Tokenizer behaviour: special tokens, ids, pieces, the stream decoder, the pre-tokenizer
// regexes, and hostile input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lib/tokenizer/pre_tokenizer.hpp"
#include "slm/gguf.hpp"
#include "slm/tokenizer.hpp"
#include "support/assets.hpp"
#include "support/gguf_bytes.hpp"

namespace {

using slm::TokenId;
using slm::Tokenizer;
using slm::TokenizerMetadata;
using slm::TokenType;

Tokenizer load_vocab(const std::string& name) {
  return Tokenizer::from_gguf(slm::GgufFile::open(slm::test::shared_path("vocab/ggml-vocab-" + name + ".gguf").string()));
}

#define REQUIRE_VOCAB(name) SLM_REQUIRE_ASSET(slm::test::shared_path("vocab/ggml-vocab-" name ".gguf"))

// A small SentencePiece vocabulary: the three specials, 256 byte tokens (ids 3..258), then
// the given pieces (ids 259...).
TokenizerMetadata spm_metadata_with(const std::vector<std::pair<std::string, float>>& pieces) {
  TokenizerMetadata metadata;
  metadata.model = "llama";
  metadata.tokens = {"<unk>", "<s>", "</s>"};
  metadata.token_types = {2, 3, 3};
  for (int byte = 0; byte < 256; ++byte) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", byte);
    metadata.tokens.push_back(name);
    metadata.token_types.push_back(6);
  }
  metadata.scores.assign(metadata.tokens.size(), 0.0f);
  for (const auto& [text, score] : pieces) {
    metadata.tokens.push_back(text);
    metadata.scores.push_back(score);
    metadata.token_types.push_back(1);
  }
  return metadata;
}

#define SPM_SPACE "\xE2\x96\x81"  // U+2581, SentencePiece's space

TokenizerMetadata tiny_spm_metadata() {
  return spm_metadata_with({{SPM_SPACE, -1}, {"a", -2}, {"b", -2}, {SPM_SPACE "a", -3}, {"ab", -1.5f}, {SPM_SPACE "ab", -4}});
}

constexpr TokenId kTinySpace = 259, kTinyA = 260, kTinyB = 261, kTinySpaceA = 262, kTinyAB = 263, kTinySpaceAB = 264;

// ---- SentencePiece --------------------------------------------------------------------------

TEST(TokenizerSpm, MergesTheHighestScoringPairFirst) {
  const Tokenizer tokenizer = Tokenizer::from_metadata(tiny_spm_metadata());
  // "▁ab": "ab" (-1.5) beats "▁a" (-3), then "▁" + "ab" -> "▁ab".
  EXPECT_EQ(tokenizer.tokenize("ab", false, false), (std::vector<TokenId>{kTinySpaceAB}));
  // "▁ba": only "▁" + "b"... none is a token, so three single pieces.
  EXPECT_EQ(tokenizer.tokenize("ba", false, false), (std::vector<TokenId>{kTinySpace, kTinyB, kTinyA}));
  EXPECT_EQ(tokenizer.tokenize("a", true, false), (std::vector<TokenId>{1, kTinySpaceA}));
  (void)kTinyAB;
}

TEST(TokenizerSpm, MergesAcrossSpacesWhenTheVocabularyHasSuchTokens) {
  // "b▁a" spans a word boundary: the per-word shortcut must not be taken for this vocabulary.
  const Tokenizer tokenizer = Tokenizer::from_metadata(
      spm_metadata_with({{SPM_SPACE, -1}, {"a", -2}, {"b", -2}, {"b" SPM_SPACE, -0.5f}, {"b" SPM_SPACE "a", -0.1f}}));
  EXPECT_EQ(tokenizer.tokenize("b a", false, false), (std::vector<TokenId>{259, 263}));
}

TEST(TokenizerSpm, FallsBackToByteTokensForUnknownCharacters) {
  const Tokenizer tokenizer = Tokenizer::from_metadata(tiny_spm_metadata());
  // 'é' is C3 A9: byte tokens <0xC3> <0xA9> are ids 3 + 0xC3 and 3 + 0xA9.
  EXPECT_EQ(tokenizer.tokenize("\xC3\xA9", false, false), (std::vector<TokenId>{kTinySpace, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(tokenizer.token_to_piece(3 + 0x0A), "\n");
  EXPECT_EQ(tokenizer.detokenize(tokenizer.tokenize("\xC3\xA9 ab", false, false)), "\xC3\xA9 ab");
}

TEST(TokenizerSpm, InvalidUtf8BecomesByteTokens) {
  const Tokenizer tokenizer = Tokenizer::from_metadata(tiny_spm_metadata());
  const std::string broken = "a\xFF\xC3";  // a stray 0xFF and a truncated two-byte character
  EXPECT_EQ(tokenizer.tokenize(broken, false, false), (std::vector<TokenId>{kTinySpaceA, 3 + 0xFF, 3 + 0xC3}));
  EXPECT_EQ(tokenizer.detokenize(tokenizer.tokenize(broken, false, false)), broken);
}

TEST(TokenizerSpm, LlamaVocabularyIdsAndPieces) {
  REQUIRE_VOCAB("llama-spm");
  const Tokenizer tokenizer = load_vocab("llama-spm");
  EXPECT_EQ(tokenizer.kind(), slm::TokenizerKind::Spm);
  EXPECT_EQ(tokenizer.n_vocab(), 32000);
  EXPECT_EQ(tokenizer.bos(), 1);
  EXPECT_EQ(tokenizer.eos(), 2);
  EXPECT_EQ(tokenizer.unknown(), 0);
  EXPECT_EQ(tokenizer.pad(), -1);
  EXPECT_TRUE(tokenizer.add_bos());
  EXPECT_FALSE(tokenizer.add_eos());
  EXPECT_TRUE(tokenizer.is_end_of_generation(2));
  EXPECT_FALSE(tokenizer.is_end_of_generation(1));
  EXPECT_EQ(tokenizer.tokenize("Hello world", true, false), (std::vector<TokenId>{1, 15043, 3186}));
  EXPECT_EQ(tokenizer.token_to_piece(15043), " Hello");
  EXPECT_EQ(tokenizer.token_text(15043), SPM_SPACE "Hello");
  EXPECT_EQ(tokenizer.token_to_piece(1), "<s>");
  EXPECT_EQ(tokenizer.token_to_piece(1, /*render_special=*/false), "");
  EXPECT_EQ(tokenizer.find_token(SPM_SPACE "Hello"), 15043);
  EXPECT_EQ(tokenizer.find_token("no such token"), std::nullopt);
}

TEST(TokenizerSpm, SpecialTokenTextIsParsedOnlyOnRequest) {
  REQUIRE_VOCAB("llama-spm");
  const Tokenizer tokenizer = load_vocab("llama-spm");
  const auto parsed = tokenizer.tokenize("<s>Hi</s>", false, true);
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 1);
  EXPECT_EQ(parsed.back(), 2);
  const auto plain = tokenizer.tokenize("<s>Hi</s>", false, false);
  EXPECT_GT(plain.size(), 3u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
}

// ---- byte-level BPE -------------------------------------------------------------------------

TEST(TokenizerBpe, Qwen2IdsAndEndOfGeneration) {
  REQUIRE_VOCAB("qwen2");
  const Tokenizer tokenizer = load_vocab("qwen2");
  EXPECT_EQ(tokenizer.kind(), slm::TokenizerKind::Bpe);
  EXPECT_EQ(tokenizer.pre_tokenizer(), "qwen2");
  EXPECT_EQ(tokenizer.n_vocab(), 151936);
  EXPECT_EQ(tokenizer.bos(), 151643);
  EXPECT_EQ(tokenizer.eos(), 151643);
  EXPECT_EQ(tokenizer.pad(), 151643);
  EXPECT_EQ(tokenizer.eot(), 151645);  // <|im_end|>
  EXPECT_FALSE(tokenizer.add_bos());
  EXPECT_TRUE(tokenizer.is_end_of_generation(151643));  // <|endoftext|>
  EXPECT_TRUE(tokenizer.is_end_of_generation(151645));  // <|im_end|>
  EXPECT_FALSE(tokenizer.is_end_of_generation(151644));  // <|im_start|>
  EXPECT_FALSE(tokenizer.is_end_of_generation(-1));
  EXPECT_FALSE(tokenizer.is_end_of_generation(1 << 30));
  EXPECT_EQ(tokenizer.tokenize("Hello", true, false), (std::vector<TokenId>{9707}));  // no BOS by default
}

TEST(TokenizerBpe, ImStartIsOneTokenOnlyWithParseSpecial) {
  REQUIRE_VOCAB("qwen2");
  const Tokenizer tokenizer = load_vocab("qwen2");
  const TokenId im_start = 151644;
  EXPECT_EQ(tokenizer.find_token("<|im_start|>"), im_start);
  EXPECT_EQ(tokenizer.token_type(im_start), TokenType::Control);

  const auto parsed = tokenizer.tokenize("<|im_start|>user\nhi<|im_end|>", false, true);
  EXPECT_EQ(parsed.front(), im_start);
  EXPECT_EQ(parsed.back(), 151645);
  EXPECT_EQ(tokenizer.detokenize(parsed), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(tokenizer.detokenize(parsed, /*render_special=*/false), "user\nhi");

  const auto plain = tokenizer.tokenize("<|im_start|>user\nhi<|im_end|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), im_start), 0);
  EXPECT_GT(plain.size(), parsed.size());
  EXPECT_EQ(tokenizer.detokenize(plain), "<|im_start|>user\nhi<|im_end|>");
}

TEST(TokenizerBpe, PiecesUndoTheByteLevelMapping) {
  REQUIRE_VOCAB("qwen2");
  const Tokenizer tokenizer = load_vocab("qwen2");
  const TokenId space_hello = tokenizer.find_token("\xC4\xA0Hello").value();  // "ĠHello"
  EXPECT_EQ(tokenizer.token_to_piece(space_hello), " Hello");
  EXPECT_EQ(tokenizer.token_to_piece(tokenizer.find_token("\xC4\x8A").value()), "\n");  // "Ċ"
  EXPECT_EQ(tokenizer.token_to_piece(151644, false), "");
  EXPECT_EQ(tokenizer.token_to_piece(151644, true), "<|im_start|>");
}

TEST(TokenizerBpe, InvalidUtf8IsReadAsReplacementCharacters) {
  REQUIRE_VOCAB("qwen2");
  const Tokenizer tokenizer = load_vocab("qwen2");
  // As llama.cpp: each byte that does not start a valid character becomes U+FFFD.
  EXPECT_EQ(tokenizer.tokenize("a\xFF" "b", false, false), tokenizer.tokenize("a\xEF\xBF\xBD" "b", false, false));
  EXPECT_EQ(tokenizer.tokenize("\xC3", false, false), tokenizer.tokenize("\xEF\xBF\xBD", false, false));
}

TEST(TokenizerBpe, Llama3CleansSpacesBeforePunctuationOnDetokenize) {
  REQUIRE_VOCAB("llama-bpe");
  const Tokenizer tokenizer = load_vocab("llama-bpe");
  EXPECT_TRUE(tokenizer.add_bos());
  EXPECT_EQ(tokenizer.bos(), 128000);
  EXPECT_TRUE(tokenizer.is_end_of_generation(128001));  // <|end_of_text|>
  EXPECT_TRUE(tokenizer.is_end_of_generation(128009));  // <|eot_id|>
  EXPECT_EQ(tokenizer.eot(), 128009);
  const auto ids = tokenizer.tokenize("Hello , world . I 'm here", false, false);
  EXPECT_EQ(tokenizer.detokenize(ids), "Hello, world. I'm here");
}

TEST(TokenizerBpe, EveryTokenizerSurvivesRandomBytes) {
  for (const char* name : {"qwen2", "llama-bpe", "deepseek-llm", "falcon", "phi-3"}) {
    const auto path = slm::test::shared_path(std::string("vocab/ggml-vocab-") + name + ".gguf");
    if (!std::filesystem::exists(path)) continue;
    const Tokenizer tokenizer = Tokenizer::from_gguf(slm::GgufFile::open(path.string()));
    std::mt19937 random(1234);
    for (int round = 0; round < 300; ++round) {
      std::string text(random() % 40, '\0');
      for (char& c : text) c = static_cast<char>(random() % 4 == 0 ? ' ' : random() % 256);
      if (round % 3 == 0) text += "<|im_start|><s>";
      for (const bool parse_special : {false, true}) {
        const auto ids = tokenizer.tokenize(text, true, parse_special);
        for (const TokenId id : ids) ASSERT_TRUE(id >= 0 && id < tokenizer.n_vocab()) << name;
        (void)tokenizer.detokenize(ids);
      }
    }
  }
}

// ---- pre-tokenizer regexes ------------------------------------------------------------------

std::vector<std::string> split_with(std::string_view pre_name, std::string_view text) {
  const auto* spec = slm::tokenizer::find_pre_tokenizer_spec(pre_name);
  EXPECT_NE(spec, nullptr) << pre_name;
  if (spec == nullptr) return {};
  const slm::tokenizer::PreTokenizer pre_tokenizer(spec->patterns);
  std::vector<std::string> words;
  for (const auto word : pre_tokenizer.split(text)) words.emplace_back(word);
  return words;
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndQwen2SplitsThem) {
  EXPECT_EQ(split_with("llama-bpe", "In 12345 ways"), (Words{"In", " ", "123", "45", " ways"}));
  EXPECT_EQ(split_with("qwen2", "In 123 ways"), (Words{"In", " ", "1", "2", "3", " ways"}));
}

TEST(PreTokenizer, ContractionsAreCaseInsensitiveForLlama3) {
  EXPECT_EQ(split_with("llama-bpe", "I'M HE'S"), (Words{"I", "'M", " HE", "'S"}));
  EXPECT_EQ(split_with("gpt-2", "I'M he's"), (Words{"I", "'", "M", " he", "'s"}));
}

TEST(PreTokenizer, TrailingSpacesStayApartFromTheNextWord) {
  // \s+(?!\S): the last space of a run joins the word that follows.
  EXPECT_EQ(split_with("gpt-2", "a   b"), (Words{"a", "  ", " b"}));
  EXPECT_EQ(split_with("llama-bpe", "a\n\n  b  "), (Words{"a", "\n\n", " ", " b", "  "}));
}

TEST(PreTokenizer, NextLineCountsAsWhitespace) {
  // U+0085 is Unicode White_Space (as in llama.cpp), though PCRE2's \s leaves it out.
  EXPECT_EQ(split_with("gpt-2", "a\xC2\x85\xC2\x85" "b"), (Words{"a", "\xC2\x85", "\xC2\x85", "b"}));
}

// ---- UTF-8 stream decoding ------------------------------------------------------------------

TEST(Utf8StreamDecoder, HoldsACharacterUntilItsLastByteArrives) {
  slm::Utf8StreamDecoder decoder;
  EXPECT_EQ(decoder.push("a\xF0\x9F"), "a");
  EXPECT_TRUE(decoder.has_pending());
  EXPECT_EQ(decoder.push("\x9A"), "");
  EXPECT_EQ(decoder.push("\x80!"), "\xF0\x9F\x9A\x80!");
  EXPECT_FALSE(decoder.has_pending());
}

TEST(Utf8StreamDecoder, PassesInvalidBytesThroughAndFlushesTheRest) {
  slm::Utf8StreamDecoder decoder;
  EXPECT_EQ(decoder.push("\x80x"), "\x80x");        // stray continuation byte
  EXPECT_EQ(decoder.push("\xC3y"), "\xC3y");        // lead byte cut short by a non-continuation
  EXPECT_EQ(decoder.push("\xFF"), "\xFF");          // never valid
  EXPECT_EQ(decoder.push("\xE6\x88"), "");          // unfinished: held
  EXPECT_EQ(decoder.flush(), "\xE6\x88");           // returned raw, not as U+FFFD
  EXPECT_EQ(decoder.flush(), "");
}

TEST(Utf8StreamDecoder, EmitsAnEmojiSplitOverByteFallbackTokensOnlyWhenComplete) {
  REQUIRE_VOCAB("llama-spm");
  const Tokenizer tokenizer = load_vocab("llama-spm");
  const auto ids = tokenizer.tokenize("\xF0\x9F\x9A\x80", false, false);  // 🚀: "▁" + four byte tokens
  ASSERT_EQ(ids.size(), 5u);
  slm::Utf8StreamDecoder decoder;
  std::vector<std::string> emitted;
  for (const TokenId id : ids) emitted.push_back(decoder.push(tokenizer.token_to_piece(id)));
  EXPECT_EQ(emitted, (std::vector<std::string>{" ", "", "", "", "\xF0\x9F\x9A\x80"}));
  EXPECT_EQ(decoder.flush(), "");
}

// ---- hostile metadata -----------------------------------------------------------------------

TEST(TokenizerMetadataChecks, MismatchedArrayLengthsAreErrors) {
  TokenizerMetadata short_scores = tiny_spm_metadata();
  short_scores.scores.pop_back();
  EXPECT_THROW(Tokenizer::from_metadata(short_scores), slm::Error);
  TokenizerMetadata long_types = tiny_spm_metadata();
  long_types.token_types.push_back(1);
  EXPECT_THROW(Tokenizer::from_metadata(long_types), slm::Error);
  TokenizerMetadata no_tokens;
  no_tokens.model = "llama";
  EXPECT_THROW(Tokenizer::from_metadata(no_tokens), slm::Error);
}

TEST(TokenizerMetadataChecks, SpecialIdsMustBeInsideTheVocabulary) {
  TokenizerMetadata bad_bos = tiny_spm_metadata();
  bad_bos.bos_id = 100000;
  EXPECT_THROW(Tokenizer::from_metadata(bad_bos), slm::Error);
  TokenizerMetadata negative_eos = tiny_spm_metadata();
  negative_eos.eos_id = -5;
  EXPECT_THROW(Tokenizer::from_metadata(negative_eos), slm::Error);
  TokenizerMetadata none_marker = tiny_spm_metadata();
  none_marker.padding_id = 0xFFFFFFFFll;  // how GGUF files write "no such token"
  EXPECT_EQ(Tokenizer::from_metadata(none_marker).pad(), -1);
}

TEST(TokenizerMetadataChecks, UnknownModelsAndPreTokenizersAreErrors) {
  TokenizerMetadata unknown_model = tiny_spm_metadata();
  unknown_model.model = "bert";
  EXPECT_THROW(Tokenizer::from_metadata(unknown_model), slm::Error);
  TokenizerMetadata unknown_pre = tiny_spm_metadata();
  unknown_pre.model = "gpt2";
  unknown_pre.pre = "no-such-pre";
  EXPECT_THROW(Tokenizer::from_metadata(unknown_pre), slm::Error);
  TokenizerMetadata bad_merge = tiny_spm_metadata();
  bad_merge.model = "gpt2";
  bad_merge.merges = {"ab"};
  EXPECT_THROW(Tokenizer::from_metadata(bad_merge), slm::Error);
}

TEST(TokenizerMetadataChecks, OutOfRangeIdsAreErrors) {
  const Tokenizer tokenizer = Tokenizer::from_metadata(tiny_spm_metadata());
  EXPECT_THROW(tokenizer.token_to_piece(-1), slm::Error);
  EXPECT_THROW(tokenizer.token_to_piece(tokenizer.n_vocab()), slm::Error);
  EXPECT_THROW(tokenizer.token_text(1 << 30), slm::Error);
  const std::vector<TokenId> ids = {1, 99999};
  EXPECT_THROW(tokenizer.detokenize(ids), slm::Error);
}

// A GGUF holding only tokenizer keys: three tokens, `n_scores` scores, `n_types` token types.
slm::GgufFile gguf_with_vocab(uint64_t n_scores, uint64_t n_types, uint32_t bos_id) {
  slm::test::GgufBytes file;
  file.header(0, 5).kv_string("tokenizer.ggml.model", "llama");
  file.array_header("tokenizer.ggml.tokens", slm::GgufValueType::STRING, 3).str("<unk>").str("<s>").str("a");
  file.array_header("tokenizer.ggml.scores", slm::GgufValueType::FLOAT32, n_scores);
  for (uint64_t i = 0; i < n_scores; ++i) file.f32(0.0f);
  file.array_header("tokenizer.ggml.token_type", slm::GgufValueType::INT32, n_types);
  for (uint64_t i = 0; i < n_types; ++i) file.u32(i == 0 ? 2 : i == 1 ? 3 : 1);
  file.kv_u32("tokenizer.ggml.bos_token_id", bos_id);
  return slm::GgufFile::from_bytes(file.bytes(), "vocab.gguf");
}

TEST(TokenizerMetadataChecks, GgufVocabularyIsValidated) {
  const Tokenizer good = Tokenizer::from_gguf(gguf_with_vocab(3, 3, 1));
  EXPECT_EQ(good.n_vocab(), 3);
  EXPECT_EQ(good.bos(), 1);
  EXPECT_EQ(good.eos(), 2);  // absent: llama.cpp's SentencePiece default
  EXPECT_THROW(Tokenizer::from_gguf(gguf_with_vocab(2, 3, 1)), slm::Error);
  EXPECT_THROW(Tokenizer::from_gguf(gguf_with_vocab(3, 4, 1)), slm::Error);
  EXPECT_THROW(Tokenizer::from_gguf(gguf_with_vocab(3, 3, 3)), slm::Error);
}

TEST(TokenizerMetadataChecks, GgufWithoutTokenizerIsAnError) {
  // A header-only GGUF: no tensors, no metadata.
  slm::GgufFile empty = slm::GgufFile::from_bytes(
      {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "empty.gguf");
  try {
    (void)Tokenizer::from_gguf(empty);
    FAIL() << "expected slm::Error";
  } catch (const slm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.model"), std::string::npos) << e.what();
  }
}

}  // namespace
