// The matcher: a set of parse stacks (llama.cpp's approach; ParseAutomaton in
// parse_automaton.hpp), made fast by caches.
//
// A state's mask is the union of its stacks' masks, and a stack's mask mostly depends on its
// top few frames only (XGrammar's context-independent tokens): a stack is cut after
// `position_frames` frames, the rest replaced by `unknown_below`, and that cut stack's tokens
// are found once by a pass over the token trie (pruning the subtree of every dead prefix). It
// gives the tokens accepted whatever lies below, and the trie nodes where the cut stack may have
// returned into what lies below: only those nodes' subtrees are walked again, from the real
// stack below, for each state. Cut stacks recur across states (every string value of a schema
// has the same top frames), and across grammars (PositionTokensCache, keyed by the cut stack's
// rules as text), so the whole-trie pass is paid about once per kind of position. The mask of a
// state already seen is a copy.
//
// A counted repetition x{m,n} would make each count a new position (a string with maxLength: one
// per character). Its counted frame is replaced in the cut by the item's canonical frame (see
// CountedFrame), whose pass records how many items each token takes; a position's mask is then
// those tokens that fit its counts (compute_counted_tokens, add_counted_tokens).
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "lib/grammar/compiled_grammar.hpp"
#include "lib/grammar/grammar_vocabulary.hpp"
#include "lib/grammar/parse_automaton.hpp"
#include "lib/grammar/position_key.hpp"
#include "slm/error.hpp"
#include "slm/grammar.hpp"

namespace slm {

namespace grammar {

namespace {

constexpr int32_t position_frames = 3;  // frames kept by a cut stack: a string's char, loop, quote
constexpr size_t max_position_key_bytes = 4096;  // larger positions (rarely shared) are not looked up
constexpr size_t max_position_token_list = 2048;    // more accepted tokens: kept as a bitset
constexpr size_t max_states = 16384;    // beyond it the automaton is rebuilt from the current state
constexpr size_t max_cached_masks = 256;

}  // namespace

struct MatcherCache : ParseAutomaton {
  Grammar grammar;
  std::shared_ptr<const GrammarVocabulary> vocab;

  std::unordered_map<int32_t, std::vector<uint64_t>> masks;
  int32_t initial_state = dead_state;

  // A stack's cut (see above): its tokens, and the real stack below the cut (-1: none, the
  // stack was no deeper than the cut).
  struct CutStack {
    std::shared_ptr<const PositionTokens> tokens;
    int32_t below = -1;
    bool counted = false;  // a counted frame was replaced by its canonical one: tokens->counted
    int32_t more_required = 0, more_allowed = -1;
  };
  std::unordered_map<int32_t, CutStack> cut_stacks;               // by stack node
  std::unordered_map<int32_t, std::shared_ptr<const PositionTokens>> position_tokens;  // by cut node
  std::unordered_map<int32_t, int32_t> return_states;             // by stack node: the state after returning into it

  // Counted repetitions: per stack node, the more_allowed of its canonical frame (-1: none, the
  // stack has left the repetition); per state, its stacks split into those inside the repetition
  // and those that left it (cleared with the automaton).
  struct CountedSplit {
    int32_t inside = dead_state, left = dead_state;
    int32_t more_allowed = -1;  // of the inside stacks
    bool ambiguous = false;     // inside stacks at different counts
  };
  std::unordered_map<int32_t, int32_t> canonical_counts;
  std::unordered_map<int32_t, CountedSplit> counted_splits;

  std::vector<int32_t> walk_states;  // scratch of walk_trie()

  void clear_automaton() {
    clear_states();
    masks.clear();
    return_states.clear();
    counted_splits.clear();
  }

  // Keeps the automaton bounded: past max_states it is rebuilt around the current state.
  int32_t trim(int32_t state) {
    if (state_nodes.size() <= max_states) return state;
    std::vector<int32_t> current = state_nodes[size_t(state)];
    clear_automaton();
    initial_state = start_state();
    return intern_state(std::move(current));
  }

  // Walks the trie nodes [first, last), whose parent at `depth` is in `state`, setting the bits
  // of the tokens accepted; with `boundaries`, also lists the nodes where a cut stack returned.
  void walk_trie(int32_t first, int32_t last, int32_t state, int32_t depth, uint64_t* words,
                 std::vector<int32_t>* boundaries) {
    const GrammarVocabulary& v = *vocab;
    walk_states.resize(size_t(v.max_depth) + 1);
    walk_states[size_t(depth)] = state;
    for (int32_t i = first; i < last;) {
      const int32_t node_depth = v.node_depth[size_t(i)];
      const int32_t next = step(walk_states[size_t(node_depth) - 1], v.node_byte[size_t(i)]);
      if (next == dead_state) {
        i = v.subtree_end[size_t(i)];
        continue;
      }
      walk_states[size_t(node_depth)] = next;
      if (boundaries && state_returned[size_t(next)]) boundaries->push_back(i);
      if (v.subtree_end[size_t(i)] - i > 1 && !(boundaries && state_returned[size_t(next)]) &&
          ((v.subtree_is_text[size_t(i)] && loops_on_text(next)) ||
           (v.subtree_is_plain_text[size_t(i)] && loops_on_plain_text(next)))) {
        // The whole subtree stays in `next`: every token in it is accepted.
        const int32_t end = v.subtree_end[size_t(i)];
        for (int32_t k = v.tokens_begin[size_t(i)]; k < v.tokens_begin[size_t(end)]; ++k) {
          const TokenId t = v.trie_tokens[size_t(k)];
          words[size_t(t) >> 6] |= uint64_t(1) << (t & 63);
        }
        i = end;
        continue;
      }
      for (int32_t k = v.tokens_begin[size_t(i)]; k < v.tokens_begin[size_t(i) + 1]; ++k) {
        const TokenId t = v.trie_tokens[size_t(k)];
        words[size_t(t) >> 6] |= uint64_t(1) << (t & 63);
      }
      ++i;
    }
  }

  std::string position_key(int32_t cut) const {
    std::vector<int32_t> frames;
    int32_t node = cut;
    for (; node != empty_stack && node != unknown_below; node = nodes[size_t(node)].parent) frames.push_back(nodes[size_t(node)].pos);
    return grammar::position_key(*g, frames, node == unknown_below, max_position_key_bytes);
  }

  std::shared_ptr<const PositionTokens> compute_position_tokens(int32_t cut) {
    const GrammarVocabulary& v = *vocab;
    std::vector<uint64_t> words((size_t(v.n_tokens) + 63) / 64, 0);
    auto result = std::make_shared<PositionTokens>();
    walk_trie(1, int32_t(v.node_byte.size()), intern_state({cut}), 0, words.data(), &result->boundary_nodes);
    // A list while the tokens are few (most positions take a few), else the bitset.
    for (size_t w = 0; w < words.size() && result->tokens.size() <= max_position_token_list; ++w)
      for (uint64_t bits = words[w]; bits; bits &= bits - 1) result->tokens.push_back(TokenId(w * 64 + size_t(std::countr_zero(bits))));
    if (result->tokens.size() > max_position_token_list) {
      result->tokens.clear();
      result->words = std::move(words);
    }
    return result;
  }

  // The cut of `node` keeping `kept` frames. With `canonical`, the first counted frame below the
  // top is replaced by its item's canonical frame, and `info` keeps its counts.
  int32_t make_cut(int32_t node, int32_t kept, bool canonical, CutStack& info) {
    int32_t frames[position_frames];
    int32_t depth = 0, below = node;
    for (; depth < kept && below != empty_stack; ++depth, below = nodes[size_t(below)].parent)
      frames[depth] = nodes[size_t(below)].pos;
    info = CutStack{};
    for (int32_t d = 1; canonical && d < depth; ++d) {
      const auto counted = g->counted_frames.find(frames[d]);
      if (counted == g->counted_frames.end() || counted->second.canonical) continue;
      frames[d] = g->canonical_frames.at(counted->second.item_rule);
      info.counted = true;
      info.more_required = counted->second.more_required;
      info.more_allowed = counted->second.more_allowed;
      break;
    }
    int32_t cut = empty_stack;
    if (below != empty_stack) {
      info.below = below;
      cut = unknown_below;
    }
    for (int32_t d = depth; d-- > 0;) cut = intern_node(frames[d], cut);
    return cut;
  }

  const CutStack& cut_stack(int32_t node) {
    const auto found = cut_stacks.find(node);
    if (found != cut_stacks.end()) return found->second;
    // Fewer frames when the cut's rules are too large to share (a frame inside a large object's
    // sequence of properties): the frames below are then walked per state, from the boundaries.
    // When no cut is small enough, the full one, unshared.
    CutStack info;
    const auto tokens_of_cut = [&](bool canonical) {
      std::string key;
      int32_t cut = -1;
      bool known = false;
      for (int32_t kept = position_frames; kept >= 1 && key.empty() && !known; --kept) {
        cut = make_cut(node, kept, canonical, info);
        known = position_tokens.count(cut) > 0;
        if (!known) key = position_key(cut);
      }
      if (key.empty() && !known) cut = make_cut(node, position_frames, canonical, info);
      auto& tokens = position_tokens[cut];
      if (!tokens) {
        PositionTokensCache& shared = *vocab->position_tokens;
        if (!key.empty()) tokens = shared.find(key);
        if (!tokens) {
          tokens = info.counted ? compute_counted_tokens(cut) : compute_position_tokens(cut);
          if (!key.empty()) shared.insert(key, tokens);
        }
      }
      return tokens;
    };
    info.tokens = tokens_of_cut(true);
    if (info.tokens->not_derivable) info.tokens = tokens_of_cut(false);
    return cut_stacks.emplace(node, std::move(info)).first->second;
  }

  int32_t canonical_count(int32_t node) {
    const auto found = canonical_counts.find(node);
    if (found != canonical_counts.end()) return found->second;
    int32_t count = -1;
    for (int32_t n = node; n != empty_stack && n != unknown_below && count < 0; n = nodes[size_t(n)].parent) {
      const auto counted = g->counted_frames.find(nodes[size_t(n)].pos);
      if (counted != g->counted_frames.end() && counted->second.canonical) count = counted->second.more_allowed;
    }
    canonical_counts.emplace(node, count);
    return count;
  }

  CountedSplit counted_split(int32_t state) {
    const auto found = counted_splits.find(state);
    if (found != counted_splits.end()) return found->second;
    CountedSplit split;
    std::vector<int32_t> inside, left;
    for (int32_t node : state_nodes[size_t(state)]) {
      const int32_t count = node == empty_stack || node == unknown_below ? -1 : canonical_count(node);
      if (count < 0) {
        left.push_back(node);
        continue;
      }
      if (split.more_allowed >= 0 && split.more_allowed != count) split.ambiguous = true;
      split.more_allowed = count;
      inside.push_back(node);
    }
    if (!inside.empty()) split.inside = intern_state(std::move(inside));
    if (!left.empty()) split.left = intern_state(std::move(left));
    counted_splits.emplace(state, split);
    return split;
  }

  // The canonical counted position `cut` (see PositionTokens): one pass over the whole trie that
  // follows, at each node, how many items the bytes so far took. Items are counted by the
  // canonical frame of the stacks inside the repetition; the walk gives up (not_derivable)
  // where the bytes leave two counts possible.
  std::shared_ptr<const PositionTokens> compute_counted_tokens(int32_t cut) {
    const GrammarVocabulary& v = *vocab;
    auto result = std::make_shared<PositionTokens>();
    result->counted = true;
    const auto give_up = [] {
      auto failed = std::make_shared<PositionTokens>();
      failed->not_derivable = true;
      return failed;
    };
    if (v.max_depth >= canonical_chain_length) return give_up();
    struct Level {
      int32_t state = dead_state;
      bool inside = true;  // else: left the repetition, `done` items done
      int32_t more_allowed = 0, done = 0;
    };
    std::vector<Level> levels(size_t(v.max_depth) + 1);
    levels[0] = {intern_state({cut}), true, canonical_chain_length, 0};
    std::vector<std::pair<int32_t, TokenId>> within;  // (need, token)
    for (int32_t i = 1; i < int32_t(v.node_byte.size());) {
      const Level& parent = levels[size_t(v.node_depth[size_t(i)]) - 1];
      const uint8_t byte = v.node_byte[size_t(i)];
      const int32_t next = step(parent.state, byte);
      if (next == dead_state) {
        i = v.subtree_end[size_t(i)];
        continue;
      }
      Level level{next, false, 0, parent.done};
      if (parent.inside) {
        const CountedSplit from = counted_split(parent.state);
        const bool left_continues = from.left != dead_state && step(from.left, byte) != dead_state;
        if (left_continues) {
          // Left at the parent (a head: an item had just been done): the inside stacks must be dead.
          if (from.inside != dead_state && step(from.inside, byte) != dead_state) return give_up();
          level.done = canonical_chain_length - 1 - from.more_allowed;
        } else {
          const CountedSplit to = counted_split(next);
          if (to.ambiguous || to.inside == dead_state) return give_up();
          level.inside = true;
          level.more_allowed = to.more_allowed;
        }
      } else if (counted_split(next).inside != dead_state) {
        return give_up();
      }
      levels[size_t(v.node_depth[size_t(i)])] = level;
      const CountedSplit here = counted_split(next);
      // Inside: mid-item, the items started after the first; at a head, the items done after it.
      const bool head = level.inside && here.left != dead_state;
      const int32_t need = level.inside ? canonical_chain_length - level.more_allowed - (head ? 1 : 0) : 0;
      const int32_t done = head ? need : level.done;
      if (state_returned[size_t(next)]) result->exit_boundaries.push_back({i, done});
      for (int32_t k = v.tokens_begin[size_t(i)]; k < v.tokens_begin[size_t(i) + 1]; ++k) {
        if (level.inside) within.push_back({need, v.trie_tokens[size_t(k)]});
        else result->exit_tokens.push_back({v.trie_tokens[size_t(k)], done});
      }
      ++i;
    }
    const size_t n_words = (size_t(v.n_tokens) + 63) / 64;
    std::sort(within.begin(), within.end());
    result->all_within_words.assign(n_words, 0);
    result->within_words.assign(PositionTokens::counted_bitsets, std::vector<uint64_t>(n_words, 0));
    for (auto [need, t] : within) {
      result->all_within_words[size_t(t) >> 6] |= uint64_t(1) << (t & 63);
      result->max_need = std::max(result->max_need, need);
      if (need >= PositionTokens::counted_bitsets) result->long_within.push_back({need, t});
      for (int32_t r = need; r < PositionTokens::counted_bitsets; ++r) result->within_words[size_t(r)][size_t(t) >> 6] |= uint64_t(1) << (t & 63);
    }
    return result;
  }

  // Adds the tokens of a counted cut (see compute_counted_tokens) for its frame's counts.
  void add_counted_tokens(const CutStack& cut, uint64_t* words) {
    const PositionTokens& tokens = *cut.tokens;
    const int32_t allowed = cut.more_allowed < 0 ? INT32_MAX : cut.more_allowed;
    const auto set = [&](TokenId t) { words[size_t(t) >> 6] |= uint64_t(1) << (t & 63); };
    const std::vector<uint64_t>& base = allowed >= tokens.max_need ? tokens.all_within_words
                                        : allowed < PositionTokens::counted_bitsets
                                            ? tokens.within_words[size_t(allowed)]
                                            : tokens.within_words[PositionTokens::counted_bitsets - 1];
    for (size_t w = 0; w < base.size(); ++w) words[w] |= base[w];
    if (allowed < tokens.max_need)
      for (auto [need, t] : tokens.long_within) {
        if (need > allowed) break;
        set(t);
      }
    const auto fits = [&](int32_t done) { return done >= cut.more_required && done <= allowed; };
    for (auto [t, done] : tokens.exit_tokens)
      if (fits(done)) set(t);
    const GrammarVocabulary& v = *vocab;
    for (auto [b, done] : tokens.exit_boundaries)
      if (fits(done)) walk_trie(b + 1, v.subtree_end[size_t(b)], return_state(cut.below), v.node_depth[size_t(b)], words, nullptr);
  }

  int32_t return_state(int32_t below) {
    const auto found = return_states.find(below);
    if (found != return_states.end()) return found->second;
    out.clear();
    visited.clear();
    expand(nodes[size_t(below)].pos, nodes[size_t(below)].parent);
    const int32_t state = finish_state();
    return_states.emplace(below, state);
    return state;
  }

  void compute_mask(int32_t state, std::vector<uint64_t>& words) {
    std::fill(words.begin(), words.end(), 0);
    const GrammarVocabulary& v = *vocab;
    const std::vector<int32_t> stacks = state_nodes[size_t(state)];  // a copy: the walks intern states
    for (int32_t node : stacks) {
      if (node == empty_stack) continue;
      const CutStack cut = cut_stack(node);
      if (cut.counted) {
        add_counted_tokens(cut, words.data());
        continue;
      }
      const PositionTokens& tokens = *cut.tokens;
      for (size_t w = 0; w < tokens.words.size(); ++w) words[w] |= tokens.words[w];
      for (TokenId t : tokens.tokens) words[size_t(t) >> 6] |= uint64_t(1) << (t & 63);
      if (tokens.boundary_nodes.empty()) continue;
      const int32_t returned = return_state(cut.below);
      for (int32_t b : tokens.boundary_nodes)
        walk_trie(b + 1, v.subtree_end[size_t(b)], returned, v.node_depth[size_t(b)], words.data(), nullptr);
    }
    if (can_end(state))
      for (TokenId t : v.end_tokens) words[size_t(t) >> 6] |= uint64_t(1) << (t & 63);
  }
};

}  // namespace grammar

GrammarMatcher::GrammarMatcher(Grammar grammar, std::shared_ptr<const GrammarVocabulary> vocabulary)
    : cache_(std::make_unique<grammar::MatcherCache>()) {
  if (!grammar.compiled) throw Error("grammar matcher: no grammar");
  if (!vocabulary) throw Error("grammar matcher: no vocabulary");
  cache_->grammar = std::move(grammar);
  cache_->g = cache_->grammar.compiled.get();
  cache_->vocab = std::move(vocabulary);
  cache_->nodes.push_back({-1, 0});  // empty_stack
  cache_->nodes.push_back({-1, 0});  // unknown_below
  cache_->clear_automaton();
  cache_->initial_state = cache_->start_state();
  state_ = cache_->initial_state;
}

GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;
GrammarMatcher::~GrammarMatcher() = default;

int32_t GrammarMatcher::n_vocab() const { return cache_->vocab->n_tokens; }

void GrammarMatcher::reset() {
  state_ = cache_->initial_state;
  ended_ = false;
}

bool GrammarMatcher::can_end() const { return !ended_ && cache_->can_end(state_); }

bool GrammarMatcher::is_complete() const {
  return ended_ || cache_->state_nodes[size_t(state_)] == std::vector<int32_t>{grammar::empty_stack};
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  if (ended_) return bytes.empty();
  state_ = cache_->trim(state_);
  int32_t state = state_;
  for (char c : bytes) {
    state = cache_->step(state, uint8_t(c));
    if (state == grammar::dead_state) return false;
  }
  state_ = state;
  return true;
}

bool GrammarMatcher::accept_token(TokenId token) {
  const GrammarVocabulary& v = *cache_->vocab;
  if (token < 0 || token >= v.n_tokens) return false;
  if (v.is_end_token[size_t(token)]) {
    if (!can_end()) return false;
    ended_ = true;
    return true;
  }
  const std::string& piece = v.pieces[size_t(token)];
  return !piece.empty() && accept_bytes(piece);
}

void GrammarMatcher::fill_mask(TokenMask& mask) {
  const size_t n_words = (size_t(cache_->vocab->n_tokens) + 63) / 64;
  mask.n_tokens = cache_->vocab->n_tokens;
  mask.words.resize(n_words);
  if (ended_) {
    std::fill(mask.words.begin(), mask.words.end(), 0);
    return;
  }
  state_ = cache_->trim(state_);
  const auto cached = cache_->masks.find(state_);
  if (cached != cache_->masks.end()) {
    std::memcpy(mask.words.data(), cached->second.data(), n_words * sizeof(uint64_t));
    return;
  }
  cache_->compute_mask(state_, mask.words);
  if (cache_->masks.size() >= grammar::max_cached_masks) cache_->masks.clear();
  cache_->masks.emplace(state_, mask.words);
}

}  // namespace slm
