#include "lib/server/openai_request.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "lib/server/api_error.hpp"

namespace slm::server {

namespace {

using Json = nlohmann::ordered_json;  // key order kept: a schema's properties, tools as the template prints them

std::string type_name_of(const Json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "number";
  return value.type_name();  // "null", "boolean", "string", "array", "object"
}

ApiError wrong_type(const std::string& param, std::string_view expected, const Json& value) {
  return invalid_request(fmt::format("'{}' must be {}, not {}", param, expected, type_name_of(value)), param,
                         "invalid_type");
}

ApiError out_of_range(const std::string& param, std::string_view range) {
  return invalid_request(fmt::format("'{}' must be {}", param, range), param, "invalid_value");
}

struct DepthExceeded {};

// The body as a JSON object. The parser's callback sees every container as it opens, so a body
// nested deeper than the limit is refused before it is built.
Json parse_body(std::string_view body, const RequestLimits& limits) {
  if (body.size() > limits.max_body_bytes) throw body_too_large(limits.max_body_bytes);
  const auto bound_depth = [&](int depth, Json::parse_event_t event, Json&) {
    // `depth` counts the containers already open around this one.
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= limits.max_json_depth)
      throw DepthExceeded{};
    return true;
  };
  Json root;
  try {
    root = Json::parse(body.begin(), body.end(), bound_depth);
  } catch (const DepthExceeded&) {
    throw invalid_request(fmt::format("the JSON body is nested deeper than {} levels", limits.max_json_depth), {},
                          "json_too_deep");
  } catch (const Json::exception& e) {
    throw invalid_request(fmt::format("the body is not valid JSON: {}", e.what()), {}, "invalid_json");
  }
  if (!root.is_object()) throw invalid_request("the body must be a JSON object", {}, "invalid_json");
  return root;
}

// A field that is absent or null counts as not given, as in OpenAI's API.
const Json* find_field(const Json& object, const std::string& name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<bool> read_bool(const Json& object, const std::string& name, const std::string& param) {
  const Json* value = find_field(object, name);
  if (!value) return std::nullopt;
  if (!value->is_boolean()) throw wrong_type(param, "a boolean", *value);
  return value->get<bool>();
}

std::optional<std::string> read_string(const Json& object, const std::string& name, const std::string& param) {
  const Json* value = find_field(object, name);
  if (!value) return std::nullopt;
  if (!value->is_string()) throw wrong_type(param, "a string", *value);
  return value->get<std::string>();
}

// An integer, or a number with an integral value (5.0), within [min, max].
int64_t integer_value(const Json& value, const std::string& param, int64_t min, int64_t max) {
  int64_t integer = 0;
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    integer = u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max() : int64_t(u);
  } else if (value.is_number_integer()) {
    integer = value.get<int64_t>();
  } else if (value.is_number_float() && std::nearbyint(value.get<double>()) == value.get<double>() &&
             std::fabs(value.get<double>()) < 9e18) {
    integer = int64_t(value.get<double>());
  } else {
    throw wrong_type(param, "an integer", value);
  }
  if (integer < min || integer > max) {
    if (max == std::numeric_limits<int64_t>::max()) throw out_of_range(param, fmt::format("at least {}", min));
    throw out_of_range(param, fmt::format("between {} and {}", min, max));
  }
  return integer;
}

std::optional<int64_t> read_integer(const Json& object, const std::string& name, int64_t min, int64_t max) {
  const Json* value = find_field(object, name);
  if (!value) return std::nullopt;
  return integer_value(*value, name, min, max);
}

std::optional<double> read_number(const Json& object, const std::string& name, double min, double max) {
  const Json* value = find_field(object, name);
  if (!value) return std::nullopt;
  if (!value->is_number()) throw wrong_type(name, "a number", *value);
  const double number = value->get<double>();
  if (!(number >= min && number <= max)) throw out_of_range(name, fmt::format("between {} and {}", min, max));
  return number;
}

std::vector<std::string> read_stop_strings(const Json& body, const RequestLimits& limits) {
  const Json* value = find_field(body, "stop");
  if (!value) return {};
  std::vector<std::string> stop;
  const auto add = [&](const Json& item, const std::string& param) {
    if (!item.is_string()) throw wrong_type(param, "a string", item);
    std::string text = item.get<std::string>();
    if (text.size() > limits.max_stop_string_bytes)
      throw out_of_range(param, fmt::format("at most {} bytes long", limits.max_stop_string_bytes));
    if (!text.empty()) stop.push_back(std::move(text));  // an empty stop string would stop nothing
  };
  if (value->is_string()) {
    add(*value, "stop");
  } else if (value->is_array()) {
    if (value->size() > size_t(limits.max_stop_strings))
      throw out_of_range("stop", fmt::format("at most {} strings", limits.max_stop_strings));
    for (size_t i = 0; i < value->size(); ++i) add((*value)[i], fmt::format("stop[{}]", i));
  } else {
    throw wrong_type("stop", "a string or an array of strings", *value);
  }
  return stop;
}

// Sampling and the output options, common to both endpoints (OpenAI's fields, then llama.cpp's).
GenerationParams read_generation_params(const Json& body, const SamplerParams& defaults, const RequestLimits& limits) {
  constexpr int64_t int32_max = std::numeric_limits<int32_t>::max();
  GenerationParams params;
  params.sampling = defaults;
  SamplerParams& sampling = params.sampling;
  params.model = read_string(body, "model", "model").value_or("");

  if (const auto n = read_integer(body, "n", 1, std::numeric_limits<int64_t>::max()); n && *n != 1)
    throw invalid_request("'n' must be 1: this server generates one choice per request", "n", "unsupported_value");
  // max_completion_tokens replaces the older max_tokens; a count past the context is capped later.
  const std::optional<int64_t> max_tokens = read_integer(body, "max_tokens", 1, std::numeric_limits<int64_t>::max());
  const std::optional<int64_t> max_completion_tokens =
      read_integer(body, "max_completion_tokens", 1, std::numeric_limits<int64_t>::max());
  if (const auto limit = max_completion_tokens ? max_completion_tokens : max_tokens)
    params.max_tokens = int32_t(std::min(*limit, int32_max));

  if (const auto v = read_number(body, "temperature", 0, 2)) sampling.temperature = float(*v);
  if (const auto v = read_number(body, "top_p", 0, 1)) sampling.top_p = float(*v);
  if (const auto v = read_number(body, "presence_penalty", -2, 2)) sampling.presence_penalty = float(*v);
  if (const auto v = read_number(body, "frequency_penalty", -2, 2)) sampling.frequency_penalty = float(*v);
  if (const Json* seed = find_field(body, "seed")) {
    // Any 64-bit integer; a negative one is read as its two's complement.
    if (seed->is_number_unsigned()) sampling.seed = seed->get<uint64_t>();
    else sampling.seed = uint64_t(integer_value(*seed, "seed", std::numeric_limits<int64_t>::min(),
                                                std::numeric_limits<int64_t>::max()));
  }
  if (const auto v = read_integer(body, "top_k", -1, int32_max)) sampling.top_k = int32_t(*v);
  if (const auto v = read_number(body, "min_p", 0, 1)) sampling.min_p = float(*v);
  if (const auto v = read_number(body, "repeat_penalty", 0, 10)) {
    if (*v <= 0) throw out_of_range("repeat_penalty", "above 0 (1 is off)");
    sampling.repeat_penalty = float(*v);
  }
  if (const auto v = read_integer(body, "repeat_last_n", 0, int32_max)) sampling.penalty_last_n = int32_t(*v);
  params.stop = read_stop_strings(body, limits);

  params.stream = read_bool(body, "stream", "stream").value_or(false);
  if (const Json* options = find_field(body, "stream_options")) {
    if (!options->is_object()) throw wrong_type("stream_options", "an object", *options);
    params.include_usage = read_bool(*options, "include_usage", "stream_options.include_usage").value_or(false);
  }
  return params;
}

// Text content: a string, or an array of {"type": "text", "text": "..."} parts (joined).
std::string read_message_content(const Json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw wrong_type(param, "a string or an array of content parts", content);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string part_param = fmt::format("{}[{}]", param, i);
    if (!part.is_object()) throw wrong_type(part_param, "an object", part);
    const std::string type = read_string(part, "type", part_param + ".type").value_or("");
    if (type != "text")
      throw invalid_request(fmt::format("only text content parts are supported; {} has type '{}'", part_param, type),
                            part_param + ".type", "unsupported_value");
    const std::optional<std::string> part_text = read_string(part, "text", part_param + ".text");
    if (!part_text) throw invalid_request(fmt::format("{} has no 'text'", part_param), part_param + ".text");
    text += *part_text;
  }
  return text;
}

// An assistant message's tool_calls: [{"id", "type": "function", "function": {"name", "arguments"}}].
std::vector<chat::ChatToolCall> read_message_tool_calls(const Json& message, const std::string& param) {
  const Json* calls = find_field(message, "tool_calls");
  if (!calls) return {};
  const std::string calls_param = param + ".tool_calls";
  if (!calls->is_array()) throw wrong_type(calls_param, "an array", *calls);
  std::vector<chat::ChatToolCall> result;
  for (size_t i = 0; i < calls->size(); ++i) {
    const Json& call = (*calls)[i];
    const std::string call_param = fmt::format("{}[{}]", calls_param, i);
    if (!call.is_object()) throw wrong_type(call_param, "an object", call);
    const Json* function = find_field(call, "function");
    if (!function) throw invalid_request(fmt::format("{} has no 'function'", call_param), call_param + ".function",
                                         "missing_required_parameter");
    if (!function->is_object()) throw wrong_type(call_param + ".function", "an object", *function);
    chat::ChatToolCall parsed;
    parsed.id = read_string(call, "id", call_param + ".id").value_or("");
    parsed.name = read_string(*function, "name", call_param + ".function.name").value_or("");
    if (parsed.name.empty())
      throw invalid_request(fmt::format("{}.function has no 'name'", call_param), call_param + ".function.name",
                            "missing_required_parameter");
    // The API carries arguments as JSON text; an object is taken too.
    if (const Json* arguments = find_field(*function, "arguments")) {
      if (arguments->is_string()) parsed.arguments = arguments->get<std::string>();
      else if (arguments->is_object()) parsed.arguments = arguments->dump();
      else throw wrong_type(call_param + ".function.arguments", "a string of JSON", *arguments);
    } else {
      parsed.arguments = "{}";
    }
    result.push_back(std::move(parsed));
  }
  return result;
}

std::vector<chat::ChatMessage> read_messages(const Json& body) {
  const Json* messages = find_field(body, "messages");
  if (!messages) throw invalid_request("'messages' is required", "messages", "missing_required_parameter");
  if (!messages->is_array()) throw wrong_type("messages", "an array", *messages);
  if (messages->empty()) throw invalid_request("'messages' must hold at least one message", "messages");
  std::vector<chat::ChatMessage> result;
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& message = (*messages)[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!message.is_object()) throw wrong_type(param, "an object", message);
    std::string role = read_string(message, "role", param + ".role").value_or("");
    if (role == "developer") role = "system";  // OpenAI's newer name; chat templates know "system"
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw invalid_request(
          fmt::format("{}.role must be 'system', 'developer', 'user', 'assistant' or 'tool', not '{}'", param, role),
          param + ".role", "invalid_value");
    const Json* content = find_field(message, "content");
    if (!content && role != "assistant")  // an assistant message may carry only tool calls
      throw invalid_request(fmt::format("{} has no 'content'", param), param + ".content",
                            "missing_required_parameter");
    chat::ChatMessage parsed{role, content ? read_message_content(*content, param + ".content") : std::string()};
    if (role == "assistant") parsed.tool_calls = read_message_tool_calls(message, param);
    if (role == "tool") parsed.tool_call_id = read_string(message, "tool_call_id", param + ".tool_call_id").value_or("");
    parsed.name = read_string(message, "name", param + ".name").value_or("");
    result.push_back(std::move(parsed));
  }
  return result;
}

// chat_template_kwargs as a template value (its depth is bounded by the body's).
jinja::Value template_value(const Json& json) {
  switch (json.type()) {
    case Json::value_t::boolean: return jinja::Value(json.get<bool>());
    case Json::value_t::number_integer: return jinja::Value(json.get<int64_t>());
    case Json::value_t::number_unsigned: {
      const uint64_t u = json.get<uint64_t>();
      return u <= uint64_t(std::numeric_limits<int64_t>::max()) ? jinja::Value(int64_t(u)) : jinja::Value(double(u));
    }
    case Json::value_t::number_float: return jinja::Value(json.get<double>());
    case Json::value_t::string: return jinja::Value(json.get<std::string>());
    case Json::value_t::array: {
      jinja::Value list = jinja::Value::list();
      for (const Json& item : json) list.push_back(template_value(item));
      return list;
    }
    case Json::value_t::object: {
      jinja::Value dict = jinja::Value::dict();
      for (const auto& [key, item] : json.items()) dict.set(jinja::Value(key), template_value(item));
      return dict;
    }
    default: return jinja::Value::none();
  }
}

// response_format ({"type": "text" | "json_object" | "json_schema"}) and llama.cpp's `grammar`
// (GBNF text); at most one of them constrains the reply. The schema or grammar is compiled when
// the request is prepared (structured_output.hpp), where its errors become 400s naming the field.
OutputConstraint read_output_constraint(const Json& body) {
  OutputConstraint output;
  if (const Json* format = find_field(body, "response_format")) {
    if (!format->is_object()) throw wrong_type("response_format", "an object", *format);
    const std::string type = read_string(*format, "type", "response_format.type").value_or("");
    if (type == "json_object") {
      output = {OutputConstraint::Kind::JsonObject, {}, "response_format"};
    } else if (type == "json_schema") {
      const Json* spec = find_field(*format, "json_schema");
      if (!spec)
        throw invalid_request("response_format of type 'json_schema' needs 'json_schema': {\"name\", \"schema\"}",
                              "response_format.json_schema", "missing_required_parameter");
      if (!spec->is_object()) throw wrong_type("response_format.json_schema", "an object", *spec);
      read_string(*spec, "name", "response_format.json_schema.name");
      read_bool(*spec, "strict", "response_format.json_schema.strict");  // the grammar is always strict
      const Json* schema = find_field(*spec, "schema");
      if (schema && !schema->is_object() && !schema->is_boolean())
        throw wrong_type("response_format.json_schema.schema", "an object", *schema);
      // No schema: any JSON object, as OpenAI reads it.
      output = schema ? OutputConstraint{OutputConstraint::Kind::JsonSchema, schema->dump(), "response_format.json_schema.schema"}
                      : OutputConstraint{OutputConstraint::Kind::JsonObject, {}, "response_format"};
    } else if (type != "text") {
      throw invalid_request(
          fmt::format("response_format.type must be 'text', 'json_object' or 'json_schema', not '{}'", type),
          "response_format.type", "invalid_value");
    }
  }
  if (const std::optional<std::string> grammar = read_string(body, "grammar", "grammar"); grammar && !grammar->empty()) {
    if (output.kind != OutputConstraint::Kind::None)
      throw invalid_request("give either 'grammar' or a JSON 'response_format', not both", "grammar", "invalid_value");
    output = {OutputConstraint::Kind::Gbnf, *grammar, "grammar"};
  }
  return output;
}

// A function's name, as OpenAI allows it: letters, digits, '_' and '-', at most 64.
bool valid_function_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// tools: [{"type": "function", "function": {"name", "description", "parameters", "strict"}}].
std::vector<chat::ToolFunction> read_tools(const Json& tools, const RequestLimits& limits) {
  if (!tools.is_array()) throw wrong_type("tools", "an array", tools);
  if (tools.size() > size_t(limits.max_tools)) throw out_of_range("tools", fmt::format("at most {} tools", limits.max_tools));
  std::vector<chat::ToolFunction> functions;
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& tool = tools[i];
    const std::string param = fmt::format("tools[{}]", i);
    if (!tool.is_object()) throw wrong_type(param, "an object", tool);
    const std::string type = read_string(tool, "type", param + ".type").value_or("");
    if (type != "function")
      throw invalid_request(fmt::format("{}.type must be 'function', not '{}'", param, type), param + ".type",
                            "invalid_value");
    const Json* function = find_field(tool, "function");
    if (!function) throw invalid_request(fmt::format("{} has no 'function'", param), param + ".function",
                                         "missing_required_parameter");
    if (!function->is_object()) throw wrong_type(param + ".function", "an object", *function);
    const std::string name = read_string(*function, "name", param + ".function.name").value_or("");
    if (!valid_function_name(name))
      throw invalid_request(fmt::format("{}.function.name '{}' must be 1 to 64 letters, digits, '_' or '-'", param, name),
                            param + ".function.name", "invalid_value");
    for (const chat::ToolFunction& earlier : functions)
      if (earlier.name == name)
        throw invalid_request(fmt::format("{}: two tools are named '{}'", param, name), param + ".function.name",
                              "invalid_value");
    read_string(*function, "description", param + ".function.description");
    read_bool(*function, "strict", param + ".function.strict");
    const Json* parameters = find_field(*function, "parameters");
    if (parameters && !parameters->is_object()) throw wrong_type(param + ".function.parameters", "an object", *parameters);
    functions.push_back({name, parameters ? parameters->dump() : std::string()});
  }
  return functions;
}

ToolChoice read_tool_choice(const Json& body, const std::vector<chat::ToolFunction>& tools) {
  const Json* choice = find_field(body, "tool_choice");
  ToolChoice result;
  result.mode = tools.empty() ? ToolChoice::Mode::None : ToolChoice::Mode::Auto;
  if (!choice) return result;
  if (choice->is_string()) {
    const std::string mode = choice->get<std::string>();
    if (mode == "auto") result.mode = ToolChoice::Mode::Auto;
    else if (mode == "none") result.mode = ToolChoice::Mode::None;
    else if (mode == "required") result.mode = ToolChoice::Mode::Required;
    else throw invalid_request(fmt::format("tool_choice must be 'auto', 'none', 'required' or a function, not '{}'", mode),
                               "tool_choice", "invalid_value");
  } else if (choice->is_object()) {
    const Json* function = find_field(*choice, "function");
    if (read_string(*choice, "type", "tool_choice.type").value_or("") != "function" || !function || !function->is_object())
      throw invalid_request("tool_choice as an object must be {\"type\": \"function\", \"function\": {\"name\": ...}}",
                            "tool_choice", "invalid_value");
    result.mode = ToolChoice::Mode::Function;
    result.function = read_string(*function, "name", "tool_choice.function.name").value_or("");
    if (std::none_of(tools.begin(), tools.end(), [&](const auto& tool) { return tool.name == result.function; }))
      throw invalid_request(fmt::format("tool_choice names '{}', which is not one of 'tools'", result.function),
                            "tool_choice.function.name", "invalid_value");
  } else {
    throw wrong_type("tool_choice", "a string or an object", *choice);
  }
  if (tools.empty() && result.mode != ToolChoice::Mode::None)
    throw invalid_request("tool_choice needs 'tools'", "tool_choice", "invalid_value");
  return result;
}

void read_tool_fields(const Json& body, const RequestLimits& limits, ChatRequest& request) {
  if (const Json* tools = find_field(body, "tools")) {
    request.tools = read_tools(*tools, limits);
    if (!request.tools.empty()) request.tools_value = template_value(*tools);
  }
  request.tool_choice = read_tool_choice(body, request.tools);
  request.parallel_tool_calls = read_bool(body, "parallel_tool_calls", "parallel_tool_calls").value_or(true);
  if (request.tool_choice.mode != ToolChoice::Mode::None && request.output.kind != OutputConstraint::Kind::None)
    throw invalid_request(fmt::format("'{}' cannot be combined with tool calls; send tool_choice 'none' or no tools",
                                      request.output.param),
                          request.output.param, "invalid_value");
}

std::vector<int64_t> read_token_ids(const Json& array, const std::string& param, const RequestLimits& limits) {
  if (array.size() > limits.max_prompt_token_ids)
    throw out_of_range(param, fmt::format("at most {} token ids", limits.max_prompt_token_ids));
  std::vector<int64_t> ids;
  ids.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i)
    ids.push_back(integer_value(array[i], fmt::format("{}[{}]", param, i), 0, std::numeric_limits<int32_t>::max()));
  return ids;
}

// A string, an array of token ids, or a batch of one of either (["text"], [[1, 2, 3]]).
void read_completion_prompt(const Json& body, const RequestLimits& limits, CompletionRequest& request) {
  const Json* prompt = find_field(body, "prompt");
  if (!prompt) throw invalid_request("'prompt' is required", "prompt", "missing_required_parameter");
  const Json* single = prompt;
  if (prompt->is_array() && prompt->size() == 1 && ((*prompt)[0].is_string() || (*prompt)[0].is_array()))
    single = &(*prompt)[0];
  else if (prompt->is_array() && !prompt->empty() && ((*prompt)[0].is_string() || (*prompt)[0].is_array()))
    throw invalid_request("only one prompt per request is supported", "prompt", "unsupported_value");
  if (single->is_string()) {
    request.prompt_text = single->get<std::string>();
  } else if (single->is_array()) {
    if (single->empty()) throw invalid_request("'prompt' must not be an empty array", "prompt");
    request.prompt_token_ids = read_token_ids(*single, "prompt", limits);
    request.prompt_is_token_ids = true;
  } else {
    throw wrong_type("prompt", "a string or an array of token ids", *single);
  }
}

}  // namespace

ChatRequest parse_chat_request(std::string_view body_text, const SamplerParams& defaults, const RequestLimits& limits) {
  const Json body = parse_body(body_text, limits);
  ChatRequest request;
  request.messages = read_messages(body);
  request.output = read_output_constraint(body);
  read_tool_fields(body, limits, request);
  request.params = read_generation_params(body, defaults, limits);
  const bool logprobs = read_bool(body, "logprobs", "logprobs").value_or(false);
  const std::optional<int64_t> top_logprobs = read_integer(body, "top_logprobs", 0, limits.max_top_logprobs);
  if (top_logprobs && !logprobs)
    throw invalid_request("'top_logprobs' needs 'logprobs': true", "top_logprobs", "invalid_value");
  if (logprobs) request.params.top_logprobs = int32_t(top_logprobs.value_or(0));
  if (const Json* kwargs = find_field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) throw wrong_type("chat_template_kwargs", "an object", *kwargs);
    request.template_kwargs = template_value(*kwargs);
  }
  return request;
}

CompletionRequest parse_completion_request(std::string_view body_text, const SamplerParams& defaults,
                                           const RequestLimits& limits) {
  const Json body = parse_body(body_text, limits);
  CompletionRequest request;
  read_completion_prompt(body, limits, request);
  request.output = read_output_constraint(body);
  request.params = read_generation_params(body, defaults, limits);
  // The legacy API's logprobs is a count: the sampled token's and this many more.
  if (const auto logprobs = read_integer(body, "logprobs", 0, limits.max_top_logprobs))
    request.params.top_logprobs = int32_t(*logprobs);
  if (read_bool(body, "echo", "echo").value_or(false))
    throw invalid_request("'echo' is not supported by this server", "echo", "unsupported_parameter");
  if (const auto best_of = read_integer(body, "best_of", 1, std::numeric_limits<int64_t>::max()); best_of && *best_of != 1)
    throw invalid_request("'best_of' must be 1: this server generates one choice per request", "best_of",
                          "unsupported_value");
  if (!read_string(body, "suffix", "suffix").value_or("").empty())
    throw invalid_request("'suffix' is not supported by this server", "suffix", "unsupported_parameter");
  return request;
}

TokenizeRequest parse_tokenize_request(std::string_view body_text, const RequestLimits& limits) {
  const Json body = parse_body(body_text, limits);
  TokenizeRequest request;
  const std::optional<std::string> content = read_string(body, "content", "content");
  if (!content) throw invalid_request("'content' is required", "content", "missing_required_parameter");
  request.content = *content;
  request.add_special = read_bool(body, "add_special", "add_special").value_or(false);
  request.parse_special = read_bool(body, "parse_special", "parse_special").value_or(true);
  request.with_pieces = read_bool(body, "with_pieces", "with_pieces").value_or(false);
  return request;
}

DetokenizeRequest parse_detokenize_request(std::string_view body_text, const RequestLimits& limits) {
  const Json body = parse_body(body_text, limits);
  const Json* tokens = find_field(body, "tokens");
  if (!tokens) throw invalid_request("'tokens' is required", "tokens", "missing_required_parameter");
  if (!tokens->is_array()) throw wrong_type("tokens", "an array of token ids", *tokens);
  return {read_token_ids(*tokens, "tokens", limits)};
}

}  // namespace slm::server
