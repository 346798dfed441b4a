// The OpenAI request bodies: what is read from them, and every refusal (a 400 naming the field
// at fault) for malformed JSON, wrong types, values out of range and the server's limits.
#include <gtest/gtest.h>

#include <string>

#include "lib/server/api_error.hpp"
#include "lib/server/openai_request.hpp"

namespace slm::server {
namespace {

const SamplerParams server_defaults = [] {
  SamplerParams params;
  params.seed = 1234;
  return params;
}();

ChatRequest chat(const std::string& body, const RequestLimits& limits = {}) {
  return parse_chat_request(body, server_defaults, limits);
}

CompletionRequest completion(const std::string& body, const RequestLimits& limits = {}) {
  return parse_completion_request(body, server_defaults, limits);
}

// The refusal a body gets from `parse`: its status, param and code.
struct Refusal {
  int status = 0;
  std::string param, code, message;
};

template <typename Parse>
Refusal refusal(Parse parse) {
  try {
    parse();
  } catch (const ApiError& e) {
    return {e.status(), e.param(), e.code(), e.what()};
  }
  ADD_FAILURE() << "the body was accepted";
  return {};
}

Refusal chat_refusal(const std::string& body, const RequestLimits& limits = {}) {
  return refusal([&] { chat(body, limits); });
}

Refusal completion_refusal(const std::string& body) {
  return refusal([&] { completion(body); });
}

const std::string hello = R"("messages": [{"role": "user", "content": "Hello"}])";

TEST(OpenAiChatRequest, ReadsMessagesAndKeepsTheServerDefaultsForAbsentFields) {
  const ChatRequest request = chat(R"({"model": "gpt-4o", "messages": [
      {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})");
  ASSERT_EQ(request.messages.size(), 2u);
  EXPECT_EQ(request.messages[0].role, "system");
  EXPECT_EQ(request.messages[0].content, "Be brief.");
  EXPECT_EQ(request.messages[1].role, "user");
  EXPECT_EQ(request.params.model, "gpt-4o");
  EXPECT_FALSE(request.params.max_tokens.has_value());
  EXPECT_EQ(request.params.sampling.temperature, SamplerParams{}.temperature);
  EXPECT_EQ(request.params.sampling.top_k, 40);
  EXPECT_EQ(request.params.sampling.seed, 1234u);
  EXPECT_EQ(request.params.top_logprobs, -1);
  EXPECT_FALSE(request.params.stream);
  EXPECT_TRUE(request.template_kwargs.is_undefined());
}

TEST(OpenAiChatRequest, ReadsEverySamplingFieldAndTheLlamaCppExtensions) {
  const ChatRequest request = chat(R"({)" + hello + R"(, "max_tokens": 50, "temperature": 0, "top_p": 0.5,
      "seed": 42, "stop": ["\n\n", "END"], "presence_penalty": 0.5, "frequency_penalty": -0.25, "logprobs": true,
      "top_logprobs": 3, "n": 1, "stream": true, "stream_options": {"include_usage": true}, "top_k": 7,
      "min_p": 0.1, "repeat_penalty": 1.1, "chat_template_kwargs": {"enable_thinking": false}})");
  const GenerationParams& params = request.params;
  EXPECT_EQ(params.max_tokens, 50);
  EXPECT_EQ(params.sampling.temperature, 0.0f);
  EXPECT_EQ(params.sampling.top_p, 0.5f);
  EXPECT_EQ(params.sampling.seed, 42u);
  EXPECT_EQ(params.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(params.sampling.presence_penalty, 0.5f);
  EXPECT_EQ(params.sampling.frequency_penalty, -0.25f);
  EXPECT_EQ(params.top_logprobs, 3);
  EXPECT_TRUE(params.stream);
  EXPECT_TRUE(params.include_usage);
  EXPECT_EQ(params.sampling.top_k, 7);
  EXPECT_EQ(params.sampling.min_p, 0.1f);
  EXPECT_EQ(params.sampling.repeat_penalty, 1.1f);
  ASSERT_TRUE(request.template_kwargs.is_dict());
  ASSERT_NE(request.template_kwargs.find("enable_thinking"), nullptr);
  EXPECT_FALSE(request.template_kwargs.find("enable_thinking")->truthy());
}

TEST(OpenAiChatRequest, JoinsTextPartsAndReadsDeveloperAsSystem) {
  const ChatRequest request = chat(R"({"messages": [{"role": "developer", "content": "Rules."},
      {"role": "user", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]},
      {"role": "assistant", "content": null}]})");
  ASSERT_EQ(request.messages.size(), 3u);
  EXPECT_EQ(request.messages[0].role, "system");
  EXPECT_EQ(request.messages[1].content, "Hello, world");
  EXPECT_EQ(request.messages[2].content, "");
}

TEST(OpenAiChatRequest, MaxCompletionTokensWinsOverMaxTokensAndNullMeansAbsent) {
  EXPECT_EQ(chat("{" + hello + R"(, "max_tokens": 10, "max_completion_tokens": 20})").params.max_tokens, 20);
  EXPECT_FALSE(chat("{" + hello + R"(, "max_tokens": null, "temperature": null})").params.max_tokens.has_value());
  EXPECT_EQ(chat("{" + hello + R"(, "max_tokens": 8.0})").params.max_tokens, 8);
}

TEST(OpenAiChatRequest, LogprobsWithoutTopLogprobsGivesTheSampledTokenOnly) {
  EXPECT_EQ(chat("{" + hello + R"(, "logprobs": true})").params.top_logprobs, 0);
  EXPECT_EQ(chat("{" + hello + R"(, "logprobs": false})").params.top_logprobs, -1);
}

TEST(OpenAiChatRequest, MalformedJsonIs400) {
  for (const char* body : {"", "{", R"({"messages": [})", "not json", R"({"a": 1,})", "\xff\xfe"}) {
    const Refusal r = chat_refusal(body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(r.code, "invalid_json") << body;
  }
}

TEST(OpenAiChatRequest, ABodyThatIsNotAnObjectIs400) {
  EXPECT_EQ(chat_refusal("[1, 2]").code, "invalid_json");
  EXPECT_EQ(chat_refusal("\"text\"").code, "invalid_json");
}

TEST(OpenAiChatRequest, NestingDeeperThanTheLimitIs400) {
  RequestLimits limits;
  limits.max_json_depth = 8;
  const std::string deep = "{" + hello + R"(, "x": )" + std::string(20, '[') + std::string(20, ']') + "}";
  EXPECT_EQ(chat_refusal(deep, limits).code, "json_too_deep");
  const std::string shallow = "{" + hello + R"(, "x": )" + std::string(5, '[') + std::string(5, ']') + "}";
  EXPECT_NO_THROW(chat(shallow, limits));
  // The default limit holds against a body that would exhaust a recursive parser's stack.
  EXPECT_EQ(chat_refusal(std::string(100000, '[') + std::string(100000, ']')).code, "json_too_deep");
}

TEST(OpenAiChatRequest, ABodyOverTheLimitIs413) {
  RequestLimits limits;
  limits.max_body_bytes = 64;
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "pad": ")" + std::string(100, 'x') + "\"}", limits).status, 413);
}

TEST(OpenAiChatRequest, WrongTypesAre400NamingTheParam) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("max_tokens": "10")", "max_tokens"},
      {R"("temperature": "hot")", "temperature"},
      {R"("top_p": [1])", "top_p"},
      {R"("seed": 1.5)", "seed"},
      {R"("stop": 5)", "stop"},
      {R"("stop": ["a", 5])", "stop[1]"},
      {R"("stream": "yes")", "stream"},
      {R"("stream_options": {"include_usage": 1})", "stream_options.include_usage"},
      {R"("logprobs": 1)", "logprobs"},
      {R"("model": 7)", "model"},
      {R"("top_k": 0.5)", "top_k"},
      {R"("chat_template_kwargs": [1])", "chat_template_kwargs"},
  };
  for (const auto& [field, param] : cases) {
    const Refusal r = chat_refusal("{" + hello + ", " + field + "}");
    EXPECT_EQ(r.status, 400) << field;
    EXPECT_EQ(r.param, param) << field;
    EXPECT_EQ(r.code, "invalid_type") << field;
  }
}

TEST(OpenAiChatRequest, BadMessagesAre400NamingTheMessage) {
  EXPECT_EQ(chat_refusal("{}").param, "messages");
  EXPECT_EQ(chat_refusal(R"({"messages": []})").param, "messages");
  EXPECT_EQ(chat_refusal(R"({"messages": "Hello"})").param, "messages");
  EXPECT_EQ(chat_refusal(R"({"messages": [{"role": "user"}]})").param, "messages[0].content");
  EXPECT_EQ(chat_refusal(R"({"messages": [{"role": "wizard", "content": "x"}]})").param, "messages[0].role");
  EXPECT_EQ(chat_refusal(R"({"messages": [{"role": "user", "content": 5}]})").param, "messages[0].content");
  EXPECT_EQ(chat_refusal(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})")
                .param,
            "messages[0].content[0].type");
}

TEST(OpenAiChatRequest, ValuesOutOfRangeAre400) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("max_tokens": 0)", "max_tokens"},
      {R"("max_tokens": -5)", "max_tokens"},
      {R"("max_completion_tokens": 0)", "max_completion_tokens"},
      {R"("temperature": -0.1)", "temperature"},
      {R"("temperature": 2.5)", "temperature"},
      {R"("top_p": 1.5)", "top_p"},
      {R"("presence_penalty": 3)", "presence_penalty"},
      {R"("min_p": -1)", "min_p"},
      {R"("repeat_penalty": 0)", "repeat_penalty"},
      {R"("logprobs": true, "top_logprobs": 21)", "top_logprobs"},
      {R"("top_logprobs": 2)", "top_logprobs"},
  };
  for (const auto& [field, param] : cases) {
    const Refusal r = chat_refusal("{" + hello + ", " + field + "}");
    EXPECT_EQ(r.status, 400) << field;
    EXPECT_EQ(r.param, param) << field;
  }
}

TEST(OpenAiChatRequest, MoreThanOneChoiceIsRefusedClearly) {
  const Refusal r = chat_refusal("{" + hello + R"(, "n": 2})");
  EXPECT_EQ(r.param, "n");
  EXPECT_EQ(r.code, "unsupported_value");
  EXPECT_NE(r.message.find("must be 1"), std::string::npos) << r.message;
}

TEST(OpenAiChatRequest, StopStringsAreLimitedInCountAndLength) {
  std::string many = R"("stop": [)";
  for (int i = 0; i < 17; ++i) many += std::string(i ? "," : "") + "\"s" + std::to_string(i) + "\"";
  many += "]";
  EXPECT_EQ(chat_refusal("{" + hello + ", " + many + "}").param, "stop");
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "stop": ")" + std::string(257, 'x') + "\"}").param, "stop");
  EXPECT_EQ(chat("{" + hello + R"(, "stop": ")" + std::string(256, 'x') + "\"}").params.stop.size(), 1u);
  EXPECT_TRUE(chat("{" + hello + R"(, "stop": ""})").params.stop.empty());
}

TEST(OpenAiChatRequest, ReadsResponseFormatJsonObjectJsonSchemaAndGrammar) {
  EXPECT_EQ(chat("{" + hello + R"(, "response_format": {"type": "text"}})").output.kind, OutputConstraint::Kind::None);
  EXPECT_EQ(chat("{" + hello + R"(, "response_format": {"type": "json_object"}})").output.kind,
            OutputConstraint::Kind::JsonObject);
  // The schema's text keeps its key order: the reply's properties come in that order.
  const ChatRequest schema = chat("{" + hello + R"(, "response_format": {"type": "json_schema", "json_schema":
      {"name": "person", "strict": true, "schema": {"type": "object", "properties": {"z": {}, "a": {}}}}}})");
  EXPECT_EQ(schema.output.kind, OutputConstraint::Kind::JsonSchema);
  EXPECT_EQ(schema.output.text, R"({"type":"object","properties":{"z":{},"a":{}}})");
  EXPECT_EQ(schema.output.param, "response_format.json_schema.schema");
  const ChatRequest grammar = chat("{" + hello + R"(, "grammar": "root ::= \"yes\" | \"no\""})");
  EXPECT_EQ(grammar.output.kind, OutputConstraint::Kind::Gbnf);
  EXPECT_EQ(grammar.output.text, R"(root ::= "yes" | "no")");
  EXPECT_EQ(completion(R"({"prompt": "x", "response_format": {"type": "json_object"}})").output.kind,
            OutputConstraint::Kind::JsonObject);
}

TEST(OpenAiChatRequest, MalformedResponseFormatIs400NamingTheField) {
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "response_format": {"type": "yaml"}})").param, "response_format.type");
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "response_format": {"type": "json_schema"}})").param,
            "response_format.json_schema");
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "response_format": {"type": "json_schema", "json_schema": {"schema": 3}}})")
                .param,
            "response_format.json_schema.schema");
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "response_format": "json"})").param, "response_format");
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "grammar": 5})").param, "grammar");
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "grammar": "root ::= \"a\"", "response_format": {"type": "json_object"}})")
                .param,
            "grammar");
}

const std::string weather_tool = R"({"type": "function", "function": {"name": "get_weather", "description": "d",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})";

TEST(OpenAiChatRequest, ReadsToolsToolChoiceAndParallelToolCalls) {
  const ChatRequest request = chat("{" + hello + R"(, "tools": [)" + weather_tool + R"(],
      "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "parallel_tool_calls": false})");
  ASSERT_EQ(request.tools.size(), 1u);
  EXPECT_EQ(request.tools[0].name, "get_weather");
  EXPECT_EQ(request.tools[0].parameters_schema,
            R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})");
  EXPECT_TRUE(request.tools_value.is_list());
  EXPECT_EQ(request.tool_choice.mode, ToolChoice::Mode::Function);
  EXPECT_EQ(request.tool_choice.function, "get_weather");
  EXPECT_FALSE(request.parallel_tool_calls);
  EXPECT_EQ(chat("{" + hello + R"(, "tools": [)" + weather_tool + "]}").tool_choice.mode, ToolChoice::Mode::Auto);
  EXPECT_EQ(chat("{" + hello + R"(, "tools": [)" + weather_tool + R"(], "tool_choice": "required"})").tool_choice.mode,
            ToolChoice::Mode::Required);
  EXPECT_EQ(chat("{" + hello + R"(, "tools": [)" + weather_tool + R"(], "tool_choice": "none"})").tool_choice.mode,
            ToolChoice::Mode::None);
  EXPECT_EQ(chat("{" + hello + R"(, "tools": []})").tool_choice.mode, ToolChoice::Mode::None);
}

TEST(OpenAiChatRequest, MalformedToolsAndToolChoiceAre400NamingTheField) {
  const auto with = [](const std::string& fields) { return chat_refusal("{" + hello + ", " + fields + "}"); };
  EXPECT_EQ(with(R"("tools": {})").param, "tools");
  EXPECT_EQ(with(R"("tools": [{"type": "function"}])").param, "tools[0].function");
  EXPECT_EQ(with(R"("tools": [{"type": "retrieval", "function": {"name": "f"}}])").param, "tools[0].type");
  EXPECT_EQ(with(R"("tools": [{"type": "function", "function": {"name": "has space"}}])").param,
            "tools[0].function.name");
  EXPECT_EQ(with(R"("tools": [{"type": "function", "function": {"name": "f", "parameters": []}}])").param,
            "tools[0].function.parameters");
  EXPECT_EQ(with(R"("tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}])")
                .param,
            "tools[1].function.name");
  EXPECT_EQ(with(R"("tools": [)" + weather_tool + R"(], "tool_choice": "always")").param, "tool_choice");
  EXPECT_EQ(with(R"("tools": [)" + weather_tool + R"(], "tool_choice": {"type": "function", "function": {"name": "nope"}})")
                .param,
            "tool_choice.function.name");
  EXPECT_EQ(with(R"("tool_choice": "required")").param, "tool_choice");
  EXPECT_EQ(with(R"("tools": [)" + weather_tool + R"(], "response_format": {"type": "json_object"})").param,
            "response_format");
  EXPECT_NO_THROW(chat("{" + hello + R"(, "tools": [)" + weather_tool + R"(], "tool_choice": "none",
      "response_format": {"type": "json_object"}})"));
  RequestLimits limits;
  limits.max_tools = 1;
  EXPECT_EQ(chat_refusal("{" + hello + R"(, "tools": [)" + weather_tool + "," + weather_tool + "]}", limits).param,
            "tools");
}

TEST(OpenAiChatRequest, ReadsAssistantToolCallsAndToolResults) {
  const ChatRequest request = chat(R"({"messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C"}]})");
  ASSERT_EQ(request.messages.size(), 3u);
  const chat::ChatMessage& assistant = request.messages[1];
  EXPECT_EQ(assistant.content, "");
  ASSERT_EQ(assistant.tool_calls.size(), 1u);
  EXPECT_EQ(assistant.tool_calls[0].id, "call_1");
  EXPECT_EQ(assistant.tool_calls[0].name, "get_weather");
  EXPECT_EQ(assistant.tool_calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(request.messages[2].tool_call_id, "call_1");
  EXPECT_EQ(request.messages[2].name, "get_weather");
  EXPECT_EQ(request.messages[2].content, "18 C");
}

TEST(OpenAiChatRequest, MalformedToolCallsInMessagesAre400) {
  const auto assistant = [](const std::string& calls) {
    return chat_refusal(R"({"messages": [{"role": "assistant", "tool_calls": )" + calls + "}]}");
  };
  EXPECT_EQ(assistant(R"({})").param, "messages[0].tool_calls");
  EXPECT_EQ(assistant(R"([3])").param, "messages[0].tool_calls[0]");
  EXPECT_EQ(assistant(R"([{"id": "c"}])").param, "messages[0].tool_calls[0].function");
  EXPECT_EQ(assistant(R"([{"function": {"arguments": "{}"}}])").param, "messages[0].tool_calls[0].function.name");
  EXPECT_EQ(assistant(R"([{"function": {"name": "f", "arguments": 3}}])").param,
            "messages[0].tool_calls[0].function.arguments");
  EXPECT_EQ(chat_refusal(R"({"messages": [{"role": "tool", "tool_call_id": 7, "content": "x"}]})").param,
            "messages[0].tool_call_id");
}

TEST(OpenAiChatRequest, UnknownFieldsAreIgnored) {
  EXPECT_NO_THROW(chat("{" + hello + R"(, "user": "me", "metadata": {"a": 1}, "parallel_tool_calls": false})"));
}

TEST(OpenAiChatRequest, ANegativeSeedIsItsTwosComplement) {
  EXPECT_EQ(chat("{" + hello + R"(, "seed": -1})").params.sampling.seed, ~uint64_t(0));
}

TEST(OpenAiCompletionRequest, ReadsAStringPromptAndTheLegacyLogprobsCount) {
  const CompletionRequest request = completion(R"({"model": "m", "prompt": "Once upon", "max_tokens": 5,
      "logprobs": 2, "temperature": 0})");
  EXPECT_FALSE(request.prompt_is_token_ids);
  EXPECT_EQ(request.prompt_text, "Once upon");
  EXPECT_EQ(request.params.max_tokens, 5);
  EXPECT_EQ(request.params.top_logprobs, 2);
  EXPECT_EQ(request.params.sampling.temperature, 0.0f);
}

TEST(OpenAiCompletionRequest, ReadsTokenIdsAndBatchesOfOne) {
  const CompletionRequest ids = completion(R"({"prompt": [1, 2, 3]})");
  EXPECT_TRUE(ids.prompt_is_token_ids);
  EXPECT_EQ(ids.prompt_token_ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(completion(R"({"prompt": ["one"]})").prompt_text, "one");
  EXPECT_EQ(completion(R"({"prompt": [[4, 5]]})").prompt_token_ids, (std::vector<int64_t>{4, 5}));
}

TEST(OpenAiCompletionRequest, RefusesWhatItCannotServe) {
  EXPECT_EQ(completion_refusal("{}").param, "prompt");
  EXPECT_EQ(completion_refusal(R"({"prompt": 5})").param, "prompt");
  EXPECT_EQ(completion_refusal(R"({"prompt": []})").param, "prompt");
  EXPECT_EQ(completion_refusal(R"({"prompt": ["a", "b"]})").param, "prompt");
  EXPECT_EQ(completion_refusal(R"({"prompt": [1, -2]})").param, "prompt[1]");
  EXPECT_EQ(completion_refusal(R"({"prompt": [1, "x"]})").param, "prompt[1]");
  EXPECT_EQ(completion_refusal(R"({"prompt": "a", "echo": true})").param, "echo");
  EXPECT_EQ(completion_refusal(R"({"prompt": "a", "best_of": 3})").param, "best_of");
  EXPECT_EQ(completion_refusal(R"({"prompt": "a", "n": 2})").param, "n");
  EXPECT_EQ(completion_refusal(R"({"prompt": "a", "logprobs": 21})").param, "logprobs");
  EXPECT_EQ(completion_refusal(R"({"prompt": "a", "logprobs": true})").param, "logprobs");
  EXPECT_EQ(completion_refusal(R"({"prompt": "a", "max_tokens": 0})").param, "max_tokens");
}

TEST(OpenAiTokenizeRequest, ReadsLlamaServerShapes) {
  const TokenizeRequest tokenize = parse_tokenize_request(R"({"content": "Hi", "add_special": true})", {});
  EXPECT_EQ(tokenize.content, "Hi");
  EXPECT_TRUE(tokenize.add_special);
  EXPECT_TRUE(tokenize.parse_special);
  EXPECT_FALSE(tokenize.with_pieces);
  EXPECT_EQ(parse_detokenize_request(R"({"tokens": [7, 8]})", {}).token_ids, (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(refusal([] { parse_tokenize_request(R"({"content": 1})", {}); }).param, "content");
  EXPECT_EQ(refusal([] { parse_detokenize_request(R"({"tokens": "7"})", {}); }).param, "tokens");
  EXPECT_EQ(refusal([] { parse_detokenize_request(R"({})", {}); }).param, "tokens");
}

TEST(OpenAiErrorBody, IsTheOpenAiErrorObjectWithNullsForAbsentFields) {
  EXPECT_EQ(error_body(invalid_request("bad", "max_tokens", "invalid_value")),
            R"({"error":{"message":"bad","type":"invalid_request_error","param":"max_tokens","code":"invalid_value"}})");
  EXPECT_EQ(error_body(invalid_request("bad")),
            R"({"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}})");
  EXPECT_EQ(invalid_api_key().status(), 401);
  EXPECT_EQ(unknown_route("GET", "/x").status(), 404);
  EXPECT_EQ(body_too_large(10).status(), 413);
  EXPECT_EQ(unavailable("full", "queue_full").status(), 503);
}

}  // namespace
}  // namespace slm::server
