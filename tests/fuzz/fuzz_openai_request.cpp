// libFuzzer target for slm-server's request parser (a request body -> the request structs):
// any input must either parse or be refused with ApiError, never crash, hang or leak.
// ASan/UBSan (added by CMake) turn every out-of-bounds access or overflow into a crash.
// The first byte picks the endpoint ('0' chat, '1' completions, '2' tokenize, '3' detokenize), the
// rest is the body. Seed a corpus with bodies, e.g.
//   mkdir corpus && printf '0{"messages":[{"role":"user","content":"Hi"}]}' > corpus/chat
//   ./build-fuzz/bin/fuzz_openai_request -max_total_time=30 corpus
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lib/server/api_error.hpp"
#include "lib/server/openai_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const slm::server::RequestLimits limits;
  const slm::SamplerParams defaults;
  try {
    switch (data[0] % 4) {
      case 0: slm::server::parse_chat_request(body, defaults, limits); break;
      case 1: slm::server::parse_completion_request(body, defaults, limits); break;
      case 2: slm::server::parse_tokenize_request(body, limits); break;
      default: slm::server::parse_detokenize_request(body, limits); break;
    }
  } catch (const slm::server::ApiError&) {
  }
  return 0;
}
