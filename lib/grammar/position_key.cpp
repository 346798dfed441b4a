#include "lib/grammar/position_key.hpp"

#include <unordered_map>

namespace slm::grammar {

std::string position_key(const CompiledGrammar& g, const std::vector<int32_t>& frames, bool unknown_below, size_t max_bytes) {
  std::string key;
  std::unordered_map<int32_t, int32_t> rule_ids;
  std::vector<int32_t> rules;
  // Stops as soon as the key is too large: a rule of thousands of alternatives (a large enum)
  // would otherwise be written out whole, only to be dropped.
  const auto add_sequence = [&](int32_t p) {
    for (; key.size() <= max_bytes; ++p) {
      const Element& e = g.elements[size_t(p)];
      if (e.kind == ElementKind::End) break;
      if (e.kind == ElementKind::Bytes) {
        key += 'b';
        key.append(reinterpret_cast<const char*>(g.byte_sets[size_t(e.value)].data()), sizeof(ByteSet));
      } else {
        // A canonical chain is its item and its length (its rules would not fit in a key).
        const auto chain = g.canonical_chain_rules.find(e.value);
        const int32_t rule = chain == g.canonical_chain_rules.end() ? e.value : chain->second.item_rule;
        const auto [found, added] = rule_ids.emplace(rule, int32_t(rules.size()));
        if (added) rules.push_back(rule);
        key += chain == g.canonical_chain_rules.end() ? 'r' : 'C';
        key.append(reinterpret_cast<const char*>(&found->second), sizeof(int32_t));
        if (chain != g.canonical_chain_rules.end()) key.append(reinterpret_cast<const char*>(&chain->second.length), sizeof(int32_t));
      }
    }
    key += 'e';
  };
  for (int32_t pos : frames) add_sequence(pos);
  key += unknown_below ? 'U' : 'Z';
  for (size_t r = 0; r < rules.size() && key.size() <= max_bytes; ++r) {
    key += 'R';
    for (int32_t start : g.rule_alternatives[size_t(rules[r])]) add_sequence(start);
  }
  return key.size() <= max_bytes ? key : std::string();
}

}  // namespace slm::grammar
