#include "lib/chat/tool_calls.hpp"

#include "lib/chat/tool_call_stream.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "slm/error.hpp"
#include "slm/grammar.hpp"

namespace slm::chat {

namespace {

using Json = nlohmann::ordered_json;

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Formats whose whole reply may be a bare JSON call, and the characters that start one.
std::string_view bare_json_starts(ToolCallFormat format) {
  if (format == ToolCallFormat::Llama3) return "{";
  if (format == ToolCallFormat::Json) return "{[";
  return {};
}

// The length of the longest end of `text` that is the start of `marker` (a marker split
// between two pieces of the stream).
size_t partial_marker_at_end(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

// Arguments as compact JSON text: an object, or a string holding one. Absent: no arguments.
bool read_arguments(const Json* arguments, std::string& out) {
  if (!arguments || arguments->is_null()) {
    out = "{}";
    return true;
  }
  if (arguments->is_object()) {
    out = arguments->dump(-1, ' ', false, Json::error_handler_t::replace);
    return true;
  }
  if (!arguments->is_string()) return false;
  const Json parsed = Json::parse(arguments->get<std::string>(), nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return false;
  out = parsed.dump(-1, ' ', false, Json::error_handler_t::replace);
  return true;
}

bool read_call(const Json& item, ParsedToolCall& call) {
  if (!item.is_object()) return false;
  const Json* object = &item;
  if (const auto function = item.find("function"); function != item.end() && function->is_object())
    object = &*function;
  const auto name = object->find("name");
  if (name == object->end() || !name->is_string() || name->get<std::string>().empty()) return false;
  call.name = name->get<std::string>();
  const Json* arguments = nullptr;
  for (const char* key : {"arguments", "parameters"})
    if (const auto found = object->find(key); found != object->end() && !arguments) arguments = &*found;
  return read_arguments(arguments, call.arguments);
}

// The top-level pieces of `body` between `separator`s, outside strings (Llama 3 separates calls
// with ';'), and the deepest nesting of brackets seen.
std::vector<std::string_view> split_top_level(std::string_view body, char separator, int& max_depth) {
  std::vector<std::string_view> pieces;
  int depth = 0;
  max_depth = 0;
  bool in_string = false, escaped = false;
  size_t start = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == separator && depth == 0) {
      pieces.push_back(body.substr(start, i - start));
      start = i + 1;
    }
  }
  pieces.push_back(body.substr(start));
  return pieces;
}

// Model text nested deeper than this is not a call: printing and freeing JSON recurse.
constexpr int kMaxCallNesting = 64;

// The calls a block's body holds: one call object, or a list of them (Llama3: ';'-separated).
bool parse_call_block(ToolCallFormat format, std::string_view body, std::vector<ParsedToolCall>& calls) {
  int max_depth = 0;
  std::vector<std::string_view> pieces = split_top_level(body, ';', max_depth);
  if (max_depth > kMaxCallNesting) return false;
  if (format != ToolCallFormat::Llama3) pieces = {body};
  for (const std::string_view piece : pieces) {
    const Json parsed = Json::parse(piece, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return false;
    if (parsed.is_array()) {
      if (parsed.empty()) return false;
      for (const Json& item : parsed)
        if (!read_call(item, calls.emplace_back())) return false;
    } else if (!read_call(parsed, calls.emplace_back())) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<ToolCallMarker> tool_call_markers(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::Hermes: return {{"<tool_call>", "</tool_call>"}};
    case ToolCallFormat::Llama3: return {{"<|python_tag|>", ""}};
    case ToolCallFormat::Mistral: return {{"[TOOL_CALLS]", ""}};
    // Phi-4-mini writes functools[...]; its tokenizer's <|tool_call|> tags are read as well.
    case ToolCallFormat::Phi4: return {{"functools[", "", 1}, {"<|tool_call|>", "<|/tool_call|>"}};
    case ToolCallFormat::Granite: return {{"<|tool_call|>", "<|/tool_call|>"}};
    case ToolCallFormat::Json: return {};
  }
  return {};
}

std::string_view tool_call_bare_starts(ToolCallFormat format) { return bare_json_starts(format); }

std::string_view tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::Hermes: return "hermes";
    case ToolCallFormat::Llama3: return "llama3";
    case ToolCallFormat::Mistral: return "mistral";
    case ToolCallFormat::Phi4: return "phi4";
    case ToolCallFormat::Granite: return "granite";
    case ToolCallFormat::Json: return "json";
  }
  return "json";
}

ToolCallFormat detect_tool_call_format(std::string_view source) {
  const auto has = [&](std::string_view marker) { return source.find(marker) != std::string_view::npos; };
  if (has("<tool_call>")) return ToolCallFormat::Hermes;
  if (has("[TOOL_CALLS]")) return ToolCallFormat::Mistral;
  if (has("<|tool_call|>")) return ToolCallFormat::Granite;
  if (has("<|tool|>")) return ToolCallFormat::Phi4;
  if (has("<|python_tag|>") || (has("<|start_header_id|>") && has("parameters"))) return ToolCallFormat::Llama3;
  return ToolCallFormat::Json;
}

void ToolCallParser::emit_text(std::string_view text, ToolCallDelta& delta) {
  size_t end = text.size();
  while (end > 0 && is_space(text[end - 1])) --end;
  if (end == 0) {  // whitespace only: it waits for the text it separates
    held_space_ += text;
    return;
  }
  delta.content += held_space_;
  delta.content += text.substr(0, end);
  held_space_ = std::string(text.substr(end));
  seen_text_ = true;
}

ToolCallParser::ToolCallParser(ToolCallFormat format) : format_(format) {}
ToolCallParser::~ToolCallParser() = default;
ToolCallParser::ToolCallParser(ToolCallParser&&) noexcept = default;
ToolCallParser& ToolCallParser::operator=(ToolCallParser&&) noexcept = default;

void join_tool_call_chunks(std::vector<ParsedToolCall>& calls, const std::vector<ToolCallChunk>& chunks) {
  for (const ToolCallChunk& chunk : chunks) {
    if (chunk.index >= calls.size()) calls.resize(chunk.index + 1);
    if (!chunk.name.empty()) calls[chunk.index].name = chunk.name;
    calls[chunk.index].arguments += chunk.arguments;
  }
}

void ToolCallParser::emit_whole(std::vector<ParsedToolCall>& calls, size_t from, ToolCallDelta& delta) {
  for (size_t i = from; i < calls.size(); ++i)
    delta.calls.push_back({n_calls_++, std::move(calls[i].name), std::move(calls[i].arguments)});
  held_space_.clear();  // whitespace before a call separates nothing
  found_calls_ = true;
}

// Gives the block's reader the body up to `end`.
void ToolCallParser::feed_block(size_t end, ToolCallDelta& delta) {
  if (end <= fed_) return;
  reader_->push(std::string_view(pending_).substr(fed_, end - fed_), delta.calls);
  fed_ = end;
  if (reader_->announced() > 0) {
    held_space_.clear();
    found_calls_ = true;
  }
}

void ToolCallParser::finish_block(std::string_view body, bool closed, ToolCallDelta& delta) {
  const size_t announced = reader_->announced();
  if (!reader_->deviated() && (reader_->complete() || announced > 0)) {  // streamed whole, or cut inside
    n_calls_ += announced;
    return;
  }
  std::vector<ParsedToolCall> calls;
  const bool parsed = parse_call_block(format_, body, calls) && calls.size() >= announced;
  n_calls_ += announced;
  if (parsed && calls.size() > announced) emit_whole(calls, announced, delta);
  else if (parsed && announced > 0) return;
  else if (announced == 0) emit_text(open_marker_ + std::string(body) + (closed ? close_marker_ : ""), delta);
  else emit_text(std::string(body.substr(reader_->deviated_at())) + (closed ? close_marker_ : ""), delta);
}

void ToolCallParser::scan(ToolCallDelta& delta, bool at_end) {
  const std::vector<ToolCallMarker> markers = tool_call_markers(format_);
  while (true) {
    if (in_call_) {
      const size_t closed_at = close_marker_.empty() ? std::string::npos : pending_.find(close_marker_);
      if (closed_at == std::string::npos && !at_end) {  // the block goes on: the reader takes what is sure
        const size_t hold = close_marker_.empty() ? 0 : partial_marker_at_end(pending_, close_marker_);
        feed_block(pending_.size() - hold, delta);
        return;
      }
      const size_t body_end = closed_at == std::string::npos ? pending_.size() : closed_at;
      feed_block(body_end, delta);
      finish_block(std::string_view(pending_).substr(0, body_end), closed_at != std::string::npos, delta);
      pending_.erase(0, closed_at == std::string::npos ? pending_.size() : closed_at + close_marker_.size());
      in_call_ = false;
      reader_.reset();
      fed_ = 0;
      continue;
    }
    if (!seen_text_ && !found_calls_ && !bare_json_starts(format_).empty()) {
      size_t first = 0;
      while (first < pending_.size() && is_space(pending_[first])) ++first;
      held_space_ += pending_.substr(0, first);
      pending_.erase(0, first);
      if (pending_.empty()) return;
      if (bare_json_starts(format_).find(pending_.front()) != std::string_view::npos) {
        in_call_ = true;
        open_marker_.clear();
        close_marker_.clear();
        reader_ = std::make_unique<CallBlockReader>(format_, n_calls_);
        continue;
      }
    }
    size_t found_at = std::string::npos;
    const ToolCallMarker* found = nullptr;
    for (const ToolCallMarker& marker : markers)
      if (const size_t at = pending_.find(marker.open); at < found_at) found_at = at, found = &marker;
    if (found) {
      emit_text(std::string_view(pending_).substr(0, found_at), delta);
      const size_t consumed = found->open.size() - found->body_keeps;  // "functools[": the '[' opens the body
      open_marker_ = std::string(found->open.substr(0, consumed));
      close_marker_ = std::string(found->close);
      pending_.erase(0, found_at + consumed);
      in_call_ = true;
      reader_ = std::make_unique<CallBlockReader>(format_, n_calls_);
      continue;
    }
    size_t keep = 0;
    if (!at_end)
      for (const ToolCallMarker& marker : markers) keep = std::max(keep, partial_marker_at_end(pending_, marker.open));
    emit_text(std::string_view(pending_).substr(0, pending_.size() - keep), delta);
    pending_.erase(0, pending_.size() - keep);
    return;
  }
}

ToolCallDelta ToolCallParser::push(std::string_view text) {
  ToolCallDelta delta;
  pending_ += text;
  scan(delta, false);
  return delta;
}

ToolCallDelta ToolCallParser::finish() {
  ToolCallDelta delta;
  scan(delta, true);
  if (!found_calls_) delta.content += held_space_;  // a plain reply keeps its text exactly
  held_space_.clear();
  return delta;
}

ParsedReply parse_tool_calls(ToolCallFormat format, std::string_view reply) {
  ToolCallParser parser(format);
  ParsedReply whole;
  for (const ToolCallDelta& delta : {parser.push(reply), parser.finish()}) {
    whole.content += delta.content;
    join_tool_call_chunks(whole.calls, delta.calls);
  }
  return whole;
}

}  // namespace slm::chat
