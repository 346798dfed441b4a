// Measurements behind slm-bench: prompt and generation speed of a session, and the machine's
// memory read bandwidth, against which generation speed is judged (generating one token reads
// every weight once, so tokens/s x model bytes is the bandwidth generation achieves).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "slm/session.hpp"

namespace slm::bench {

// A buffer to measure the machine's read bandwidth with, again and again (slm-bench measures it
// next to every generation run: on a shared machine it drifts within minutes). It should be
// much larger than the caches (1 GiB) to measure memory rather than cache.
struct ReadBandwidthBuffer {
  std::unique_ptr<uint64_t[]> words;
  int64_t n_words = 0;
};
// The buffer of `bytes` bytes (at least 32 KiB), its pages first written by `n_threads` threads,
// each its own part, so that they sit in that thread's memory node.
ReadBandwidthBuffer make_read_bandwidth_buffer(uint64_t bytes, int32_t n_threads);

// GB/s (1e9 bytes per second) of `n_threads` threads summing the buffer, each thread its own
// contiguous part; the best of `repetitions` passes, as STREAM reports.
double measure_read_bandwidth(const ReadBandwidthBuffer& buffer, int32_t n_threads, int32_t repetitions = 3);
double measure_read_bandwidth(uint64_t bytes, int32_t n_threads, int32_t repetitions = 5);

// The kernels the matmuls run on: "avx512", "avxvnni", "avx2", "neon" or "scalar" (unset,
// SLM_ISA means the best this CPU has; set, it forces one: kernels/matmul.hpp's choose_isa).
std::string active_kernel_isa();

// `n_tokens` token ids drawn uniformly from the vocabulary with `seed`; the first is BOS when
// the model adds one (as llama-bench does).
std::vector<TokenId> random_tokens(const Model& model, int32_t n_tokens, uint32_t seed);

// `n` values drawn from the standard normal distribution with `seed`: the weights and activations
// the kernel measurements run on (bench_matmul, slm-plan --calibrate).
std::vector<float> normal_values(int64_t n, uint32_t seed);

// Seconds to evaluate `prompt` in one eval call after the first `n_depth` cached tokens (the
// cache is truncated to them first; the caller evaluated them, untimed: llama-bench's -d).
double time_prompt(Session& session, std::span<const TokenId> prompt, int32_t n_depth = 0);

// Seconds to evaluate `tokens` one at a time after an untimed first eval of `first_token` at
// position n_depth (the cache is truncated to its first n_depth tokens first): decoding speed,
// as in generation, after a context of n_depth tokens.
double time_generation(Session& session, TokenId first_token, std::span<const TokenId> tokens, int32_t n_depth = 0);

// Mean and sample standard deviation (n - 1; 0 for a single value).
struct MeanStddev {
  double mean = 0;
  double stddev = 0;
};
MeanStddev mean_stddev(std::span<const double> values);

}  // namespace slm::bench
