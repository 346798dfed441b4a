// The response side of the OpenAI mapping: a reasoning model's <think> section split off into
// reasoning_content, the whole and streamed shapes, logprobs riding on the chunk that carries
// their text, the usage object; and the chat prompt's template variables per request.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lib/server/api_error.hpp"
#include "lib/server/openai_prompt.hpp"
#include "lib/server/openai_response.hpp"
#include "slm/model.hpp"
#include "support/assets.hpp"

namespace slm::server {
namespace {

using Json = nlohmann::json;

ReplyDelta split(const std::vector<std::string>& pieces, bool starts_inside = false) {
  ReasoningSplitter splitter(starts_inside);
  ReplyDelta all;
  for (const std::string& piece : pieces) {
    const ReplyDelta delta = splitter.push(piece);
    all.reasoning += delta.reasoning;
    all.content += delta.content;
  }
  const ReplyDelta rest = splitter.finish();
  all.reasoning += rest.reasoning;
  all.content += rest.content;
  return all;
}

TEST(ReasoningSplitter, PutsTheThinkSectionInReasoningWithoutTagsOrSurroundingWhitespace) {
  const ReplyDelta delta = split({"<think>\nFirst, plan.\nThen act.\n</think>\n\nThe answer."});
  EXPECT_EQ(delta.reasoning, "First, plan.\nThen act.");
  EXPECT_EQ(delta.content, "The answer.");
}

TEST(ReasoningSplitter, GivesTheSameSplitWhereverThePiecesAreCut) {
  const std::string reply = "<think>\n a < b \n</think>\n\n Yes.";
  for (size_t cut = 0; cut <= reply.size(); ++cut)
    for (size_t second = cut; second <= reply.size(); ++second) {
      const ReplyDelta delta = split({reply.substr(0, cut), reply.substr(cut, second - cut), reply.substr(second)});
      EXPECT_EQ(delta.reasoning, "a < b") << cut << " " << second;
      EXPECT_EQ(delta.content, "Yes.") << cut << " " << second;
    }
}

TEST(ReasoningSplitter, StartsInsideWhenThePromptOpenedTheSection) {
  const ReplyDelta delta = split({"Let me think.", "</think>", "Done."}, /*starts_inside=*/true);
  EXPECT_EQ(delta.reasoning, "Let me think.");
  EXPECT_EQ(delta.content, "Done.");
}

TEST(ReasoningSplitter, LeavesAReplyWithoutASectionExactlyAsItIs) {
  const ReplyDelta delta = split({"  Hello", " world\n", "<thi"});
  EXPECT_EQ(delta.reasoning, "");
  EXPECT_EQ(delta.content, "  Hello world\n<thi");
}

class ResponseBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::filesystem::path path = test::shared_path("models/stories260K.gguf");
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared asset missing: " << path;
    model_ = Model::load(path.string());
  }
  const Tokenizer& tokenizer() const { return model_->tokenizer(); }
  // A generated token whose text is `text` (the token id only matters for logprobs).
  GeneratedToken token(const std::string& piece_text, TokenId id = 100) const {
    GeneratedToken generated;
    generated.token = id;
    generated.text = piece_text;
    generated.sampled = {id, -0.5f};
    generated.top = {{id, -0.5f}, {TokenId(id + 1), -1.5f}};
    return generated;
  }
  static GenerationSummary summary(FinishReason finish, std::string tail = {}) {
    GenerationSummary s;
    s.finish = finish;
    s.text_tail = std::move(tail);
    s.prompt_tokens = 10;
    s.cached_tokens = 4;
    s.completion_tokens = 3;
    return s;
  }
  std::shared_ptr<const Model> model_;
};

const ResponseHeader header{"chatcmpl-test", "test-model", 1700000000};

TEST_F(ResponseBuilderTest, WholeChatResponseHasTheMessageReasoningAndUsage) {
  ResponseBuilder builder(header, {Endpoint::ChatCompletions, false, false, false}, tokenizer());
  for (const char* text : {"<think>plan</think>", "Hello", " there"}) builder.add(token(text));
  const Json body = Json::parse(builder.whole_response(summary(FinishReason::Length, "!")));
  EXPECT_EQ(body["id"], "chatcmpl-test");
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "test-model");
  const Json& choice = body["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"]["content"], "Hello there!");
  EXPECT_EQ(choice["message"]["reasoning_content"], "plan");
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_EQ(body["usage"], Json::parse(R"({"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13,
                                           "prompt_tokens_details": {"cached_tokens": 4}})"));
}

// llama.cpp's timings fields, with speculative decoding's drafted and accepted tokens, on the
// whole response and on the streamed chunk with finish_reason.
TEST_F(ResponseBuilderTest, TimingsReportTheSpeedsAndTheDraftedAndAcceptedTokens) {
  GenerationSummary s = summary(FinishReason::Length);
  s.queue_seconds = 0.5;
  s.time_to_first_token = 0.8;  // 6 prompt tokens evaluated in 0.3 s
  s.generation_seconds = 0.25;  // 2 tokens after the first
  s.speculation = {.drafted = 8, .accepted = 6, .verifications = 2};
  const Json expected = Json::parse(R"({"prompt_n": 6, "prompt_ms": 300.0, "prompt_per_second": 20.0,
      "predicted_n": 3, "predicted_ms": 250.0, "predicted_per_second": 8.0,
      "draft_n": 8, "draft_n_accepted": 6, "draft_acceptance_rate": 0.75})");
  const auto near = [&](const Json& got) {
    ASSERT_EQ(got.size(), expected.size()) << got.dump();
    for (const auto& [key, value] : expected.items()) EXPECT_NEAR(got[key].get<double>(), value.get<double>(), 1e-9) << key;
  };
  ResponseBuilder whole(header, {Endpoint::ChatCompletions, false, false, false}, tokenizer());
  whole.add(token("Hi"));
  near(Json::parse(whole.whole_response(s))["timings"]);
  ResponseBuilder streamed(header, {Endpoint::Completions, false, false, false}, tokenizer());
  streamed.stream_token(token("Hi"));
  near(Json::parse(streamed.stream_end(s).back())["timings"]);
}

TEST_F(ResponseBuilderTest, WholeChatResponseWithoutReasoningHasNoReasoningField) {
  ResponseBuilder builder(header, {Endpoint::ChatCompletions, false, false, false}, tokenizer());
  builder.add(token("Hi"));
  const Json body = Json::parse(builder.whole_response(summary(FinishReason::Stop)));
  EXPECT_FALSE(body["choices"][0]["message"].contains("reasoning_content"));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
}

TEST_F(ResponseBuilderTest, AHeldBackTokensLogprobsRideOnTheNextChunk) {
  ResponseBuilder builder(header, {Endpoint::ChatCompletions, false, true, true}, tokenizer());
  const Json first = Json::parse(*builder.stream_start());
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["usage"].is_null());
  EXPECT_FALSE(builder.stream_token(token("", 100)).has_value());  // text held back (half a character)
  const Json chunk = Json::parse(*builder.stream_token(token("ab", 101)));
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "ab");
  const Json& logprobs = chunk["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(logprobs.size(), 2u);
  EXPECT_EQ(logprobs[0]["token"], tokenizer().token_to_piece(100));
  EXPECT_EQ(logprobs[1]["token"], tokenizer().token_to_piece(101));
  EXPECT_EQ(logprobs[1]["top_logprobs"].size(), 2u);
  EXPECT_FLOAT_EQ(logprobs[1]["top_logprobs"][1]["logprob"].get<float>(), -1.5f);
}

TEST_F(ResponseBuilderTest, StreamEndSendsTheTailThenTheFinishReasonThenTheUsage) {
  ResponseBuilder builder(header, {Endpoint::Completions, false, false, true}, tokenizer());
  EXPECT_FALSE(builder.stream_start().has_value());
  const Json chunk = Json::parse(*builder.stream_token(token("Once")));
  EXPECT_EQ(chunk["object"], "text_completion");
  EXPECT_EQ(chunk["choices"][0]["text"], "Once");
  const std::vector<std::string> last = builder.stream_end(summary(FinishReason::Stop, " upon"));
  ASSERT_EQ(last.size(), 3u);
  EXPECT_EQ(Json::parse(last[0])["choices"][0]["text"], " upon");
  EXPECT_TRUE(Json::parse(last[0])["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(Json::parse(last[1])["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(Json::parse(last[2])["choices"].empty());
  EXPECT_EQ(Json::parse(last[2])["usage"]["total_tokens"], 13);
}

TEST_F(ResponseBuilderTest, StreamedReasoningGoesToDeltaReasoningContent) {
  ResponseBuilder builder(header, {Endpoint::ChatCompletions, /*starts_inside_thinking=*/true, false, false},
                          tokenizer());
  const Json thinking = Json::parse(*builder.stream_token(token("hmm")));
  EXPECT_EQ(thinking["choices"][0]["delta"]["reasoning_content"], "hmm");
  EXPECT_FALSE(thinking["choices"][0]["delta"].contains("content"));
  const Json answer = Json::parse(*builder.stream_token(token("</think>\n\nYes")));
  EXPECT_EQ(answer["choices"][0]["delta"]["content"], "Yes");
  EXPECT_FALSE(answer["choices"][0]["delta"].contains("reasoning_content"));
}

TEST_F(ResponseBuilderTest, LegacyLogprobsHaveTextOffsets) {
  ResponseBuilder builder(header, {Endpoint::Completions, false, true, false}, tokenizer());
  builder.add(token("x", 100));
  builder.add(token("y", 101));
  const Json logprobs = Json::parse(builder.whole_response(summary(FinishReason::Length)))["choices"][0]["logprobs"];
  EXPECT_EQ(logprobs["tokens"][1], tokenizer().token_to_piece(101));
  EXPECT_EQ(logprobs["token_logprobs"][0], -0.5);
  EXPECT_EQ(logprobs["text_offset"][0], 0);
  EXPECT_EQ(logprobs["text_offset"][1], tokenizer().token_to_piece(100).size());
  EXPECT_EQ(logprobs["top_logprobs"][0][tokenizer().token_to_piece(101)], -1.5);
}

chat::ChatTemplate thinking_switch_template() {
  chat::ChatTemplate chat_template;
  chat_template.parsed = jinja::Template::parse(
      "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
      "{% if enable_thinking %}assistant: <think>\n{% else %}assistant:{% endif %}");
  chat_template.stop_strings = {"\nuser:"};
  chat_template.extra_vars = jinja::Value::dict({{"enable_thinking", true}});
  return chat_template;
}

TEST_F(ResponseBuilderTest, ARequestsTemplateKwargsOverrideTheServersForThatRequestOnly) {
  const chat::ChatTemplate chat_template = thinking_switch_template();
  ChatRequest request;
  request.messages = {{"user", "Hi"}};
  const PreparedPrompt thinking = prepare_chat_prompt(chat_template, tokenizer(), request);
  EXPECT_TRUE(thinking.starts_inside_thinking);
  request.template_kwargs = jinja::Value::dict({{"enable_thinking", false}});
  const PreparedPrompt plain = prepare_chat_prompt(chat_template, tokenizer(), request);
  EXPECT_FALSE(plain.starts_inside_thinking);
  EXPECT_LT(plain.tokens.size(), thinking.tokens.size());
  EXPECT_TRUE(chat_template.extra_vars.find("enable_thinking")->truthy());  // the server's stays as it was
}

TEST_F(ResponseBuilderTest, TheTemplatesStopStringsJoinTheRequestsAndMaxTokensIsCappedByTheContext) {
  ChatRequest request;
  request.messages = {{"user", "Hi"}};
  request.params.stop = {"END"};
  request.params.max_tokens = 1000;
  const PreparedPrompt prompt = prepare_chat_prompt(thinking_switch_template(), tokenizer(), request);
  const size_t n_prompt = prompt.tokens.size();
  const GenerationRequest generation = make_generation_request(prompt, request.params, 64, "messages");
  EXPECT_EQ(generation.stop, (std::vector<std::string>{"END", "\nuser:"}));
  EXPECT_EQ(generation.max_tokens, int32_t(64 - n_prompt));
  request.params.max_tokens.reset();
  EXPECT_EQ(make_generation_request(prompt, request.params, 64, "messages").max_tokens, int32_t(64 - n_prompt));
  try {
    make_generation_request(prompt, request.params, int32_t(n_prompt), "messages");
    ADD_FAILURE() << "a prompt that fills the context was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "context_length_exceeded");
    EXPECT_EQ(e.param(), "messages");
  }
}

TEST_F(ResponseBuilderTest, ATemplateThatRefusesTheConversationIsA400) {
  chat::ChatTemplate chat_template;
  chat_template.parsed = jinja::Template::parse("{{ raise_exception('System role not supported') }}");
  ChatRequest request;
  request.messages = {{"system", "Be brief."}};
  try {
    prepare_chat_prompt(chat_template, tokenizer(), request);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param(), "messages");
    EXPECT_NE(std::string(e.what()).find("System role not supported"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slm::server
