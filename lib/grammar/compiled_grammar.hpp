// The compiled form of a grammar: rules of alternatives of elements, where every terminal is
// a set of bytes. Strings are sequences of one-byte sets; a character class becomes a rule
// whose alternatives are the UTF-8 byte sequences of its code-point ranges; repetitions and
// groups become rules of their own (x* -> r ::= x r | "", right-recursive, so a stack never
// grows with the length of a repetition).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
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

// A counted repetition x{m,n} (m or n at least 2) is a chain of rules, one per item, each
// `x next`, and the RuleRef to `next` is a counted frame: it says how many items are still
// required and allowed once the current one is done. x is always a rule of its own (the item rule),
// so that every item's stack has the same frames above the counted frame. Each item rule that
// is not nullable also gets a canonical chain of canonical_chain_length + 1 rules (item rule,
// exactly the same, more items allowed than any token has bytes): a position inside any
// repetition of that item finds its tokens from the canonical chain's, once, with the number of
// items each token takes (see MatcherCache::counted_tokens in grammar_matcher.cpp).
struct CountedFrame {
  int32_t item_rule = -1;
  int32_t more_required = 0;
  int32_t more_allowed = -1;  // -1: unbounded
  bool canonical = false;     // a frame of the item's canonical chain
};
inline constexpr int32_t canonical_chain_length = 256;

struct CanonicalChainRule {
  int32_t item_rule = 0;
  int32_t length = 0;  // items it allows
};

struct CompiledGrammar {
  // Every alternative is a run of elements closed by an End element.
  std::vector<Element> elements;
  std::vector<std::vector<int32_t>> rule_alternatives;  // per rule: where each alternative starts
  std::vector<std::string> rule_names;
  std::vector<ByteSet> byte_sets;
  int32_t root = 0;
  std::unordered_map<int32_t, CountedFrame> counted_frames;              // by element position
  std::unordered_map<int32_t, int32_t> canonical_frames;                  // by item rule: its canonical chain's top frame
  std::unordered_map<int32_t, CanonicalChainRule> canonical_chain_rules;  // by rule
};

// Which rules can match the empty text.
std::vector<bool> nullable_rules(const CompiledGrammar& grammar);

// A counted frame of a chain rule, before the rules are laid out: rule, alternative, element.
struct CountedLink {
  int32_t rule = 0, alternative = 0, element = 0;
  CountedFrame frame;
};
// Records the counted frames of the links whose item is not nullable, and adds those items'
// canonical chains (see CountedFrame). Returns the number of elements added.
size_t add_counted_repetitions(CompiledGrammar& grammar, const std::vector<CountedLink>& links);

}  // namespace slm::grammar
