// The bodies of the OpenAI API requests, parsed into plain structs and checked against the
// limits of a server that faces untrusted clients. Every refusal is an ApiError (400) whose
// `param` names the field at fault, as OpenAI's own API answers.
//
// What is checked here needs no model: JSON syntax, nesting depth, types, ranges, counts and
// lengths. What needs the model and its context (the prompt's token count, max_tokens against
// the context) is checked when the prompt is built (openai_prompt.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/chat/chat_prompt.hpp"
#include "lib/chat/tool_calls.hpp"
#include "slm/jinja.hpp"
#include "slm/sampler.hpp"

namespace slm::server {

struct RequestLimits {
  size_t max_body_bytes = size_t(8) << 20;  // checked by the HTTP layer (413); here for the fuzz target too
  int32_t max_json_depth = 32;              // objects and arrays nested in one another
  int32_t max_stop_strings = 16;
  size_t max_stop_string_bytes = 256;
  int32_t max_top_logprobs = 20;
  size_t max_prompt_token_ids = size_t(1) << 20;  // a /v1/completions prompt given as token ids
  int32_t max_tools = 128;
};

// What the reply must be: response_format's json_object / json_schema, or llama.cpp's `grammar`.
struct OutputConstraint {
  enum class Kind { None, JsonObject, JsonSchema, Gbnf };
  Kind kind = Kind::None;
  std::string text;   // JsonSchema: the schema as JSON text (key order kept); Gbnf: the grammar
  std::string param;  // the field it came from, named by errors
};

// tool_choice: "auto" (the model decides), "none", "required", or one named function.
struct ToolChoice {
  enum class Mode { Auto, None, Required, Function };
  Mode mode = Mode::Auto;
  std::string function;  // Mode::Function
};

// The fields /v1/chat/completions and /v1/completions share.
struct GenerationParams {
  std::string model;                   // any name is accepted while one model is served
  std::optional<int32_t> max_tokens;   // >= 1; absent: until the context is full
  SamplerParams sampling;              // the server's defaults, overridden by the request's fields
  std::vector<std::string> stop;       // the request's stop strings (the template's are added later)
  int32_t top_logprobs = -1;           // -1: no logprobs; 0..20: the sampled token's and this many more
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage: a last chunk with the usage
};

struct ChatRequest {
  std::vector<chat::ChatMessage> messages;  // content parts joined; role "developer" read as "system"
  jinja::Value template_kwargs;             // chat_template_kwargs: a dict, or undefined when absent
  GenerationParams params;
  OutputConstraint output;
  std::vector<chat::ToolFunction> tools;    // the functions of `tools`, in order
  jinja::Value tools_value;                 // `tools` as the chat template sees it; undefined when none
  ToolChoice tool_choice;                   // Mode::None when there are no tools
  bool parallel_tool_calls = true;
};

struct CompletionRequest {
  std::string prompt_text;               // when the prompt is a string
  std::vector<int64_t> prompt_token_ids; // when it is token ids (checked against the vocabulary later)
  bool prompt_is_token_ids = false;
  GenerationParams params;
  OutputConstraint output;
};

// llama-server's POST /tokenize: {"content": "...", "add_special": false, "parse_special": true,
// "with_pieces": false}.
struct TokenizeRequest {
  std::string content;
  bool add_special = false;
  bool parse_special = true;
  bool with_pieces = false;
};

// llama-server's POST /detokenize: {"tokens": [...]}.
struct DetokenizeRequest {
  std::vector<int64_t> token_ids;
};

// `defaults` are the server's sampling settings (its --seed among them); the request's fields
// override them. Throw ApiError.
ChatRequest parse_chat_request(std::string_view body, const SamplerParams& defaults, const RequestLimits& limits);
CompletionRequest parse_completion_request(std::string_view body, const SamplerParams& defaults,
                                           const RequestLimits& limits);
TokenizeRequest parse_tokenize_request(std::string_view body, const RequestLimits& limits);
DetokenizeRequest parse_detokenize_request(std::string_view body, const RequestLimits& limits);

}  // namespace slm::server
