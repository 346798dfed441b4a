// Every output a grammar completes is valid against its schema, checked by a validator that is
// not ours (Debian's python3-jsonschema). The model has random weights: unconstrained it writes
// noise, so validity is entirely the engine's doing. Outputs cut by max_tokens are counted
// apart; they stay rare because the schemas bound what would otherwise run on (maxLength,
// maxItems, integer ranges) and the grammar allows no whitespace beyond one space after ':'
// and ',' (see slm/grammar.hpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "slm/generate.hpp"
#include "slm/grammar.hpp"
#include "slm/model.hpp"
#include "support/assets.hpp"
#include "support/json_schema_validator.hpp"

namespace {

// Small schemas of the kinds extraction and classification use.
const std::vector<std::string> schemas = {
    R"({"type":"object","properties":{"label":{"enum":["positive","negative","neutral"]},"score":{"type":"integer","minimum":0,"maximum":100}},"required":["label","score"],"additionalProperties":false})",
    R"({"type":"object","properties":{"name":{"type":"string","maxLength":8},"age":{"type":"integer","minimum":0,"maximum":130},"email":{"type":"string","format":"email"}},"required":["name"],"additionalProperties":false})",
    R"({"type":"array","items":{"type":"integer","minimum":-5,"maximum":5},"minItems":1,"maxItems":4})",
    R"({"type":"object","properties":{"ok":{"type":"boolean"},"tags":{"type":"array","items":{"type":"string","maxLength":4},"maxItems":3}},"required":["ok","tags"],"additionalProperties":false})",
    R"({"anyOf":[{"type":"null"},{"type":"object","properties":{"id":{"type":"string","format":"uuid"}},"required":["id"],"additionalProperties":false}]})",
    R"({"type":"object","properties":{"when":{"type":"string","format":"date"},"code":{"type":"string","pattern":"^[A-Z]{2}-[0-9]{2}$"}},"required":["when","code"],"additionalProperties":false})",
    R"({"$defs":{"n":{"type":"object","properties":{"v":{"type":"integer","minimum":0,"maximum":9},"k":{"type":"array","items":{"$ref":"#/$defs/n"},"maxItems":2}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/n"})",
    R"({"type":"array","prefixItems":[{"type":"string","maxLength":3},{"enum":[1,2,3]},{"type":"boolean"}],"items":false,"minItems":3})",
    R"({"oneOf":[{"enum":["a","b"]},{"type":"integer","minimum":10,"maximum":20},{"const":{"k":[true,null]}}]})",
    R"({"type":"object","properties":{"at":{"type":"string","format":"date-time"},"t":{"type":"string","format":"time"}},"required":["at"],"additionalProperties":false})",
    R"({"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[a-z]{3}[0-9]$"},"qty":{"type":"integer","minimum":1,"maximum":9}},"required":["sku","qty"],"additionalProperties":false},"minItems":1,"maxItems":2}},"required":["items"],"additionalProperties":false})",
    R"({"allOf":[{"type":"object","properties":{"on":{"type":"boolean"},"n":{"type":"integer","minimum":-99,"maximum":99}},"required":["on"],"additionalProperties":false}]})",
};

TEST(GrammarValidity, EveryCompletedOutputValidatesAgainstItsSchema) {
  const auto model_path = slm::test::shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(model_path);
  if (!slm::test::python_jsonschema_available()) GTEST_SKIP() << "python3-jsonschema is missing (tools/install-deps.sh installs it)";

  const auto model = slm::Model::load(model_path.string());
  const auto vocabulary = slm::make_grammar_vocabulary(model->tokenizer());
  slm::Session session(model, {.n_ctx = 128, .n_threads = 2});
  const std::vector<slm::TokenId> prompt = model->tokenizer().tokenize("JSON:", false, false);
  constexpr int n_seeds = 30;
  constexpr int max_tokens = 64;

  nlohmann::json cases = nlohmann::json::array();
  int completed = 0, cut = 0;
  for (const std::string& schema : schemas) {
    slm::GrammarMatcher matcher(slm::grammar_from_json_schema(schema), vocabulary);
    for (int seed = 0; seed < n_seeds; ++seed) {
      matcher.reset();
      // Sampling at temperature 1 among the 40 best allowed tokens of a random model: noise. (top_k
      // keeps the test fast: the sampler then sorts 40 candidates, not all 151,936.)
      slm::Sampler sampler({.temperature = 1.0f, .top_k = 40, .top_p = 1.0f, .min_p = 0.0f, .seed = uint64_t(seed)});
      slm::GenerateOptions options;
      options.max_tokens = max_tokens;
      options.grammar = &matcher;
      const slm::GenerateResult result = slm::generate(session, sampler, prompt, options, nullptr);
      if (result.stop_reason == slm::StopReason::MaxTokens) {
        ++cut;
        continue;
      }
      ASSERT_TRUE(result.stop_reason == slm::StopReason::GrammarComplete ||
                  result.stop_reason == slm::StopReason::EndOfGeneration)
          << slm::stop_reason_name(result.stop_reason);
      ++completed;
      cases.push_back({{"schema", nlohmann::json::parse(schema)}, {"output", result.text}});
    }
  }

  std::string report;
  const int invalid = slm::test::count_invalid_outputs(cases, report);

  std::printf("grammar validity: %zu schemas x %d seeds: %d completed by the grammar, %d cut by max_tokens (%d)\n",
              schemas.size(), n_seeds, completed, cut, max_tokens);
  EXPECT_EQ(invalid, 0) << report;
  EXPECT_GT(completed, 0);
  // Cut outputs are counted apart and must stay rare.
  EXPECT_LE(cut * 20, completed + cut) << "more than 5% of the outputs were cut by max_tokens";
}

TEST(GrammarGenerate, SeededAndGreedyResultsAreDeterministicAndStopWithTheGrammar) {
  const auto model_path = slm::test::shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(model_path);
  const auto model = slm::Model::load(model_path.string());
  slm::Session session(model, {.n_ctx = 128, .n_threads = 1});
  const std::vector<slm::TokenId> prompt = model->tokenizer().tokenize("Answer:", false, false);
  slm::GrammarMatcher matcher(slm::compile_gbnf(R"(root ::= "yes" | "no" | "maybe" [0-9])"),
                              slm::make_grammar_vocabulary(model->tokenizer()));
  for (const float temperature : {0.0f, 1.0f}) {
    std::vector<std::string> texts;
    for (int run = 0; run < 2; ++run) {
      matcher.reset();
      slm::Sampler sampler({.temperature = temperature, .top_k = 40, .seed = 7});
      slm::GenerateOptions options;
      options.max_tokens = 16;
      options.grammar = &matcher;
      const slm::GenerateResult result = slm::generate(session, sampler, prompt, options, nullptr);
      EXPECT_EQ(result.stop_reason, slm::StopReason::GrammarComplete);
      EXPECT_EQ(slm::stop_reason_name(result.stop_reason), "grammar_complete");
      texts.push_back(result.text);
    }
    EXPECT_EQ(texts[0], texts[1]);
    EXPECT_TRUE(texts[0] == "yes" || texts[0] == "no" || (texts[0].size() == 6 && texts[0].starts_with("maybe")))
        << texts[0];
  }
}

}  // namespace

// The validator itself: Draft 2020-12's formats, RFC 3339 times with their offsets. (The generic
// jsonschema.FormatChecker() took "time" as Draft 3's HH:MM:SS and rejected "22:33:55Z".)
TEST(GrammarValidity, TheValidatorChecksDraft202012sFormats) {
  if (!slm::test::python_jsonschema_available()) GTEST_SKIP() << "python3-jsonschema is missing (tools/install-deps.sh installs it)";
  const auto with_format = [](const char* format, const char* text) {
    return nlohmann::json{{"schema", {{"type", "string"}, {"format", format}}}, {"output", nlohmann::json(text).dump()}};
  };
  const nlohmann::json valid = {with_format("time", "22:33:55Z"), with_format("time", "00:00:00.123456-11:30"),
                                with_format("date-time", "2024-01-02T22:33:55.5+01:00"),
                                with_format("date", "2024-02-28"),
                                with_format("uuid", "123e4567-e89b-12d3-a456-426614174000"),
                                with_format("email", "a.b@example.org")};
  const nlohmann::json invalid = {with_format("time", "22:33:55"), with_format("time", "25:33:55Z"),
                                  with_format("date-time", "2024-01-02T22:33:55"),
                                  with_format("date-time", "2024-13-02T22:33:55Z"), with_format("date", "2024-02-30"),
                                  with_format("uuid", "123"), with_format("email", "abc")};
  std::string report;
  EXPECT_EQ(slm::test::count_invalid_outputs(valid, report), 0) << report;
  EXPECT_EQ(slm::test::count_invalid_outputs(invalid, report), int(invalid.size())) << report;
}
