// Chunking, chunk evaluation and NLL scoring for perplexity (see slm/perplexity.hpp).
#include "slm/perplexity.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "slm/error.hpp"

namespace slm::perplexity {

void check_context_size(int64_t n_ctx) {
  if (n_ctx < 4 || n_ctx % 2 != 0)
    throw Error(fmt::format("context size {} must be even and at least 4 (the second half of each chunk is scored)",
                            n_ctx));
}

ChunkLayout plan_chunks(size_t n_tokens, int32_t n_ctx, int32_t max_chunks) {
  check_context_size(n_ctx);
  if (n_tokens < size_t(n_ctx))
    throw Error(fmt::format("the text has {} tokens, too few for one chunk of {} tokens (lower -c or use a longer text)",
                            n_tokens, n_ctx));
  const size_t available = n_tokens / size_t(n_ctx);
  const size_t n_chunks = max_chunks < 0 ? available : std::min(available, size_t(max_chunks));
  if (n_chunks == 0) throw Error("--chunks 0 leaves nothing to evaluate");
  if (n_chunks > size_t(INT32_MAX)) throw Error(fmt::format("{} chunks are too many", n_chunks));
  return {n_ctx, int32_t(n_chunks)};
}

std::vector<TokenId> chunk_tokens(std::span<const TokenId> tokens, const ChunkLayout& layout, int32_t index,
                                  TokenId bos) {
  if (index < 0 || index >= layout.n_chunks)
    throw Error(fmt::format("chunk {} is outside 0..{}", index, layout.n_chunks - 1));
  const size_t begin = size_t(index) * size_t(layout.n_ctx);
  if (begin + size_t(layout.n_ctx) > tokens.size())
    throw Error(fmt::format("chunk {} runs past the end of the {} tokens", index, tokens.size()));
  std::vector<TokenId> chunk(tokens.begin() + ptrdiff_t(begin), tokens.begin() + ptrdiff_t(begin + size_t(layout.n_ctx)));
  if (bos >= 0) chunk[0] = bos;
  return chunk;
}

std::span<const float> evaluate_chunk(Session& session, std::span<const TokenId> chunk, const ChunkLayout& layout) {
  if (chunk.size() != size_t(layout.n_ctx))
    throw Error(fmt::format("a chunk holds {} tokens, expected {}", chunk.size(), layout.n_ctx));
  if (session.n_ctx() < layout.n_ctx)
    throw Error(fmt::format("the session's context of {} is smaller than a chunk of {}", session.n_ctx(), layout.n_ctx));
  const auto first = size_t(layout.first_scored());
  // Logits do not depend on how the tokens are split into evals, so the unscored first half
  // skips the output matrix.
  session.eval(chunk.first(first), 0, false);
  const std::span<const float> logits = session.eval(chunk.subspan(first), int32_t(first), true);
  return logits.first(size_t(layout.n_scored()) * size_t(session.model().config().n_vocab));
}

namespace {

double nll_of(const float* logits, size_t n_vocab, TokenId target) {
  const float max_logit = *std::max_element(logits, logits + n_vocab);
  double sum = 0.0;
  for (size_t i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - max_logit);
  return double(max_logit) + std::log(sum) - double(logits[target]);
}

void check_target(TokenId target, int64_t n_vocab) {
  if (target < 0 || target >= n_vocab)
    throw Error(fmt::format("token id {} is outside the vocabulary (0..{})", target, n_vocab - 1));
}

}  // namespace

double token_nll(std::span<const float> logits, TokenId target) {
  if (logits.empty()) throw Error("token_nll needs at least one logit");
  check_target(target, int64_t(logits.size()));
  return nll_of(logits.data(), logits.size(), target);
}

std::vector<double> score_chunk(std::span<const float> scored_logits, std::span<const TokenId> chunk,
                                const ChunkLayout& layout, int32_t n_vocab, int n_threads) {
  const int32_t n_scored = layout.n_scored();
  const int32_t first = layout.first_scored();
  if (n_vocab <= 0 || scored_logits.size() != size_t(n_scored) * size_t(n_vocab))
    throw Error(fmt::format("score_chunk: {} logits, expected {} rows of {}", scored_logits.size(), n_scored, n_vocab));
  if (chunk.size() != size_t(layout.n_ctx))
    throw Error(fmt::format("score_chunk: a chunk holds {} tokens, expected {}", chunk.size(), layout.n_ctx));
  for (int32_t i = 0; i < n_scored; ++i) check_target(chunk[size_t(first + i + 1)], n_vocab);

  std::vector<double> nll(static_cast<size_t>(n_scored));
#pragma omp parallel for num_threads(std::max(1, n_threads)) schedule(static)
  for (int32_t i = 0; i < n_scored; ++i)
    nll[size_t(i)] = nll_of(scored_logits.data() + size_t(i) * size_t(n_vocab), size_t(n_vocab), chunk[size_t(first + i + 1)]);
  return nll;
}

double NllStats::ppl() const { return count > 0 ? std::exp(sum / double(count)) : 0.0; }

double NllStats::ppl_stderr() const {
  if (count < 2) return 0.0;
  const double mean = sum / double(count);
  const double variance = sum_squares / double(count) - mean * mean;
  if (variance <= 0) return 0.0;
  return ppl() * std::sqrt(variance / double(count - 1));
}

}  // namespace slm::perplexity
