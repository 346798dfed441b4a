// The JSON the server answers with, in OpenAI's shapes: chat.completion and its stream of
// chat.completion.chunk objects, text_completion (whole and streamed), the usage object, the
// two logprobs formats (chat's content list, and the legacy completions' parallel arrays), and
// the small bodies of /v1/models, /tokenize and /detokenize.
//
// A reasoning model's <think>...</think> section goes to message.reasoning_content
// (delta.reasoning_content when streaming), as DeepSeek's API and llama-server do; the tags and
// the whitespace around the section are left out.
//
// With tools, the answer is parsed for tool calls in the model family's format
// (lib/chat/tool_calls.hpp): they go to message.tool_calls, each with a fresh id, and the
// finish_reason is "tool_calls" ("length" when max_tokens cut the reply). Streaming, a call's
// first delta.tool_calls entry has its index, id, type and name and the start of its arguments
// as soon as they open; the entries that follow carry the next pieces of the arguments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/chat/chat_think.hpp"
#include "lib/chat/tool_calls.hpp"
#include "slm/scheduler.hpp"
#include "slm/tokenizer.hpp"

namespace slm::server {

enum class Endpoint { ChatCompletions, Completions };

// What every chunk of one response repeats.
struct ResponseHeader {
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  std::string model;    // the name the request used, else the served model's
  int64_t created = 0;  // Unix seconds
};

// A fresh id: the prefix and 24 random letters and digits.
std::string new_response_id(std::string_view prefix);

// A call id: "call_" and 24 letters and digits; for Mistral, whose templates refuse any other,
// 9 letters and digits.
std::string new_tool_call_id(chat::ToolCallFormat format);

// Splits a chat reply as it streams into the reasoning and the answer.
struct ReplyDelta {
  std::string reasoning, content;
  std::vector<chat::ToolCallChunk> tool_calls;
  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
};

class ReasoningSplitter {
 public:
  explicit ReasoningSplitter(bool starts_inside_thinking) : filter_(starts_inside_thinking) {}
  ReplyDelta push(std::string_view text);
  ReplyDelta finish();

 private:
  void take(const std::vector<chat::TextSegment>& segments, ReplyDelta& delta);
  chat::ThinkFilter filter_;
  bool reasoning_started_ = false;  // leading whitespace of the reasoning is dropped
  std::string reasoning_whitespace_;  // trailing whitespace of the reasoning, sent only if more follows
  bool content_after_reasoning_ = false;  // leading whitespace of the answer after a section is dropped
};

struct ResponseOptions {
  Endpoint endpoint = Endpoint::ChatCompletions;
  bool starts_inside_thinking = false;  // chat: the prompt opened a <think> section
  bool logprobs = false;
  bool include_usage = false;           // streaming: a last chunk with the usage
  std::optional<chat::ToolCallFormat> tool_calls;  // chat with tools: parse the answer for calls
};

// One response (one choice), built from the scheduler's events: either streamed chunk by chunk
// (stream_*) or whole at the end (add + whole_response). Chunks are JSON without the SSE framing.
class ResponseBuilder {
 public:
  ResponseBuilder(ResponseHeader header, ResponseOptions options, const Tokenizer& tokenizer);

  // Chat: the first chunk, with the role. Completions: none.
  std::optional<std::string> stream_start() const;
  // The chunk for what this token completes; nullopt when its text is held back (its logprobs
  // then ride on the next chunk).
  std::optional<std::string> stream_token(const GeneratedToken& token);
  // The held-back text, the chunk with finish_reason, and with include_usage the usage chunk.
  std::vector<std::string> stream_end(const GenerationSummary& summary);

  void add(const GeneratedToken& token);
  std::string whole_response(const GenerationSummary& summary);

  // A field added at the top level of the whole response and of the chunk with finish_reason,
  // beside `confidence` (the summary's): slm-server's routing puts `slm_route` there. `json` is
  // a JSON value's text.
  void set_extension(std::string name, std::string json);

 private:
  ReplyDelta take_text(std::string_view text);
  // The text the scheduler held back to the end, and whatever the splitter still holds.
  ReplyDelta take_tail(std::string_view tail);
  std::string chunk(const ReplyDelta& delta, std::optional<std::string_view> finish_reason);
  std::string_view finish_reason(const GenerationSummary& summary) const;
  const std::string& next_tool_call_id();

  ResponseHeader header_;
  ResponseOptions options_;
  const Tokenizer& tokenizer_;
  ReasoningSplitter splitter_;
  std::optional<chat::ToolCallParser> tool_parser_;
  std::string reasoning_, content_;           // the whole reply so far
  std::vector<chat::ParsedToolCall> tool_calls_;  // whole: every call parsed so far
  std::vector<std::string> tool_call_ids_;    // one per call, in order
  std::vector<GeneratedToken> logprob_tokens_; // whole: all; streaming: those not yet sent
  size_t text_offset_ = 0;                     // completions' logprobs.text_offset of the next token
  GenerationSummary final_summary_;            // for the last chunk's confidence and timings
  std::vector<std::pair<std::string, std::string>> extensions_;  // set_extension()'s
};

// "stop" or "length" (a cancelled or failed request has no response).
std::string_view finish_reason_text(FinishReason reason);

std::string models_response(const std::string& model_name, int64_t created, int32_t n_ctx_per_request);
std::string tokenize_response(const Tokenizer& tokenizer, const std::vector<TokenId>& tokens, bool with_pieces);
std::string detokenize_response(const std::string& content);

}  // namespace slm::server
