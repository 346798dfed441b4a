// libFuzzer target for the tool-call parser (lib/chat/tool_calls.hpp), every format: any model
// text must parse without a crash, a hang or unbounded recursion, and the same text streamed in
// pieces must give what the whole text gives: the same content and the same calls, each call's
// first piece first and named. The first byte picks the format and the second the piece size
// (1 to 16 bytes); the rest is the reply.
//   mkdir corpus && printf '\x00\x03<tool_call>\n{"name": "f", "arguments": {"a": [1]}}\n</tool_call>' > corpus/h
//   ./build-fuzz/bin/fuzz_tool_calls -max_total_time=20 corpus
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "lib/chat/tool_calls.hpp"

namespace {

using slm::chat::ToolCallFormat;

constexpr ToolCallFormat formats[] = {ToolCallFormat::Hermes, ToolCallFormat::Llama3, ToolCallFormat::Mistral,
                                      ToolCallFormat::Phi4,   ToolCallFormat::Granite, ToolCallFormat::Json};

void check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const ToolCallFormat format = formats[data[0] % std::size(formats)];
  const size_t piece = 1 + data[1] % 16;
  const std::string_view reply(reinterpret_cast<const char*>(data) + 2, size - 2);

  const slm::chat::ParsedReply whole = slm::chat::parse_tool_calls(format, reply);

  slm::chat::ToolCallParser parser(format);
  std::string content;
  std::vector<slm::chat::ParsedToolCall> calls;
  const auto take = [&](const slm::chat::ToolCallDelta& delta) {
    content += delta.content;
    for (const slm::chat::ToolCallChunk& chunk : delta.calls) {
      check(chunk.index <= calls.size());
      check((chunk.index == calls.size()) == !chunk.name.empty());
      slm::chat::join_tool_call_chunks(calls, {chunk});
    }
  };
  for (size_t at = 0; at < reply.size(); at += piece) take(parser.push(reply.substr(at, piece)));
  take(parser.finish());

  check(content == whole.content);
  check(calls.size() == whole.calls.size());
  for (size_t i = 0; i < calls.size(); ++i)
    check(calls[i].name == whole.calls[i].name && calls[i].arguments == whole.calls[i].arguments);
  check(parser.found_calls() == !calls.empty());
  return 0;
}
