// Tool conversations from an OpenAI request to the rendered prompt: tools, an assistant's
// tool_calls (arguments sent as JSON text, as the API sends them) and role "tool" results render
// exactly as Hugging Face transformers renders them with each real template (templates/golden.jsonl).
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/chat/chat_prompt.hpp"
#include "lib/server/openai_request.hpp"
#include "slm/chat_template.hpp"
#include "support/assets.hpp"

namespace slm::server {
namespace {

using Json = nlohmann::ordered_json;

// The golden conversation as a client would send it: arguments as JSON text.
std::string request_body(const Json& golden) {
  Json messages = golden["messages"];
  for (Json& message : messages)
    if (message.contains("tool_calls"))
      for (Json& call : message["tool_calls"]) call["function"]["arguments"] = call["function"]["arguments"].dump();
  Json body = {{"messages", messages}};
  if (!golden["tools"].is_null()) body["tools"] = golden["tools"];
  return body.dump();
}

TEST(OpenAiToolPrompt, ToolCallsAndResultsRenderAsTransformersRendersThem) {
  SLM_REQUIRE_ASSET(test::shared_path("templates/golden.jsonl"));
  std::ifstream golden_file(test::shared_path("templates/golden.jsonl"));
  int compared = 0;
  for (std::string line; std::getline(golden_file, line);) {
    const Json golden = Json::parse(line);
    const std::string conversation = golden["conversation"];
    if (conversation != "f_tool_call" && conversation != "g_tool_full") continue;
    if (!golden.contains("rendered")) continue;  // the template refuses tools (its raise_exception)
    const std::string source =
        test::read_file(test::shared_path("templates/" + golden["template"].get<std::string>() + ".jinja"));
    const auto token = [&](const char* key) {
      return golden[key].is_string() ? std::optional(golden[key].get<std::string>()) : std::nullopt;
    };
    const ChatRequest request = parse_chat_request(request_body(golden), {}, {});
    // render_chat()'s values, with the clock make_golden.py fixes (2026-11-22 12:00).
    const std::tm golden_clock = {.tm_hour = 12, .tm_mday = 22, .tm_mon = 10, .tm_year = 2026 - 1900};
    const std::string rendered = apply_chat_template(
        source, chat::messages_to_value(request.messages), request.tools_value, golden["add_generation_prompt"],
        token("bos_token"), token("eos_token"), jinja::value_from_json(golden["extra_vars"].dump()), golden_clock);
    EXPECT_EQ(rendered, golden["rendered"].get<std::string>()) << golden["template"] << " " << conversation;
    ++compared;
  }
  EXPECT_GE(compared, 30);
}

}  // namespace
}  // namespace slm::server
