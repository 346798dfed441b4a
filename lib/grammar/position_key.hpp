// A grammar position as text, so that positions of different grammars can share their tokens
// (PositionTokensCache in lib/grammar/grammar_vocabulary.hpp): two positions with the same text
// accept the same tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/grammar/compiled_grammar.hpp"

namespace slm::grammar {

// The text of a cut stack (grammar_matcher.cpp): its frames' element positions, top first, and
// whether it stops at an unknown stack below or at the end of the grammar; then every rule the
// frames reach, numbered in the order met. Empty when longer than max_bytes (not worth sharing).
std::string position_key(const CompiledGrammar& g, const std::vector<int32_t>& frames, bool unknown_below, size_t max_bytes);

}  // namespace slm::grammar
