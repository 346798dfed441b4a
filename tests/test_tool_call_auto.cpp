// tool_choice "auto" on a random-weight model with the real Qwen2.5 vocabulary: every reply the
// auto grammar (slm::chat::tool_call_auto_gbnf) lets through is either plain text to the parser
// or calls whose arguments python3-jsonschema (a validator that is not slm's) accepts.
//
// A random model almost never spells a call marker by chance, so the test is an adversary: the
// tokens that spell pieces of the markers (and "{", which begins a bare JSON call) get a logit
// bias, and so do the end-of-generation tokens. The model then starts markers often, and in
// the middle of its text; the grammar must turn each into a valid call or keep it from
// completing. Replies cut by max_tokens are counted apart.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/chat/tool_calls.hpp"
#include "slm/grammar.hpp"
#include "slm/model.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"
#include "support/json_schema_validator.hpp"

namespace {

using slm::chat::ToolCallFormat;

const std::vector<slm::chat::ToolFunction> tools = {
    {"get_weather",
     R"({"type":"object","properties":{"city":{"type":"string","maxLength":6},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"],"additionalProperties":false})"},
    {"set_alarm",
     R"({"type":"object","properties":{"hour":{"type":"integer","minimum":0,"maximum":23},"label":{"enum":["work","gym"]}},"required":["hour"],"additionalProperties":false})"},
};

const std::string* schema_of(const std::string& name) {
  for (const slm::chat::ToolFunction& tool : tools)
    if (tool.name == name) return &tool.parameters_schema;
  return nullptr;
}

// Whether the reply has begun a call: the grammar keeps every marker (and, in the bare-JSON
// formats, a leading "{") out of text.
bool started_call(ToolCallFormat format, const std::string& text) {
  for (const slm::chat::ToolCallMarker& marker : slm::chat::tool_call_markers(format))
    if (text.find(marker.open) != std::string::npos) return true;
  const size_t first = text.find_first_not_of(" \t\n\r");
  return first != std::string::npos && slm::chat::tool_call_bare_starts(format).find(text[first]) != std::string_view::npos;
}

struct Counts {
  int text = 0;        // plain text (ended or cut: text is text)
  int calls = 0;       // replies the grammar completed (or ended) with calls
  int cut_calls = 0;   // replies cut by max_tokens inside a call
  int not_text = 0;    // a reply without calls whose content is not its text
};

TEST(ToolCallAuto, EveryReplyIsPlainTextOrValidCalls) {
  const auto model_path = slm::test::shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(model_path);
  if (!slm::test::python_jsonschema_available()) GTEST_SKIP() << "python3-jsonschema is missing (tools/install-deps.sh installs it)";

  const auto model = slm::Model::load(model_path.string());
  const slm::Tokenizer& tokenizer = model->tokenizer();
  const auto vocabulary = slm::make_grammar_vocabulary(tokenizer);
  slm::Session session(model, {.n_ctx = 256, .n_threads = 2});
  const std::vector<slm::TokenId> prompt = tokenizer.tokenize("Weather in Paris?", false, false);
  constexpr int n_seeds = 24;
  constexpr int max_tokens = 96;

  nlohmann::json cases = nlohmann::json::array();
  for (const ToolCallFormat format : {ToolCallFormat::Hermes, ToolCallFormat::Mistral, ToolCallFormat::Phi4,
                                      ToolCallFormat::Llama3}) {
    const std::string gbnf = slm::chat::tool_call_auto_gbnf(format, tools, /*parallel=*/true);
    slm::GrammarMatcher matcher(slm::compile_gbnf(gbnf), vocabulary);
    // The adversary's favourites: the tokens that carry on spelling a marker (or a bare call's
    // beginning) from where the text's end left it. spelling[m][k]: the tokens whose bytes
    // begin the rest of spelled[m] after its first k bytes.
    std::vector<std::string> spelled;
    for (const slm::chat::ToolCallMarker& marker : slm::chat::tool_call_markers(format)) spelled.emplace_back(marker.open);
    if (!slm::chat::tool_call_bare_starts(format).empty()) spelled.emplace_back("{\"name\": \"");
    std::vector<std::vector<std::vector<slm::TokenId>>> spelling(spelled.size());
    for (size_t m = 0; m < spelled.size(); ++m) {
      spelling[m].resize(spelled[m].size());
      for (slm::TokenId t = 0; t < tokenizer.n_vocab(); ++t) {
        const std::string piece = tokenizer.token_to_piece(t, false);
        if (piece.empty() || tokenizer.is_special(t) || tokenizer.is_end_of_generation(t)) continue;
        for (size_t k = 0; k < spelled[m].size(); ++k)
          if (std::string_view(spelled[m]).substr(k).starts_with(piece)) spelling[m][k].push_back(t);
      }
    }
    const std::vector<slm::TokenId>& ends = tokenizer.end_of_generation_ids();
    Counts counts;
    for (int seed = 0; seed < n_seeds; ++seed) {
      matcher.reset();
      slm::Sampler sampler({.temperature = 1.0f, .top_k = 40, .top_p = 1.0f, .min_p = 0.0f, .seed = uint64_t(seed)});
      session.reset();
      std::span<const float> logits = session.eval(prompt);
      std::vector<float> biased;
      slm::TokenMask mask;
      std::vector<float> masked;
      std::string text;
      bool ended = false;
      for (int step = 0; step < max_tokens && !ended; ++step) {
        // The favoured tokens above the best one for some seeds, below it for others.
        biased.assign(logits.begin(), logits.end());
        const float best = *std::max_element(biased.begin(), biased.end());
        const float below = -3.0f + 2.0f * float(seed % 4);
        const bool in_call = started_call(format, text);
        for (size_t m = 0; m < spelled.size() && !in_call; ++m) {
          size_t k = std::min(text.size(), spelled[m].size() - 1);  // the longest start of it the text ends with
          while (k > 0 && !text.ends_with(std::string_view(spelled[m]).substr(0, k))) --k;
          const bool bare = m >= slm::chat::tool_call_markers(format).size();  // only at the reply's start
          if (!bare || text.find_first_not_of(" \t\n\r") == std::string::npos)
            for (const slm::TokenId t : spelling[m][k]) biased[size_t(t)] = best - below;
        }
        for (const slm::TokenId t : ends) biased[size_t(t)] = best - 3.0f;
        const slm::TokenId token = slm::sample_with_grammar(sampler, biased, matcher, mask, masked);
        ASSERT_TRUE(matcher.accept_token(token));
        sampler.accept(token);
        ended = matcher.is_complete();
        if (tokenizer.is_end_of_generation(token)) break;
        text += tokenizer.token_to_piece(token, false);
        if (!ended) logits = session.eval(std::span(&token, 1));
      }
      const slm::chat::ParsedReply parsed = slm::chat::parse_tool_calls(format, text);
      if (!ended && started_call(format, text)) {  // cut inside a call: the parser gives it back as text
        ++counts.cut_calls;
        continue;
      }
      if (parsed.calls.empty()) {
        ++counts.text;
        if (parsed.content != text) ++counts.not_text;
        EXPECT_EQ(parsed.content, text) << tool_call_format_name(format) << " seed " << seed;
        continue;
      }
      if (!ended) {  // a call the parser has not read whole
        ++counts.cut_calls;
        continue;
      }
      ++counts.calls;
      EXPECT_TRUE(parsed.content.find_first_not_of(" \n") == std::string::npos || format != ToolCallFormat::Llama3)
          << text;
      for (const slm::chat::ParsedToolCall& call : parsed.calls) {
        const std::string* schema = schema_of(call.name);
        ASSERT_NE(schema, nullptr) << "an unknown function: " << text;
        cases.push_back({{"schema", nlohmann::json::parse(*schema)}, {"output", call.arguments}});
      }
    }
    std::printf("tool_choice auto, %s: %d seeds: %d plain text, %d with calls completed, %d cut inside a call (%d tokens)\n",
                std::string(tool_call_format_name(format)).c_str(), n_seeds, counts.text, counts.calls,
                counts.cut_calls, max_tokens);
    EXPECT_EQ(counts.not_text, 0);
    EXPECT_GT(counts.calls, 0) << tool_call_format_name(format) << ": the adversary made no call";
    EXPECT_GT(counts.text, 0) << tool_call_format_name(format) << ": the adversary wrote no text";
  }
  std::string report;
  const int invalid = slm::test::count_invalid_outputs(cases, report);
  std::printf("tool_choice auto: %zu calls' arguments checked by python3-jsonschema, %d invalid\n", cases.size(), invalid);
  EXPECT_EQ(invalid, 0) << report;
}

}  // namespace
