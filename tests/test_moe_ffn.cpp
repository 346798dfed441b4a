// The mixture-of-experts feed-forward block (lib/ops/moe.hpp): routing takes the top k of the
// softmax, ties to the lower expert id, with weights summing to 1; the output equals a naive
// per-token double-precision reference; and grouping the rows by expert never changes a bit of
// a row's output, for every weight format, from the file's rows or interleaved, at 1 or 2 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "kernels/dequantize.hpp"
#include "kernels/quantize.hpp"
#include "lib/ops/moe.hpp"

namespace slm::test {
namespace {

std::vector<ops::ExpertChoice> route(const std::vector<float>& logits, int32_t k) {
  std::vector<ops::ExpertChoice> chosen(static_cast<size_t>(k));
  ops::route_row(logits.data(), int32_t(logits.size()), k, chosen.data());
  return chosen;
}

TEST(MoeRouting, TakesTheTopKByProbabilityHighestFirst) {
  const auto chosen = route({0.5f, 2.0f, -1.0f, 1.0f}, 2);
  EXPECT_EQ(chosen[0].expert, 1);
  EXPECT_EQ(chosen[1].expert, 3);
  // The chosen probabilities renormalized: e^2 / (e^2 + e^1) and e^1 / (e^2 + e^1).
  EXPECT_NEAR(chosen[0].weight, 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(chosen[1].weight, 1.0 / (1.0 + std::exp(1.0)), 1e-6);
}

TEST(MoeRouting, BreaksTiesByTheLowerExpertId) {
  const auto chosen = route({1.0f, 3.0f, 0.0f, 3.0f, 3.0f}, 2);
  EXPECT_EQ(chosen[0].expert, 1);
  EXPECT_EQ(chosen[1].expert, 3);
  EXPECT_EQ(chosen[0].weight, 0.5f);
  EXPECT_EQ(chosen[1].weight, 0.5f);
  const auto all_equal = route(std::vector<float>(8, 0.25f), 3);
  for (int r = 0; r < 3; ++r) EXPECT_EQ(all_equal[size_t(r)].expert, r);
}

TEST(MoeRouting, TakesKDistinctExpertsEvenFromNaNLogits) {
  const auto chosen = route({NAN, NAN, NAN, NAN}, 3);
  EXPECT_EQ(chosen[0].expert, 0);
  EXPECT_EQ(chosen[1].expert, 1);
  EXPECT_EQ(chosen[2].expert, 2);
}

TEST(MoeRouting, AllExpertsUsedGiveTheWholeSoftmax) {
  const auto chosen = route({0.0f, std::log(3.0f)}, 2);
  EXPECT_EQ(chosen[0].expert, 1);
  EXPECT_NEAR(chosen[0].weight, 0.75, 1e-7);
  EXPECT_NEAR(chosen[1].weight, 0.25, 1e-7);
}

constexpr int32_t kEmbd = 256, kFf = 256, kExperts = 6, kUsed = 3;  // K-quant rows: multiples of 256

// A layer's experts of one weight type, as a 3-D tensor would hold them, and its F32 router.
struct MoeLayer {
  std::vector<float> router;
  std::vector<uint8_t> gate_bytes, up_bytes, down_bytes;
  std::vector<std::vector<uint8_t>> tiles;  // interleaved copies
  ops::MoeWeights weights;
};

std::vector<ops::WeightMatrix> quantized_stack(GgmlType type, int64_t n_in, int64_t n_out, std::mt19937& rng,
                                               float scale, std::vector<uint8_t>& bytes) {
  const uint64_t row_bytes = ggml_row_bytes(type, uint64_t(n_in));
  bytes.assign(row_bytes * uint64_t(n_out * kExperts), 0);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out * kExperts; ++r) {
    for (float& v : row) v = normal(rng);
    kernels::quantize_row(type, row.data(), bytes.data() + uint64_t(r) * row_bytes, n_in);
  }
  std::vector<ops::WeightMatrix> stack;
  for (int64_t e = 0; e < kExperts; ++e)
    stack.push_back({type, n_in, n_out, bytes.data() + uint64_t(e * n_out) * row_bytes, row_bytes});
  return stack;
}

std::unique_ptr<MoeLayer> make_layer(GgmlType type, bool interleave, uint32_t seed = 7) {
  auto layer = std::make_unique<MoeLayer>();
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f / std::sqrt(float(kEmbd)));  // logits of std ~2
  layer->router.resize(size_t(kExperts * kEmbd));
  for (float& v : layer->router) v = normal(rng);
  ops::MoeWeights& w = layer->weights;
  w.router = {GgmlType::F32, kEmbd, kExperts, reinterpret_cast<const uint8_t*>(layer->router.data()),
              ggml_row_bytes(GgmlType::F32, kEmbd)};
  w.gate = quantized_stack(type, kEmbd, kFf, rng, 1.0f / std::sqrt(float(kEmbd)), layer->gate_bytes);
  w.up = quantized_stack(type, kEmbd, kFf, rng, 1.0f / std::sqrt(float(kEmbd)), layer->up_bytes);
  w.down = quantized_stack(type, kFf, kEmbd, rng, 1.0f / std::sqrt(float(kFf)), layer->down_bytes);
  w.n_expert_used = kUsed;
  if (interleave)
    for (auto* stack : {&w.gate, &w.up, &w.down})
      for (ops::WeightMatrix& m : *stack) {
        if (!ops::should_interleave(m)) continue;
        auto& tiles = layer->tiles.emplace_back(ops::interleaved_bytes(m));
        ops::interleave_matrix(m, tiles.data(), 1);
        m.interleaved = tiles.data();
      }
  return layer;
}

std::vector<float> random_rows(int64_t n_rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(n_rows * kEmbd));
  for (float& v : x) v = normal(rng);
  return x;
}

ModelConfig moe_config() {
  ModelConfig c;
  c.n_embd = kEmbd;
  c.n_expert = kExperts;
  c.n_expert_used = kUsed;
  c.n_ff_exp = kFf;
  return c;
}

std::vector<float> moe_output(const ops::MoeWeights& w, const float* x, int64_t n_rows, int threads) {
  ops::MoeScratch scratch(moe_config(), int32_t(n_rows));
  std::vector<float> y(size_t(n_rows * kEmbd));
  ops::moe_feed_forward(w, x, n_rows, y.data(), scratch, threads);
  return y;
}

// One matrix's product with one row, from the dequantized weights, in double.
std::vector<double> naive_matmul(const ops::WeightMatrix& w, const std::vector<double>& x) {
  std::vector<float> row(size_t(w.n_in));
  std::vector<double> y(size_t(w.n_out));
  for (int64_t o = 0; o < w.n_out; ++o) {
    kernels::dequantize_row(w.type, w.data + uint64_t(o) * w.row_bytes, row.data(), w.n_in);
    for (int64_t i = 0; i < w.n_in; ++i) y[size_t(o)] += double(row[size_t(i)]) * x[size_t(i)];
  }
  return y;
}

// A token's MoE output as the definition reads: softmax, top k (stable by id), renormalized
// weights, and the weighted sum of the chosen experts' SwiGLU FFNs.
std::vector<double> naive_moe(const ops::MoeWeights& w, const float* x_row) {
  const std::vector<double> x(x_row, x_row + kEmbd);
  const std::vector<double> logits = naive_matmul(w.router, x);
  std::vector<int> order(kExperts);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[size_t(a)] > logits[size_t(b)]; });
  double chosen_sum = 0;
  for (int r = 0; r < kUsed; ++r) chosen_sum += std::exp(logits[size_t(order[size_t(r)])]);
  std::vector<double> y(kEmbd, 0.0);
  for (int r = 0; r < kUsed; ++r) {
    const int e = order[size_t(r)];
    const double weight = std::exp(logits[size_t(e)]) / chosen_sum;
    const std::vector<double> gate = naive_matmul(w.gate[size_t(e)], x), up = naive_matmul(w.up[size_t(e)], x);
    std::vector<double> hidden(kFf);
    for (int i = 0; i < kFf; ++i) hidden[size_t(i)] = gate[size_t(i)] / (1.0 + std::exp(-gate[size_t(i)])) * up[size_t(i)];
    const std::vector<double> down = naive_matmul(w.down[size_t(e)], hidden);
    for (int j = 0; j < kEmbd; ++j) y[size_t(j)] += weight * down[size_t(j)];
  }
  return y;
}

TEST(MoeFeedForward, EqualsTheNaivePerTokenReference) {
  const auto layer = make_layer(GgmlType::F32, false);
  constexpr int64_t kRows = 16;
  const std::vector<float> x = random_rows(kRows, 1);
  const std::vector<float> y = moe_output(layer->weights, x.data(), kRows, 2);
  for (int64_t t = 0; t < kRows; ++t) {
    const std::vector<double> expected = naive_moe(layer->weights, x.data() + t * kEmbd);
    double max_error = 0, max_value = 0;
    for (int j = 0; j < kEmbd; ++j) {
      max_error = std::max(max_error, std::abs(double(y[size_t(t * kEmbd + j)]) - expected[size_t(j)]));
      max_value = std::max(max_value, std::abs(expected[size_t(j)]));
    }
    EXPECT_LE(max_error, 1e-5 * max_value) << "row " << t;
  }
}

TEST(MoeFeedForward, RowsPickDifferentExpertsAndUnchosenExpertsAreNeverRead) {
  auto layer = make_layer(GgmlType::F32, false);
  constexpr int64_t kRows = 16;
  const std::vector<float> x = random_rows(kRows, 1);
  ops::MoeScratch scratch(moe_config(), kRows);
  std::vector<float> y(size_t(kRows * kEmbd));
  ops::moe_feed_forward(layer->weights, x.data(), kRows, y.data(), scratch, 1);
  std::vector<int> times_chosen(kExperts, 0);
  for (int64_t i = 0; i < kRows * kUsed; ++i) ++times_chosen[size_t(scratch.chosen[size_t(i)].expert)];
  EXPECT_GE(std::count_if(times_chosen.begin(), times_chosen.end(), [](int n) { return n > 0; }), 4)
      << "the test's router spreads the rows";

  // Rows routed away from expert 0 give the same output with its weights poisoned.
  int64_t row_without_0 = -1;
  for (int64_t t = 0; t < kRows && row_without_0 < 0; ++t) {
    bool uses_0 = false;
    for (int r = 0; r < kUsed; ++r) uses_0 |= scratch.chosen[size_t(t * kUsed + r)].expert == 0;
    if (!uses_0) row_without_0 = t;
  }
  ASSERT_GE(row_without_0, 0);
  const float* row = x.data() + row_without_0 * kEmbd;
  const std::vector<float> before = moe_output(layer->weights, row, 1, 1);
  std::fill(layer->gate_bytes.begin(), layer->gate_bytes.begin() + long(layer->gate_bytes.size() / kExperts), 0xff);
  const std::vector<float> after = moe_output(layer->weights, row, 1, 1);
  EXPECT_EQ(0, std::memcmp(before.data(), after.data(), before.size() * sizeof(float)));
}

struct GroupingCase {
  GgmlType type;
  bool interleave;
};

class MoeGrouping : public ::testing::TestWithParam<GroupingCase> {};

// ops::matmul's promise that the grouping rests on: a row's outputs have the same bits alone
// (the kernels' one-token path) and in a group of any size (the tiled path).
TEST_P(MoeGrouping, MatmulGivesARowTheSameBitsInAGroupOfAnySize) {
  const auto layer = make_layer(GetParam().type, GetParam().interleave);
  const ops::WeightMatrix& w = layer->weights.gate[2];
  for (int64_t n_rows : {2, 3, 8, 17}) {
    const std::vector<float> x = random_rows(n_rows, uint32_t(n_rows));
    std::vector<float> together(size_t(n_rows * w.n_out)), alone(size_t(w.n_out));
    ops::matmul(w, x.data(), n_rows, together.data(), 2);
    for (int64_t t = 0; t < n_rows; ++t) {
      ops::matmul(w, x.data() + t * kEmbd, 1, alone.data(), 1);
      ASSERT_EQ(0, std::memcmp(alone.data(), together.data() + t * w.n_out, alone.size() * sizeof(float)))
          << "row " << t << " of " << n_rows;
    }
  }
}

TEST_P(MoeGrouping, ARowsOutputIsTheSameAloneAndInAnyBatch) {
  const auto layer = make_layer(GetParam().type, GetParam().interleave);
  constexpr int64_t kRows = 24;
  const std::vector<float> x = random_rows(kRows, 3);
  std::vector<float> alone;
  for (int64_t t = 0; t < kRows; ++t) {
    const std::vector<float> row = moe_output(layer->weights, x.data() + t * kEmbd, 1, 1);
    alone.insert(alone.end(), row.begin(), row.end());
  }
  for (int threads : {1, 2})
    for (int64_t n_rows : {int64_t(5), kRows}) {
      const std::vector<float> batched = moe_output(layer->weights, x.data(), n_rows, threads);
      ASSERT_EQ(0, std::memcmp(batched.data(), alone.data(), batched.size() * sizeof(float)))
          << n_rows << " rows, " << threads << " threads";
    }
  // The same rows in another order: each keeps its bits.
  std::vector<float> reversed(x.size());
  for (int64_t t = 0; t < kRows; ++t)
    std::memcpy(reversed.data() + (kRows - 1 - t) * kEmbd, x.data() + t * kEmbd, kEmbd * sizeof(float));
  const std::vector<float> y = moe_output(layer->weights, reversed.data(), kRows, 2);
  for (int64_t t = 0; t < kRows; ++t)
    ASSERT_EQ(0, std::memcmp(y.data() + (kRows - 1 - t) * kEmbd, alone.data() + t * kEmbd, kEmbd * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(WeightFormats, MoeGrouping,
                         ::testing::Values(GroupingCase{GgmlType::F32, false}, GroupingCase{GgmlType::F16, false},
                                           GroupingCase{GgmlType::Q8_0, false}, GroupingCase{GgmlType::Q8_0, true},
                                           GroupingCase{GgmlType::Q4_K, false}, GroupingCase{GgmlType::Q4_K, true},
                                           GroupingCase{GgmlType::Q6_K, false}, GroupingCase{GgmlType::Q6_K, true},
                                           GroupingCase{GgmlType::Q5_K, false}, GroupingCase{GgmlType::Q5_K, true}),
                         [](const auto& info) {
                           return std::string(ggml_type_name(info.param.type)) +
                                  (info.param.interleave ? "_interleaved" : "_rows");
                         });

}  // namespace
}  // namespace slm::test
