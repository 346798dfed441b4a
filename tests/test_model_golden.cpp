// The forward pass against ../shared/golden: for every shared model and prompt, slm's
// logits are compared with the exact float64 reference, and slm must be at least as
// close to it as llama.cpp is (the golden `agreement` figures).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "lib/model/arch.hpp"
#include "slm/gguf.hpp"
#include "slm/sampler.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"
#include "support/golden.hpp"

namespace slm::test {
namespace {

double logsumexp(std::span<const float> row) {
  double max_value = -INFINITY;
  for (float v : row) max_value = std::max(max_value, double(v));
  double sum = 0;
  for (float v : row) sum += std::exp(double(v) - max_value);
  return max_value + std::log(sum);
}

struct PositionComparison {
  bool top1_agrees = false;
  double kld = 0;             // KLD(exact || slm) in nats
  bool kld_is_full = false;   // over the whole vocabulary (else grouped: a lower bound, see below)
  double max_abs_dlogprob_top20 = 0;
};

PositionComparison compare_position(const GoldenRecord& g, size_t pos, std::span<const float> row) {
  PositionComparison c;
  const GoldenPosition& exact = g.exact.positions[pos];
  const double lse = logsumexp(row);
  c.top1_agrees = argmax(row) == exact.top.front().first;
  for (const auto& [id, logprob] : exact.top)
    c.max_abs_dlogprob_top20 = std::max(c.max_abs_dlogprob_top20, std::abs((row[size_t(id)] - lse) - logprob));

  if (pos < size_t(g.exact.logits_n_positions)) {
    const std::span<const float> exact_row(g.exact.logits.data() + pos * size_t(g.n_vocab), size_t(g.n_vocab));
    const double exact_lse = logsumexp(exact_row);
    for (size_t i = 0; i < row.size(); ++i) {
      const double log_p = exact_row[i] - exact_lse;
      c.kld += std::exp(log_p) * (log_p - (row[i] - lse));
    }
    c.kld_is_full = true;
  } else {
    // Only exact's top-20 are stored: KLD of the distribution grouped into those 20 tokens
    // and "the rest". Grouping never increases KLD, so this is a lower bound of the real one.
    double p_top = 0, q_top = 0;
    for (const auto& [id, logprob] : exact.top) {
      const double log_q = row[size_t(id)] - lse;
      c.kld += std::exp(logprob) * (logprob - log_q);
      p_top += std::exp(logprob);
      q_top += std::exp(log_q);
    }
    if (p_top < 1 && q_top < 1) c.kld += (1 - p_top) * std::log((1 - p_top) / (1 - q_top));
  }
  return c;
}

bool is_float_model(const std::string& stem) {
  return stem == "stories260K" || stem.ends_with("-F32") || stem.ends_with("-F16") || stem.ends_with("-BF16");
}

// The bar: greedy continuations identical to exact's for F32, F16 and Q8_0 weights.
bool requires_identical_greedy(const std::string& stem) {
  return stem == "stories260K" || stem.ends_with("-F32") || stem.ends_with("-F16") || stem.ends_with("-Q8_0");
}

class ModelGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelGolden, MatchesExactReferenceAtLeastAsWellAsLlamaCpp) {
  const std::string stem = GetParam();
  const auto model_path = shared_path("models/" + stem + ".gguf");
  SLM_REQUIRE_ASSET(model_path);
  const std::string arch = GgufFile::open(model_path.string()).get_string("general.architecture");
  if (find_arch(arch) == nullptr) GTEST_SKIP() << stem << ": architecture " << arch << ", which slm does not run yet";
  auto model = Model::load(model_path.string());

  size_t n_positions = 0, n_top1 = 0, n_kld = 0;
  double kld_sum = 0, llama_kld_weighted = 0, llama_top1_weighted = 0, worst_dlogprob_margin = -INFINITY;
  size_t llama_positions = 0;
  int greedy_identical = 0, greedy_prompts = 0;

  for (const auto& file : golden_files(stem)) {
    const GoldenRecord g = read_golden(file);
    SCOPED_TRACE(g.prompt_id);
    ASSERT_EQ(g.n_vocab, model->config().n_vocab);
    SessionOptions options;
    options.kv_type = KvType::F32;  // as the references: llama.cpp's goldens used an F32 cache
    options.n_ctx = int32_t(g.tokens.size()) + 64;
    Session session(model, options);
    const std::span<const float> logits = session.eval(g.tokens, 0, true);
    double prompt_max_dlogprob = 0;
    for (size_t pos = 0; pos < g.tokens.size(); ++pos) {
      const auto c = compare_position(g, pos, logits.subspan(pos * size_t(g.n_vocab), size_t(g.n_vocab)));
      ++n_positions;
      n_top1 += c.top1_agrees;
      kld_sum += c.kld;
      ++n_kld;
      prompt_max_dlogprob = std::max(prompt_max_dlogprob, c.max_abs_dlogprob_top20);
    }
    llama_kld_weighted += g.agreement.mean_kld * g.agreement.n_positions;
    llama_top1_weighted += g.agreement.top1_agree * g.agreement.n_positions;
    llama_positions += size_t(g.agreement.n_positions);
    worst_dlogprob_margin = std::max(worst_dlogprob_margin, prompt_max_dlogprob - g.agreement.max_abs_dlogprob_top20);

    // Greedy: argmax, fed back one token at a time, no stop at EOS (as the goldens were made).
    std::vector<int32_t> greedy;
    std::span<const float> last = logits.subspan((g.tokens.size() - 1) * size_t(g.n_vocab), size_t(g.n_vocab));
    for (size_t i = 0; i < g.exact.greedy_ids.size(); ++i) {
      const TokenId next = argmax(last);
      greedy.push_back(next);
      if (i + 1 < g.exact.greedy_ids.size()) last = session.eval(std::span<const TokenId>(&next, 1));
    }
    ++greedy_prompts;
    greedy_identical += greedy == g.exact.greedy_ids;
    if (requires_identical_greedy(stem)) EXPECT_EQ(greedy, g.exact.greedy_ids);
  }

  const double top1 = double(n_top1) / double(n_positions);
  const double mean_kld = kld_sum / double(n_kld);
  const double llama_top1 = llama_top1_weighted / double(llama_positions);
  const double llama_kld = llama_kld_weighted / double(llama_positions);
  std::printf("[golden] %-26s positions %4zu  top1 %.4f (llama.cpp %.4f)  mean KLD %.3e (llama.cpp %.3e)  greedy %d/%d\n",
              stem.c_str(), n_positions, top1, llama_top1, mean_kld, llama_kld, greedy_identical, greedy_prompts);

  if (is_float_model(stem))
    EXPECT_GE(top1, 0.99);
  else
    EXPECT_GE(top1, llama_top1 - 0.01);
  // Margin: 1e-9 nats is float32 round-off over a forward pass (llama.cpp itself sits at
  // ~1e-11 on F32 weights, and the README suggests "below 1e-6 for F32 models"); on
  // quantized weights slm keeps activations in float32, so it should be far below llama.cpp.
  EXPECT_LE(mean_kld, llama_kld + 1e-9);
  // Per prompt, the largest |dlogprob| over exact's top-20 is no worse than llama.cpp's,
  // up to the same float32 round-off (1e-4 in log-probability).
  EXPECT_LE(worst_dlogprob_margin, 1e-4);
}

// golden/ holds other references beside the prompt goldens (golden/arch: KL-divergence files for
// the architectures checked by perplexity); only folders of prompt goldens are models here.
TEST(ModelGoldenFolders, AreTheFoldersOfPromptGoldensOnly) {
  const std::vector<std::string> stems = golden_model_stems();
  if (stems.empty()) GTEST_SKIP() << "shared asset missing: " << shared_path("golden");
  print_skipped_golden_files();
  for (const std::string& stem : stems)
    for (const auto& file : golden_files(stem)) EXPECT_EQ(read_golden(file).model_file, stem + ".gguf") << file;
}

std::vector<std::string> stems_or_placeholder() {
  auto stems = golden_model_stems();
  if (stems.empty()) stems.push_back("golden-folder-missing");
  return stems;
}

INSTANTIATE_TEST_SUITE_P(AllSharedModels, ModelGolden, ::testing::ValuesIn(stems_or_placeholder()),
                         [](const auto& info) { return test_name_of(info.param); });

}  // namespace
}  // namespace slm::test
