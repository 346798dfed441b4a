// The token list with its scores and types, and the text -> id index both tokenizers use.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/tokenizer/id_hash_table.hpp"
#include "slm/tokenizer.hpp"

namespace slm::tokenizer {

inline uint64_t text_hash(std::string_view text) noexcept { return std::hash<std::string_view>{}(text); }

// Hashes std::string and std::string_view alike, so lookups need no temporary string.
struct TransparentStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const noexcept { return text_hash(text); }
};

struct Vocabulary {
  std::vector<std::string> texts;
  std::vector<float> scores;     // one per token (0 when the file has none)
  std::vector<TokenType> types;  // one per token (Normal when the file has none)
  IdHashTable index;             // text -> id, over `texts` (index_texts)

  int32_t size() const { return static_cast<int32_t>(texts.size()); }
  bool contains(TokenId id) const { return id >= 0 && id < size(); }
  // The id of a token whose text is exactly `text` (of two tokens with one text, the later), or -1.
  TokenId find(std::string_view text) const {
    return index.find(text_hash(text), [&](int32_t id) { return texts[static_cast<size_t>(id)] == text; });
  }
  // Indexes `texts`, once they are final.
  void index_texts() {
    index = IdHashTable(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string& text = texts[i];
      index.insert(text_hash(text), static_cast<TokenId>(i),
                   [&](int32_t id) { return texts[static_cast<size_t>(id)] == text; }) = static_cast<TokenId>(i);
    }
  }
};

// SentencePiece's byte tokens are named "<0xNN>" (two uppercase hex digits).
inline TokenId find_byte_token(const Vocabulary& vocabulary, uint8_t byte) {
  char name[8];
  std::snprintf(name, sizeof name, "<0x%02X>", byte);
  return vocabulary.find(name);
}

// The byte a "<0xNN>" token stands for (either case of hex digit); nullopt for other text.
inline std::optional<uint8_t> parse_byte_token(std::string_view text) {
  const auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (text.size() != 6 || !text.starts_with("<0x") || text.back() != '>') return std::nullopt;
  const int high = hex_value(text[3]), low = hex_value(text[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<uint8_t>(high * 16 + low);
}

}  // namespace slm::tokenizer
