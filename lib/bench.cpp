// slm-bench's measurements; see include/slm/bench.hpp.
#include "slm/bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "kernels/matmul.hpp"
#include "lib/ops/thread_pool.hpp"
#include "slm/model.hpp"

namespace slm::bench {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

ReadBandwidthBuffer make_read_bandwidth_buffer(uint64_t bytes, int32_t n_threads) {
  const int64_t n_words = int64_t(std::max<uint64_t>(bytes / sizeof(uint64_t), 4096) / 4 * 4);
  // Not value-initialized: each thread writes its own part first, so that its pages sit in
  // that thread's memory node, as a model's weights do after the first tokens.
  ReadBandwidthBuffer buffer{std::unique_ptr<uint64_t[]>(new uint64_t[size_t(n_words)]), n_words};
  uint64_t* words = buffer.words.get();
  ops::parallel_for(n_words, ops::chunk_for(n_words, n_threads, 1), n_threads, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) words[i] = uint64_t(i);
  });
  return buffer;
}

double measure_read_bandwidth(const ReadBandwidthBuffer& buffer, int32_t n_threads, int32_t repetitions) {
  const int64_t n_words = buffer.n_words;
  const uint64_t* words = buffer.words.get();
  double best_seconds = 0;
  uint64_t checksum = 0;
  for (int32_t rep = 0; rep < std::max(repetitions, 1); ++rep) {
    const auto start = std::chrono::steady_clock::now();
    // On the threads the forward pass uses, in four independent sums per thread, so that the
    // adds keep up with memory on any core.
    const int n_parts = std::max(1, n_threads);
    std::vector<uint64_t> part_sums(size_t(n_parts) * 8);  // a 64-byte line each
    ops::parallel_for(n_parts, 1, n_parts, [&](int64_t part, int64_t, int) {
      const int64_t begin = part * (n_words / 4) / n_parts * 4, end = (part + 1) * (n_words / 4) / n_parts * 4;
      uint64_t sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0;
      for (int64_t i = begin; i < end; i += 4) {
        sum0 += words[i];
        sum1 += words[i + 1];
        sum2 += words[i + 2];
        sum3 += words[i + 3];
      }
      part_sums[size_t(part) * 8] = sum0 + sum1 + sum2 + sum3;
    });
    uint64_t total = 0;
    for (int part = 0; part < n_parts; ++part) total += part_sums[size_t(part) * 8];
    const double seconds = seconds_since(start);
    checksum += total;
    if (rep == 0 || seconds < best_seconds) best_seconds = seconds;
  }
  // The sums must be used, or the compiler may drop the loads.
  volatile uint64_t sink = checksum;
  (void)sink;
  return double(n_words) * sizeof(uint64_t) / best_seconds / 1e9;
}

double measure_read_bandwidth(uint64_t bytes, int32_t n_threads, int32_t repetitions) {
  return measure_read_bandwidth(make_read_bandwidth_buffer(bytes, n_threads), n_threads, repetitions);
}

std::string active_kernel_isa() { return kernels::kernels_for(kernels::active_isa()).name; }

std::vector<TokenId> random_tokens(const Model& model, int32_t n_tokens, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<TokenId> token(0, model.config().n_vocab - 1);
  std::vector<TokenId> tokens(size_t(std::max(n_tokens, 0)));
  for (TokenId& id : tokens) id = token(generator);
  const Tokenizer& tokenizer = model.tokenizer();
  if (!tokens.empty() && tokenizer.add_bos() && tokenizer.bos() >= 0) tokens[0] = tokenizer.bos();
  return tokens;
}

std::vector<float> normal_values(int64_t n, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(size_t(std::max<int64_t>(n, 0)));
  for (float& v : values) v = normal(generator);
  return values;
}

double time_prompt(Session& session, std::span<const TokenId> prompt, int32_t n_depth) {
  session.truncate(n_depth);
  const auto start = std::chrono::steady_clock::now();
  session.eval(prompt, n_depth);
  return seconds_since(start);
}

double time_generation(Session& session, TokenId first_token, std::span<const TokenId> tokens, int32_t n_depth) {
  session.truncate(n_depth);
  session.eval(std::span<const TokenId>(&first_token, 1), n_depth);
  const auto start = std::chrono::steady_clock::now();
  for (const TokenId& token : tokens) session.eval(std::span<const TokenId>(&token, 1));
  return seconds_since(start);
}

MeanStddev mean_stddev(std::span<const double> values) {
  MeanStddev result;
  if (values.empty()) return result;
  for (double v : values) result.mean += v;
  result.mean /= double(values.size());
  if (values.size() < 2) return result;
  double sum_squares = 0;
  for (double v : values) sum_squares += (v - result.mean) * (v - result.mean);
  result.stddev = std::sqrt(sum_squares / double(values.size() - 1));
  return result;
}

}  // namespace slm::bench
