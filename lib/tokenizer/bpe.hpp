// BPE merging of one pre-tokenized word, as llama.cpp's llm_tokenizer_bpe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/tokenizer/id_hash_table.hpp"
#include "lib/tokenizer/vocabulary.hpp"

namespace slm::tokenizer {

struct BpeOptions {
  bool ignore_merges = false;       // a word that is itself a token is emitted whole (Llama 3)
  bool newline_runs_whole = false;  // likewise a word of '\n's (Gemma 4)
  // Byte-level words fall back to one-character tokens of their (mapped) bytes; raw UTF-8
  // words fall back to <0xNN> byte tokens.
  bool byte_level = true;
};

struct BpeModel {
  // The merges' halves, rank after rank in one buffer: rank r's left half is
  // merge_text[merge_bounds[2r], merge_bounds[2r + 1]), its right half the bytes after the
  // space, up to merge_bounds[2r + 2].
  std::string merge_text;
  std::vector<uint32_t> merge_bounds;
  IdHashTable merge_ranks;  // (left, right) -> the rank of its first merge, over merge_text
  BpeOptions options;
  std::array<TokenId, 256> byte_fallback{};  // the token for each byte of an unknown symbol, or -1

  // Reads tokenizer.ggml.merges lines "left right" (split at the first space after the first
  // character, as llama.cpp does); the first occurrence of a pair keeps its rank. Throws
  // slm::Error naming `source` for a line without a separating space.
  static BpeModel build(const std::vector<std::string>& merges, const Vocabulary& vocabulary, BpeOptions options,
                        std::string_view source);

  // `word` is in byte-level form (see append_byte_level) unless the model is raw UTF-8. Starts
  // from its characters and repeatedly merges the adjacent pair of lowest rank (ties:
  // leftmost). A final symbol that is not a token is emitted byte by byte through
  // byte_fallback, leaving out bytes that have no token.
  void encode_word(const Vocabulary& vocabulary, std::string_view word, std::vector<TokenId>& out) const;

  // The rank of the merge of `left` and `right`, or -1.
  int32_t rank_of(std::string_view left, std::string_view right) const;
  bool is_merge(int32_t rank, std::string_view left, std::string_view right) const;
};

}  // namespace slm::tokenizer
