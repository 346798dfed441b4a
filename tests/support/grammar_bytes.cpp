#include "support/grammar_bytes.hpp"

#include <vector>

#include "slm/error.hpp"

namespace slm::test {

std::shared_ptr<const GrammarVocabulary> byte_vocabulary() {
  static const auto vocabulary = [] {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, char(b)));
    pieces.push_back("");  // 256: an end-of-generation token
    const TokenId end[] = {256};
    return make_grammar_vocabulary(pieces, end);
  }();
  return vocabulary;
}

bool grammar_matches(const Grammar& grammar, const std::string& text) {
  GrammarMatcher matcher(grammar, byte_vocabulary());
  return matcher.accept_bytes(text) && matcher.can_end();
}

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace slm::test
