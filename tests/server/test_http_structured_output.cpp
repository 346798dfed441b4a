// Structured output and tool calls over HTTP, against an in-process server with a random-weight
// model and the real Qwen2.5 vocabulary and chat template: unconstrained it writes noise, so a
// reply that validates is the grammar's doing. Schema replies are checked by python3-jsonschema
// (a validator that is not slm's); requests run four at a time, so each sequence of a batch gets
// its own grammar mask.
#include <gtest/gtest.h>

#include <future>

#include "http_test_server.hpp"
#include "support/json_schema_validator.hpp"

namespace slm::test {
namespace {

// Noise: temperature 1 among the 40 best allowed tokens.
Json noisy_request(int seed) {
  return {{"temperature", 1.0}, {"top_k", 40}, {"top_p", 1.0}, {"min_p", 0.0}, {"seed", seed}, {"max_tokens", 64}};
}

Json user_message(const std::string& text) { return Json::array({{{"role", "user"}, {"content", text}}}); }

httplib::Result post(httplib::Client& client, const std::string& path, const Json& body) {
  return client.Post(path, body.dump(), "application/json");
}

const std::vector<std::string> schemas = {
    R"({"type":"object","properties":{"label":{"enum":["positive","negative","neutral"]},"score":{"type":"integer","minimum":0,"maximum":100}},"required":["label","score"],"additionalProperties":false})",
    R"({"type":"object","properties":{"name":{"type":"string","maxLength":8},"tags":{"type":"array","items":{"type":"string","maxLength":4},"maxItems":3}},"required":["name","tags"],"additionalProperties":false})",
    R"({"type":"array","items":{"type":"integer","minimum":-5,"maximum":5},"minItems":1,"maxItems":4})",
    R"({"type":"object","properties":{"when":{"type":"string","format":"date"},"ok":{"type":"boolean"}},"required":["when","ok"],"additionalProperties":false})",
};

TEST(HttpStructuredOutput, JsonSchemaRepliesValidateAgainstTheirSchemaInABatch) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  if (!python_jsonschema_available()) GTEST_SKIP() << "python3-jsonschema is missing (tools/install-deps.sh installs it)";
  InProcessServer server(qwen_vocab_model(), small_scheduler(/*parallel=*/4, /*queue=*/8));
  Json cases = Json::array();
  int completed = 0, cut = 0;
  for (int round = 0; round < 2; ++round) {
    std::vector<std::future<Json>> replies;
    for (size_t i = 0; i < schemas.size(); ++i)
      replies.push_back(std::async(std::launch::async, [&, i] {
        Json body = noisy_request(int(round * 10 + i));
        body["messages"] = user_message("Give me JSON.");
        body["response_format"] = {{"type", "json_schema"},
                                   {"json_schema", {{"name", "case"}, {"strict", true}, {"schema", Json::parse(schemas[i])}}}};
        const httplib::Result result = post(*server.client(), "/v1/chat/completions", body);
        return result && result->status == 200 ? Json::parse(result->body) : Json{{"failed", result ? result->body : ""}};
      }));
    for (size_t i = 0; i < schemas.size(); ++i) {
      const Json reply = replies[i].get();
      ASSERT_TRUE(reply.contains("choices")) << reply.dump();
      const Json& choice = reply["choices"][0];
      if (choice["finish_reason"] == "length") {
        ++cut;
        continue;
      }
      EXPECT_EQ(choice["finish_reason"], "stop");
      ++completed;
      cases.push_back({{"schema", Json::parse(schemas[i])}, {"output", choice["message"]["content"]}});
    }
  }
  std::string report;
  EXPECT_EQ(count_invalid_outputs(cases, report), 0) << report;
  EXPECT_GE(completed, 6) << cut << " replies were cut by max_tokens";
}

TEST(HttpStructuredOutput, JsonObjectAndGrammarConstrainChatAndCompletions) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  InProcessServer server(qwen_vocab_model(), small_scheduler());
  auto client = server.client();
  Json body = noisy_request(3);
  body["messages"] = user_message("JSON please");
  body["response_format"] = {{"type", "json_object"}};
  body["max_tokens"] = 96;
  httplib::Result result = post(*client, "/v1/chat/completions", body);
  ASSERT_TRUE(result && result->status == 200) << (result ? result->body : "no response");
  const Json chat = Json::parse(result->body);
  if (chat["choices"][0]["finish_reason"] == "stop")
    EXPECT_TRUE(Json::parse(chat["choices"][0]["message"]["content"].get<std::string>()).is_object()) << chat.dump();

  Json completion = noisy_request(5);
  completion["prompt"] = "Answer:";
  completion["grammar"] = R"(root ::= "yes" | "no")";
  result = post(*client, "/v1/completions", completion);
  ASSERT_TRUE(result && result->status == 200) << (result ? result->body : "no response");
  const Json reply = Json::parse(result->body);
  const std::string text = reply["choices"][0]["text"];
  EXPECT_TRUE(text == "yes" || text == "no") << text;
  EXPECT_EQ(reply["choices"][0]["finish_reason"], "stop");  // the grammar completed
}

TEST(HttpStructuredOutput, SchemaAndGrammarErrorsAre400NamingTheKeywordOrLineAndTheServerGoesOn) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  InProcessServer server(qwen_vocab_model(), small_scheduler());
  auto client = server.client();
  Json body = {{"messages", user_message("x")}, {"max_tokens", 2}};
  body["response_format"] = {{"type", "json_schema"},
                             {"json_schema", {{"name", "bad"}, {"schema", {{"type", "object"}, {"patternProperties", Json::object()}}}}}};
  httplib::Result result = post(*client, "/v1/chat/completions", body);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  Json error = Json::parse(result->body)["error"];
  EXPECT_EQ(error["param"], "response_format.json_schema.schema");
  EXPECT_EQ(error["code"], "invalid_schema");
  EXPECT_NE(error["message"].get<std::string>().find("patternProperties"), std::string::npos) << error.dump();

  body.erase("response_format");
  body["grammar"] = "root ::= \"a\"\nitem ::= (";
  result = post(*client, "/v1/chat/completions", body);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  error = Json::parse(result->body)["error"];
  EXPECT_EQ(error["param"], "grammar");
  EXPECT_EQ(error["code"], "invalid_grammar");
  EXPECT_NE(error["message"].get<std::string>().find("line 2"), std::string::npos) << error.dump();

  body.erase("grammar");
  EXPECT_EQ(post(*client, "/v1/chat/completions", body)->status, 200);
}

const Json weather_tool = Json::parse(R"({"type": "function", "function": {"name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                   "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                   "required": ["city", "days"], "additionalProperties": false}}})");

// A call's arguments as the weather tool's schema wants them.
void expect_weather_arguments(const std::string& arguments) {
  const Json parsed = Json::parse(arguments);
  ASSERT_TRUE(parsed.is_object()) << arguments;
  ASSERT_TRUE(parsed["city"].is_string()) << arguments;
  EXPECT_LE(parsed["city"].get<std::string>().size(), 12u * 4) << arguments;  // 12 characters of UTF-8
  ASSERT_TRUE(parsed["days"].is_number_integer()) << arguments;
  EXPECT_GE(parsed["days"].get<int>(), 1);
  EXPECT_LE(parsed["days"].get<int>(), 7);
  EXPECT_EQ(parsed.size(), 2u) << arguments;
}

// The tool's call, whole: one call named get_weather, with an id and valid arguments.
void expect_one_weather_call(const Json& reply, const std::string& id_pattern_prefix) {
  const Json& choice = reply["choices"][0];
  ASSERT_EQ(choice["finish_reason"], "tool_calls") << choice.dump();
  EXPECT_TRUE(choice["message"]["content"].is_null()) << choice.dump();
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u) << choice.dump();
  const Json& call = choice["message"]["tool_calls"][0];
  EXPECT_TRUE(call["id"].get<std::string>().starts_with(id_pattern_prefix)) << call.dump();
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  expect_weather_arguments(call["function"]["arguments"]);
}

// The streamed calls joined by index: one call named get_weather with valid arguments.
void expect_one_streamed_weather_call(const std::string& body) {
  std::string name, arguments, finish;
  int ids = 0, pieces = 0;
  for (const std::string& data : sse_data(body)) {
    if (data == "[DONE]") continue;
    const Json chunk = Json::parse(data);
    const Json& delta = chunk["choices"][0]["delta"];
    if (delta.contains("tool_calls"))
      for (const Json& entry : delta["tool_calls"]) {
        EXPECT_EQ(entry["index"], 0);
        if (entry.contains("id")) ++ids;
        ++pieces;
        if (entry["function"].contains("name")) name += entry["function"]["name"].get<std::string>();
        arguments += entry["function"]["arguments"].get<std::string>();
      }
    if (!chunk["choices"][0]["finish_reason"].is_null()) finish = chunk["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(ids, 1);
  EXPECT_GT(pieces, 3) << "the arguments stream in pieces";
  EXPECT_EQ(name, "get_weather");
  expect_weather_arguments(arguments);
  EXPECT_EQ(finish, "tool_calls");
}

// Each family's format, from the template the server renders with: the model's own (a plain
// ChatML without tools: the generic JSON format) and the real templates of the other families.
TEST(HttpToolCalls, RequiredToolChoiceGivesACallWithValidArgumentsInEveryFamilysFormat) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  SLM_REQUIRE_ASSET(shared_path("templates"));
  struct Family {
    std::string template_file;  // empty: the model's own
    std::string id_prefix;
  };
  const std::vector<Family> families = {
      {"", "call_"},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", "call_"},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", "call_"},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", ""},  // 9 letters and digits
      {"ibm-granite-granite-3.3-2B-Instruct.jinja", "call_"},
  };
  for (const Family& family : families) {
    SCOPED_TRACE(family.template_file.empty() ? "the model's own template" : family.template_file);
    InProcessServer server(qwen_vocab_model(), small_scheduler(), {},
                           family.template_file.empty() ? "" : shared_path("templates/" + family.template_file).string());
    auto client = server.client();
    Json body = noisy_request(11);
    body["messages"] = user_message("Weather in Paris for 3 days?");
    body["tools"] = Json::array({weather_tool});
    body["tool_choice"] = "required";
    body["parallel_tool_calls"] = false;
    const httplib::Result result = post(*client, "/v1/chat/completions", body);
    ASSERT_TRUE(result && result->status == 200) << (result ? result->body : "no response");
    expect_one_weather_call(Json::parse(result->body), family.id_prefix);

    if (family.template_file.empty() || family.template_file.starts_with("Qwen")) {  // the stream: twice is enough
      body["stream"] = true;
      body["seed"] = 12;
      const httplib::Result streamed = post(*client, "/v1/chat/completions", body);
      ASSERT_TRUE(streamed && streamed->status == 200);
      expect_one_streamed_weather_call(streamed->body);
    }
  }
}

TEST(HttpToolCalls, AConversationWithCallsAndResultsRendersAndANamedFunctionIsCalled) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  SLM_REQUIRE_ASSET(shared_path("templates"));
  InProcessServer server(qwen_vocab_model(), small_scheduler(), {},
                         shared_path("templates/Qwen-Qwen2.5-7B-Instruct.jinja").string());
  auto client = server.client();
  Json time_tool = {{"type", "function"}, {"function", {{"name", "get_time"}, {"parameters", {{"type", "object"}, {"properties", Json::object()}}}}}};
  Json body = noisy_request(4);
  body["messages"] = Json::parse(R"([
      {"role": "user", "content": "Weather in Oslo?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\", \"days\": 1}"}}]},
      {"role": "tool", "tool_call_id": "call_abc", "content": "rain, 7 C"},
      {"role": "user", "content": "And the time?"}])");
  body["tools"] = Json::array({weather_tool, time_tool});
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  const httplib::Result result = post(*client, "/v1/chat/completions", body);
  ASSERT_TRUE(result && result->status == 200) << (result ? result->body : "no response");
  const Json reply = Json::parse(result->body);
  const Json& choice = reply["choices"][0];
  ASSERT_EQ(choice["finish_reason"], "tool_calls") << choice.dump();
  for (const Json& call : choice["message"]["tool_calls"]) EXPECT_EQ(call["function"]["name"], "get_time");
  EXPECT_GT(reply["usage"]["prompt_tokens"].get<int>(), 150);  // the tools and the earlier call were rendered
}

TEST(HttpToolCalls, AutoToolChoiceLeavesPlainTextAsContentAndBadToolsAre400) {
  SLM_REQUIRE_ASSET(qwen_vocab_model());
  InProcessServer server(qwen_vocab_model(), small_scheduler());
  auto client = server.client();
  Json body = noisy_request(2);
  body["messages"] = user_message("Hi");
  body["tools"] = Json::array({weather_tool});
  body["max_tokens"] = 8;
  httplib::Result result = post(*client, "/v1/chat/completions", body);
  ASSERT_TRUE(result && result->status == 200);
  const Json choice = Json::parse(result->body)["choices"][0];
  // Noise is not a call: it stays content, and the finish reason is the plain one.
  EXPECT_FALSE(choice["message"].contains("tool_calls")) << choice.dump();
  EXPECT_EQ(choice["finish_reason"], "length");

  body["tools"] = Json::array({{{"type", "function"}, {"function", {{"name", "bad"}, {"parameters", {{"type", "object"}, {"not", Json::object()}}}}}}});
  body["tool_choice"] = "required";
  result = post(*client, "/v1/chat/completions", body);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  const Json error = Json::parse(result->body)["error"];
  EXPECT_EQ(error["param"], "tools");
  EXPECT_NE(error["message"].get<std::string>().find("tool 'bad'"), std::string::npos) << error.dump();
  EXPECT_NE(error["message"].get<std::string>().find("'not'"), std::string::npos) << error.dump();
}

}  // namespace
}  // namespace slm::test
