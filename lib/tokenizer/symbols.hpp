// The doubly linked list of symbols both merge tokenizers (SPM and BPE) start from: one
// symbol per UTF-8 character of the text, merged pairwise into longer symbols.
#pragma once

#include <cstdint>
#include <string_view>
#include <algorithm>
#include <vector>

#include "lib/tokenizer/unicode.hpp"

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

}  // namespace slm::tokenizer
