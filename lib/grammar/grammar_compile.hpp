// The library-internal steps of compiling a grammar (see slm/grammar.hpp for the public face).
#pragma once

#include <string_view>

#include "lib/grammar/compiled_grammar.hpp"
#include "slm/grammar.hpp"

namespace slm::grammar {

CompiledGrammar parse_gbnf(std::string_view text, const GrammarLimits& limits);
// Throws slm::Error naming a rule that can reach itself without consuming a byte.
void check_left_recursion(const CompiledGrammar& grammar);

}  // namespace slm::grammar
