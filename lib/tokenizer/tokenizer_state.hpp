// The state behind slm::Tokenizer, shared by the files that build and run it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/tokenizer/bpe.hpp"
#include "lib/tokenizer/pre_tokenizer.hpp"
#include "lib/tokenizer/special_tokens.hpp"
#include "lib/tokenizer/spm.hpp"
#include "lib/tokenizer/vocabulary.hpp"
#include "slm/tokenizer.hpp"

namespace slm::tokenizer {

struct TokenizerState {
  TokenizerKind kind = TokenizerKind::Spm;
  std::string pre_name;  // "default" when the file names none
  Vocabulary vocabulary;
  std::vector<SpecialToken> special_tokens;  // longest text first

  TokenId bos = -1, eos = -1, eot = -1, eom = -1, unknown = -1, pad = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  bool clean_spaces = false;
  bool escape_spaces = false;  // BPE: ' ' is U+2581 in the vocabulary, as in SentencePiece (Gemma 4)
  bool byte_level = false;     // BPE: words are merged in GPT-2's byte-to-unicode form
  std::vector<TokenId> end_of_generation_ids;  // ascending
  std::vector<bool> is_end_of_generation;      // by id

  std::vector<std::string> pieces;  // token_to_piece(id, render_special=true), by id

  std::optional<SpmModel> spm;
  std::optional<BpeModel> bpe;
  std::optional<PreTokenizer> pre_tokenizer;

  void check_id(TokenId id) const;  // throws slm::Error when out of range
  bool is_special(TokenId id) const {
    const TokenType type = vocabulary.types[static_cast<size_t>(id)];
    return type == TokenType::Control || type == TokenType::Unknown;
  }
};

// Validates the metadata and builds the state (tokenizer_build.cpp).
std::shared_ptr<const TokenizerState> build_tokenizer_state(TokenizerMetadata metadata, std::string_view source);

}  // namespace slm::tokenizer
