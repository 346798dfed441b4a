// Tool calls in a model's own words: which format a model family writes its calls in, a parser
// that finds them in the streamed reply, and a grammar that makes a model write one.
//
// The formats (what the model writes; the JSON body is one call object or a list of them):
//   Hermes  (Qwen2.5, Qwen3, Hermes, SmolLM3): <tool_call>{"name": ..., "arguments": {...}}</tool_call>, repeated
//   Llama3  (Llama 3.1/3.2/3.3): {"name": ..., "parameters": {...}}, the whole reply, optionally
//           after <|python_tag|>; several calls separated by ';'
//   Mistral (Mistral/Mixtral/Nemo): [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
//   Phi4    (Phi-4-mini): functools[{"name": ..., "arguments": {...}}, ...], to the end of the reply
//           (the Granite tags below are read too)
//   Granite (Granite 3.x): <|tool_call|>[{"name": ..., "arguments": {...}}, ...]<|/tool_call|>
//           (the closing tag may be absent, as Granite writes it)
//   Json    (any other template): the whole reply is a call object or a list of them
// A call object is {"name": N, "arguments": A} or {"name": N, "parameters": A}, or the OpenAI
// shape {"function": {"name": N, "arguments": A}}; A is an object, or a string holding one.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace slm::chat {

enum class ToolCallFormat { Hermes, Llama3, Mistral, Phi4, Granite, Json };

std::string_view tool_call_format_name(ToolCallFormat format);  // "hermes", "llama3", ...

// The format a chat template teaches, from the markers its source writes: "<tool_call>" ->
// Hermes; "[TOOL_CALLS]" -> Mistral; "<|tool_call|>" -> Granite; "<|tool|>" (Phi-4-mini's
// tools tag; its template shows no call) -> Phi4; "<|python_tag|>" or
// "<|start_header_id|>" with "parameters" -> Llama3; anything else -> Json.
ToolCallFormat detect_tool_call_format(std::string_view template_source);

// What opens a call block anywhere in the text, and what closes it ("" = the end of the reply).
// body_keeps: the opening marker's last bytes that are the body's first ("functools[": its '[').
struct ToolCallMarker {
  std::string_view open;
  std::string_view close;
  size_t body_keeps = 0;
};
std::vector<ToolCallMarker> tool_call_markers(ToolCallFormat format);
// The characters a whole reply that is a bare JSON call begins with (after whitespace): "{" for
// Llama3, "{[" for Json, "" for the formats with markers.
std::string_view tool_call_bare_starts(ToolCallFormat format);

// A call as parsed: `arguments` is JSON text (an object) without whitespace outside strings.
struct ParsedToolCall {
  std::string name;
  std::string arguments;
};

// A piece of call `index` (0, 1, ... over the whole reply) as the reply streams. A call's first
// piece has its name and the start of its arguments ("{"); the pieces that follow add to the
// arguments. Every piece is final: the pieces of a call joined are its arguments.
struct ToolCallChunk {
  size_t index = 0;
  std::string name;  // on the call's first piece only
  std::string arguments;
};

// What a piece of the reply adds: plain text, and pieces of calls.
struct ToolCallDelta {
  std::string content;
  std::vector<ToolCallChunk> calls;
  bool empty() const { return content.empty() && calls.empty(); }
};

// Adds the pieces to the calls they belong to (calls[index]).
void join_tool_call_chunks(std::vector<ParsedToolCall>& calls, const std::vector<ToolCallChunk>& chunks);

class CallBlockReader;

// Splits a streamed reply into text and tool calls. Text that may start a call marker, and
// whitespace, is held back until the next text decides. In a call block, a call in the usual
// shape ({"name": N, "arguments": {...}}, name first; lib/chat/tool_call_stream.hpp) is
// announced as soon as its arguments open, and its arguments follow as they arrive, checked as
// JSON byte by byte. A block of another shape is read whole at its end; one that does not parse
// is given back as text, so nothing the model wrote is lost. (Should the JSON of an announced
// call break, which a grammar rules out, the call keeps what was sent and the rest of the block
// is text. A reply cut inside a call leaves it with the arguments so far, as OpenAI does.)
// Whitespace around calls is dropped.
class ToolCallParser {
 public:
  explicit ToolCallParser(ToolCallFormat format);
  ~ToolCallParser();
  ToolCallParser(ToolCallParser&&) noexcept;
  ToolCallParser& operator=(ToolCallParser&&) noexcept;
  ToolCallDelta push(std::string_view text);
  ToolCallDelta finish();  // the end of the reply
  bool found_calls() const { return found_calls_; }

 private:
  void scan(ToolCallDelta& delta, bool at_end);
  void emit_text(std::string_view text, ToolCallDelta& delta);
  void feed_block(size_t end, ToolCallDelta& delta);
  void finish_block(std::string_view body, bool closed, ToolCallDelta& delta);
  void emit_whole(std::vector<ParsedToolCall>& calls, size_t from, ToolCallDelta& delta);

  ToolCallFormat format_;
  std::string pending_;        // not yet decided; in a call block, the body so far
  bool in_call_ = false;       // pending_ is a call block's body (after its opening marker)
  std::string open_marker_;    // the marker's bytes that opened it ("" for a bare JSON reply)
  std::string close_marker_;   // what closes it ("" = the end of the reply)
  std::unique_ptr<CallBlockReader> reader_;  // the block's streamed calls
  size_t fed_ = 0;             // bytes of the body the reader has read
  size_t n_calls_ = 0;         // calls of the reply so far (their indexes)
  bool seen_text_ = false;     // non-whitespace text has been emitted
  std::string held_space_;     // whitespace held until non-whitespace text follows
  bool found_calls_ = false;
};

// A whole reply's text and calls.
struct ParsedReply {
  std::string content;
  std::vector<ParsedToolCall> calls;
};

// Parses a whole reply (ToolCallParser over the whole text).
ParsedReply parse_tool_calls(ToolCallFormat format, std::string_view reply);

// A function the model may call: its name and the JSON Schema of its arguments (JSON text).
struct ToolFunction {
  std::string name;
  std::string parameters_schema;
};

// GBNF for a reply that is exactly a call in `format` to one of `functions`, with arguments
// valid against that function's schema; with `parallel`, one to four calls (Llama3: one). The
// JSON is compact, as slm's JSON Schema grammars write it. Throws slm::Error naming the
// function whose schema cannot be converted.
std::string tool_call_gbnf(ToolCallFormat format, std::span<const ToolFunction> functions, bool parallel);

// GBNF for tool_choice "auto": either free text in which no call begins (no call marker
// anywhere; for the bare-JSON formats, not beginning with a JSON call's first character), or a
// call as tool_call_gbnf allows it (for the formats with markers, after such text). So every
// reply the parser reads is plain text or valid calls, and the reply may end anywhere in text.
std::string tool_call_auto_gbnf(ToolCallFormat format, std::span<const ToolFunction> functions, bool parallel);

// A reasoning model writes <think>...</think> before its reply: the grammar must let it.
// Optional: the template knows thinking (a <think> block may come first); Open: the prompt ends
// inside <think> (the reply begins with the thinking, then </think>). The thinking is any text
// without "</think>"; up to four blank characters may follow the block.
enum class ThinkBlock { None, Optional, Open };
// `gbnf` (whose first rule is root) with the think block `think` asks for before it.
std::string with_think_block(std::string_view gbnf, ThinkBlock think);

}  // namespace slm::chat
