// Counted repetitions' canonical chains (see CountedFrame in compiled_grammar.hpp).
#include <fmt/format.h>

#include "lib/grammar/compiled_grammar.hpp"

namespace slm::grammar {

std::vector<bool> nullable_rules(const CompiledGrammar& g) {
  const size_t n = g.rule_alternatives.size();
  std::vector<bool> nullable(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (int32_t start : g.rule_alternatives[r]) {
        bool all = true;
        for (size_t i = size_t(start); g.elements[i].kind != ElementKind::End; ++i)
          if (g.elements[i].kind == ElementKind::Bytes || !nullable[size_t(g.elements[i].value)]) {
            all = false;
            break;
          }
        if (all) {
          nullable[r] = true;
          changed = true;
          break;
        }
      }
    }
  }
  return nullable;
}

size_t add_counted_repetitions(CompiledGrammar& g, const std::vector<CountedLink>& links) {
  // A nullable item has no count: an item may match nothing, so the items a text takes are not
  // fixed by its bytes. Its frames stay plain.
  const std::vector<bool> nullable = nullable_rules(g);
  const size_t elements_before = g.elements.size();
  const auto add_rule = [&](const std::string& name, const std::vector<std::vector<Element>>& alternatives) {
    const int32_t rule = int32_t(g.rule_alternatives.size());
    g.rule_names.push_back(name);
    g.rule_alternatives.emplace_back();
    for (const auto& alternative : alternatives) {
      g.rule_alternatives.back().push_back(int32_t(g.elements.size()));
      g.elements.insert(g.elements.end(), alternative.begin(), alternative.end());
      g.elements.push_back({ElementKind::End, 0});
    }
    return rule;
  };
  for (const CountedLink& link : links) {
    const int32_t item = link.frame.item_rule;
    if (nullable[size_t(item)]) continue;
    g.counted_frames[g.rule_alternatives[size_t(link.rule)][size_t(link.alternative)] + link.element] = link.frame;
    if (g.canonical_frames.count(item)) continue;
    const Element x{ElementKind::RuleRef, item};
    int32_t chain = add_rule(fmt::format("{}_canonical_1", g.rule_names[size_t(item)]), {{x}, {}});
    g.canonical_chain_rules[chain] = {item, 1};
    for (int32_t length = 2; length <= canonical_chain_length + 1; ++length) {
      const int32_t next = add_rule(fmt::format("{}_canonical_{}", g.rule_names[size_t(item)], length),
                                    {{x, {ElementKind::RuleRef, chain}}, {}});
      g.canonical_chain_rules[next] = {item, length};
      const int32_t frame = g.rule_alternatives[size_t(next)][0] + 1;
      g.counted_frames[frame] = {item, 0, length - 1, true};
      if (length == canonical_chain_length + 1) g.canonical_frames[item] = frame;
      chain = next;
    }
  }
  return g.elements.size() - elements_before;
}

}  // namespace slm::grammar
