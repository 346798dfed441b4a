// libFuzzer target for the JSON Schema converter: any text must convert (to a grammar that
// compiles) or be refused with slm::Error, never crash, hang or recurse without bound.
//   mkdir corpus && printf '{"type":"object","properties":{"a":{"$ref":"#"}}}' > corpus/s
//   ./build-fuzz/bin/fuzz_json_schema -max_total_time=20 corpus
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "slm/error.hpp"
#include "slm/grammar.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    slm::GrammarLimits limits;
    limits.max_elements = 1 << 16;
    limits.max_repetition = 256;
    (void)slm::grammar_from_json_schema(text, limits);
  } catch (const slm::Error&) {
  }
  return 0;
}
