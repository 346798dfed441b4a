// slm-chat --print-prompt: the contract other tooling relies on. It prints the exact prompt a
// conversation file renders to (byte for byte, no newline added), with or without a model, and
// a template error is one line on stderr with exit code 1.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/assets.hpp"
#include "support/process.hpp"

namespace slm::test {
namespace {

using Json = nlohmann::ordered_json;

std::string slm_chat() { return (bin_dir() / "slm-chat").string(); }

std::string template_path(const std::string& name) { return shared_path("templates/" + name + ".jinja").string(); }

std::filesystem::path write_temp_file(const std::string& name, const std::string& content) {
  const auto path = std::filesystem::temp_directory_path() / ("slm-test-chat-prompt-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

ProcessResult print_prompt(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv = {slm_chat(), "--print-prompt"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return run_process(argv);
}

// golden.jsonl's inputs as a --messages file: messages, tools, add_generation_prompt, then the
// extra variables as top-level keys, in the golden's key order.
std::string conversation_file_for(const Json& record) {
  Json conversation = {{"messages", record["messages"]},
                       {"tools", record["tools"]},
                       {"add_generation_prompt", record["add_generation_prompt"]}};
  for (const auto& [name, value] : record["extra_vars"].items()) conversation[name] = value;
  return conversation.dump();
}

std::vector<std::string> token_flags(const Json& record) {
  std::vector<std::string> flags;
  if (!record["bos_token"].is_null()) flags.insert(flags.end(), {"--bos-token", record["bos_token"].get<std::string>()});
  if (!record["eos_token"].is_null()) flags.insert(flags.end(), {"--eos-token", record["eos_token"].get<std::string>()});
  return flags;
}

std::string today(const char* format) {
  const std::time_t now = std::time(nullptr);
  char text[64];
  std::strftime(text, sizeof text, format, std::localtime(&now));
  return text;
}

// The goldens were made with the clock fixed at 22 Nov 2026; slm-chat uses the real clock.
std::string with_todays_date(std::string rendered) {
  const std::string fixed = "November 22, 2026";
  const std::string now = today("%B %d, %Y");
  for (size_t at = rendered.find(fixed); at != std::string::npos; at = rendered.find(fixed, at + now.size()))
    rendered.replace(at, fixed.size(), now);
  return rendered;
}

std::vector<Json> golden_records() {
  std::vector<Json> records;
  std::ifstream in(shared_path("templates/golden.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) records.push_back(Json::parse(line));
  return records;
}

int count_lines(const std::string& text) { return int(std::count(text.begin(), text.end(), '\n')); }

class ChatPrintPrompt : public testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(slm_chat())) GTEST_SKIP() << "slm-chat not built";
    SLM_REQUIRE_ASSET(shared_path("templates/golden.jsonl"));
  }
};

TEST_F(ChatPrintPrompt, RendersEveryGoldenRecordWithoutAModel) {
  int checked = 0;
  for (const Json& record : golden_records()) {
    const std::string name = record["template"].get<std::string>();
    const std::string label = name + " / " + record["conversation"].get<std::string>() +
                              (record["add_generation_prompt"].get<bool>() ? " / agp" : "");
    const auto conversation = write_temp_file("conversation.json", conversation_file_for(record));
    std::vector<std::string> arguments = {"--chat-template-file", template_path(name), "--messages", conversation.string()};
    const std::vector<std::string> tokens = token_flags(record);
    arguments.insert(arguments.end(), tokens.begin(), tokens.end());
    const ProcessResult run = print_prompt(arguments);
    if (record.contains("rendered")) {
      EXPECT_EQ(run.exit_code, 0) << label << "\n" << run.stderr_text;
      EXPECT_EQ(run.stdout_text, with_todays_date(record["rendered"].get<std::string>())) << label;
    } else {
      EXPECT_EQ(run.exit_code, 1) << label;
      EXPECT_EQ(run.stdout_text, "") << label;
      EXPECT_EQ(count_lines(run.stderr_text), 1) << label << "\n" << run.stderr_text;
      const std::string error = record["error"].get<std::string>();
      if (record["error_kind"] == "raise_exception") {  // the template's own message, after Python's "TemplateError: "
        EXPECT_EQ(run.stderr_text, "slm-chat: error: " + error.substr(error.find(": ") + 2) + "\n") << label;
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 160);
}

TEST_F(ChatPrintPrompt, RendersWithAModelLikeWithoutOne) {
  const auto model = shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(model);
  int checked = 0;
  for (const Json& record : golden_records()) {
    if (record["template"] != "Qwen-Qwen2.5-7B-Instruct" || !record["add_generation_prompt"].get<bool>()) continue;
    if (++checked > 3) break;  // each run loads the model
    const auto conversation = write_temp_file("conversation.json", conversation_file_for(record));
    const ProcessResult run = print_prompt({"-m", model.string(), "--chat-template-file",
                                            template_path("Qwen-Qwen2.5-7B-Instruct"), "--messages", conversation.string()});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_EQ(run.stdout_text, record["rendered"].get<std::string>()) << record["conversation"];
  }
}

TEST_F(ChatPrintPrompt, TokensComeFromTheModelAndFlagsOverrideThem) {
  const auto model = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(model);
  const auto tokens_template = write_temp_file("tokens.jinja", "[{{ bos_token }}][{{ eos_token }}][{{ eos_token is defined }}]");
  const auto empty = write_temp_file("empty.json", R"({"messages": []})");
  const std::vector<std::string> base = {"--chat-template-file", tokens_template.string(), "--messages", empty.string()};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), base.begin(), base.end());
    return print_prompt(extra).stdout_text;
  };
  EXPECT_EQ(with({"-m", model.string()}), "[<s>][</s>][True]");
  EXPECT_EQ(with({"-m", model.string(), "--eos-token", "<|eot|>"}), "[<s>][<|eot|>][True]");
  EXPECT_EQ(with({"--bos-token", "B", "--eos-token", "E"}), "[B][E][True]");
  EXPECT_EQ(with({}), "[][][False]");  // no model, no flags: undefined, as transformers leaves a missing token
}

TEST_F(ChatPrintPrompt, UsesTheModelsOwnTemplateWhenNoFileIsGiven) {
  const auto model = shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(model);
  const auto conversation = write_temp_file("user.json", R"({"messages": [{"role": "user", "content": "Hi"}]})");
  const ProcessResult run = print_prompt({"-m", model.string(), "--messages", conversation.string()});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.stdout_text,
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST_F(ChatPrintPrompt, AModelWithoutATemplateGetsABuiltInOne) {
  const auto model = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(model);
  const auto conversation = write_temp_file(
      "turns.json",
      R"({"messages": [{"role": "system", "content": "Tell stories."}, {"role": "user", "content": "A cat?"},)"
      R"( {"role": "assistant", "content": " A cat sat."}, {"role": "user", "content": "More"}]})");
  const ProcessResult run = print_prompt({"-m", model.string(), "--messages", conversation.string(), "-v"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.stdout_text, "Tell stories.\n\nUser: A cat?\nAssistant: A cat sat.\nUser: More\nAssistant:");
  EXPECT_NE(run.stderr_text.find("built-in plain"), std::string::npos) << run.stderr_text;
}

TEST_F(ChatPrintPrompt, BuiltInTemplatesAreChatMlLlama3AndAPlainTranscript) {
  const auto conversation = write_temp_file(
      "builtin.json", R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},)"
                      R"( {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]})");
  auto render = [&](const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> arguments = {"--builtin-template", name, "--messages", conversation.string()};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return print_prompt(arguments).stdout_text;
  };
  EXPECT_EQ(render("chatml"),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render("llama3", {"--bos-token", "<|begin_of_text|>"}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render("plain"), "Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:");
  EXPECT_EQ(print_prompt({"--builtin-template", "nope", "--messages", conversation.string()}).exit_code, 2);
}

TEST_F(ChatPrintPrompt, KeepsKeyOrderPassesExtraVariablesAndDefaultsToAGenerationPrompt) {
  const auto echo = write_temp_file(
      "echo.jinja", "{{ messages[0] | tojson }}|{{ tools }}|{{ add_generation_prompt }}|{{ flavour }}|{{ n + 1 }}");
  const auto conversation = write_temp_file(
      "order.json", R"({"messages": [{"zeta": 1, "role": "user", "alpha": [true, null], "content": "é"}],)"
                    R"( "flavour": "mint", "n": 41})");
  const ProcessResult run = print_prompt({"--chat-template-file", echo.string(), "--messages", conversation.string()});
  EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_EQ(run.stdout_text, R"({"zeta": 1, "role": "user", "alpha": [true, null], "content": "é"}|None|True|mint|42)");
}

TEST_F(ChatPrintPrompt, ChatTemplateKwargsAddVariablesThatTheFileOverrides) {
  const auto echo = write_temp_file("kwargs.jinja", "{{ enable_thinking }}|{{ flavour }}");
  const auto conversation = write_temp_file("kwargs.json", R"({"messages": [], "flavour": "mint"})");
  const ProcessResult run = print_prompt({"--chat-template-file", echo.string(), "--messages", conversation.string(),
                                          "--chat-template-kwargs", R"({"enable_thinking": false, "flavour": "lime"})"});
  EXPECT_EQ(run.stdout_text, "False|mint");
  EXPECT_EQ(print_prompt({"--chat-template-file", echo.string(), "--messages", conversation.string(),
                          "--chat-template-kwargs", "[1]"}).exit_code, 1);
}

TEST_F(ChatPrintPrompt, WithoutATemplateFileOrAModelItIsAUsageError) {
  const auto conversation = write_temp_file("none.json", R"({"messages": []})");
  const ProcessResult run = print_prompt({"--messages", conversation.string()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(count_lines(run.stderr_text), 1) << run.stderr_text;
  const ProcessResult chat = run_process({slm_chat(), "-p", "Hi"});
  EXPECT_EQ(chat.exit_code, 2);
  EXPECT_EQ(chat.stderr_text, "slm-chat: error: -m MODEL is required (see --help)\n");
}

TEST_F(ChatPrintPrompt, ATemplateErrorIsOneLineAndExitCodeOne) {
  const auto conversation = write_temp_file("one.json", R"({"messages": [{"role": "user", "content": "Hi"}]})");
  for (const std::string source : {"{% if %}", "{{ raise_exception('no thanks') }}", "{{ messages[0].content.nope() }}",
                                   "{% for m in messages %}"}) {
    const auto broken = write_temp_file("broken.jinja", source);
    const ProcessResult run =
        print_prompt({"--chat-template-file", broken.string(), "--messages", conversation.string()});
    EXPECT_EQ(run.exit_code, 1) << source;
    EXPECT_EQ(run.stdout_text, "") << source;
    EXPECT_EQ(count_lines(run.stderr_text), 1) << source << ": " << run.stderr_text;
    EXPECT_TRUE(run.stderr_text.starts_with("slm-chat: error: ")) << run.stderr_text;
  }
  const auto raising = write_temp_file("raise.jinja", "{{ raise_exception('no thanks') }}");
  EXPECT_EQ(print_prompt({"--chat-template-file", raising.string(), "--messages", conversation.string()}).stderr_text,
            "slm-chat: error: no thanks\n");
}

TEST_F(ChatPrintPrompt, BadConversationFilesAreOneLineErrors) {
  const auto chatml = template_path("Qwen-Qwen2.5-7B-Instruct");
  for (const std::string content : {"", "[1, 2]", "{\"messages\": 3}", "{\"messages\": [", "\xff\xfe"}) {
    const auto conversation = write_temp_file("bad.json", content);
    const ProcessResult run = print_prompt({"--chat-template-file", chatml, "--messages", conversation.string()});
    EXPECT_EQ(run.exit_code, 1) << content;
    EXPECT_EQ(count_lines(run.stderr_text), 1) << content << ": " << run.stderr_text;
  }
  EXPECT_EQ(print_prompt({"--chat-template-file", chatml, "--messages", "/nonexistent/conversation.json"}).exit_code, 1);
}

}  // namespace
}  // namespace slm::test
