#include "lib/grammar/grammar_vocabulary.hpp"

#include "lib/grammar/utf8_ranges.hpp"

#include <algorithm>
#include <numeric>

namespace slm {

std::shared_ptr<const GrammarVocabulary> make_grammar_vocabulary(std::span<const std::string> pieces,
                                                                 std::span<const TokenId> end_tokens) {
  auto v = std::make_shared<GrammarVocabulary>();
  v->n_tokens = int32_t(pieces.size());
  v->pieces.assign(pieces.begin(), pieces.end());
  v->is_end_token.assign(pieces.size(), false);
  for (TokenId t : end_tokens) {
    if (t < 0 || t >= v->n_tokens) throw Error("grammar vocabulary: end token id out of range");
    v->end_tokens.push_back(t);
    v->is_end_token[size_t(t)] = true;
    v->pieces[size_t(t)].clear();
  }
  std::vector<TokenId> order;
  for (TokenId t = 0; t < v->n_tokens; ++t)
    if (!v->pieces[size_t(t)].empty()) order.push_back(t);
  std::sort(order.begin(), order.end(), [&](TokenId a, TokenId b) {
    return v->pieces[size_t(a)] != v->pieces[size_t(b)] ? v->pieces[size_t(a)] < v->pieces[size_t(b)] : a < b;
  });

  // Sorted pieces give the trie in preorder: each piece shares its longest common prefix with
  // the one before it, and opens new nodes for the rest.
  v->node_byte = {0};
  v->node_depth = {0};
  v->subtree_end = {0};
  std::vector<int32_t> path{0};  // path[d] = the node at depth d on the current prefix
  std::vector<int32_t> token_node(pieces.size(), -1);
  const std::string* previous = nullptr;
  for (TokenId t : order) {
    const std::string& piece = v->pieces[size_t(t)];
    size_t common = 0;
    if (previous)
      while (common < previous->size() && common < piece.size() && (*previous)[common] == piece[common]) ++common;
    while (path.size() > common + 1) {
      v->subtree_end[size_t(path.back())] = int32_t(v->node_byte.size());
      path.pop_back();
    }
    for (size_t i = common; i < piece.size(); ++i) {
      path.push_back(int32_t(v->node_byte.size()));
      v->node_byte.push_back(uint8_t(piece[i]));
      v->node_depth.push_back(int32_t(i + 1));
      v->subtree_end.push_back(0);
    }
    v->max_depth = std::max(v->max_depth, int32_t(piece.size()));
    token_node[size_t(t)] = path.back();
    previous = &piece;
  }
  for (int32_t node : path) v->subtree_end[size_t(node)] = int32_t(v->node_byte.size());

  // A node's parent is the last node before it one level up (preorder).
  v->subtree_is_plain_text.assign(v->node_byte.size(), 1);
  std::vector<int32_t> parent(v->node_byte.size(), 0), last_at_depth(size_t(v->max_depth) + 1, 0);
  for (int32_t i = 1; i < int32_t(v->node_byte.size()); ++i) {
    parent[size_t(i)] = last_at_depth[size_t(v->node_depth[size_t(i)]) - 1];
    last_at_depth[size_t(v->node_depth[size_t(i)])] = i;
  }
  for (int32_t i = int32_t(v->node_byte.size()); i-- > 1;)
    if (!is_plain_text_byte(v->node_byte[size_t(i)]) || !v->subtree_is_plain_text[size_t(i)])
      v->subtree_is_plain_text[size_t(parent[size_t(i)])] = 0;
  // text_below[i] bit q: every path below node i is text from text state q; children first.
  std::vector<uint8_t> text_below(v->node_byte.size(), uint8_t((1u << grammar::text_states) - 1));
  for (int32_t i = int32_t(v->node_byte.size()); i-- > 1;) {
    uint8_t from = 0;
    for (int q = 0; q < grammar::text_states; ++q) {
      const int next = grammar::text_step(q, v->node_byte[size_t(i)]);
      if (next != grammar::text_dead && (text_below[size_t(i)] >> next & 1)) from |= uint8_t(1u << q);
    }
    text_below[size_t(parent[size_t(i)])] &= from;
  }
  v->subtree_is_text.resize(v->node_byte.size());
  for (size_t i = 0; i < text_below.size(); ++i) v->subtree_is_text[i] = text_below[i] & 1;

  v->tokens_begin.assign(v->node_byte.size() + 1, 0);
  for (int32_t node : token_node)
    if (node >= 0) ++v->tokens_begin[size_t(node) + 1];
  std::partial_sum(v->tokens_begin.begin(), v->tokens_begin.end(), v->tokens_begin.begin());
  v->trie_tokens.resize(order.size());
  std::vector<int32_t> fill(v->tokens_begin.begin(), v->tokens_begin.end() - 1);
  for (TokenId t = 0; t < v->n_tokens; ++t)
    if (token_node[size_t(t)] >= 0) v->trie_tokens[size_t(fill[size_t(token_node[size_t(t)])]++)] = t;
  return v;
}

// Control and unknown tokens are never grammar text; end-of-generation tokens are handled apart.
std::shared_ptr<const GrammarVocabulary> make_grammar_vocabulary(const Tokenizer& tokenizer) {
  std::vector<std::string> pieces(size_t(tokenizer.n_vocab()));
  for (TokenId t = 0; t < tokenizer.n_vocab(); ++t)
    if (!tokenizer.is_special(t) && !tokenizer.is_end_of_generation(t)) pieces[size_t(t)] = tokenizer.token_to_piece(t, false);
  return make_grammar_vocabulary(pieces, tokenizer.end_of_generation_ids());
}

}  // namespace slm
