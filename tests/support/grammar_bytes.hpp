// Driving a grammar byte by byte in tests: a vocabulary of the 256 single bytes (token 256 is an
// end-of-generation token), whether a whole text is a sentence of a grammar, and the error
// message a failing call throws.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "slm/grammar.hpp"

namespace slm::test {

std::shared_ptr<const GrammarVocabulary> byte_vocabulary();
bool grammar_matches(const Grammar& grammar, const std::string& text);
// The slm::Error message `call` throws, or "(no error)".
std::string error_of(const std::function<void()>& call);

}  // namespace slm::test
