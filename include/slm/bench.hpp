// Measurements behind slm-bench: prompt and generation speed of a session, and the machine's
// memory read bandwidth, against which generation speed is judged (generating one token reads
// every weight once, so tokens/s x model bytes is the bandwidth generation achieves).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slm/session.hpp"

namespace slm::bench {

// GB/s (1e9 bytes per second) of `n_threads` threads summing a buffer of `bytes` bytes, each
// thread its own contiguous part; the best of `repetitions` passes, as STREAM reports. The buffer
// should be much larger than the caches (1 GiB) to measure memory rather than cache.
double measure_read_bandwidth(uint64_t bytes, int32_t n_threads, int32_t repetitions = 5);

// The instruction set the matmul kernels run on: "avx2", "neon" or "scalar" (SLM_ISA chooses).
std::string active_kernel_isa();

// `n_tokens` token ids drawn uniformly from the vocabulary with `seed`; the first is BOS when
// the model adds one (as llama-bench does).
std::vector<TokenId> random_tokens(const Model& model, int32_t n_tokens, uint32_t seed);

// Seconds to evaluate `prompt` in one eval call from an empty cache (the cache is reset first).
double time_prompt(Session& session, std::span<const TokenId> prompt);

// Seconds to evaluate `tokens` one at a time after an untimed first eval of `first_token` at
// position 0 (the cache is reset first): decoding speed, as in generation.
double time_generation(Session& session, TokenId first_token, std::span<const TokenId> tokens);

// Mean and sample standard deviation (n - 1; 0 for a single value).
struct MeanStddev {
  double mean = 0;
  double stddev = 0;
};
MeanStddev mean_stddev(std::span<const double> values);

}  // namespace slm::bench
