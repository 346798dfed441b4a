// BPE merging of one pre-tokenized word, as llama.cpp's llm_tokenizer_bpe.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/tokenizer/vocabulary.hpp"

namespace slm::tokenizer {

// (left, right) -> merge rank, looked up by string_view pairs without building strings.
struct MergePairHash {
  using is_transparent = void;
  size_t operator()(const std::pair<std::string_view, std::string_view>& pair) const noexcept {
    const size_t left = std::hash<std::string_view>{}(pair.first);
    return left ^ (std::hash<std::string_view>{}(pair.second) + 0x9E3779B97F4A7C15ull + (left << 6) + (left >> 2));
  }
  size_t operator()(const std::pair<std::string, std::string>& pair) const noexcept {
    return (*this)(std::pair<std::string_view, std::string_view>(pair.first, pair.second));
  }
};

struct MergePairEqual {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    return std::string_view(a.first) == std::string_view(b.first) &&
           std::string_view(a.second) == std::string_view(b.second);
  }
};

using MergeRanks = std::unordered_map<std::pair<std::string, std::string>, int32_t, MergePairHash, MergePairEqual>;

struct BpeOptions {
  bool ignore_merges = false;       // a word that is itself a token is emitted whole (Llama 3)
  bool newline_runs_whole = false;  // likewise a word of '\n's (Gemma 4)
  // Byte-level words fall back to one-character tokens of their (mapped) bytes; raw UTF-8
  // words fall back to <0xNN> byte tokens.
  bool byte_level = true;
};

struct BpeModel {
  MergeRanks merge_ranks;
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
};

}  // namespace slm::tokenizer
