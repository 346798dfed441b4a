// Tool calls in each model family's format (lib/chat/tool_calls.hpp): the format a template
// teaches, the parser over a whole reply and over the same reply streamed in two pieces split at
// every byte, and the grammar that makes a model write a call (checked byte by byte).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "lib/chat/tool_calls.hpp"
#include "slm/error.hpp"
#include "slm/grammar.hpp"
#include "support/assets.hpp"
#include "support/grammar_bytes.hpp"

namespace {

using slm::chat::ParsedToolCall;
using slm::chat::ToolCallDelta;
using slm::chat::ToolCallFormat;
using slm::chat::ToolFunction;

const ToolCallFormat all_formats[] = {ToolCallFormat::Hermes, ToolCallFormat::Llama3, ToolCallFormat::Mistral,
                                      ToolCallFormat::Phi4,   ToolCallFormat::Granite, ToolCallFormat::Json};

struct Reply {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
  bool operator==(const Reply&) const = default;
};

Reply parse_whole(ToolCallFormat format, const std::string& text) {
  const slm::chat::ParsedReply parsed = slm::chat::parse_tool_calls(format, text);
  Reply reply{parsed.content, {}};
  for (const ParsedToolCall& call : parsed.calls) reply.calls.push_back({call.name, call.arguments});
  return reply;
}

// Joins streamed pieces, checking that each call's first piece comes first and names it.
struct Joined {
  std::string content;
  std::vector<ParsedToolCall> calls;
  void add(const ToolCallDelta& delta) {
    content += delta.content;
    for (const slm::chat::ToolCallChunk& piece : delta.calls) {
      EXPECT_LE(piece.index, calls.size());
      EXPECT_EQ(piece.index == calls.size(), !piece.name.empty()) << "a call's first piece, and only it, has the name";
      slm::chat::join_tool_call_chunks(calls, {piece});
    }
  }
  Reply reply() const {
    Reply out{content, {}};
    for (const ParsedToolCall& call : calls) out.calls.push_back({call.name, call.arguments});
    return out;
  }
};

// The reply streamed as text[0, split) and text[split, end), then finished.
Reply parse_split(ToolCallFormat format, const std::string& text, size_t split) {
  slm::chat::ToolCallParser parser(format);
  Joined joined;
  joined.add(parser.push(text.substr(0, split)));
  joined.add(parser.push(text.substr(split)));
  joined.add(parser.finish());
  return joined.reply();
}

// Every split point gives what the whole text gives.
void expect_same_at_every_split(ToolCallFormat format, const std::string& text, const Reply& expected) {
  EXPECT_EQ(parse_whole(format, text), expected) << text;
  for (size_t split = 0; split <= text.size(); ++split)
    ASSERT_EQ(parse_split(format, text, split), expected) << "split at byte " << split << " of: " << text;
}

TEST(ToolCallParser, HermesCallsInTagsWithTextBefore) {
  const std::string text =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  expect_same_at_every_split(ToolCallFormat::Hermes, text,
                             {"Let me check.", {{"get_weather", R"({"city":"Paris"})"}, {"get_time", "{}"}}});
}

TEST(ToolCallParser, HermesUnclosedCallAtTheEndStillCounts) {
  expect_same_at_every_split(ToolCallFormat::Hermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n",
                             {"", {{"f", R"({"x":1})"}}});
}

TEST(ToolCallParser, HermesBrokenBlockIsGivenBackAsText) {
  const std::string text = "a <tool_call>{not json}</tool_call> b";
  expect_same_at_every_split(ToolCallFormat::Hermes, text, {text, {}});
}

// Deep nesting is checked without recursion as the call streams; a block read whole (another
// shape) nested deeper than 64 is text, since printing and freeing parsed JSON recurse.
TEST(ToolCallParser, DeeplyNestedModelOutputDoesNotOverflowTheStack) {
  const std::string deep_value = std::string(100000, '[') + std::string(100000, ']');
  const std::string deep = "{\"name\": \"f\", \"arguments\": {\"a\": " + deep_value + "}}";
  EXPECT_EQ(parse_whole(ToolCallFormat::Json, deep), (Reply{"", {{"f", "{\"a\":" + deep_value + "}"}}}));
  const std::string deep_whole = "{\"arguments\": {\"a\": " + deep_value + "}, \"name\": \"f\"}";
  EXPECT_EQ(parse_whole(ToolCallFormat::Json, deep_whole), (Reply{deep_whole, {}}));
  const std::string shallow = "{\"name\": \"f\", \"arguments\": {\"a\": [[[1]]]}}";
  EXPECT_EQ(parse_whole(ToolCallFormat::Json, shallow), (Reply{"", {{"f", R"({"a":[[[1]]]})"}}}));
}

// Fed a byte at a time: a call is announced (with its name) as soon as its arguments open, its
// arguments follow without the whitespace outside strings, and the pieces joined are the call.
TEST(ToolCallParser, ArgumentsStreamInFinalPiecesAsTheyArrive) {
  const std::string text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": { \"city\" : \"New \\\"York\\\"\", "
                           "\"days\": [1, -2.5e+3, true, null, {}] }}\n</tool_call>";
  const std::string arguments = R"({"city":"New \"York\"","days":[1,-2.5e+3,true,null,{}]})";
  slm::chat::ToolCallParser parser(ToolCallFormat::Hermes);
  Joined joined;
  size_t announced_at = 0, pieces = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const ToolCallDelta delta = parser.push(text.substr(i, 1));
    if (!delta.calls.empty() && joined.calls.empty()) announced_at = i;
    pieces += delta.calls.size();
    joined.add(delta);
  }
  joined.add(parser.finish());
  EXPECT_EQ(text.substr(0, announced_at + 1), "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {");
  EXPECT_GT(pieces, 20u);
  EXPECT_EQ(joined.reply(), (Reply{"", {{"get_weather", arguments}}}));
  EXPECT_EQ(parse_whole(ToolCallFormat::Hermes, text), joined.reply());
}

TEST(ToolCallParser, OtherShapesAreReadWholeAndBrokenJsonAfterACallIsText) {
  // The name after the arguments, arguments as a string: read whole at the block's end.
  expect_same_at_every_split(ToolCallFormat::Json, "{\"arguments\": {\"a\": 1}, \"name\": \"f\"}",
                             {"", {{"f", R"({"a":1})"}}});
  expect_same_at_every_split(ToolCallFormat::Mistral,
                             "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": \"{}\"}]",
                             {"", {{"f", "{}"}, {"g", "{}"}}});
  // An announced call keeps what was sent; the broken rest is text.
  expect_same_at_every_split(ToolCallFormat::Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": tru}}</tool_call>",
                             {"}}</tool_call>", {{"f", R"({"a":tru)"}}});
  // Cut inside the arguments: the call has what arrived.
  expect_same_at_every_split(ToolCallFormat::Mistral, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": [1, 2",
                             {"", {{"f", R"({"a":[1,2)"}}});
}

TEST(ToolCallParser, PlainReplyKeepsItsTextExactly) {
  for (const ToolCallFormat format : all_formats) {
    const std::string text = "  Hello <tool, [TOOL, functools and <|x|> stay text.\n\n";
    expect_same_at_every_split(format, text, {text, {}});
  }
}

TEST(ToolCallParser, Llama3BareJsonWithParameters) {
  expect_same_at_every_split(ToolCallFormat::Llama3,
                             "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"days\": 2}}",
                             {"", {{"get_weather", R"({"city":"Oslo","days":2})"}}});
}

TEST(ToolCallParser, Llama3PythonTagAndSemicolonSeparatedCalls) {
  expect_same_at_every_split(
      ToolCallFormat::Llama3,
      "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"s\": \"x;y\"}}; {\"name\": \"b\", \"parameters\": {}}",
      {"", {{"a", R"({"s":"x;y"})"}, {"b", "{}"}}});
}

TEST(ToolCallParser, Llama3JsonThatIsNotACallIsText) {
  const std::string text = "{\"answer\": 42}";
  expect_same_at_every_split(ToolCallFormat::Llama3, text, {text, {}});
}

TEST(ToolCallParser, MistralToolCallsList) {
  expect_same_at_every_split(
      ToolCallFormat::Mistral,
      "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": [1, 2]}}, {\"name\": \"g\", \"arguments\": \"{\\\"b\\\": true}\"}]",
      {"", {{"f", R"({"a":[1,2]})"}, {"g", R"({"b":true})"}}});
}

TEST(ToolCallParser, GraniteTagsWithAndWithoutTheClosingTag) {
  for (const ToolCallFormat format : {ToolCallFormat::Granite, ToolCallFormat::Phi4}) {
    expect_same_at_every_split(format,
                               "<|tool_call|>[{\"name\": \"f\", \"arguments\": {\"q\": \"é\"}}]<|/tool_call|>",
                               {"", {{"f", R"({"q":"é"})"}}});
    expect_same_at_every_split(format, "<|tool_call|>[{\"name\": \"f\", \"arguments\": {}}]", {"", {{"f", "{}"}}});
  }
}

// Phi-4-mini writes its calls as functools[...] (vLLM's phi4_mini_json parser reads the same).
TEST(ToolCallParser, Phi4FunctoolsList) {
  expect_same_at_every_split(
      ToolCallFormat::Phi4,
      "Checking. functools[{\"name\": \"f\", \"arguments\": {\"a\": [1]}}, {\"name\": \"g\", \"parameters\": {}}]",
      {"Checking.", {{"f", R"({"a":[1]})"}, {"g", "{}"}}});
  // "functools" alone is a word of the text; a list that is not calls is given back.
  const std::string text = "import functools; functools[1, 2] and functools.partial";
  expect_same_at_every_split(ToolCallFormat::Phi4, text, {text, {}});
  // Granite does not read functools.
  const std::string call = "functools[{\"name\": \"f\", \"arguments\": {}}]";
  expect_same_at_every_split(ToolCallFormat::Granite, call, {call, {}});
}

TEST(ToolCallParser, GenericJsonObjectListAndOpenAiShape) {
  expect_same_at_every_split(ToolCallFormat::Json, " {\"name\": \"f\", \"arguments\": {\"x\": null}}",
                             {"", {{"f", R"({"x":null})"}}});
  expect_same_at_every_split(
      ToolCallFormat::Json,
      "[{\"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}, {\"name\": \"g\", \"parameters\": {\"k\": 1}}]",
      {"", {{"f", "{}"}, {"g", R"({"k":1})"}}});
}

TEST(ToolCallFormatDetection, RealTemplatesPickTheirFamily) {
  SLM_REQUIRE_ASSET(slm::test::shared_path("templates"));
  const auto read = [](const char* name) { return slm::test::read_file(slm::test::shared_path("templates") / name); };
  EXPECT_EQ(slm::chat::detect_tool_call_format(read("Qwen-Qwen2.5-7B-Instruct.jinja")), ToolCallFormat::Hermes);
  EXPECT_EQ(slm::chat::detect_tool_call_format(read("Qwen-Qwen3-0.6B.jinja")), ToolCallFormat::Hermes);
  EXPECT_EQ(slm::chat::detect_tool_call_format(read("meta-llama-Llama-3.1-8B-Instruct.jinja")), ToolCallFormat::Llama3);
  EXPECT_EQ(slm::chat::detect_tool_call_format(read("meta-llama-Llama-3.2-3B-Instruct.jinja")), ToolCallFormat::Llama3);
  EXPECT_EQ(slm::chat::detect_tool_call_format(read("mistralai-Mistral-Nemo-Instruct-2407.jinja")),
            ToolCallFormat::Mistral);
  EXPECT_EQ(slm::chat::detect_tool_call_format(read("ibm-granite-granite-3.3-2B-Instruct.jinja")), ToolCallFormat::Granite);
  EXPECT_EQ(slm::chat::detect_tool_call_format(read("google-gemma-2-2b-it.jinja")), ToolCallFormat::Json);
  // Phi-4-mini's template (microsoft/Phi-4-mini-instruct, tokenizer_config.json; not among the
  // shared templates) writes the tools in <|tool|> tags and shows no call.
  EXPECT_EQ(slm::chat::detect_tool_call_format(
                "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and "
                "message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + "
                "message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + "
                "message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ "
                "'<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}"),
            ToolCallFormat::Phi4);
}

const std::vector<ToolFunction> weather_tools = {
    {"get_weather",
     R"({"type":"object","properties":{"city":{"type":"string","maxLength":10},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"],"additionalProperties":false})"},
    {"get_time", ""},
};

bool grammar_accepts(const std::string& gbnf, const std::string& text) {
  return slm::test::grammar_matches(slm::compile_gbnf(gbnf), text);
}

TEST(ToolCallGrammar, EachFormatAcceptsAValidCallAndTheParserReadsIt) {
  struct Case {
    ToolCallFormat format;
    std::string call;
  };
  const std::vector<Case> cases = {
      {ToolCallFormat::Hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 3}}\n</tool_call>"},
      {ToolCallFormat::Llama3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\", \"days\": 3}}"},
      {ToolCallFormat::Mistral, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 3}}]"},
      {ToolCallFormat::Phi4, "functools[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 3}}]"},
      {ToolCallFormat::Granite, "<|tool_call|>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 3}}]<|/tool_call|>"},
      {ToolCallFormat::Json, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 3}}"},
  };
  for (const Case& c : cases) {
    const std::string gbnf = slm::chat::tool_call_gbnf(c.format, weather_tools, /*parallel=*/false);
    EXPECT_TRUE(grammar_accepts(gbnf, c.call)) << tool_call_format_name(c.format) << "\n" << gbnf;
    const std::string auto_gbnf = slm::chat::tool_call_auto_gbnf(c.format, weather_tools, /*parallel=*/false);
    EXPECT_TRUE(grammar_accepts(auto_gbnf, c.call)) << tool_call_format_name(c.format) << "\n" << auto_gbnf;
    EXPECT_EQ(parse_whole(c.format, c.call), (Reply{"", {{"get_weather", R"({"city":"Rome","days":3})"}}}))
        << tool_call_format_name(c.format);
  }
}

TEST(ToolCallGrammar, RefusesWrongArgumentsUnknownFunctionsAndText) {
  const std::string gbnf = slm::chat::tool_call_gbnf(ToolCallFormat::Hermes, weather_tools, false);
  EXPECT_FALSE(grammar_accepts(gbnf, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"days\": 9}}\n</tool_call>"));
  EXPECT_FALSE(grammar_accepts(gbnf, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>"));
  EXPECT_FALSE(grammar_accepts(gbnf, "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(grammar_accepts(gbnf, "Sure! <tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_TRUE(grammar_accepts(gbnf, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
}

TEST(ToolCallGrammar, ParallelAllowsSeveralCallsAndSingleOnlyOne) {
  const std::string two = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>\n"
                          "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  EXPECT_TRUE(grammar_accepts(slm::chat::tool_call_gbnf(ToolCallFormat::Hermes, weather_tools, true), two));
  EXPECT_FALSE(grammar_accepts(slm::chat::tool_call_gbnf(ToolCallFormat::Hermes, weather_tools, false), two));
  EXPECT_TRUE(grammar_accepts(slm::chat::tool_call_gbnf(ToolCallFormat::Mistral, weather_tools, true),
                              "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {}}, {\"name\": \"get_time\", \"arguments\": {}}]"));
}

// tool_choice "auto": text in which no call begins, or calls. Every text the grammar accepts is
// plain text to the parser, or calls with valid arguments.
TEST(ToolCallAutoGrammar, TextWithoutACallOrAValidCall) {
  const std::string call = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  const std::string hermes = slm::chat::tool_call_auto_gbnf(ToolCallFormat::Hermes, weather_tools, false);
  for (const std::string text : {"", "Hi!", "a < b, <tool_cal <tool_calling> </tool_call> <<tool_call", "é ü 日本"}) {
    EXPECT_TRUE(grammar_accepts(hermes, text)) << text;
    EXPECT_TRUE(grammar_accepts(hermes, text + call)) << text;
    EXPECT_EQ(parse_whole(ToolCallFormat::Hermes, text + call).calls.size(), 1u) << text;
  }
  EXPECT_FALSE(grammar_accepts(hermes, "Hi <tool_call>{not a call}</tool_call>"));
  EXPECT_FALSE(grammar_accepts(hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": 3}}\n</tool_call>"));
  EXPECT_FALSE(grammar_accepts(hermes, call + " and text after"));
  EXPECT_FALSE(grammar_accepts(hermes, "<<tool_call>"));

  const std::string mistral = slm::chat::tool_call_auto_gbnf(ToolCallFormat::Mistral, weather_tools, true);
  EXPECT_TRUE(grammar_accepts(mistral, "[TOOL_CALL] [[TOOL_CALLS"));
  EXPECT_FALSE(grammar_accepts(mistral, "x [[TOOL_CALLS]"));
  EXPECT_TRUE(grammar_accepts(mistral, "x [[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {}}]"));

  const std::string phi4 = slm::chat::tool_call_auto_gbnf(ToolCallFormat::Phi4, weather_tools, true);
  EXPECT_TRUE(grammar_accepts(phi4, "import functools; functools.reduce"));
  EXPECT_FALSE(grammar_accepts(phi4, "functools[1]"));
  EXPECT_FALSE(grammar_accepts(phi4, "<|tool_call|>"));
}

TEST(ToolCallAutoGrammar, BareJsonFormatsRefuseTextThatBeginsLikeACall) {
  for (const ToolCallFormat format : {ToolCallFormat::Llama3, ToolCallFormat::Json}) {
    const std::string gbnf = slm::chat::tool_call_auto_gbnf(format, weather_tools, false);
    EXPECT_TRUE(grammar_accepts(gbnf, " \n Sure: {\"a\": 1}")) << tool_call_format_name(format);
    EXPECT_TRUE(grammar_accepts(gbnf, "  ")) << tool_call_format_name(format);
    EXPECT_FALSE(grammar_accepts(gbnf, "\n{\"name\": \"get_weather\"}")) << tool_call_format_name(format);
  }
  const std::string llama3 = slm::chat::tool_call_auto_gbnf(ToolCallFormat::Llama3, weather_tools, false);
  EXPECT_TRUE(grammar_accepts(llama3, "[1] <|python_ta"));
  EXPECT_FALSE(grammar_accepts(llama3, "x <|python_tag|>"));
  EXPECT_FALSE(grammar_accepts(slm::chat::tool_call_auto_gbnf(ToolCallFormat::Json, weather_tools, false), "[1]"));
}

// A reasoning model (Qwen3) thinks before it calls: <think>...</think> first, or, when the prompt
// ends inside <think>, the thinking and </think> first. Without a think block allowed, "required"
// refused such a reply. The thinking may not close twice.
TEST(ToolCallThinkGrammar, TheThinkBlockMayComeBeforeTheCall) {
  using slm::chat::ThinkBlock;
  const std::string call = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  const std::string thinking = "The user wants the time; <b> is not </thinking>. I call get_time.\n";
  const std::string required = slm::chat::tool_call_gbnf(ToolCallFormat::Hermes, weather_tools, false);
  const std::string automatic = slm::chat::tool_call_auto_gbnf(ToolCallFormat::Hermes, weather_tools, false);
  EXPECT_FALSE(grammar_accepts(required, "<think>\n" + thinking + "</think>\n\n" + call));
  for (const std::string& gbnf : {required, automatic}) {
    const std::string optional = slm::chat::with_think_block(gbnf, ThinkBlock::Optional);
    EXPECT_TRUE(grammar_accepts(optional, "<think>\n" + thinking + "</think>\n\n" + call));
    EXPECT_TRUE(grammar_accepts(optional, call));
    const std::string open = slm::chat::with_think_block(gbnf, ThinkBlock::Open);
    EXPECT_TRUE(grammar_accepts(open, thinking + "</think>\n\n" + call));
    EXPECT_FALSE(grammar_accepts(open, call));
    EXPECT_EQ(slm::chat::with_think_block(gbnf, ThinkBlock::None), gbnf);
  }
  const std::string required_after_think = slm::chat::with_think_block(required, ThinkBlock::Optional);
  EXPECT_FALSE(grammar_accepts(required_after_think, "Sure. " + call));
  EXPECT_FALSE(grammar_accepts(required_after_think, "<think>\nI think </think> twice </think>\n\n" + call));
  const std::string llama3 = slm::chat::tool_call_gbnf(ToolCallFormat::Llama3, weather_tools, false);
  EXPECT_TRUE(grammar_accepts(slm::chat::with_think_block(llama3, ThinkBlock::Optional),
                              "<think>ok</think>\n{\"name\": \"get_time\", \"parameters\": {}}"));
}

// Every reply of the auto grammar up to a length, over an alphabet that spells the markers:
// what the grammar accepts is text without calls, or calls, to the parser.
TEST(ToolCallAutoGrammar, EveryShortTextItAcceptsIsPlainTextToTheParser) {
  const std::vector<ToolFunction> tools = {{"f", ""}};
  for (const ToolCallFormat format : all_formats) {
    const std::string gbnf = slm::chat::tool_call_auto_gbnf(format, tools, false);
    const slm::Grammar grammar = slm::compile_gbnf(gbnf);
    std::string alphabet = "a {[";
    for (const slm::chat::ToolCallMarker& marker : slm::chat::tool_call_markers(format)) alphabet += marker.open;
    std::sort(alphabet.begin(), alphabet.end());
    alphabet.erase(std::unique(alphabet.begin(), alphabet.end()), alphabet.end());
    // Texts of up to 3 characters, then each with every marker and "{" appended.
    std::vector<std::string> texts = {""};
    for (size_t begin = 0, length = 0; length < 3; ++length) {
      const size_t end = texts.size();
      for (size_t i = begin; i < end; ++i)
        for (const char c : alphabet) texts.push_back(texts[i] + c);
      begin = end;
    }
    size_t accepted = 0;
    for (const std::string& text : texts)
      for (std::string tail : {std::string(), std::string("{")}) {
        for (const slm::chat::ToolCallMarker& marker : slm::chat::tool_call_markers(format)) {
          const std::string candidate = text + std::string(marker.open) + tail;
          if (!slm::test::grammar_matches(grammar, candidate)) continue;
          ++accepted;
          EXPECT_EQ(parse_whole(format, candidate), (Reply{candidate, {}})) << tool_call_format_name(format);
        }
        if (slm::test::grammar_matches(grammar, text + tail)) {
          ++accepted;
          EXPECT_EQ(parse_whole(format, text + tail), (Reply{text + tail, {}})) << tool_call_format_name(format);
        }
      }
    EXPECT_GT(accepted, texts.size() / 4) << tool_call_format_name(format);
  }
}

TEST(ToolCallGrammar, ParameterSchemasWithLocalReferencesStillResolve) {
  const std::vector<ToolFunction> tools = {
      {"tree", R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer","minimum":0,"maximum":9},"kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"})"}};
  const std::string gbnf = slm::chat::tool_call_gbnf(ToolCallFormat::Json, tools, false);
  EXPECT_TRUE(grammar_accepts(gbnf, R"({"name": "tree", "arguments": {"v": 1, "kids": [{"v": 2}]}})"));
  EXPECT_FALSE(grammar_accepts(gbnf, R"({"name": "tree", "arguments": {"v": 1, "kids": [{"w": 2}]}})"));
}

TEST(ToolCallGrammar, AnUnsupportedKeywordNamesTheToolAndTheKeyword) {
  const std::vector<ToolFunction> tools = {{"ok", ""}, {"bad", R"({"type":"object","patternProperties":{}})"}};
  const std::string error =
      slm::test::error_of([&] { slm::chat::tool_call_gbnf(ToolCallFormat::Hermes, tools, false); });
  EXPECT_NE(error.find("tool 'bad'"), std::string::npos) << error;
  EXPECT_NE(error.find("patternProperties"), std::string::npos) << error;
}

}  // namespace
