// The doubly linked list of symbols both merge tokenizers (SPM and BPE) start from: one
// symbol per UTF-8 character of the text, merged pairwise into longer symbols.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "lib/tokenizer/unicode.hpp"
#include "lib/tokenizer/vocabulary.hpp"

namespace slm::tokenizer {

// A run of the text; merging grows a symbol to the right and leaves an empty one behind.
struct Symbol {
  int32_t previous = -1;
  int32_t next = -1;
  size_t begin = 0;
  size_t length = 0;  // 0 once merged into its left neighbour
};

// One symbol per UTF-8 character (as utf8_sequence_length splits them), linked in order.
inline std::vector<Symbol> split_into_symbols(std::string_view text) {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    Symbol symbol;
    symbol.begin = offset;
    symbol.length = std::min(utf8_sequence_length(static_cast<uint8_t>(text[offset])), text.size() - offset);
    offset += symbol.length;
    symbol.previous = static_cast<int32_t>(symbols.size()) - 1;
    symbol.next = offset == text.size() ? -1 : static_cast<int32_t>(symbols.size()) + 1;
    symbols.push_back(symbol);
  }
  return symbols;
}

// Merges symbol `right` into its left neighbour `left` and relinks the list.
inline void merge_into_left(std::vector<Symbol>& symbols, int32_t left, int32_t right) {
  Symbol& l = symbols[size_t(left)];
  Symbol& r = symbols[size_t(right)];
  l.length += r.length;
  r.length = 0;
  l.next = r.next;
  if (r.next >= 0) symbols[size_t(r.next)].previous = left;
}

// The tokens of the merged symbols of `text`, in order: a symbol's own token, or else one token
// per byte from byte_tokens (-1: a byte without a token is left out).
inline void append_symbol_tokens(const std::vector<Symbol>& symbols, std::string_view text, const Vocabulary& vocabulary,
                                 const std::array<TokenId, 256>& byte_tokens, std::vector<TokenId>& out) {
  for (int32_t i = 0; i != -1; i = symbols[size_t(i)].next) {
    const std::string_view piece = text.substr(symbols[size_t(i)].begin, symbols[size_t(i)].length);
    const TokenId id = vocabulary.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (const char byte : piece) {
      const TokenId byte_id = byte_tokens[static_cast<uint8_t>(byte)];
      if (byte_id >= 0) out.push_back(byte_id);
    }
  }
}

}  // namespace slm::tokenizer
