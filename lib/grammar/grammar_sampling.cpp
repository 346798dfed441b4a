// The grammar's mask in front of the sampler chain (slm/grammar.hpp), shared by generate() and
// the server's scheduler.
#include <fmt/format.h>

#include <bit>
#include <limits>

#include "slm/error.hpp"
#include "slm/grammar.hpp"

namespace slm {

TokenId sample_with_grammar(Sampler& sampler, std::span<const float> logits, GrammarMatcher& grammar, TokenMask& mask,
                            std::vector<float>& masked) {
  grammar.fill_mask(mask);
  // A model may have more output rows than tokens (padding): those rows stay -inf.
  if (int64_t(logits.size()) < grammar.n_vocab())
    throw Error(fmt::format("the grammar's vocabulary has {} tokens, the model's logits only {}", grammar.n_vocab(), logits.size()));
  masked.assign(logits.size(), -std::numeric_limits<float>::infinity());
  bool any = false;
  for (size_t w = 0; w < mask.words.size(); ++w) {
    for (uint64_t bits = mask.words[w]; bits; bits &= bits - 1) {
      const size_t i = w * 64 + size_t(std::countr_zero(bits));
      masked[i] = logits[i];
      any = true;
    }
  }
  if (!any) throw Error("grammar: no token of the vocabulary can continue the text");
  const TokenId token = sampler.sample(masked);
  return mask.allows(token) ? token : argmax(masked);
}

}  // namespace slm
