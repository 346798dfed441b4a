// Every token's bytes in a trie, laid out in preorder so that a mask is one forward pass:
// a token is allowed when the matcher's state after its bytes is alive, and a dead state
// skips its whole subtree (every token that shares the prefix) at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "slm/grammar.hpp"

namespace slm {

// Printable ASCII but the quote and the backslash: what a JSON string takes as itself.
inline bool is_plain_text_byte(uint8_t byte) { return byte >= 0x20 && byte < 0x7F && byte != '"' && byte != '\\'; }

// What the tokens do from a grammar position whose stack below is unknown (see MatcherCache in
// grammar_matcher.cpp): the tokens accepted whatever lies below, and the trie nodes at which the
// position's rules may have returned into what lies below, so that the rest of the token depends
// on it.
struct PositionTokens {
  std::vector<uint64_t> words;          // the accepted tokens as a bitset, or empty and...
  std::vector<TokenId> tokens;          // ...as a list, when they are few
  std::vector<int32_t> boundary_nodes;  // trie nodes, in preorder

  // A canonical counted position (CountedFrame in lib/grammar/compiled_grammar.hpp) holds its tokens
  // by the number of further items each takes instead (its `need`), so that the mask of any
  // repetition of the item is derived from it. not_derivable: the item's parse is ambiguous (a
  // token's count is not fixed by its bytes), or the vocabulary has tokens too long for the
  // canonical chain; the position is then walked as it is.
  bool counted = false, not_derivable = false;
  static constexpr int32_t counted_bitsets = 16;
  std::vector<std::vector<uint64_t>> within_words;        // [r]: the tokens staying in the repetition with need <= r
  std::vector<uint64_t> all_within_words;                 // every token staying in the repetition
  int32_t max_need = 0;
  std::vector<std::pair<int32_t, TokenId>> long_within;  // (need, token) for need >= counted_bitsets, by need
  std::vector<std::pair<TokenId, int32_t>> exit_tokens;   // (token, items done when it left the repetition)
  std::vector<std::pair<int32_t, int32_t>> exit_boundaries;  // (trie node, items done when it left)
};

// PositionTokens by the position's grammar (its rules as a canonical text), shared by every
// grammar and matcher on this vocabulary: positions recur across grammars (a JSON string's
// characters), and the first visit walks most of the trie. Bounded by the bytes it holds (most
// entries are short token lists, a few bitsets of the vocabulary), emptied when full; thread-safe.
struct PositionTokensCache {
  static constexpr size_t max_bytes = size_t(96) << 20;
  std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<const PositionTokens>> entries;
  size_t bytes = 0;

  static size_t size_of(const std::string& key, const PositionTokens& value) {
    size_t words = value.words.size() + value.all_within_words.size();
    for (const auto& within : value.within_words) words += within.size();
    return key.size() + words * sizeof(uint64_t) +
           (value.tokens.size() + value.boundary_nodes.size() + 2 * value.long_within.size() +
            2 * value.exit_tokens.size() + 2 * value.exit_boundaries.size()) * sizeof(int32_t) + 128;
  }
  std::shared_ptr<const PositionTokens> find(const std::string& key) {
    std::lock_guard lock(mutex);
    const auto found = entries.find(key);
    return found == entries.end() ? nullptr : found->second;
  }
  void insert(const std::string& key, std::shared_ptr<const PositionTokens> value) {
    std::lock_guard lock(mutex);
    const size_t size = size_of(key, *value);
    if (bytes + size > max_bytes) {
      entries.clear();
      bytes = 0;
    }
    if (entries.emplace(key, std::move(value)).second) bytes += size;
  }
};

struct GrammarVocabulary {
  int32_t n_tokens = 0;
  std::vector<std::string> pieces;      // per token: its bytes ("" = never allowed)
  std::vector<TokenId> end_tokens;      // allowed only where the grammar may end
  std::vector<bool> is_end_token;
  // The trie; node 0 is the root (the empty prefix).
  std::vector<uint8_t> node_byte;
  std::vector<int32_t> node_depth;
  std::vector<int32_t> subtree_end;     // one past the last node of the subtree
  std::vector<int32_t> tokens_begin;    // tokens ending at node i: trie_tokens[tokens_begin[i], tokens_begin[i+1])
  std::vector<TokenId> trie_tokens;
  int32_t max_depth = 0;
  // Per node: every byte below it is plain text (is_plain_text_byte), so that a state which loops
  // on those bytes (inside a JSON string) accepts the whole subtree at once.
  std::vector<uint8_t> subtree_is_plain_text;
  // Per node: every path below it is text (text_step in lib/grammar/utf8_ranges.hpp: JSON string
  // characters, UTF-8 included, the last one possibly cut short), so that a state which every
  // text character leads back to accepts the whole subtree at once.
  std::vector<uint8_t> subtree_is_text;
  // Not part of the vocabulary's value: a cache of work done on it.
  std::unique_ptr<PositionTokensCache> position_tokens = std::make_unique<PositionTokensCache>();
};

}  // namespace slm
