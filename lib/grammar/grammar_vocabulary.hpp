// Every token's bytes in a trie, laid out in preorder so that a mask is one forward pass:
// a token is allowed when the matcher's state after its bytes is alive, and a dead state
// skips its whole subtree (every token that shares the prefix) at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slm/grammar.hpp"

namespace slm {

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
};

}  // namespace slm
