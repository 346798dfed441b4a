// slm-server's prefix cache over a hybrid model (lfm2): a request sharing a prefix with a
// finished one forks its sequence at the latest recurrent-state checkpoint inside the common
// prefix (slm/batch.hpp), and generates what it would alone.
#include <gtest/gtest.h>

#include <random>

#include "slm/scheduler.hpp"
#include "support/assets.hpp"

namespace slm::test {
namespace {

std::vector<TokenId> random_tokens(const Model& model, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<TokenId> tokens(n);
  for (TokenId& t : tokens) t = TokenId(3 + rng() % uint32_t(model.config().n_vocab - 3));
  return tokens;
}

TEST(SchedulerCheckpoints, ReusesThePrefixUpToTheLatestCheckpoint) {
  const auto path = shared_path("models/syn-lfm2-tiny-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(path);
  const auto model = Model::load(path.string());
  const std::vector<TokenId> first = random_tokens(*model, 100, 6);
  std::vector<TokenId> second(first.begin(), first.begin() + 90);
  for (TokenId t : random_tokens(*model, 20, 7)) second.push_back(t);
  const auto run = [&](Scheduler& scheduler, const std::vector<TokenId>& prompt) {
    GenerationRequest request;
    request.prompt = prompt;
    request.sampling.temperature = 0.0f;
    request.max_tokens = 8;
    request.stop_at_end_of_generation = false;
    const auto stream = scheduler.submit(request);
    std::pair<std::vector<TokenId>, GenerationSummary> out;
    for (StreamEvent event; stream->next(event, std::chrono::seconds(60));) {
      if (event.token) out.first.push_back(event.token->token);
      if (event.done) {
        out.second = *event.done;
        break;
      }
    }
    return out;
  };
  const SchedulerOptions options{.parallel = 1, .decoder = {.n_ctx = 256, .n_threads = 1, .checkpoint_interval = 32}};
  Scheduler scheduler(model, options);
  EXPECT_EQ(run(scheduler, first).second.cached_tokens, 0);
  const auto reused = run(scheduler, second);
  EXPECT_EQ(reused.second.cached_tokens, 64);  // the checkpoint at 64, the latest at or before 90
  Scheduler alone(model, options);
  EXPECT_EQ(reused.first, run(alone, second).first);
}

}  // namespace
}  // namespace slm::test
