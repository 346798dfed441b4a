#include "lib/grammar/parse_automaton.hpp"

#include <algorithm>
#include <array>
#include <bit>

#include "lib/grammar/grammar_vocabulary.hpp"
#include "lib/grammar/utf8_ranges.hpp"
#include "slm/error.hpp"

namespace slm::grammar {

void ParseAutomaton::clear_states() {
  state_nodes.clear();
  state_ids.clear();
  state_returned.clear();
  state_bytes.clear();
  state_loops_on_plain_text.clear();
  state_loops_on_text.clear();
  transitions.clear();
  intern_state({});  // dead_state
}

int32_t ParseAutomaton::intern_node(int32_t pos, int32_t parent) {
  const uint64_t key = uint64_t(uint32_t(pos)) << 32 | uint32_t(parent);
  const auto found = node_ids.find(key);
  if (found != node_ids.end()) return found->second;
  if (nodes.size() >= max_stack_nodes)
    throw Error("grammar: the parse has grown beyond the matcher's limit of stack nodes (too deeply nested)");
  const int32_t id = int32_t(nodes.size());
  nodes.push_back({pos, parent});
  node_ids.emplace(key, id);
  return id;
}

int32_t ParseAutomaton::intern_state(std::vector<int32_t> set) {
  const auto found = state_ids.find(set);
  if (found != state_ids.end()) return found->second;
  const int32_t id = int32_t(state_nodes.size());
  state_ids.emplace(set, id);
  state_returned.push_back(std::binary_search(set.begin(), set.end(), unknown_below));
  ByteSet bytes{};
  for (int32_t node : set)
    if (node != empty_stack && node != unknown_below) {
      const ByteSet& top = g->byte_sets[size_t(g->elements[size_t(nodes[size_t(node)].pos)].value)];
      for (size_t w = 0; w < bytes.size(); ++w) bytes[w] |= top[w];
    }
  state_bytes.push_back(bytes);
  state_loops_on_plain_text.push_back(-1);
  state_loops_on_text.push_back(-1);
  state_nodes.push_back(std::move(set));
  transitions.resize(state_nodes.size() * 256, unknown_transition);
  if (id == dead_state) std::fill(transitions.begin(), transitions.end(), dead_state);
  return id;
}

void ParseAutomaton::expand(int32_t pos, int32_t parent) {
  work.clear();
  work.push_back({pos, parent});
  while (!work.empty()) {
    auto [p, up] = work.back();
    work.pop_back();
    if (!visited.insert(uint64_t(uint32_t(p)) << 32 | uint32_t(up)).second) continue;
    const Element& e = g->elements[size_t(p)];
    switch (e.kind) {
      case ElementKind::End:
        if (up == empty_stack || up == unknown_below) out.push_back(up);
        else work.push_back({nodes[size_t(up)].pos, nodes[size_t(up)].parent});
        break;
      case ElementKind::Bytes:
        out.push_back(intern_node(p, up));
        break;
      case ElementKind::RuleRef: {
        // A call in tail position returns straight to the caller's caller.
        const int32_t next = p + 1;
        const int32_t below = g->elements[size_t(next)].kind == ElementKind::End ? up : intern_node(next, up);
        for (int32_t start : g->rule_alternatives[size_t(e.value)]) work.push_back({start, below});
        break;
      }
    }
  }
}

int32_t ParseAutomaton::finish_state() {
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return intern_state(out);
}

int32_t ParseAutomaton::compute_transition(int32_t state, uint8_t byte) {
  // Most bytes are refused by every stack (a state inside a literal takes one): no expansion.
  if (!byte_set_has(state_bytes[size_t(state)], byte)) return transitions[size_t(state) * 256 + byte] = dead_state;
  out.clear();
  visited.clear();
  for (int32_t id : state_nodes[size_t(state)]) {
    if (id == empty_stack || id == unknown_below) continue;
    const StackNode node = nodes[size_t(id)];
    if (byte_set_has(g->byte_sets[size_t(g->elements[size_t(node.pos)].value)], byte)) expand(node.pos + 1, node.parent);
  }
  const int32_t next = finish_state();
  transitions[size_t(state) * 256 + byte] = next;
  // Every byte taken by exactly the same stacks leads to the same state (a string's 64
  // continuation bytes of a character, its letters): one expansion for all of them.
  const std::vector<int32_t>& stacks = state_nodes[size_t(state)];
  if (stacks.size() <= 64) {
    std::array<uint64_t, 256> taken_by{};
    for (size_t k = 0; k < stacks.size(); ++k) {
      if (stacks[k] == empty_stack || stacks[k] == unknown_below) continue;
      const ByteSet& set = g->byte_sets[size_t(g->elements[size_t(nodes[size_t(stacks[k])].pos)].value)];
      for (size_t w = 0; w < set.size(); ++w)
        for (uint64_t bits = set[w]; bits; bits &= bits - 1) taken_by[w * 64 + size_t(std::countr_zero(bits))] |= uint64_t(1) << k;
    }
    for (size_t b = 0; b < 256; ++b)
      if (taken_by[b] == taken_by[byte]) transitions[size_t(state) * 256 + b] = next;
  }
  return next;
}

int32_t ParseAutomaton::start_state() {
  out.clear();
  visited.clear();
  for (int32_t start : g->rule_alternatives[size_t(g->root)]) expand(start, empty_stack);
  return finish_state();
}

bool ParseAutomaton::loops_on_plain_text(int32_t state) {
  if (state_loops_on_plain_text[size_t(state)] < 0) {
    // Letters first: most states refuse them, and one transition tells.
    bool loops = step(state, 'e') == state && step(state, ' ') == state;
    for (int b = 0x20; loops && b < 0x7F; ++b)
      if (is_plain_text_byte(uint8_t(b))) loops = step(state, uint8_t(b)) == state;
    state_loops_on_plain_text[size_t(state)] = loops;
  }
  return state_loops_on_plain_text[size_t(state)] > 0;
}

bool ParseAutomaton::loops_on_text(int32_t state) {
  if (state_loops_on_text[size_t(state)] < 0) {
    bool loops = loops_on_plain_text(state) && step(state, 0x7F) == state;
    std::vector<std::pair<int32_t, int>> todo, seen;  // (matcher state, text state) inside a character
    for (int b = 0x80; loops && b < 0x100; ++b)
      if (const int q = text_step(text_between_characters, uint8_t(b)); q != text_dead) todo.push_back({step(state, uint8_t(b)), q});
    while (loops && !todo.empty()) {
      const auto [inside, q] = todo.back();
      todo.pop_back();
      if (std::find(seen.begin(), seen.end(), std::pair{inside, q}) != seen.end()) continue;
      seen.push_back({inside, q});
      loops = inside != dead_state && !state_returned[size_t(inside)];
      for (int b = 0x80; loops && b < 0xC0; ++b) {
        const int next_q = text_step(q, uint8_t(b));
        if (next_q == text_dead) continue;
        const int32_t next = step(inside, uint8_t(b));
        if (next_q != text_between_characters) todo.push_back({next, next_q});
        else loops = next == state;
      }
    }
    state_loops_on_text[size_t(state)] = loops;
  }
  return state_loops_on_text[size_t(state)] > 0;
}

}  // namespace slm::grammar
