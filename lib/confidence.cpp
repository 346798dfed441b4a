#include "slm/confidence.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "slm/error.hpp"

namespace slm {

namespace {

constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

// e^x for x <= 0 (Cephes' expf: 2^n times a degree-6 polynomial of the remainder), relative error
// about 2e-7. Plain arithmetic with no branch and no library call, so the loops below vectorize
// (std::exp does not without -ffast-math); below -87.3 it returns e^-87.3, about 1e-38.
constexpr float kLowestExponent = -87.3f;

// Four floats, and their int32 bits: SSE2 (x86-64's baseline) or NEON registers, through GCC's and
// Clang's vector extensions, so the loops below are vector code without -ffast-math (which
// std::exp needs to vectorize) and without per-ISA files.
using Floats = float __attribute__((vector_size(16)));
using Ints = int32_t __attribute__((vector_size(16)));
constexpr size_t kLanes = 4;

// e^x for x <= 0 (Cephes' expf: 2^n times a degree-6 polynomial of the remainder), relative
// error about 2e-7; below -87.3 it gives e^-87.3, about 1e-38.
inline Floats exp_nonpositive(Floats x) {
  x = x > kLowestExponent ? x : Floats{} + kLowestExponent;
  constexpr float kRoundingMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const Floats n = (x * 1.44269504f + kRoundingMagic) - kRoundingMagic;
  const Floats r = x - n * 0.693359375f + n * 2.12194440e-4f;  // x - n ln 2, ln 2 split in two
  Floats p = Floats{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const Ints exponent = (__builtin_convertvector(n, Ints) + 127) << 23;
  return p * std::bit_cast<Floats>(exponent);
}

inline Floats load(const float* x) {
  Floats v;
  std::memcpy(&v, x, sizeof v);
  return v;
}

// A row's log-sum-exp, entropy and top two logits, built chunk by chunk (online softmax): each
// chunk is read twice while it is in L1 (its maximum, then the exponentials), and the row once.
struct RowSummary {
  float max = kMinusInfinity;     // the largest logit
  float second = kMinusInfinity;  // the second largest (equal to max on a tie)
  double sum = 0;                 // sum of e^(l - max)
  double weighted = 0;            // sum of e^(l - max) (l - max)

  // Adds a chunk whose own maximum is `chunk_max`, whose sums are relative to it.
  void merge(float chunk_max, float chunk_second, double chunk_sum, double chunk_weighted) {
    if (chunk_max > max) {
      std::swap(max, chunk_max);
      std::swap(sum, chunk_sum);
      std::swap(weighted, chunk_weighted);
      std::swap(second, chunk_second);
    }
    second = std::max(second, chunk_max);  // chunk_max <= max: the other side's best is a candidate
    if (chunk_max == kMinusInfinity) return;
    const double shift = double(chunk_max) - double(max);  // <= 0
    const double scale = std::exp(shift);
    sum += chunk_sum * scale;
    weighted += (chunk_weighted + chunk_sum * shift) * scale;
  }
};

RowSummary summarize_row(std::span<const float> logits) {
  constexpr size_t kChunk = 2048;
  const Floats minus_infinity = Floats{} + kMinusInfinity;
  RowSummary row;
  for (size_t begin = 0; begin < logits.size(); begin += kChunk) {
    const size_t n = std::min(kChunk, logits.size() - begin);
    const size_t n_vector = n / kLanes * kLanes;
    // The rest of a chunk that is not a whole vector is padded with -inf, which adds nothing.
    float tail[kLanes];
    std::fill_n(tail, kLanes, kMinusInfinity);
    std::copy(logits.begin() + long(begin + n_vector), logits.begin() + long(begin + n), tail);
    const auto vector_at = [&](size_t i) { return i < n_vector ? load(logits.data() + begin + i) : load(tail); };

    Floats lane_max = minus_infinity;
    for (size_t i = 0; i < n; i += kLanes) {
      const Floats x = vector_at(i);
      lane_max = x > lane_max ? x : lane_max;
    }
    float chunk_max = kMinusInfinity;
    for (size_t j = 0; j < kLanes; ++j) chunk_max = std::max(chunk_max, lane_max[j]);
    if (chunk_max == kMinusInfinity) continue;  // a masked-out stretch: no probability

    Floats lane_second = minus_infinity, lane_sum{}, lane_weighted{};
    Ints lane_at_max{};
    for (size_t i = 0; i < n; i += kLanes) {
      const Floats x = vector_at(i);
      Floats shifted = x - chunk_max;
      shifted = shifted > kLowestExponent ? shifted : Floats{} + kLowestExponent;  // -inf adds 0, not NaN
      const Floats e = exp_nonpositive(shifted);
      lane_sum += e;
      lane_weighted += e * shifted;
      const Floats below = x < chunk_max ? x : minus_infinity;
      lane_second = below > lane_second ? below : lane_second;
      lane_at_max -= x == chunk_max;  // a true comparison is -1
    }
    double chunk_sum = 0, chunk_weighted = 0;
    float chunk_second = kMinusInfinity;
    int32_t n_at_max = 0;
    for (size_t j = 0; j < kLanes; ++j) {
      chunk_sum += lane_sum[j];
      chunk_weighted += lane_weighted[j];
      chunk_second = std::max(chunk_second, lane_second[j]);
      n_at_max += lane_at_max[j];
    }
    if (n_at_max > 1) chunk_second = chunk_max;  // a tie for the top: the margin is 0
    row.merge(chunk_max, chunk_second, chunk_sum, chunk_weighted);
  }
  return row;
}

}  // namespace

TokenConfidence token_confidence(std::span<const float> logits, TokenId token) {
  if (token < 0 || size_t(token) >= logits.size())
    throw Error(fmt::format("token {} is outside the row of {} logits", token, logits.size()));
  const RowSummary row = summarize_row(logits);
  const double log_sum = std::log(row.sum);  // of e^(l - max): log Z - max
  TokenConfidence out;
  out.logprob = double(logits[size_t(token)]) - double(row.max) - log_sum;
  // H = -sum p (l - max - log_sum) = log_sum - weighted / sum
  out.entropy = std::max(0.0, log_sum - row.weighted / row.sum);
  // p1 = e^0 / sum, p2 = e^(second - max) / sum
  const double second = row.second == kMinusInfinity ? 0.0 : std::exp(double(row.second) - double(row.max));
  out.top2_margin = (1.0 - second) / row.sum;
  return out;
}

void ConfidenceMeter::add(const TokenConfidence& token) {
  min_logprob_ = n_tokens_ == 0 ? token.logprob : std::min(min_logprob_, token.logprob);
  ++n_tokens_;
  sum_logprob_ += token.logprob;
  sum_entropy_ += token.entropy;
  n_low_margin_ += token.top2_margin < low_margin_threshold_;
}

Confidence ConfidenceMeter::summary() const {
  Confidence c;
  c.low_margin_threshold = low_margin_threshold_;
  c.n_tokens = n_tokens_;
  if (n_tokens_ == 0) return c;
  c.mean_logprob = sum_logprob_ / n_tokens_;
  c.min_logprob = min_logprob_;
  c.mean_entropy = sum_entropy_ / n_tokens_;
  c.low_margin_share = double(n_low_margin_) / n_tokens_;
  return c;
}

}  // namespace slm
