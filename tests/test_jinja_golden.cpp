// Every record of shared/templates/golden.jsonl (renders made by Hugging Face transformers
// with jinja2 3.1.2) must render byte for byte, or fail the same way.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "slm/chat_template.hpp"
#include "slm/jinja.hpp"
#include "support/assets.hpp"

namespace {

using Json = nlohmann::ordered_json;

constexpr int golden_record_count = 160;

const std::vector<Json>& golden_records() {
  static const std::vector<Json> records = [] {
    std::vector<Json> out;
    std::ifstream file(slm::test::shared_path("templates/golden.jsonl"));
    for (std::string line; std::getline(file, line);)
      if (!line.empty()) out.push_back(Json::parse(line));
    return out;
  }();
  return records;
}

// The clock make_golden.py fixes: 2026-11-22 12:00:00.
std::tm golden_clock() {
  std::tm time{};
  time.tm_year = 2026 - 1900;
  time.tm_mon = 10;
  time.tm_mday = 22;
  time.tm_hour = 12;
  return time;
}

std::optional<std::string> optional_token(const Json& value) {
  if (value.is_null()) return std::nullopt;
  return value.get<std::string>();
}

class JinjaGolden : public ::testing::TestWithParam<int> {};

TEST_P(JinjaGolden, RendersLikeTransformers) {
  SLM_REQUIRE_ASSET(slm::test::shared_path("templates/golden.jsonl"));
  const auto& records = golden_records();
  ASSERT_EQ(records.size(), static_cast<std::size_t>(golden_record_count));
  const Json& record = records[static_cast<std::size_t>(GetParam())];
  const std::string name = record["template"].get<std::string>();
  const std::string source = slm::test::read_file(slm::test::shared_path("templates/" + name + ".jinja"));

  // Through slm's own JSON reader, which keeps key order as json.loads does.
  const auto messages = slm::jinja::value_from_json(record["messages"].dump());
  const auto tools = slm::jinja::value_from_json(record["tools"].dump());
  const auto extra_vars = slm::jinja::value_from_json(record["extra_vars"].dump());
  auto render = [&] {
    return slm::apply_chat_template(source, messages, tools, record["add_generation_prompt"].get<bool>(),
                                    optional_token(record["bos_token"]), optional_token(record["eos_token"]),
                                    extra_vars, golden_clock());
  };

  if (record.contains("rendered")) {
    EXPECT_EQ(render(), record["rendered"].get<std::string>());
    return;
  }
  const std::string error = record["error"].get<std::string>();
  if (record["error_kind"] == "raise_exception") {
    const std::string prefix = "TemplateError: ";
    ASSERT_EQ(error.substr(0, prefix.size()), prefix);
    try {
      render();
      FAIL() << "expected raise_exception: " << error;
    } catch (const slm::jinja::TemplateException& e) {
      EXPECT_EQ(std::string(e.what()), error.substr(prefix.size()));
    }
  } else {
    EXPECT_THROW(render(), slm::Error) << error;
  }
}

std::string record_name(const ::testing::TestParamInfo<int>& info) {
  const auto& records = golden_records();
  if (static_cast<std::size_t>(info.param) >= records.size()) return "record_" + std::to_string(info.param);
  const Json& record = records[static_cast<std::size_t>(info.param)];
  std::string name = record["template"].get<std::string>() + "_" + record["conversation"].get<std::string>() +
                     (record["add_generation_prompt"].get<bool>() ? "_prompt" : "_noprompt");
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Records, JinjaGolden, ::testing::Range(0, golden_record_count), record_name);

}  // namespace
