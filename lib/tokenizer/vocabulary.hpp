// The token list with its scores and types, and the text -> id index both tokenizers use.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slm/tokenizer.hpp"

namespace slm::tokenizer {

// Hashes std::string and std::string_view alike, so lookups need no temporary string.
struct TransparentStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

using TextToTokenMap = std::unordered_map<std::string, TokenId, TransparentStringHash, std::equal_to<>>;

struct Vocabulary {
  std::vector<std::string> texts;
  std::vector<float> scores;     // one per token (0 when the file has none)
  std::vector<TokenType> types;  // one per token (Normal when the file has none)
  TextToTokenMap text_to_id;

  int32_t size() const { return static_cast<int32_t>(texts.size()); }
  bool contains(TokenId id) const { return id >= 0 && id < size(); }
  // The id of a token whose text is exactly `text`, or -1.
  TokenId find(std::string_view text) const {
    const auto it = text_to_id.find(text);
    return it == text_to_id.end() ? -1 : it->second;
  }
};

}  // namespace slm::tokenizer
