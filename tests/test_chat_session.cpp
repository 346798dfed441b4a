// slm-chat conversations driven through a pipe in --json mode: the KV cache is reused across
// turns, the context policy keeps a long conversation going, and the commands work.
//
// Most tests use "story chat": the trained stories260K model with two changes written into a
// copy of the file, its EOS set to <s> (the token it writes between stories, so a reply ends
// with a real end-of-generation token) and a chat template that concatenates the messages and
// closes each reply with eos_token, as real templates close a turn.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "slm/gguf.hpp"
#include "slm/gguf_writer.hpp"
#include "support/assets.hpp"
#include "support/process.hpp"

namespace slm::test {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* story_chat_template =
    "{%- for message in messages -%}{{- message['content'] -}}"
    "{%- if message['role'] == 'assistant' -%}{{- eos_token -}}{%- endif -%}{%- endfor -%}";

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("slm-test-chat-" + std::to_string(::getpid()) + "-" + name);
}

std::filesystem::path write_story_chat_model() {
  const GgufFile stories = GgufFile::open(shared_path("models/stories260K.gguf").string());
  GgufWriter writer;
  for (const GgufKeyValue& entry : stories.metadata())
    if (entry.key != "tokenizer.ggml.eos_token_id" && entry.key != "tokenizer.chat_template")
      writer.add(entry.key, entry.value);
  writer.add_u32("tokenizer.ggml.eos_token_id", 1);  // <s>
  writer.add_string("tokenizer.chat_template", story_chat_template);
  for (const GgufTensor& tensor : stories.tensors())
    writer.add_tensor(tensor.name, tensor.type, {tensor.ne.begin(), tensor.ne.begin() + tensor.n_dims},
                      std::vector<uint8_t>(tensor.data, tensor.data + tensor.n_bytes));
  const auto path = temp_path("story-chat.gguf");
  writer.write_file(path.string());
  return path;
}

struct ChatRun {
  std::vector<Json> events;
  std::vector<Json> replies;
  ProcessResult process;

  std::vector<Json> events_named(const std::string& name) const {
    std::vector<Json> found;
    for (const Json& event : events)
      if (event["event"] == name) found.push_back(event);
    return found;
  }
};

// Every stdout line must be one JSON object.
ChatRun parse_events(ProcessResult process) {
  ChatRun run;
  std::istringstream lines(process.stdout_text);
  for (std::string line; std::getline(lines, line);) {
    Json event = Json::parse(line, nullptr, false);
    EXPECT_TRUE(event.is_object()) << "not a JSON object: " << line;
    if (!event.is_object()) continue;
    if (event["event"] == "reply") run.replies.push_back(event);
    run.events.push_back(std::move(event));
  }
  run.process = std::move(process);
  return run;
}

std::vector<std::string> chat_command(const std::filesystem::path& model, std::vector<std::string> arguments) {
  std::vector<std::string> argv = {(bin_dir() / "slm-chat").string(), "-m", model.string(), "-t", "1", "--temp", "0"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return argv;
}

ChatRun chat_json(const std::filesystem::path& model, const std::vector<std::string>& arguments, const std::string& input) {
  std::vector<std::string> json_arguments = arguments;
  json_arguments.push_back("--json");
  return parse_events(run_process(chat_command(model, json_arguments), input));
}

int32_t count(const Json& reply, const char* field) { return reply[field].get<int32_t>(); }

class ChatSession : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::filesystem::exists(shared_path("models/stories260K.gguf"))) story_chat_model = write_story_chat_model();
  }
  static void TearDownTestSuite() {
    if (!story_chat_model.empty()) std::filesystem::remove(story_chat_model);
  }
  void SetUp() override {
    if (!std::filesystem::exists(bin_dir() / "slm-chat")) GTEST_SKIP() << "slm-chat not built";
    SLM_REQUIRE_ASSET(shared_path("models/stories260K.gguf"));
  }
  static std::filesystem::path story_chat_model;
};
std::filesystem::path ChatSession::story_chat_model;

TEST_F(ChatSession, TheSecondTurnEvaluatesOnlyTheEndTokenAndTheNewText) {
  const ChatRun run = chat_json(story_chat_model, {"-n", "400"},
                                "They played together and had fun. The end.\nOne day, a little bird came to the park.\n");
  ASSERT_EQ(run.replies.size(), 2u) << run.process.stdout_text << run.process.stderr_text;
  const Json& first = run.replies[0];
  const Json& second = run.replies[1];
  ASSERT_EQ(first["stop_reason"], "end_of_generation") << first.dump();
  EXPECT_EQ(count(first, "n_prompt_evaluated"), count(first, "n_prompt_tokens"));
  // The cache holds turn 1's prompt and generated tokens; the end token (sampled, never
  // evaluated) and the new text are all that turn 2 evaluates.
  EXPECT_EQ(count(second, "n_prompt_evaluated"),
            count(second, "n_prompt_tokens") - count(first, "n_prompt_tokens") - count(first, "n_generated"));
  EXPECT_LT(count(second, "n_prompt_evaluated"), 20);
  EXPECT_GT(second["ttft_ms"].get<double>(), 0.0);
  EXPECT_EQ(run.process.exit_code, 0);
}

TEST_F(ChatSession, TheReplyEventCarriesTheConfidenceOfEveryGeneratedToken) {
  const ChatRun run = chat_json(story_chat_model, {"-n", "12"}, "Once upon a time\n");
  ASSERT_EQ(run.replies.size(), 1u) << run.process.stderr_text;
  const Json& reply = run.replies[0];
  ASSERT_TRUE(reply.contains("confidence")) << reply.dump();
  const Json& confidence = reply["confidence"];
  const bool ended = reply["stop_reason"] == "end_of_generation";  // the end token was sampled too
  EXPECT_EQ(count(confidence, "n_tokens"), count(reply, "n_generated") + (ended ? 1 : 0));
  EXPECT_LT(confidence["mean_logprob"].get<double>(), 0.0);
  EXPECT_LE(confidence["min_logprob"].get<double>(), confidence["mean_logprob"].get<double>());
  EXPECT_GT(confidence["mean_entropy"].get<double>(), 0.0);
  EXPECT_GE(confidence["low_margin_share"].get<double>(), 0.0);
  EXPECT_LE(confidence["low_margin_share"].get<double>(), 1.0);
  EXPECT_EQ(confidence["low_margin_threshold"].get<double>(), 0.1);
}

TEST_F(ChatSession, AReplyCutByMaxTokensLeavesOnlyItsLastTokenToEvaluate) {
  // Turn 1 stops at -n: its last sampled token was never evaluated, so turn 2 evaluates it too.
  const ChatRun run = chat_json(shared_path("models/stories260K.gguf"),
                                {"--chat-template-file", shared_path("templates/Qwen-Qwen2.5-7B-Instruct.jinja").string(),
                                 "-n", "8"},
                                "Tell me a story.\nAnd then?\n");
  ASSERT_EQ(run.replies.size(), 2u) << run.process.stderr_text;
  const Json& first = run.replies[0];
  ASSERT_EQ(first["stop_reason"], "max_tokens");
  EXPECT_EQ(count(run.replies[1], "n_prompt_evaluated"),
            count(run.replies[1], "n_prompt_tokens") - count(first, "n_prompt_tokens") - count(first, "n_generated") + 1);
}

TEST_F(ChatSession, TheModelsOwnTemplateAndARealBpeTokenizerKeepTheCachePrefix) {
  const auto qwen = shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(qwen);
  const ChatRun run = chat_json(qwen, {"-n", "3", "-v"}, "Hello there\nHow are you?\n");
  ASSERT_EQ(run.replies.size(), 2u) << run.process.stderr_text;
  EXPECT_NE(run.process.stderr_text.find("chat template: the model's tokenizer.chat_template"), std::string::npos);
  const Json& first = run.replies[0];
  const int32_t last_token_not_evaluated = first["stop_reason"] == "max_tokens" ? 1 : 0;
  EXPECT_EQ(count(run.replies[1], "n_prompt_evaluated"), count(run.replies[1], "n_prompt_tokens") -
                                                             count(first, "n_prompt_tokens") -
                                                             count(first, "n_generated") + last_token_not_evaluated);
}

std::string long_message(int words) {
  std::string text = "Once upon a time";
  for (int i = 0; i < words; ++i) text += " the little dog ran to the park";
  return text + ".";
}

TEST_F(ChatSession, DropOldestTrimsWholeTurnsAndTheRepliesKeepComing) {
  std::string input;
  for (int i = 0; i < 6; ++i) input += long_message(4) + "\n";
  const ChatRun run = chat_json(story_chat_model, {"-c", "128", "-n", "16", "--system", "Stories."}, input);
  EXPECT_EQ(run.process.exit_code, 0) << run.process.stderr_text;
  ASSERT_EQ(run.replies.size(), 6u) << run.process.stdout_text;
  const std::vector<Json> trims = run.events_named("context_trimmed");
  ASSERT_FALSE(trims.empty());
  for (const Json& trim : trims) {
    EXPECT_GE(trim["dropped_messages"].get<int>(), 2);  // a user message and its reply
    EXPECT_LE(trim["n_prompt_tokens"].get<int>() + 16, 128);
  }
  for (const Json& reply : run.replies) EXPECT_LE(count(reply, "n_prompt_tokens") + 16, 128) << reply.dump();
  EXPECT_TRUE(run.events_named("error").empty());
}

TEST_F(ChatSession, AMessageTooLongForTheContextIsRefusedAndTheConversationGoesOn) {
  const ChatRun run = chat_json(story_chat_model, {"-c", "128", "-n", "8"},
                                "Once upon a time.\n" + long_message(40) + "\nThe end.\n");
  EXPECT_EQ(run.process.exit_code, 0);
  const std::vector<Json> errors = run.events_named("error");
  ASSERT_EQ(errors.size(), 1u) << run.process.stdout_text;
  const std::string message = errors[0]["message"].get<std::string>();
  EXPECT_NE(message.find("does not fit the context of 128 tokens"), std::string::npos) << message;
  EXPECT_TRUE(message.starts_with("message of ")) << message;
  ASSERT_EQ(run.replies.size(), 2u);
  // The refused message left the conversation as it was: turn 2 extends turn 1's tokens.
  EXPECT_LT(count(run.replies[1], "n_prompt_evaluated"), count(run.replies[1], "n_prompt_tokens"));
}

TEST_F(ChatSession, StopPolicyEndsTheConversationWithAClearMessage) {
  std::string input;
  for (int i = 0; i < 6; ++i) input += long_message(4) + "\n";
  const ChatRun run = chat_json(story_chat_model, {"-c", "128", "-n", "16", "--context-policy", "stop"}, input);
  EXPECT_EQ(run.process.exit_code, 0);
  const std::vector<Json> errors = run.events_named("error");
  ASSERT_EQ(errors.size(), 1u) << run.process.stdout_text;
  EXPECT_NE(errors[0]["message"].get<std::string>().find("--context-policy stop"), std::string::npos);
  EXPECT_EQ(run.events.back()["event"], "error");  // nothing after it
  EXPECT_GE(run.replies.size(), 1u);
  EXPECT_LT(run.replies.size(), 6u);
  EXPECT_TRUE(run.events_named("context_trimmed").empty());

  const ProcessResult one_shot =
      run_process(chat_command(story_chat_model, {"-c", "128", "--context-policy", "stop", "-p", long_message(40)}));
  EXPECT_NE(one_shot.exit_code, 0);
  EXPECT_NE(one_shot.stderr_text.find("--context-policy stop"), std::string::npos) << one_shot.stderr_text;
}

TEST_F(ChatSession, ResetMakesTheNextTurnEvaluateTheWholePromptAgain) {
  const ChatRun run = chat_json(story_chat_model, {"-n", "8", "--system", "Stories."},
                                "Once upon a time.\n/reset\nOnce upon a time.\n");
  ASSERT_EQ(run.replies.size(), 2u);
  EXPECT_EQ(run.replies[1]["n_prompt_tokens"], run.replies[0]["n_prompt_tokens"]);
  EXPECT_EQ(run.replies[1]["n_prompt_evaluated"], run.replies[1]["n_prompt_tokens"]);
  EXPECT_EQ(run.replies[1]["text"], run.replies[0]["text"]);  // greedy, same prompt, sampler reset
  ASSERT_EQ(run.events_named("info").size(), 1u);
}

Json read_json_file(const std::filesystem::path& path) { return Json::parse(read_file(path)); }

TEST_F(ChatSession, SystemSetsTheSystemPromptAndSaveWritesTheConversation) {
  const auto saved = temp_path("system.json");
  const ChatRun run = chat_json(story_chat_model, {"-n", "4"},
                                "Hello.\n/system Tell short stories.\nOnce upon a time.\n/save " + saved.string() + "\n");
  ASSERT_EQ(run.replies.size(), 2u);
  const Json conversation = read_json_file(saved);
  std::filesystem::remove(saved);
  ASSERT_EQ(conversation["messages"].size(), 3u) << conversation.dump();
  EXPECT_EQ(conversation["messages"][0], Json({{"role", "system"}, {"content", "Tell short stories."}}));
  EXPECT_EQ(conversation["messages"][1], Json({{"role", "user"}, {"content", "Once upon a time."}}));
  EXPECT_EQ(conversation["messages"][2]["role"], "assistant");
  EXPECT_EQ(conversation["messages"][2]["content"], run.replies[1]["text"]);
  // /system started a new conversation: its first turn is evaluated from the start.
  EXPECT_EQ(run.replies[1]["n_prompt_evaluated"], run.replies[1]["n_prompt_tokens"]);
}

TEST_F(ChatSession, SaveThenLoadRoundTripsTheConversation) {
  const auto first = temp_path("first.json");
  const auto second = temp_path("second.json");
  const ChatRun run = chat_json(story_chat_model, {"-n", "4", "--system", "Stories."},
                                "A cat.\nA dog.\n/save " + first.string() + "\n/reset\n/load " + first.string() +
                                    "\n/save " + second.string() + "\nA bird.\n");
  ASSERT_EQ(run.replies.size(), 3u);
  const std::string first_text = read_file(first);
  const std::string second_text = read_file(second);
  std::filesystem::remove(first);
  std::filesystem::remove(second);
  EXPECT_EQ(first_text, second_text);
  EXPECT_EQ(Json::parse(first_text)["messages"].size(), 5u);
  // After /load the next turn sees the loaded conversation, longer than turn 2's prompt.
  EXPECT_GT(count(run.replies[2], "n_prompt_tokens"), count(run.replies[1], "n_prompt_tokens"));
  EXPECT_TRUE(run.events_named("error").empty()) << run.process.stdout_text;
}

TEST_F(ChatSession, HelpUnknownCommandsAndEscapedSlashes) {
  const ChatRun run = chat_json(story_chat_model, {"-n", "4"}, "/help\n/nope\n/load\n//slash\n/exit\nnever read\n");
  const std::vector<Json> info = run.events_named("info");
  ASSERT_EQ(info.size(), 1u);
  for (const char* command : {"/reset", "/system", "/save", "/load", "/exit", "/help"})
    EXPECT_NE(info[0]["message"].get<std::string>().find(command), std::string::npos) << command;
  const std::vector<Json> errors = run.events_named("error");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0]["message"].get<std::string>().find("unknown command /nope"), std::string::npos);
  EXPECT_NE(errors[1]["message"].get<std::string>().find("/load needs a file name"), std::string::npos);
  EXPECT_EQ(run.replies.size(), 1u);  // "//slash" is a message; /exit ends before "never read"
  EXPECT_EQ(run.process.exit_code, 0);
}

TEST_F(ChatSession, FromAPipeTextModePrintsOnlyTheRepliesEachFollowedByANewline) {
  const std::string input = "Once upon a time.\nThe dog ran.\n";
  const ChatRun json = chat_json(story_chat_model, {"-n", "6"}, input);
  const ProcessResult text = run_process(chat_command(story_chat_model, {"-n", "6"}), input);
  ASSERT_EQ(json.replies.size(), 2u);
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_EQ(text.stdout_text,
            json.replies[0]["text"].get<std::string>() + "\n" + json.replies[1]["text"].get<std::string>() + "\n");
  EXPECT_EQ(text.stderr_text, "");  // no banner, no prompt
}

TEST_F(ChatSession, OneShotPrintsOneReplyAndTokenEventsSpellTheReply) {
  const ChatRun run = chat_json(story_chat_model, {"-n", "12", "-p", "Once upon a time."}, "");
  ASSERT_EQ(run.replies.size(), 1u);
  std::string streamed;
  for (const Json& token : run.events_named("token")) streamed += token["text"].get<std::string>();
  EXPECT_EQ(streamed, run.replies[0]["text"]);
  EXPECT_EQ(run.events.back()["event"], "reply");
  EXPECT_EQ(run.process.exit_code, 0);
}

// A hybrid model's recurrent state cannot be cut back, so a turn that shares the cached prefix
// goes on from a state checkpoint (slm/batch.hpp). /load replaces a conversation already in the
// cache; the turn after it evaluates the loaded conversation and its message, and the next turn
// only its new tokens, as with Llama. (The grammar keeps the random-weight models' replies to
// text that spells their tokens back: a reply of stray UTF-8 bytes does not render back the same.)
TEST(ChatSessionHybrid, AfterLoadTheSecondTurnEvaluatesOnlyTheNewTokens) {
  if (!std::filesystem::exists(bin_dir() / "slm-chat")) GTEST_SKIP() << "slm-chat not built";
  const char* const models[] = {"models/syn-lfm2-tiny-Q4_K_M.gguf", "models/syn-qwen35-tiny-Q4_K_M.gguf",
                                "models/syn-llama-tiny-Q4_K_M.gguf"};
  for (const char* file : models) SLM_REQUIRE_ASSET(shared_path(file));
  const auto conversation = temp_path("hybrid-load.json");
  {
    std::ofstream out(conversation);
    out << Json{{"messages",
                 {{{"role", "system"}, {"content", "You are a helpful assistant who answers briefly."}},
                  {{"role", "user"}, {"content", "What is the capital of France?"}},
                  {{"role", "assistant"}, {"content", "The capital of France is Paris."}},
                  {{"role", "user"}, {"content", "And of Italy?"}},
                  {{"role", "assistant"}, {"content", "Rome is the capital of Italy."}}}}}
               .dump();
  }
  for (const char* file : models) {
    SCOPED_TRACE(file);
    const ChatRun run = chat_json(shared_path(file), {"-n", "16", "--grammar", R"(root ::= " It is " [A-Z] [a-z]+ ".")"},
                                  "Hello.\n/load " + conversation.string() + "\nAnd of Spain?\nAnd of Portugal?\n");
    ASSERT_EQ(run.replies.size(), 3u) << run.process.stdout_text << run.process.stderr_text;
    EXPECT_TRUE(run.events_named("error").empty()) << run.process.stdout_text;
    const Json& first = run.replies[1];  // after /load
    const Json& second = run.replies[2];
    EXPECT_LE(count(first, "n_prompt_evaluated"), count(first, "n_prompt_tokens"));
    // Turn 1's prompt and reply are cached; its last sampled token, unless it was an end token,
    // was never evaluated.
    const int32_t last_token_not_evaluated = first["stop_reason"] == "end_of_generation" ? 0 : 1;
    EXPECT_EQ(count(second, "n_prompt_evaluated"), count(second, "n_prompt_tokens") - count(first, "n_prompt_tokens") -
                                                       count(first, "n_generated") + last_token_not_evaluated);
    EXPECT_LT(count(second, "n_prompt_evaluated"), count(first, "n_prompt_tokens") / 2);
  }
  std::filesystem::remove(conversation);
}

}  // namespace
}  // namespace slm::test
