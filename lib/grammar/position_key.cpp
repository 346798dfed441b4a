#include "lib/grammar/position_key.hpp"

#include <vector>

namespace slm::grammar {

std::string position_key(const CompiledGrammar& g, const std::vector<int32_t>& frames, bool unknown_below, size_t max_bytes) {
  std::string key;
  key.reserve(max_bytes + 64);
  // Each rule's number in the key, by rule (-1: not met yet); reset before returning.
  thread_local std::vector<int32_t> rule_ids;
  if (rule_ids.size() < g.rule_alternatives.size()) rule_ids.resize(g.rule_alternatives.size(), -1);
  std::vector<int32_t> rules;
  struct ResetIds {  // also when an allocation throws
    std::vector<int32_t>& ids;
    const std::vector<int32_t>& met;
    ~ResetIds() {
      for (int32_t rule : met) ids[size_t(rule)] = -1;
    }
  } reset_ids{rule_ids, rules};
  const bool has_chains = !g.canonical_chain_rules.empty();
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
        const auto chain = has_chains ? g.canonical_chain_rules.find(e.value) : g.canonical_chain_rules.end();
        const int32_t rule = chain == g.canonical_chain_rules.end() ? e.value : chain->second.item_rule;
        int32_t& id = rule_ids[size_t(rule)];
        if (id < 0) {
          id = int32_t(rules.size());
          rules.push_back(rule);
        }
        key += chain == g.canonical_chain_rules.end() ? 'r' : 'C';
        key.append(reinterpret_cast<const char*>(&id), sizeof(int32_t));
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
