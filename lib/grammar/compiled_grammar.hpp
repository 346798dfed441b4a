// The compiled form of a grammar: rules of alternatives of elements, where every terminal is
// a set of bytes. Strings are sequences of one-byte sets; a character class becomes a rule
// whose alternatives are the UTF-8 byte sequences of its code-point ranges; repetitions and
// groups become rules of their own (x* -> r ::= x r | "", right-recursive, so a stack never
// grows with the length of a repetition).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace slm::grammar {

enum class ElementKind : uint8_t { End, Bytes, RuleRef };

struct Element {
  ElementKind kind = ElementKind::End;
  int32_t value = 0;  // Bytes: index into byte_sets; RuleRef: rule index
};

using ByteSet = std::array<uint64_t, 4>;

inline bool byte_set_has(const ByteSet& set, uint8_t byte) { return set[byte >> 6] >> (byte & 63) & 1; }
inline void byte_set_add_range(ByteSet& set, uint8_t lo, uint8_t hi) {
  for (int b = lo; b <= hi; ++b) set[size_t(b) >> 6] |= uint64_t(1) << (b & 63);
}

struct CompiledGrammar {
  // Every alternative is a run of elements closed by an End element.
  std::vector<Element> elements;
  std::vector<std::vector<int32_t>> rule_alternatives;  // per rule: where each alternative starts
  std::vector<std::string> rule_names;
  std::vector<ByteSet> byte_sets;
  int32_t root = 0;
};

}  // namespace slm::grammar
