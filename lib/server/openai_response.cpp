#include "lib/server/openai_response.hpp"

#include <nlohmann/json.hpp>
#include <algorithm>
#include <random>

#include "lib/confidence_json.hpp"

namespace slm::server {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view open_tag = "<think>";
constexpr std::string_view close_tag = "</think>";

// Model text need not be valid UTF-8 (a byte-level model can emit anything): invalid bytes are
// sent as U+FFFD so that every body stays valid JSON; the logprobs' `bytes` keep the exact bytes.
std::string dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string without_tags(std::string text) {
  for (const std::string_view tag : {open_tag, close_tag})
    for (size_t at = text.find(tag); at != std::string::npos; at = text.find(tag, at)) text.erase(at, tag.size());
  return text;
}

Json token_bytes(const std::string& piece) {
  Json bytes = Json::array();
  for (const char c : piece) bytes.push_back(int(static_cast<unsigned char>(c)));
  return bytes;
}

// Chat's format: one entry per token, with its alternatives.
Json chat_logprobs(const Tokenizer& tokenizer, const std::vector<GeneratedToken>& tokens) {
  Json content = Json::array();
  for (const GeneratedToken& token : tokens) {
    Json top = Json::array();
    for (const TokenLogprob& alternative : token.top) {
      const std::string piece = tokenizer.token_to_piece(alternative.token);
      top.push_back({{"token", piece}, {"logprob", alternative.logprob}, {"bytes", token_bytes(piece)}});
    }
    const std::string piece = tokenizer.token_to_piece(token.token);
    content.push_back(
        {{"token", piece}, {"logprob", token.sampled.logprob}, {"bytes", token_bytes(piece)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

// The legacy completions format: parallel arrays, the alternatives as {piece: logprob}.
Json completion_logprobs(const Tokenizer& tokenizer, const std::vector<GeneratedToken>& tokens, size_t& text_offset) {
  Json pieces = Json::array(), logprobs = Json::array(), tops = Json::array(), offsets = Json::array();
  for (const GeneratedToken& token : tokens) {
    const std::string piece = tokenizer.token_to_piece(token.token);
    pieces.push_back(piece);
    logprobs.push_back(token.sampled.logprob);
    Json top = Json::object();
    for (const TokenLogprob& alternative : token.top) top[tokenizer.token_to_piece(alternative.token)] = alternative.logprob;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += piece.size();
  }
  return {{"tokens", pieces}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

// A call as OpenAI shows it.
Json tool_call_json(const chat::ParsedToolCall& call, const std::string& id) {
  return {{"id", id}, {"type", "function"}, {"function", {{"name", call.name}, {"arguments", call.arguments}}}};
}

// llama.cpp's `timings` (its field names), with speculative decoding's drafted and accepted tokens.
Json timings_json(const GenerationSummary& summary) {
  const double prompt_seconds = std::max(0.0, summary.time_to_first_token - summary.queue_seconds);
  const int32_t prompt_evaluated = summary.prompt_tokens - summary.cached_tokens;
  const int32_t after_first = std::max(0, summary.completion_tokens - 1);  // the first comes from the prompt's logits
  const SpeculationStats& s = summary.speculation;
  return {{"prompt_n", prompt_evaluated},
          {"prompt_ms", 1000.0 * prompt_seconds},
          {"prompt_per_second", prompt_seconds > 0 ? prompt_evaluated / prompt_seconds : 0.0},
          {"predicted_n", summary.completion_tokens},
          {"predicted_ms", 1000.0 * summary.generation_seconds},
          {"predicted_per_second", summary.generation_seconds > 0 ? after_first / summary.generation_seconds : 0.0},
          {"draft_n", s.drafted},
          {"draft_n_accepted", s.accepted},
          {"draft_acceptance_rate", s.acceptance_rate()}};
}

// slm's extension fields of the last chunk or the whole response: the confidence and timings,
// then any others.
void add_final_fields(Json& body, const GenerationSummary& summary,
                      const std::vector<std::pair<std::string, std::string>>& extensions) {
  body["confidence"] = confidence_json(summary.confidence);
  body["timings"] = timings_json(summary);
  for (const auto& [name, json] : extensions) body[name] = Json::parse(json);
}

Json usage_json(const GenerationSummary& summary) {
  return {{"prompt_tokens", summary.prompt_tokens},
          {"completion_tokens", summary.completion_tokens},
          {"total_tokens", summary.prompt_tokens + summary.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", summary.cached_tokens}}}};
}

}  // namespace

namespace {

std::string random_id(std::string_view prefix, int n_characters) {
  static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::string id(prefix);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  for (int i = 0; i < n_characters; ++i) id += alphabet[pick(generator)];
  return id;
}

}  // namespace

std::string new_response_id(std::string_view prefix) { return random_id(prefix, 24); }

std::string new_tool_call_id(chat::ToolCallFormat format) {
  return format == chat::ToolCallFormat::Mistral ? random_id("", 9) : random_id("call_", 24);
}

ReplyDelta ReasoningSplitter::push(std::string_view text) {
  ReplyDelta delta;
  take(filter_.push(text), delta);
  return delta;
}

ReplyDelta ReasoningSplitter::finish() {
  ReplyDelta delta;
  take(filter_.flush(), delta);
  return delta;
}

void ReasoningSplitter::take(const std::vector<chat::TextSegment>& segments, ReplyDelta& delta) {
  for (const chat::TextSegment& segment : segments) {
    if (!segment.thinking) {
      std::string_view text = segment.text;
      if (content_after_reasoning_) {
        while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
        if (!text.empty()) content_after_reasoning_ = false;
      }
      delta.content += text;
      continue;
    }
    std::string_view text = segment.text;
    const bool section_closes = text.ends_with(close_tag);  // a tag arrives whole (the filter holds partial ones)
    const std::string reasoning = without_tags(std::string(text));
    std::string_view rest = reasoning;
    if (!reasoning_started_)
      while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    size_t end = rest.size();
    while (end > 0 && is_space(rest[end - 1])) --end;
    if (end > 0) {
      delta.reasoning += reasoning_whitespace_;
      delta.reasoning += rest.substr(0, end);
      reasoning_whitespace_.clear();
      reasoning_started_ = true;
    }
    if (reasoning_started_) reasoning_whitespace_ += rest.substr(end);
    if (section_closes) {
      reasoning_whitespace_.clear();
      content_after_reasoning_ = true;
    }
  }
}

std::string_view finish_reason_text(FinishReason reason) {
  return reason == FinishReason::Length ? "length" : "stop";
}

ResponseBuilder::ResponseBuilder(ResponseHeader header, ResponseOptions options, const Tokenizer& tokenizer)
    : header_(std::move(header)), options_(options), tokenizer_(tokenizer), splitter_(options.starts_inside_thinking) {
  if (options_.endpoint == Endpoint::ChatCompletions && options_.tool_calls) tool_parser_.emplace(*options_.tool_calls);
}

namespace {

// The answer's text through the tool-call parser, when there is one.
void take_tool_calls(std::optional<chat::ToolCallParser>& parser, ReplyDelta& delta, bool at_end) {
  if (!parser) return;
  chat::ToolCallDelta parsed = parser->push(delta.content);
  if (at_end) {
    chat::ToolCallDelta rest = parser->finish();
    parsed.content += rest.content;
    for (chat::ToolCallChunk& piece : rest.calls) parsed.calls.push_back(std::move(piece));
  }
  delta.content = std::move(parsed.content);
  delta.tool_calls = std::move(parsed.calls);
}

}  // namespace

ReplyDelta ResponseBuilder::take_text(std::string_view text) {
  if (options_.endpoint == Endpoint::Completions) return {{}, std::string(text), {}};
  ReplyDelta delta = splitter_.push(text);
  take_tool_calls(tool_parser_, delta, false);
  return delta;
}

ReplyDelta ResponseBuilder::take_tail(std::string_view tail) {
  if (options_.endpoint == Endpoint::Completions) return {{}, std::string(tail), {}};
  ReplyDelta delta = splitter_.push(tail);
  const ReplyDelta flushed = splitter_.finish();
  delta.reasoning += flushed.reasoning;
  delta.content += flushed.content;
  take_tool_calls(tool_parser_, delta, true);
  return delta;
}

std::string_view ResponseBuilder::finish_reason(const GenerationSummary& summary) const {
  // A reply cut inside a call says so, as OpenAI's does.
  return tool_call_ids_.empty() || summary.finish == FinishReason::Length ? finish_reason_text(summary.finish)
                                                                          : "tool_calls";
}

const std::string& ResponseBuilder::next_tool_call_id() {
  tool_call_ids_.push_back(new_tool_call_id(*options_.tool_calls));
  return tool_call_ids_.back();
}

std::string ResponseBuilder::chunk(const ReplyDelta& delta, std::optional<std::string_view> finish_reason) {
  Json logprobs = nullptr;
  if (options_.logprobs && !logprob_tokens_.empty()) {
    logprobs = options_.endpoint == Endpoint::ChatCompletions
                   ? chat_logprobs(tokenizer_, logprob_tokens_)
                   : completion_logprobs(tokenizer_, logprob_tokens_, text_offset_);
    logprob_tokens_.clear();
  }
  const Json finish = finish_reason ? Json(*finish_reason) : Json(nullptr);
  Json choice;
  Json body;
  if (options_.endpoint == Endpoint::ChatCompletions) {
    Json message_delta = Json::object();
    if (!delta.reasoning.empty()) message_delta["reasoning_content"] = delta.reasoning;
    if (!delta.content.empty()) message_delta["content"] = delta.content;
    if (!delta.tool_calls.empty()) {
      Json calls = Json::array();
      for (const chat::ToolCallChunk& piece : delta.tool_calls) {
        Json entry = {{"index", piece.index}};
        if (!piece.name.empty()) entry.update(tool_call_json({piece.name, piece.arguments}, next_tool_call_id()));
        else entry["function"] = {{"arguments", piece.arguments}};
        calls.push_back(std::move(entry));
      }
      message_delta["tool_calls"] = calls;
    }
    choice = {{"index", 0}, {"delta", message_delta}, {"logprobs", logprobs}, {"finish_reason", finish}};
    body = {{"id", header_.id}, {"object", "chat.completion.chunk"}, {"created", header_.created},
            {"model", header_.model}, {"choices", Json::array({choice})}};
  } else {
    choice = {{"index", 0}, {"text", delta.content}, {"logprobs", logprobs}, {"finish_reason", finish}};
    body = {{"id", header_.id}, {"object", "text_completion"}, {"created", header_.created},
            {"model", header_.model}, {"choices", Json::array({choice})}};
  }
  if (options_.include_usage) body["usage"] = nullptr;  // OpenAI: null on every chunk but the last
  if (finish_reason) add_final_fields(body, final_summary_, extensions_);
  return dump(body);
}

std::optional<std::string> ResponseBuilder::stream_start() const {
  if (options_.endpoint != Endpoint::ChatCompletions) return std::nullopt;
  Json body = {{"id", header_.id},
               {"object", "chat.completion.chunk"},
               {"created", header_.created},
               {"model", header_.model},
               {"choices", Json::array({{{"index", 0},
                                         {"delta", {{"role", "assistant"}, {"content", ""}}},
                                         {"logprobs", nullptr},
                                         {"finish_reason", nullptr}}})}};
  if (options_.include_usage) body["usage"] = nullptr;
  return dump(body);
}

std::optional<std::string> ResponseBuilder::stream_token(const GeneratedToken& token) {
  if (options_.logprobs) logprob_tokens_.push_back(token);
  const ReplyDelta delta = take_text(token.text);
  if (delta.empty()) return std::nullopt;
  return chunk(delta, std::nullopt);
}

std::vector<std::string> ResponseBuilder::stream_end(const GenerationSummary& summary) {
  final_summary_ = summary;
  std::vector<std::string> chunks;
  const ReplyDelta rest = take_tail(summary.text_tail);
  if (!rest.empty()) chunks.push_back(chunk(rest, std::nullopt));
  chunks.push_back(chunk({}, finish_reason(summary)));
  if (options_.include_usage) {
    const Json body = {{"id", header_.id},
                       {"object", options_.endpoint == Endpoint::ChatCompletions ? "chat.completion.chunk"
                                                                                  : "text_completion"},
                       {"created", header_.created},
                       {"model", header_.model},
                       {"choices", Json::array()},
                       {"usage", usage_json(summary)}};
    chunks.push_back(dump(body));
  }
  return chunks;
}

void ResponseBuilder::add(const GeneratedToken& token) {
  if (options_.logprobs) logprob_tokens_.push_back(token);
  ReplyDelta delta = take_text(token.text);
  reasoning_ += delta.reasoning;
  content_ += delta.content;
  chat::join_tool_call_chunks(tool_calls_, delta.tool_calls);
}

std::string ResponseBuilder::whole_response(const GenerationSummary& summary) {
  ReplyDelta rest = take_tail(summary.text_tail);
  reasoning_ += rest.reasoning;
  content_ += rest.content;
  chat::join_tool_call_chunks(tool_calls_, rest.tool_calls);
  Json tool_calls = Json::array();
  for (const chat::ParsedToolCall& call : tool_calls_) tool_calls.push_back(tool_call_json(call, next_tool_call_id()));
  Json logprobs = nullptr;
  if (options_.logprobs)
    logprobs = options_.endpoint == Endpoint::ChatCompletions
                   ? chat_logprobs(tokenizer_, logprob_tokens_)
                   : completion_logprobs(tokenizer_, logprob_tokens_, text_offset_);
  const std::string_view finish = finish_reason(summary);
  Json body = {{"id", header_.id}, {"created", header_.created}, {"model", header_.model}};
  if (options_.endpoint == Endpoint::ChatCompletions) {
    // OpenAI: content null when the reply is only calls.
    Json message = {{"role", "assistant"}, {"content", content_.empty() && !tool_calls.empty() ? Json(nullptr) : Json(content_)}};
    if (!tool_calls.empty()) message["tool_calls"] = tool_calls;
    if (!reasoning_.empty()) message["reasoning_content"] = reasoning_;
    body["object"] = "chat.completion";
    body["choices"] =
        Json::array({{{"index", 0}, {"message", message}, {"logprobs", logprobs}, {"finish_reason", finish}}});
  } else {
    body["object"] = "text_completion";
    body["choices"] =
        Json::array({{{"index", 0}, {"text", content_}, {"logprobs", logprobs}, {"finish_reason", finish}}});
  }
  body["usage"] = usage_json(summary);
  add_final_fields(body, summary, extensions_);
  return dump(body);
}

void ResponseBuilder::set_extension(std::string name, std::string json) {
  extensions_.emplace_back(std::move(name), std::move(json));
}

std::string models_response(const std::string& model_name, int64_t created, int32_t n_ctx_per_request) {
  const Json model = {{"id", model_name},
                      {"object", "model"},
                      {"created", created},
                      {"owned_by", "slm"},
                      {"meta", {{"n_ctx", n_ctx_per_request}}}};
  return dump({{"object", "list"}, {"data", Json::array({model})}});
}

std::string tokenize_response(const Tokenizer& tokenizer, const std::vector<TokenId>& tokens, bool with_pieces) {
  Json list = Json::array();
  for (const TokenId id : tokens) {
    if (with_pieces) list.push_back({{"id", id}, {"piece", tokenizer.token_to_piece(id)}});
    else list.push_back(id);
  }
  return dump({{"tokens", list}});
}

std::string detokenize_response(const std::string& content) { return dump({{"content", content}}); }

}  // namespace slm::server
