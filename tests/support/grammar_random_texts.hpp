// Masks against their definition on a small vocabulary: a random text is generated under the
// grammar token by token, and at every step the matcher's mask must be exactly the tokens whose
// bytes the grammar accepts after the text so far (a second matcher replays the text for each
// token). Used by the tests of the mask's shortcuts (counted repetitions, subtrees of text).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "slm/grammar.hpp"

namespace slm::test {

// The setup of such a test: a seeded generator, the vocabulary's pieces drawn with it (token 0,
// piece "", is the end of generation) and the vocabulary of those pieces.
struct RandomTextsOnPieces {
  std::mt19937 rng{20261206};
  std::vector<std::string> pieces;
  std::shared_ptr<const GrammarVocabulary> vocabulary;

  explicit RandomTextsOnPieces(const std::function<std::vector<std::string>(std::mt19937&)>& make_pieces)
      : pieces(make_pieces(rng)), vocabulary(make_grammar_vocabulary(pieces, std::vector<TokenId>{0})) {}

  // Tokens that stay in the grammar's text are preferred over ending, so that the texts get
  // long. `on_allowed` sees every allowed token of every step.
  void expect_masks_follow_their_definition_on_a_random_text(const Grammar& grammar, int max_steps,
                                                             const std::function<void(TokenId)>& on_allowed = {}) {
    GrammarMatcher matcher(grammar, vocabulary);
    GrammarMatcher reference(grammar, vocabulary);
    TokenMask mask;
    std::string so_far;
    for (int step = 0; step < max_steps && !matcher.is_complete(); ++step) {
      matcher.fill_mask(mask);
      std::vector<TokenId> allowed;
      for (TokenId t = 0; t < TokenId(pieces.size()); ++t) {
        reference.reset();
        const bool accepts = reference.accept_bytes(so_far) && reference.accept_token(t);
        ASSERT_EQ(mask.allows(t), accepts) << "token '" << pieces[size_t(t)] << "' after '" << so_far << "'";
        if (!accepts) continue;
        allowed.push_back(t);
        if (on_allowed) on_allowed(t);
      }
      ASSERT_FALSE(allowed.empty()) << "after '" << so_far << "'";
      const TokenId t = allowed.size() > 1 && allowed[0] == 0 ? allowed[1 + rng() % (allowed.size() - 1)]
                                                              : allowed[rng() % allowed.size()];
      ASSERT_TRUE(matcher.accept_token(t));
      so_far += pieces[size_t(t)];
    }
  }
};

}  // namespace slm::test
