// Code-point ranges as UTF-8 byte sequences, so that a byte-level matcher can run Unicode
// character classes: [a-ü] becomes "one byte in 61-7F" | "C2 in 80-BF" | "C3 in 80-BC".
// (The splitting is the one of Rust's regex-syntax Utf8Sequences.)
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <utility>
#include <vector>

namespace slm::grammar {

struct CodepointRange {
  uint32_t lo, hi;  // inclusive
  auto operator<=>(const CodepointRange&) const = default;
};

// One alternative: bytes[i] must lie in [lo, hi].
struct Utf8Sequence {
  int length = 0;
  std::array<std::pair<uint8_t, uint8_t>, 4> bytes{};
};

// Sorted, merged, surrogates (D800-DFFF) removed, clipped to 0..10FFFF.
std::vector<CodepointRange> normalize_ranges(std::vector<CodepointRange> ranges);
std::vector<CodepointRange> complement_ranges(const std::vector<CodepointRange>& normalized);
std::vector<Utf8Sequence> utf8_sequences(const std::vector<CodepointRange>& normalized);
// Appends the UTF-8 encoding of a code point (<= 10FFFF).
void append_utf8(std::vector<uint8_t>& out, uint32_t codepoint);

// JSON string text, a byte at a time: the characters a JSON string takes unescaped (bytes
// 20-7F but '"' and '\\', and every well-formed UTF-8 sequence of two to four bytes, surrogates
// excluded). State 0 is between characters; 1..7 are inside one (which bytes may follow);
// text_dead: the bytes are not text. A prefix of text is text, so the token trie can say of a
// node that every path below it is (GrammarVocabulary::subtree_is_text).
inline constexpr int text_between_characters = 0, text_states = 8, text_dead = -1;
int text_step(int state, uint8_t byte);

}  // namespace slm::grammar
