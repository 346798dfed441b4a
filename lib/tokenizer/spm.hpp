// SentencePiece-style tokenization of one text fragment, as llama.cpp's llm_tokenizer_spm.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "lib/tokenizer/vocabulary.hpp"

namespace slm::tokenizer {

struct SpmModel {
  // The token for each raw byte: "<0xNN>", else the one-byte token, else the unknown token,
  // else -1 (the byte is dropped).
  std::array<TokenId, 256> byte_tokens{};
  // True when no token has a '▁' that follows anything but another '▁' (true of Llama's and
  // Phi-3's vocabularies). Then no merge can join a word to the '▁' that starts the next one,
  // so each word is merged on its own: the same result, without one heap over the whole text.
  bool words_merge_independently = false;

  static SpmModel build(const Vocabulary& vocabulary, TokenId unknown_id);

  // `escaped_text` already has spaces replaced by U+2581 (and the prefix '▁' when wanted).
  // Splits it into UTF-8 characters, repeatedly merges the adjacent pair whose concatenation
  // is the highest-scoring token (ties: leftmost), and emits each final symbol as its token or,
  // when it is none, as byte tokens.
  void tokenize(const Vocabulary& vocabulary, std::string_view escaped_text, std::vector<TokenId>& out) const;

 private:
  void merge_and_emit(const Vocabulary& vocabulary, std::string_view text, std::vector<TokenId>& out) const;
};

}  // namespace slm::tokenizer
