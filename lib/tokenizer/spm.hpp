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

  static SpmModel build(const Vocabulary& vocabulary, TokenId unknown_id);

  // `escaped_text` already has spaces replaced by U+2581 (and the prefix '▁' when wanted).
  // Splits it into UTF-8 characters, repeatedly merges the adjacent pair whose concatenation
  // is the highest-scoring token (ties: leftmost), and emits each final symbol as its token or,
  // when it is none, as byte tokens.
  void tokenize(const Vocabulary& vocabulary, std::string_view escaped_text, std::vector<TokenId>& out) const;
};

}  // namespace slm::tokenizer
