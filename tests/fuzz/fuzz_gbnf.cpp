// libFuzzer target for the GBNF parser and the matcher: any text must compile or be refused
// with slm::Error, never crash, hang or recurse without bound. A grammar that compiles is then
// driven over the input's own bytes, with a mask over a small vocabulary at every step.
//   mkdir corpus && printf 'root ::= "a" [b-d]* ("x" | y)?\ny ::= "y"{1,3}\n' > corpus/g
//   ./build-fuzz/bin/fuzz_gbnf -max_total_time=20 corpus
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "slm/error.hpp"
#include "slm/grammar.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const auto vocabulary = [] {
    std::vector<std::string> pieces = {"a", "b", "ab", "\"", "{", "}", " ", "x", "\xC3", "\xA9", "\xC3\xA9", "1", ""};
    const slm::TokenId end[] = {12};
    return slm::make_grammar_vocabulary(pieces, end);
  }();
  try {
    slm::GrammarLimits limits;
    limits.max_elements = 1 << 16;
    const slm::Grammar grammar = slm::compile_gbnf(text, limits);
    slm::GrammarMatcher matcher(grammar, vocabulary);
    slm::TokenMask mask;
    for (size_t i = 0; i < size && i < 64; ++i) {
      matcher.fill_mask(mask);
      matcher.accept_bytes(text.substr(i, 1));
      (void)matcher.can_end();
      (void)matcher.is_complete();
    }
  } catch (const slm::Error&) {
  }
  return 0;
}
