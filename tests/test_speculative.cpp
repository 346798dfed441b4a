// Speculative decoding (slm/speculative.hpp): greedy output byte-identical to plain greedy for
// several draft/target pairs, prompt lengths and k; both caches rewound correctly, including at
// the context limit; the rejection rule keeps the target's distribution (chi-square, on
// synthetic distributions and on a tiny model against its exact distribution); vocabulary
// mismatches are one clear error. The same with a draft head cut to the first token ids
// (SpeculativeOptions::draft_vocab), whose q is 0 outside them.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <random>

#include "support/assets.hpp"
#include "support/editable_gguf.hpp"
#include "slm/generate.hpp"
#include "slm/speculative.hpp"

namespace {

using namespace slm;

std::shared_ptr<const Model> load_shared(const std::string& name) {
  return Model::load(test::shared_path("models/" + name).string());
}

// One thread: the results do not depend on the thread count, and on a loaded 2-core machine two
// threads wait on each other for most of every tiny-model token.
const SessionOptions kDraftSession{.n_ctx = 256, .n_threads = 1};

#define REQUIRE_MODEL(name) SLM_REQUIRE_ASSET(test::shared_path(std::string("models/") + (name)))

SamplerParams greedy_params() {
  SamplerParams p;
  p.temperature = 0.0f;
  return p;
}

// Prompt tokens: a fixed pseudo-random sequence, BOS first; `repeats` copies of it for lookup.
std::vector<TokenId> make_prompt(const Model& model, size_t n, int repeats = 1, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::vector<TokenId> once;
  for (size_t i = 0; i < n; ++i) once.push_back(TokenId(3 + rng() % uint32_t(model.config().n_vocab - 3)));
  std::vector<TokenId> prompt{model.tokenizer().bos()};
  for (int r = 0; r < repeats; ++r) prompt.insert(prompt.end(), once.begin(), once.end());
  return prompt;
}

GenerateResult run(const std::shared_ptr<const Model>& model, std::span<const TokenId> prompt, int32_t max_tokens,
                   Speculator* speculator, int32_t n_ctx = 256, SamplerParams params = greedy_params()) {
  Session session(model, {.n_ctx = n_ctx, .n_threads = 1});
  Sampler sampler(params);
  GenerateOptions options{.max_tokens = max_tokens, .stop_at_end_of_generation = false};
  options.speculator = speculator;
  return generate(session, sampler, prompt, options, nullptr);
}

struct Pair {
  const char* target;
  const char* draft;
};

// Also with the draft's head cut to the first 16 or 300 token ids (SpeculativeOptions::draft_vocab).
TEST(SpeculativeGreedy, IdenticalToPlainForPairsPromptLengthsKAndDraftHeadCuts) {
  const Pair pairs[] = {{"syn-llama-tiny-Q4_K_M.gguf", "syn-llama-tiny-Q4_K_M.gguf"},  // always agrees
                        {"syn-llama-tiny-Q4_K_M.gguf", "syn-llama-tiny-Q8_0.gguf"},   // mostly agrees
                        {"syn-llama-tiny-Q4_K_M.gguf", "syn-qwen2-tiny-Q4_K_M.gguf"}, // hardly agrees
                        {"stories260K.gguf", "syn-llama-tiny-Q8_0.gguf"},
                        // hybrid: rejected drafts roll both recurrent states back to a checkpoint
                        {"syn-lfm2-tiny-Q4_K_M.gguf", "syn-lfm2-tiny-Q8_0.gguf"},
                        {"syn-qwen35-tiny-Q4_K_M.gguf", "syn-qwen35-tiny-Q8_0.gguf"}};
  for (const Pair& pair : pairs) {
    REQUIRE_MODEL(pair.target);
    REQUIRE_MODEL(pair.draft);
    const auto target = load_shared(pair.target);
    const auto draft = load_shared(pair.draft);
    for (size_t prompt_length : {1u, 9u, 40u}) {
      const std::vector<TokenId> prompt = make_prompt(*target, prompt_length);
      const GenerateResult plain = run(target, prompt, 40, nullptr);
      for (int32_t cut : {0, 16, 300}) {
        int64_t outside = 0;  // tokens after the first (which no draft checks) a cut head excludes
        for (size_t i = 1; i < plain.tokens.size() && cut > 0; ++i) outside += plain.tokens[i] >= cut;
        for (int32_t k : {1, 3, 8}) {
          SCOPED_TRACE(testing::Message() << pair.target << " drafted by " << pair.draft << ", head cut to " << cut
                                          << ", prompt " << prompt.size() << ", k " << k);
          // With a cut head, drafting never pauses, so that a draft checks every token but the one
          // after each verification's drafts.
          Speculator speculator(
              *target, draft,
              {.draft_max = k, .draft_min = cut > 0 ? 1 : 0, .draft_p_min = 0.0f, .draft_vocab = cut}, kDraftSession);
          const GenerateResult fast = run(target, prompt, 40, &speculator);
          EXPECT_EQ(fast.tokens, plain.tokens);
          EXPECT_EQ(fast.text, plain.text);
          EXPECT_GT(fast.speculation.drafted, 0);
          EXPECT_LE(fast.speculation.accepted, fast.speculation.drafted);
          if (std::string(pair.target) != pair.draft) continue;
          // A model drafting for itself agrees on every token its cut head keeps, and on no other.
          if (outside == 0) EXPECT_EQ(fast.speculation.accepted, fast.speculation.drafted);
          if (outside > fast.speculation.verifications) EXPECT_LT(fast.speculation.accepted, fast.speculation.drafted);
        }
      }
    }
  }
}

TEST(SpeculativeGreedy, PromptLookupIdenticalAndAccepting) {
  REQUIRE_MODEL("syn-llama-tiny-Q4_K_M.gguf");
  const auto target = load_shared("syn-llama-tiny-Q4_K_M.gguf");
  // A repeated prompt: a random model soon loops, and the loops are found in the history.
  const std::vector<TokenId> prompt = make_prompt(*target, 12, 3);
  const GenerateResult plain = run(target, prompt, 64, nullptr);
  for (int32_t ngram : {1, 2, 4}) {
    SCOPED_TRACE(testing::Message() << "lookup n-gram " << ngram);
    Speculator speculator(*target, nullptr, {.draft_max = 8, .draft_p_min = 0.0f, .lookup_ngram = ngram});
    const GenerateResult fast = run(target, prompt, 64, &speculator);
    EXPECT_EQ(fast.tokens, plain.tokens);
    EXPECT_GT(fast.speculation.drafted, 0);
  }
}

// At the context limit: generation runs until the context is full, drafts are cut to the room
// left, and both stop at the same token with ContextFull.
TEST(SpeculativeGreedy, ContextLimit) {
  REQUIRE_MODEL("syn-llama-tiny-Q4_K_M.gguf");
  REQUIRE_MODEL("syn-llama-tiny-Q8_0.gguf");
  const auto target = load_shared("syn-llama-tiny-Q4_K_M.gguf");
  const auto draft = load_shared("syn-llama-tiny-Q8_0.gguf");
  const std::vector<TokenId> prompt = make_prompt(*target, 20);
  for (int32_t n_ctx : {32, 33, 47}) {
    SCOPED_TRACE(testing::Message() << "n_ctx " << n_ctx);
    const GenerateResult plain = run(target, prompt, -1, nullptr, n_ctx);
    Speculator speculator(*target, draft, {.draft_max = 8, .draft_p_min = 0.0f}, {.n_ctx = n_ctx, .n_threads = 1});
    const GenerateResult fast = run(target, prompt, -1, &speculator, n_ctx);
    EXPECT_EQ(plain.stop_reason, StopReason::ContextFull);
    EXPECT_EQ(fast.stop_reason, StopReason::ContextFull);
    EXPECT_EQ(fast.tokens, plain.tokens);
    EXPECT_EQ(int64_t(prompt.size() + fast.tokens.size()), n_ctx + 1);
  }
}

// After a speculative generation the target's cache holds exactly the prompt and the output
// (rejected drafts rewound), and the next turn on the same session and speculator, which
// reuses that cache and the draft's, still matches plain decoding.
// F16 and Q8_0 caches (a rewound Q8_0 row is quantized again when its position is written again).
class RollbackOfBothCaches : public ::testing::TestWithParam<KvType> {};

TEST_P(RollbackOfBothCaches, AcrossTurns) {
  REQUIRE_MODEL("syn-llama-tiny-Q4_K_M.gguf");
  REQUIRE_MODEL("syn-qwen2-tiny-Q4_K_M.gguf");
  const auto target = load_shared("syn-llama-tiny-Q4_K_M.gguf");
  const auto draft = load_shared("syn-qwen2-tiny-Q4_K_M.gguf");  // disagrees often: many rollbacks
  const SessionOptions session_options{.n_ctx = 256, .n_threads = 1, .kv_type = GetParam()};
  Session plain_session(target, session_options);
  Session fast_session(target, session_options);
  Speculator speculator(*target, draft, {.draft_max = 6, .draft_min = 2, .draft_p_min = 0.0f}, session_options);
  std::vector<TokenId> prompt = make_prompt(*target, 10);
  for (int turn = 0; turn < 3; ++turn) {
    SCOPED_TRACE(testing::Message() << "turn " << turn);
    Sampler plain_sampler(greedy_params()), fast_sampler(greedy_params());
    GenerateOptions options{.max_tokens = 24, .stop_at_end_of_generation = false};
    const GenerateResult plain = generate(plain_session, plain_sampler, prompt, options, nullptr);
    options.speculator = &speculator;
    const GenerateResult fast = generate(fast_session, fast_sampler, prompt, options, nullptr);
    ASSERT_EQ(fast.tokens, plain.tokens);
    EXPECT_GT(fast.speculation.drafted, fast.speculation.accepted);  // some drafts were rejected
    // The cache holds the prompt and every output token but the last (never evaluated), and
    // possibly drafts beyond them; the tokens it holds up to there are exactly those.
    std::vector<TokenId> expected = prompt;
    expected.insert(expected.end(), fast.tokens.begin(), fast.tokens.end() - 1);
    const std::vector<TokenId>& cached = fast_session.cached_tokens();
    ASSERT_GE(cached.size(), expected.size());
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), cached.begin()));
    prompt.insert(prompt.end(), fast.tokens.begin(), fast.tokens.end());
    const std::vector<TokenId> more = make_prompt(*target, 5, 1, uint32_t(turn));
    prompt.insert(prompt.end(), more.begin() + 1, more.end());
  }
}

INSTANTIATE_TEST_SUITE_P(SpeculativeGreedy, RollbackOfBothCaches, ::testing::Values(KvType::F16, KvType::Q8_0),
                         [](const auto& info) { return std::string(kv_type_name(info.param)); });

// ---- a cut draft head (SpeculativeOptions::draft_vocab) ---------------------------------------

bool is_end_token(const Model& model, TokenId id) {
  const std::vector<TokenId>& ends = model.tokenizer().end_of_generation_ids();
  return std::find(ends.begin(), ends.end(), id) != ends.end();
}

// A head cut to N gives the whole head's logits, bit for bit, for the ids below N and the
// end-of-generation tokens, and -infinity for every other id, with one thread or two. The end
// token is moved to id 300 in one model, so that its line of 16 rows lies past the cuts; gemma2
// soft-caps its kept logits.
TEST(SpeculativeDraftVocab, CutHeadKeepsTheWholeHeadsLogitsBelowTheCutAndOfTheEndTokens) {
  REQUIRE_MODEL("syn-llama-tiny-Q4_K_M.gguf");
  REQUIRE_MODEL("syn-gemma2-tiny-Q4_K_M.gguf");
  REQUIRE_MODEL("syn-qwen35-tiny-Q4_K_M.gguf");
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "slm_test_speculative_cut";
  std::filesystem::create_directories(dir);
  test::EditableModel moved_end = test::read_editable(test::shared_path("models/syn-llama-tiny-Q4_K_M.gguf"));
  moved_end.set_u32("tokenizer.ggml.eos_token_id", 300);
  moved_end.write(dir / "end_300.gguf");
  const std::vector<std::string> files = {(dir / "end_300.gguf").string(),
                                          test::shared_path("models/syn-gemma2-tiny-Q4_K_M.gguf").string(),
                                          test::shared_path("models/syn-qwen35-tiny-Q4_K_M.gguf").string()};
  for (const std::string& file : files) {
    const auto model = Model::load(file);
    const int32_t n_vocab = model->config().n_vocab;
    const std::vector<TokenId> prompt = make_prompt(*model, 8);
    Session whole_head(model, {.n_ctx = 64, .n_threads = 1});
    const std::span<const float> whole_logits = whole_head.eval(prompt, 0, true);
    const std::vector<float> whole(whole_logits.begin(), whole_logits.end());
    if (file == files.front()) ASSERT_TRUE(is_end_token(*model, 300));
    for (int32_t cut : {1, 100, 200, 511}) {
      for (int32_t threads : {1, 2}) {
        SCOPED_TRACE(testing::Message() << file << ", cut " << cut << ", " << threads << " threads");
        Session session(model, {.n_ctx = 64, .n_threads = threads, .logit_vocab = cut});
        const std::span<const float> logits = session.eval(prompt, 0, true);
        ASSERT_EQ(logits.size(), whole.size());
        int64_t differ = 0, not_excluded = 0;
        for (size_t i = 0; i < logits.size(); ++i) {
          const TokenId id = TokenId(i % size_t(n_vocab));
          if (id < cut || is_end_token(*model, id)) {
            differ += std::bit_cast<uint32_t>(logits[i]) != std::bit_cast<uint32_t>(whole[i]);
          } else {
            not_excluded += logits[i] != -std::numeric_limits<float>::infinity();
          }
        }
        EXPECT_EQ(differ, 0);
        EXPECT_EQ(not_excluded, 0);
      }
    }
  }
  std::filesystem::remove_all(dir);
}

// ---- the rejection rule ------------------------------------------------------------------------

double chi_square(const std::map<TokenId, int64_t>& counts, const std::map<TokenId, double>& expected_p, int64_t n) {
  double chi2 = 0.0;
  for (const auto& [id, p] : expected_p) {
    const double expected = p * double(n);
    const auto found = counts.find(id);
    const double observed = found == counts.end() ? 0.0 : double(found->second);
    chi2 += (observed - expected) * (observed - expected) / expected;
  }
  for (const auto& [id, count] : counts) EXPECT_TRUE(expected_p.count(id)) << "token " << id << " has p = 0";
  return chi2;
}

std::vector<TokenCandidate> candidates(std::initializer_list<float> probs) {
  std::vector<TokenCandidate> result;
  TokenId id = 0;
  for (float p : probs) result.push_back({id++, 0.0f, p});
  std::erase_if(result, [](const TokenCandidate& c) { return c.prob == 0.0f; });
  return result;
}

// 99.9% quantiles of chi-square (the tests are seeded, so they pass or fail the same way every
// run; a correct rule fails one seed in a thousand).
double chi_square_999(int degrees_of_freedom) {
  static const std::map<int, double> quantiles{{3, 16.27}, {4, 18.47}, {5, 20.52}, {7, 24.32}, {8, 26.12}};
  return quantiles.at(degrees_of_freedom);
}

TEST(SpeculativeSampling, RejectionRuleKeepsTheTargetDistribution) {
  const std::vector<TokenCandidate> p = candidates({0.05f, 0.40f, 0.25f, 0.20f, 0.10f, 0.0f});
  const std::vector<std::vector<TokenCandidate>> drafts = {
      candidates({0.50f, 0.10f, 0.10f, 0.10f, 0.10f, 0.10f}),  // a poor draft, with tokens p lacks
      candidates({0.05f, 0.35f, 0.30f, 0.20f, 0.10f, 0.0f}),   // a close draft
      candidates({0.0f, 0.60f, 0.40f}),  // a cut head's: q = 0 for tokens 0, 3 and 4, which p has
      {}};                                                      // prompt lookup: one certain token
  std::mt19937_64 rng(12345);
  const auto uniform = [&] { return double(rng() >> 11) * 0x1p-53; };
  constexpr int64_t n = 200000;
  for (size_t which = 0; which < drafts.size(); ++which) {
    SCOPED_TRACE(testing::Message() << "draft " << which);
    const std::vector<TokenCandidate>& q = drafts[which];
    std::map<TokenId, int64_t> counts;
    int64_t accepted = 0;
    for (int64_t i = 0; i < n; ++i) {
      const TokenId drafted = q.empty() ? TokenId(2) : pick_from_distribution(q, uniform());
      TokenId token;
      if (accepts_draft(p, q, drafted, uniform())) {
        token = drafted;
        ++accepted;
      } else {
        token = pick_from_distribution(residual_distribution(p, q, drafted), uniform());
      }
      ++counts[token];
    }
    std::map<TokenId, double> expected;
    for (const TokenCandidate& c : p) expected[c.id] = c.prob;
    EXPECT_LT(chi_square(counts, expected, n), chi_square_999(int(expected.size()) - 1));
    // The acceptance rate is sum min(p, q), the overlap of the two distributions.
    double overlap = 0.0;
    for (const TokenCandidate& c : p) {
      double qc = q.empty() ? (c.id == 2 ? 1.0 : 0.0) : 0.0;
      for (const TokenCandidate& d : q)
        if (d.id == c.id) qc = d.prob;
      overlap += std::min(double(c.prob), qc);
    }
    EXPECT_NEAR(double(accepted) / n, overlap, 0.005);  // 0.005 is > 4 standard deviations at n = 200000
  }
}

// The whole pipeline on a tiny model: the first two sampled tokens after a prompt, with a draft
// model that often disagrees, against their exact joint distribution computed from the target's
// logits (top-k 3, so 9 outcomes). With cut_draft_head, the draft's head keeps only the ids up to
// the smallest of the first token's 3 candidates, so that the draft cannot draw the other two
// (q = 0) and the rejection rule alone must give them their probability.
void expect_tiny_model_follows_the_exact_distribution(bool cut_draft_head) {
  const auto target = load_shared("stories260K.gguf");
  const auto draft = load_shared("syn-llama-tiny-Q8_0.gguf");  // the same vocabulary, random weights
  SamplerParams params;
  params.temperature = 1.5f;  // flatter, so that all 9 outcomes are frequent
  params.top_k = 3;
  params.top_p = 1.0f;
  params.min_p = 0.0f;
  const std::vector<TokenId> prompt = target->tokenizer().tokenize("Once upon a time", true, false);

  // Exact: p(t1) p(t2 | t1) through the sampler's own chain.
  Session session(target, {.n_ctx = 64, .n_threads = 1});
  Sampler exact_sampler(params);
  const std::vector<TokenCandidate> first = exact_sampler.distribution(session.eval(prompt, 0));
  std::map<std::pair<TokenId, TokenId>, double> exact;
  for (const TokenCandidate& t1 : first) {
    const TokenId one[1] = {t1.id};
    for (const TokenCandidate& t2 : exact_sampler.distribution(session.eval(one, int32_t(prompt.size()))))
      exact[{t1.id, t2.id}] = double(t1.prob) * t2.prob;
  }
  ASSERT_EQ(exact.size(), 9u);

  std::map<std::pair<TokenId, TokenId>, int64_t> counts;
  constexpr int64_t n = 3000;
  Session target_session(target, {.n_ctx = 64, .n_threads = 1});
  int32_t cut = 0;
  if (cut_draft_head) {
    const auto [lowest, highest] =
        std::minmax_element(first.begin(), first.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    cut = lowest->id + 1;
    ASSERT_GE(highest->id, cut);  // the cut excludes some of the first token's candidates
    ASSERT_FALSE(is_end_token(*target, highest->id));
  }
  Speculator speculator(*target, draft, {.draft_max = 2, .draft_p_min = 0.0f, .draft_vocab = cut},
                        {.n_ctx = 64, .n_threads = 1});
  int64_t drafted = 0, accepted = 0;
  for (int64_t i = 0; i < n; ++i) {
    params.seed = uint64_t(i);
    Sampler sampler(params);
    GenerateOptions options{.max_tokens = 3, .stop_at_end_of_generation = false};
    options.speculator = &speculator;
    const GenerateResult result = generate(target_session, sampler, prompt, options, nullptr);
    ASSERT_GE(result.tokens.size(), 2u);
    ++counts[{result.tokens[0], result.tokens[1]}];
    drafted += result.speculation.drafted;
    accepted += result.speculation.accepted;
  }
  EXPECT_GT(drafted, 0);
  EXPECT_LT(accepted, drafted);  // the rejection branch ran too
  double chi2 = 0.0;
  for (const auto& [outcome, p] : exact) {
    const double expected = p * double(n);
    const double observed = double(counts[outcome]);
    chi2 += (observed - expected) * (observed - expected) / expected;
  }
  EXPECT_EQ(counts.size(), exact.size());
  EXPECT_LT(chi2, chi_square_999(8));
}

TEST(SpeculativeSampling, TinyModelFollowsTheExactDistribution) {
  REQUIRE_MODEL("stories260K.gguf");
  REQUIRE_MODEL("syn-llama-tiny-Q8_0.gguf");
  expect_tiny_model_follows_the_exact_distribution(false);
}

TEST(SpeculativeSampling, TinyModelFollowsTheExactDistributionWithACutDraftHead) {
  REQUIRE_MODEL("stories260K.gguf");
  REQUIRE_MODEL("syn-llama-tiny-Q8_0.gguf");
  expect_tiny_model_follows_the_exact_distribution(true);
}

TEST(SpeculativeSampling, SameSeedSameOutput) {
  REQUIRE_MODEL("syn-llama-tiny-Q4_K_M.gguf");
  REQUIRE_MODEL("syn-llama-tiny-Q8_0.gguf");
  const auto target = load_shared("syn-llama-tiny-Q4_K_M.gguf");
  const auto draft = load_shared("syn-llama-tiny-Q8_0.gguf");
  const std::vector<TokenId> prompt = make_prompt(*target, 8);
  SamplerParams params;
  params.seed = 99;
  Speculator a(*target, draft, {.draft_max = 4, .draft_p_min = 0.0f}, kDraftSession);
  Speculator b(*target, draft, {.draft_max = 4, .draft_p_min = 0.0f}, kDraftSession);
  const GenerateResult first = run(target, prompt, 32, &a, 256, params);
  const GenerateResult second = run(target, prompt, 32, &b, 256, params);
  EXPECT_EQ(first.tokens, second.tokens);
  EXPECT_GT(first.speculation.drafted, 0);
  // Adaptive k times greedy generation (its output cannot depend on k); a sampled one after it
  // still chooses k from the priors alone, so the seed still gives the same output.
  run(target, prompt, 32, &b, 256, greedy_params());
  const GenerateResult after_timing = run(target, prompt, 32, &b, 256, params);
  EXPECT_EQ(after_timing.tokens, first.tokens);
  EXPECT_EQ(b.estimated_costs().verification, a.estimated_costs().verification);
  EXPECT_EQ(b.estimated_costs().draft_token, a.estimated_costs().draft_token);
}

// ---- vocabulary and options ----------------------------------------------------------------------

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SpeculativeVocabulary, DifferentSizeIsOneError) {
  REQUIRE_MODEL("syn-llama-tiny-Q4_K_M.gguf");
  REQUIRE_MODEL("syn-qwen2-vocab-Q4_K_M.gguf");
  const auto target = load_shared("syn-llama-tiny-Q4_K_M.gguf");
  const auto draft = load_shared("syn-qwen2-vocab-Q4_K_M.gguf");
  const std::string message = error_of([&] { Speculator s(*target, draft, {}); });
  EXPECT_NE(message.find("cannot draft for"), std::string::npos) << message;
  EXPECT_NE(message.find("151936 tokens, the target's 512"), std::string::npos) << message;
}

TEST(SpeculativeVocabulary, OneChangedTokenOrSpecialTokenIsNamed) {
  REQUIRE_MODEL("syn-llama-tiny-Q8_0.gguf");
  const auto target = load_shared("syn-llama-tiny-Q8_0.gguf");
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "slm_test_speculative";
  std::filesystem::create_directories(dir);

  test::EditableModel changed_token = test::read_editable(test::shared_path("models/syn-llama-tiny-Q8_0.gguf"));
  std::get<GgufArray>(changed_token.value("tokenizer.ggml.tokens")->value).strings[300] = "changed";
  changed_token.write(dir / "changed_token.gguf");
  std::string message = error_of([&] { Speculator s(*target, Model::load((dir / "changed_token.gguf").string()), {}); });
  EXPECT_NE(message.find("token 300 is 'changed' in the draft"), std::string::npos) << message;

  test::EditableModel changed_eos = test::read_editable(test::shared_path("models/syn-llama-tiny-Q8_0.gguf"));
  changed_eos.set_u32("tokenizer.ggml.eos_token_id", 1);
  changed_eos.write(dir / "changed_eos.gguf");
  message = error_of([&] { Speculator s(*target, Model::load((dir / "changed_eos.gguf").string()), {}); });
  EXPECT_NE(message.find("EOS token is 1"), std::string::npos) << message;
  std::filesystem::remove_all(dir);
}

TEST(SpeculativeOptions, InvalidOptionsAreErrors) {
  REQUIRE_MODEL("syn-llama-tiny-Q8_0.gguf");
  const auto target = load_shared("syn-llama-tiny-Q8_0.gguf");
  EXPECT_NE(error_of([&] { Speculator s(*target, nullptr, {.draft_max = 2, .draft_min = 3}); }), "");
  EXPECT_NE(error_of([&] { Speculator s(*target, nullptr, {.draft_p_min = 1.5f}); }), "");
  EXPECT_NE(error_of([&] { Speculator s(*target, nullptr, {.lookup_ngram = -1}); }), "");
}

TEST(SpeculativeOptions, ADraftVocabularyOutsideTheVocabularyIsOneError) {
  REQUIRE_MODEL("syn-llama-tiny-Q8_0.gguf");
  const auto target = load_shared("syn-llama-tiny-Q8_0.gguf");
  for (int32_t cut : {-1, 513}) {
    const std::string message = error_of([&] { Speculator s(*target, target, {.draft_vocab = cut}); });
    EXPECT_NE(message.find(fmt::format("draft-vocab must be within 1..512 (the vocabulary), not {}", cut)),
              std::string::npos) << message;
  }
  EXPECT_NE(error_of([&] { Speculator s(*target, nullptr, {.lookup_ngram = 2, .draft_vocab = 16}); })
                .find("needs a draft model"), std::string::npos);
  EXPECT_NE(error_of([&] { Session s(target, {.logit_vocab = 513}); }).find("must be within 1..512"), std::string::npos);
  EXPECT_EQ(error_of([&] { Speculator s(*target, target, {.draft_vocab = 512}); }), "");  // the whole head
}

}  // namespace
