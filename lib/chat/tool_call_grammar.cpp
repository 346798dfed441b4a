// The grammars that hold a reply to the tool-call formats of lib/chat/tool_calls.hpp: calls only
// (tool_choice "required" or a named function), or free text or calls (tool_choice "auto").
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "lib/chat/tool_calls.hpp"
#include "slm/error.hpp"
#include "slm/grammar.hpp"

namespace slm::chat {

namespace {

using Json = nlohmann::ordered_json;

// Points a function's local references ("#", "#/$defs/x") at where its schema now sits.
void relocate_refs(Json& schema, const std::string& base) {
  if (schema.is_object()) {
    for (auto& [key, value] : schema.items()) {
      if (key == "$ref" && value.is_string() && value.get<std::string>().starts_with("#"))
        value = base + value.get<std::string>().substr(1);
      else relocate_refs(value, base);
    }
  } else if (schema.is_array()) {
    for (Json& item : schema) relocate_refs(item, base);
  }
}

// The JSON Schema of one call object to any of `functions`, each function's arguments schema
// kept under $defs (so that its own references still resolve).
Json call_schema(ToolCallFormat format, std::span<const ToolFunction> functions) {
  const char* arguments_key = format == ToolCallFormat::Llama3 ? "parameters" : "arguments";
  Json defs = Json::object(), calls = Json::array();
  for (size_t i = 0; i < functions.size(); ++i) {
    const ToolFunction& function = functions[i];
    const std::string def = fmt::format("slm-tool-{}", i);
    Json parameters = function.parameters_schema.empty()
                          ? Json{{"type", "object"}}
                          : Json::parse(function.parameters_schema, nullptr, /*allow_exceptions=*/false);
    if (parameters.is_discarded())
      throw Error(fmt::format("tool '{}': its parameters are not valid JSON", function.name));
    relocate_refs(parameters, "#/$defs/" + def);
    defs[def] = std::move(parameters);
    calls.push_back({{"type", "object"},
                     {"properties", {{"name", {{"const", function.name}}}, {arguments_key, {{"$ref", "#/$defs/" + def}}}}},
                     {"required", {"name", arguments_key}},
                     {"additionalProperties", false}});
  }
  if (calls.size() == 1) {
    Json schema = calls[0];
    schema["$defs"] = defs;
    return schema;
  }
  return {{"$defs", defs}, {"anyOf", calls}};
}


// The rules of the calls a reply may make: `slm-tool-calls`, and the call object `slm-tool-call`
// (the schema's grammar, whose root it renames).
std::string tool_calls_rules(ToolCallFormat format, std::span<const ToolFunction> functions, bool parallel) {
  if (functions.empty()) throw Error("no function to call");
  std::string call_rules;
  try {
    call_rules = json_schema_to_gbnf(call_schema(format, functions).dump());
  } catch (const Error& e) {
    // Name the function at fault: convert each alone to find it.
    for (const ToolFunction& function : functions) {
      try {
        json_schema_to_gbnf(call_schema(format, std::span(&function, 1)).dump());
      } catch (const Error& alone) {
        throw Error(fmt::format("tool '{}': {}", function.name, alone.what()));
      }
    }
    throw;
  }
  const size_t root_at = call_rules.starts_with("root ::= ") ? 0 : call_rules.find("\nroot ::= ");
  if (root_at == std::string::npos) throw Error("internal: the call schema's grammar has no root rule");
  call_rules.replace(root_at == 0 ? 0 : root_at + 1, 4, "slm-tool-call");
  const char* more = parallel ? " (\", \" slm-tool-call){0,3}" : "";
  std::string calls;
  switch (format) {
    case ToolCallFormat::Hermes:
      calls = fmt::format("slm-tool-calls ::= slm-tool-call-block{}\n"
                          "slm-tool-call-block ::= \"<tool_call>\\n\" slm-tool-call \"\\n</tool_call>\"\n",
                          parallel ? " (\"\\n\" slm-tool-call-block){0,3}" : "");
      break;
    case ToolCallFormat::Llama3: calls = "slm-tool-calls ::= slm-tool-call\n"; break;
    case ToolCallFormat::Mistral: calls = fmt::format("slm-tool-calls ::= \"[TOOL_CALLS][\" slm-tool-call{} \"]\"\n", more); break;
    case ToolCallFormat::Phi4: calls = fmt::format("slm-tool-calls ::= \"functools[\" slm-tool-call{} \"]\"\n", more); break;
    case ToolCallFormat::Granite:
      calls = fmt::format("slm-tool-calls ::= \"<|tool_call|>[\" slm-tool-call{} \"]<|/tool_call|>\"\n", more);
      break;
    case ToolCallFormat::Json:
      calls = parallel ? fmt::format("slm-tool-calls ::= \"[\" slm-tool-call{} \"]\"\n", more)
                       : "slm-tool-calls ::= slm-tool-call\n";
      break;
  }
  return calls + call_rules;
}

// A GBNF character class of these ASCII characters, or of every character but them (`negate`).
std::string char_class(const std::set<char>& chars, bool negate) {
  if (chars.empty() && negate) return ".";
  std::string out = negate ? "[^" : "[";
  for (const char c : chars) out += fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
  return out + "]";
}

// Text in which none of `markers` occurs, as rules `<name>-<i>`: state i of the automaton that
// tracks the longest end of the text that begins a marker (Aho-Corasick over the markers'
// prefixes). A character that would complete a marker has no transition; a character that
// occurs in no marker goes back to state 0; the text may end in any state. With `bare_starts`,
// the text begins at `<name>-start`: whitespace, then a first character that is none of them.
std::string text_without_markers_rules(const std::vector<ToolCallMarker>& markers, std::string_view bare_starts,
                                      std::string_view name = "slm-text") {
  std::vector<std::string> states = {""};
  std::set<char> alphabet;
  for (const ToolCallMarker& marker : markers)
    for (size_t n = 1; n <= marker.open.size(); ++n) {
      const char c = marker.open[n - 1];
      if (static_cast<unsigned char>(c) >= 0x80 || c == ' ' || c == '\n' || c == '\t' || c == '\r')
        throw Error("internal: a call marker with a non-ASCII or space character");
      alphabet.insert(c);
      if (n < marker.open.size() && std::find(states.begin(), states.end(), marker.open.substr(0, n)) == states.end())
        states.emplace_back(marker.open.substr(0, n));
    }
  // The state after `text` (the longest end of it that is a state), or -1 if a marker ends it.
  const auto next_state = [&](const std::string& text) {
    for (const ToolCallMarker& marker : markers)
      if (text.ends_with(marker.open)) return -1;
    for (size_t n = text.size() + 1; n-- > 0;) {
      const auto found = std::find(states.begin(), states.end(), text.substr(text.size() - n));
      if (found != states.end()) return int(found - states.begin());
    }
    return 0;
  };
  // The alternatives leaving `state`: by target state, the characters that lead there.
  const auto transitions = [&](size_t state, const std::set<char>& excluded) {
    std::map<int, std::set<char>> by_target;
    for (const char c : alphabet)
      if (!excluded.count(c))
        if (const int target = next_state(states[state] + c); target >= 0) by_target[target].insert(c);
    std::set<char> others = alphabet;
    others.insert(excluded.begin(), excluded.end());
    std::string out = fmt::format(" | {} {}-0", char_class(others, /*negate=*/true), name);
    for (const auto& [target, chars] : by_target) out += fmt::format(" | {} {}-{}", char_class(chars, false), name, target);
    return out;
  };
  std::string rules;
  if (!bare_starts.empty()) {
    const std::set<char> space = {' ', '\n', '\t', '\r'};
    std::set<char> excluded(bare_starts.begin(), bare_starts.end());
    excluded.insert(space.begin(), space.end());
    rules += fmt::format("{0}-start ::= \"\" | {1} {0}-start{2}\n", name, char_class(space, false), transitions(0, excluded));
  }
  for (size_t state = 0; state < states.size(); ++state)
    rules += fmt::format("{}-{} ::= \"\"{}\n", name, state, transitions(state, {}));
  return rules;
}

}  // namespace

std::string tool_call_gbnf(ToolCallFormat format, std::span<const ToolFunction> functions, bool parallel) {
  return "root ::= slm-tool-calls\n" + tool_calls_rules(format, functions, parallel);
}

std::string tool_call_auto_gbnf(ToolCallFormat format, std::span<const ToolFunction> functions, bool parallel) {
  const std::string calls = tool_calls_rules(format, functions, parallel);
  const std::string_view bare_starts = tool_call_bare_starts(format);
  const std::string text = text_without_markers_rules(tool_call_markers(format), bare_starts);
  // A bare-JSON format's call is the whole reply; a marker opens a call after any text.
  const char* root = bare_starts.empty() ? "root ::= slm-text-0 | slm-text-0 slm-tool-calls\n"
                                         : "root ::= slm-text-start | slm-tool-calls\n";
  return root + text + calls;
}

std::string with_think_block(std::string_view gbnf, ThinkBlock think) {
  if (think == ThinkBlock::None) return std::string(gbnf);
  if (!gbnf.starts_with("root ::=")) throw Error("internal: with_think_block needs a grammar that begins with its root");
  const std::string reply = "slm-reply" + std::string(gbnf.substr(4));
  const std::string text = text_without_markers_rules({{"</think>"}}, "", "slm-think");
  // Up to four blank characters after </think>, as templates write them ("\n\n").
  const char* block = R"(slm-think-0 "</think>" [ \t\r\n]{0,4})";
  return fmt::format("root ::= {}slm-reply\n", think == ThinkBlock::Open ? fmt::format("{} ", block)
                                                                        : fmt::format("( \"<think>\" {} )? ", block)) +
         text + reply;
}

}  // namespace slm::chat
