// Every model of ../shared/golden/arch/summary.json against llama.cpp's saved log-probabilities
// of its F32 base (--kl-divergence-base files), the way slm-perplexity --kl-divergence does it:
//   - F32 files: mean KLD from llama.cpp <= 1e-5 and the same top token >= 99.5%;
//   - quantized files: mean KLD <= llama.cpp's own for that file, within two of its standard
//     errors (llama.cpp rounds activations to 8 bits, slm does not round them the same way).
// A model whose architecture slm does not run yet, or whose file is missing, is skipped with a
// message; the list comes from summary.json, so new models are picked up by themselves.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "lib/model/arch.hpp"
#include "slm/perplexity.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"

namespace slm::test {
namespace {

namespace fs = std::filesystem;
namespace ppl = slm::perplexity;

struct ArchGolden {
  std::string stem;      // the model file's stem, summary.json's key
  std::string arch;
  std::string base;      // the .kld file
  double kld_mean = 0;   // llama.cpp's, against the base (0 for the base itself)
  double kld_stderr = 0;
  bool is_base = false;
};

std::vector<ArchGolden> arch_goldens() {
  std::vector<ArchGolden> goldens;
  const fs::path summary = shared_path("golden/arch/summary.json");
  if (!fs::exists(summary)) return goldens;
  const auto json = nlohmann::json::parse(read_file(summary));
  for (const auto& [stem, entry] : json.at("models").items()) {
    ArchGolden g;
    g.stem = stem;
    g.arch = entry.at("arch");
    g.base = entry.at("base");
    g.is_base = entry.at("type") == "F32";
    if (!g.is_base) {
      g.kld_mean = entry.at("kld_mean");
      g.kld_stderr = entry.at("kld_mean_stderr");
    }
    goldens.push_back(g);
  }
  return goldens;
}

class ArchGoldenTest : public ::testing::TestWithParam<ArchGolden> {};

TEST_P(ArchGoldenTest, MatchesLlamaCppWithinTheBar) {
  const ArchGolden g = GetParam();
  if (g.stem.empty()) GTEST_SKIP() << "shared asset missing: golden/arch/summary.json";
  if (!find_arch(g.arch)) GTEST_SKIP() << g.stem << ": slm does not run architecture '" << g.arch << "' yet";
  const fs::path model_path = shared_path("models/" + g.stem + ".gguf"), base_path = shared_path("golden/arch/" + g.base);
  if (!fs::exists(model_path) || !fs::exists(base_path))
    GTEST_SKIP() << "shared asset missing: " << model_path << " or " << base_path;

  const auto model = Model::load(model_path.string());
  ppl::LogitsFileReader base(base_path.string());
  const ppl::ChunkLayout layout = base.header().layout();
  ASSERT_EQ(base.header().n_vocab, model->config().n_vocab);
  // The base was made with an F32 K/V cache.
  Session session(model, {.n_ctx = layout.n_ctx, .n_threads = 2, .kv_type = KvType::F32});
  const TokenId bos = model->tokenizer().add_bos() ? model->tokenizer().bos() : -1;  // llama-perplexity's rule
  ppl::KldStats stats;
  for (int32_t chunk = 0; chunk < layout.n_chunks; ++chunk) {
    const std::vector<TokenId> tokens = ppl::chunk_tokens(base.tokens(), layout, chunk, bos);
    const std::span<const float> scored = ppl::evaluate_chunk(session, tokens, layout);
    for (const ppl::KldPosition& p :
         ppl::compare_chunk(scored, base.read_chunk(chunk), tokens, layout, model->config().n_vocab, 2))
      stats.add(p);
  }
  const ppl::KldSummary s = stats.summary();
  std::printf("[arch] %-28s positions %lld  mean KLD %.3e  same top %.2f%%  (llama.cpp: %.3e ± %.1e)\n",
              g.stem.c_str(), static_cast<long long>(s.n_positions), s.mean_kld.value, 100 * s.same_top.value,
              g.kld_mean, g.kld_stderr);
  if (g.is_base) {
    EXPECT_LE(s.mean_kld.value, 1e-5);
    EXPECT_GE(s.same_top.value, 0.995);
  } else {
    EXPECT_LE(s.mean_kld.value, g.kld_mean + 2 * g.kld_stderr);
  }
}

std::vector<ArchGolden> goldens_or_placeholder() {
  auto goldens = arch_goldens();
  if (goldens.empty()) goldens.push_back({});
  return goldens;
}

INSTANTIATE_TEST_SUITE_P(SharedArchitectures, ArchGoldenTest, ::testing::ValuesIn(goldens_or_placeholder()),
                         [](const auto& info) {
                           return test_name_of(info.param.stem.empty() ? "summary_missing" : info.param.stem);
                         });

}  // namespace
}  // namespace slm::test
