// The byte automaton of a grammar's parse: a set of parse stacks (llama.cpp's approach), built
// lazily into a table as generation visits it.
//
// A stack is a hash-consed linked list of grammar positions (StackNode: the position of the
// next element, and the stack below it), so stacks share their tails and compare by id. A
// state is the sorted set of the stacks alive after the bytes so far; states are interned too.
// Transitions state x byte -> state are computed once and kept in a table. The token masks
// built on it are MatcherCache's (grammar_matcher.cpp).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "lib/grammar/compiled_grammar.hpp"

namespace slm::grammar {

constexpr int32_t dead_state = 0;       // no stack alive
constexpr int32_t empty_stack = 0;      // node 0: the grammar's root is complete
constexpr int32_t unknown_below = 1;    // node 1: the bottom of a cut stack (MatcherCache)
constexpr int32_t unknown_transition = -1;
constexpr size_t max_stack_nodes = size_t(1) << 23;

struct StackNode {
  int32_t pos;     // the element to match next (a Bytes element at the top; a return position below)
  int32_t parent;  // the stack below, empty_stack at the bottom
};

struct VectorHash {
  size_t operator()(const std::vector<int32_t>& v) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t x : v) h = (h ^ uint32_t(x)) * 1099511628211ull;
    return size_t(h);
  }
};

struct ParseAutomaton {
  const CompiledGrammar* g = nullptr;

  std::vector<StackNode> nodes;
  std::unordered_map<uint64_t, int32_t> node_ids;
  std::vector<std::vector<int32_t>> state_nodes;  // sorted node ids; empty_stack first when present
  std::unordered_map<std::vector<int32_t>, int32_t, VectorHash> state_ids;
  std::vector<int32_t> transitions;               // state * 256 + byte
  std::vector<uint8_t> state_returned;           // the state holds unknown_below
  std::vector<ByteSet> state_bytes;              // the bytes its stacks' tops take: others lead to dead_state
  std::vector<int8_t> state_loops_on_plain_text;  // every plain text byte leads back to it (-1: not known yet)
  std::vector<int8_t> state_loops_on_text;        // every text character leads back to it (-1: not known yet)

  // Scratch of expand().
  std::vector<std::pair<int32_t, int32_t>> work;
  std::unordered_set<uint64_t> visited;
  std::vector<int32_t> out;

  // Forgets every state (the stack nodes are kept) and interns dead_state again.
  void clear_states();
  int32_t intern_node(int32_t pos, int32_t parent);
  int32_t intern_state(std::vector<int32_t> set);
  // Adds to `out` the stacks that continue from `pos` on top of `parent`, descending into rules
  // until each top is a byte set (or the whole stack is done: empty_stack).
  void expand(int32_t pos, int32_t parent);
  int32_t finish_state();
  int32_t compute_transition(int32_t state, uint8_t byte);
  int32_t start_state();
  bool loops_on_plain_text(int32_t state);
  // Every text character (text_step) leads from `state` back to it, through states inside the
  // character that are alive and have not returned below a cut: a subtree of text is accepted whole.
  bool loops_on_text(int32_t state);

  int32_t step(int32_t state, uint8_t byte) {
    const int32_t next = transitions[size_t(state) * 256 + byte];
    return next != unknown_transition ? next : compute_transition(state, byte);
  }

  bool can_end(int32_t state) const {
    const auto& set = state_nodes[size_t(state)];
    return !set.empty() && set.front() == empty_stack;
  }
};

}  // namespace slm::grammar
