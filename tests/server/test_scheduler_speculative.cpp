// Speculative decoding in the continuous-batching scheduler: a greedy request's drafts are rows
// of the shared batch, and its output is byte-identical (tokens, text, log-probabilities) to its
// run alone without speculation, whether it runs alone with speculation or among 8 concurrent
// requests (drafting switching on and off as requests come and go, a pool small enough to
// preempt), also with a draft head cut to the first token ids. Sampled requests do not draft and
// keep their seeded output.
#include <gtest/gtest.h>

#include <random>

#include "server/scheduler_streams.hpp"
#include "slm/scheduler.hpp"
#include "support/assets.hpp"

namespace slm::test {
namespace {

std::shared_ptr<const Model> load_shared(const std::string& name) {
  return Model::load(shared_path("models/" + name).string());
}

// Request i: a pseudo-random prompt; odd ones repeat their first half (prompt lookup finds
// matches); every fourth one is sampled with a seed, the rest greedy.
GenerationRequest request_for(const Model& model, size_t i) {
  std::mt19937 rng(uint32_t(100 + i));
  std::vector<TokenId> half;
  for (size_t n = 0; n < 6 + 3 * i; ++n) half.push_back(TokenId(3 + rng() % uint32_t(model.config().n_vocab - 3)));
  GenerationRequest r;
  r.prompt = {model.tokenizer().bos()};
  for (int copies = 0; copies < (i % 2 == 1 ? 2 : 1); ++copies) r.prompt.insert(r.prompt.end(), half.begin(), half.end());
  r.sampling.temperature = i % 4 == 3 ? 0.8f : 0.0f;
  r.sampling.seed = 1000 + i;
  r.max_tokens = 20 + int32_t(i) * 3;
  r.stop_at_end_of_generation = false;
  r.top_logprobs = 0;
  return r;
}

constexpr size_t kRequests = 8;

SchedulerOptions options_with(int32_t parallel, int32_t kv_tokens, std::shared_ptr<const Model> draft,
                              int32_t lookup_ngram, int32_t max_running, int32_t draft_vocab = 0) {
  SchedulerOptions o;
  o.parallel = parallel;
  o.batch_tokens = 16;  // chunked prefill beside the verifications
  o.decoder = {.n_ctx = 128, .kv_tokens = kv_tokens, .n_threads = 2};
  o.draft_model = std::move(draft);
  o.speculative = {
      .draft_max = 6, .draft_min = 0, .draft_p_min = 0.0f, .lookup_ngram = lookup_ngram, .draft_vocab = draft_vocab};
  o.speculation_max_running = max_running;
  return o;
}

struct SpeculativeCase {
  const char* target;
  const char* draft;  // nullptr: prompt lookup only
  int32_t draft_vocab = 0;  // > 0: the draft's head cut to the ids below it
};

class SchedulerSpeculation : public ::testing::TestWithParam<SpeculativeCase> {};

TEST_P(SchedulerSpeculation, OutputIsTheSameAloneUnderLoadAndWithoutSpeculation) {
  const SpeculativeCase c = GetParam();
  SLM_REQUIRE_ASSET(shared_path(std::string("models/") + c.target));
  if (c.draft) SLM_REQUIRE_ASSET(shared_path(std::string("models/") + c.draft));
  const auto model = load_shared(c.target);
  const auto draft = c.draft ? load_shared(c.draft) : nullptr;
  const int32_t lookup = c.draft ? 0 : 3;

  std::vector<Collected> plain;
  {
    Scheduler scheduler(model, options_with(1, 0, nullptr, 0, 0));
    for (size_t i = 0; i < kRequests; ++i) plain.push_back(collect(*scheduler.submit(request_for(*model, i))));
  }
  const auto expect_plain = [&](const Collected& got, size_t i, const char* run) {
    SCOPED_TRACE(testing::Message() << c.target << " drafted by " << (c.draft ? c.draft : "prompt lookup")
                                    << " (draft vocabulary " << c.draft_vocab << "), "
                                    << run << ", request " << i);
    EXPECT_EQ(got.summary.finish, FinishReason::Length) << got.summary.error;
    EXPECT_EQ(got.tokens, plain[i].tokens);
    EXPECT_EQ(got.text, plain[i].text);
    EXPECT_EQ(got.logprobs, plain[i].logprobs);
    if (request_for(*model, i).sampling.temperature > 0.0f) EXPECT_EQ(got.summary.speculation.drafted, 0);
  };

  int64_t drafted = 0, accepted = 0;
  {
    Scheduler scheduler(model, options_with(1, 0, draft, lookup, 1, c.draft_vocab));
    for (size_t i = 0; i < kRequests; ++i) {
      const Collected got = collect(*scheduler.submit(request_for(*model, i)));
      expect_plain(got, i, "alone");
      drafted += got.summary.speculation.drafted;
      accepted += got.summary.speculation.accepted;
    }
    EXPECT_EQ(scheduler.stats().draft_tokens, uint64_t(drafted));
    EXPECT_EQ(scheduler.stats().draft_accepted_tokens, uint64_t(accepted));
  }
  EXPECT_GT(drafted, 0);
  EXPECT_GT(accepted, 0);

  // 8 at once: drafting for all of them (max_running 8), and switching on once at most 2 run;
  // with a pool of 3 contexts, requests wait for blocks and are preempted.
  for (const auto& [max_running, kv_tokens] : {std::pair{8, 0}, std::pair{2, 384}}) {
    Scheduler scheduler(model, options_with(8, kv_tokens, draft, lookup, max_running, c.draft_vocab));
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (size_t i = 0; i < kRequests; ++i) streams.push_back(scheduler.submit(request_for(*model, i)));
    int64_t drafted_under_load = 0;
    for (size_t i = 0; i < kRequests; ++i) {
      ASSERT_TRUE(streams[i]);
      const Collected got = collect(*streams[i]);
      expect_plain(got, i, max_running == 8 ? "8 at once, all drafting" : "8 at once, drafting at most 2");
      drafted_under_load += got.summary.speculation.drafted;
    }
    // Prompt lookup finds few matches in the last two requests' replies.
    if (max_running == 8 || c.draft) EXPECT_GT(drafted_under_load, 0) << "max_running " << max_running;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Pairs, SchedulerSpeculation,
    ::testing::Values(SpeculativeCase{"syn-llama-tiny-Q4_K_M.gguf", "syn-llama-tiny-Q8_0.gguf"},  // mostly agrees
                      SpeculativeCase{"syn-llama-tiny-Q4_K_M.gguf", nullptr},                     // prompt lookup
                      // a cut draft head (its q is 0 past id 200)
                      SpeculativeCase{"syn-llama-tiny-Q4_K_M.gguf", "syn-llama-tiny-Q8_0.gguf", 200},
                      // hybrid: rejected drafts roll the recurrent state back to a checkpoint
                      SpeculativeCase{"syn-qwen35-tiny-Q4_K_M.gguf", "syn-qwen35-tiny-Q8_0.gguf"}),
    [](const testing::TestParamInfo<SpeculativeCase>& info) {
      return std::to_string(info.index) + (info.param.draft ? "_draft_model" : "_prompt_lookup") +
             (info.param.draft_vocab > 0 ? "_cut_head" : "");
    });

TEST(SchedulerSpeculation, ADraftModelOfAnotherVocabularyIsOneError) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-llama-tiny-Q4_K_M.gguf"));
  SLM_REQUIRE_ASSET(shared_path("models/syn-qwen2-vocab-Q4_K_M.gguf"));
  const auto model = load_shared("syn-llama-tiny-Q4_K_M.gguf");
  const auto other = load_shared("syn-qwen2-vocab-Q4_K_M.gguf");
  try {
    Scheduler scheduler(model, options_with(1, 0, other, 0, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot draft"), std::string::npos) << e.what();
  }
  SchedulerOptions bad = options_with(1, 0, nullptr, 2, 1);
  bad.speculative.draft_min = 5;
  bad.speculative.draft_max = 2;
  EXPECT_THROW(Scheduler(model, bad), Error);
}

}  // namespace
}  // namespace slm::test
