// Every tensor of every model in golden/dequant.json dequantizes to the values recorded there,
// which llama.cpp's gguf-py numpy dequantizers computed independently; and so do the IQ4_NL and
// IQ4_XS blocks of golden_iq4_blocks.hpp, which llama-quantize wrote.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <iterator>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "golden_iq4_blocks.hpp"
#include "kernels/dequantize.hpp"
#include "slm/gguf.hpp"
#include "support/assets.hpp"

namespace slm {
namespace {

struct TensorStatistics {
  double sum = 0, sumsq = 0, absmax = 0;
  std::vector<float> first16;  // of row 0
};

// Dequantizes the tensor row by row, accumulating in double over the whole tensor in file order,
// as the reference did.
TensorStatistics dequantize_and_summarize(const GgufTensor& tensor) {
  const int64_t row_length = int64_t(tensor.ne[0]);
  const uint64_t row_bytes = ggml_row_bytes(tensor.type, tensor.ne[0]);
  std::vector<float> row(static_cast<size_t>(row_length));
  TensorStatistics stats;
  for (uint64_t r = 0; r < tensor.n_rows(); ++r) {
    kernels::dequantize_row(tensor.type, tensor.data + r * row_bytes, row.data(), row_length);
    if (r == 0) stats.first16.assign(row.begin(), row.begin() + std::min<int64_t>(16, row_length));
    for (const float v : row) {
      stats.sum += v;
      stats.sumsq += double(v) * v;
      stats.absmax = std::max(stats.absmax, std::fabs(double(v)));
    }
  }
  return stats;
}

// |actual - expected| <= 1e-6 * |expected|. Both sums add the same float32 values in the same
// order in double, so they agree to ~1e-15; 1e-6 only leaves room for a different summation.
void expect_relative(double actual, double expected, const std::string& what) {
  EXPECT_LE(std::fabs(actual - expected), 1e-6 * std::fabs(expected))
      << what << ": " << actual << " vs " << expected;
}

TEST(DequantGolden, EveryTensorOfEveryModelMatchesTheReference) {
  const auto golden_path = test::shared_path("golden/dequant.json");
  SLM_REQUIRE_ASSET(golden_path);
  const auto golden = nlohmann::json::parse(test::read_file(golden_path));

  int models_checked = 0, tensors_checked = 0;
  for (const auto& [model_name, model] : golden.at("models").items()) {
    const auto model_path = test::shared_path("models/" + model_name);
    if (!std::filesystem::exists(model_path)) {
      ADD_FAILURE() << "golden/dequant.json lists " << model_name << " but " << model_path << " is missing";
      continue;
    }
    // A model holding a weight format slm does not read (IQ4_XS, ...) is not this test's to check.
    const auto& tensors = model.at("tensors");
    const auto unknown = std::find_if(tensors.begin(), tensors.end(), [](const nlohmann::json& t) {
      return !ggml_type_from_name(t.at("type").get<std::string>());
    });
    if (unknown != tensors.end()) {
      std::printf("  skipped %s: tensor %s is %s, a type slm does not read\n", model_name.c_str(),
                  unknown->at("name").get<std::string>().c_str(), unknown->at("type").get<std::string>().c_str());
      continue;
    }
    const GgufFile file = GgufFile::open(model_path.string());
    for (const auto& expected : tensors) {
      const std::string name = expected.at("name");
      const std::string where = model_name + " " + name;
      const GgufTensor* tensor = file.find_tensor(name);
      ASSERT_NE(tensor, nullptr) << where;
      EXPECT_EQ(ggml_type_name(tensor->type), expected.at("type").get<std::string>()) << where;
      const auto ne = expected.at("ne").get<std::vector<uint64_t>>();
      for (size_t d = 0; d < 4; ++d)
        EXPECT_EQ(tensor->ne[d], d < ne.size() ? ne[d] : 1u) << where << " ne[" << d << "]";

      const TensorStatistics stats = dequantize_and_summarize(*tensor);
      // first16: exact float32 equality. Our dequantizers do the same float32 operations in the
      // same order as the reference (e.g. Q4_K: (d * scale) * q - (dmin * min)), so every value
      // is bit-identical; the JSON doubles hold those float32 values exactly.
      const auto first16 = expected.at("first16").get<std::vector<double>>();
      ASSERT_EQ(stats.first16.size(), first16.size()) << where;
      for (size_t i = 0; i < first16.size(); ++i)
        EXPECT_EQ(stats.first16[i], float(first16[i])) << where << " value " << i;
      expect_relative(stats.sum, expected.at("sum"), where + " sum");
      expect_relative(stats.sumsq, expected.at("sumsq"), where + " sumsq");
      expect_relative(stats.absmax, expected.at("absmax"), where + " absmax");
      ++tensors_checked;
    }
    ++models_checked;
  }
  std::printf("  checked %d tensors of %d models\n", tensors_checked, models_checked);
  EXPECT_GT(tensors_checked, 0);
}

// Bit for bit: each value is d * table value (IQ4_NL) or (d * (ls - 32)) * table value
// (IQ4_XS), products exact in float32, so no order of operations can change a bit.
void expect_golden_values(GgmlType type, const uint8_t* blocks, size_t n_bytes, const uint32_t* values, size_t n) {
  ASSERT_EQ(ggml_row_bytes(type, n), n_bytes) << ggml_type_name(type);
  std::vector<float> dequantized(n);
  kernels::dequantize_row(type, blocks, dequantized.data(), int64_t(n));
  int differing = 0;
  for (size_t i = 0; i < n; ++i)
    if (std::bit_cast<uint32_t>(dequantized[i]) != values[i] && ++differing <= 8)
      ADD_FAILURE() << ggml_type_name(type) << " value " << i << ": " << dequantized[i] << ", gguf-py "
                    << std::bit_cast<float>(values[i]);
  EXPECT_EQ(differing, 0) << ggml_type_name(type);
}

TEST(DequantGolden, Iq4NlBlocksOfLlamaQuantizeGiveGgufPysValues) {
  expect_golden_values(GgmlType::IQ4_NL, golden::kIQ4_NLBlocks, std::size(golden::kIQ4_NLBlocks),
                       golden::kIQ4_NLValues, std::size(golden::kIQ4_NLValues));
}

TEST(DequantGolden, Iq4XsBlocksOfLlamaQuantizeGiveGgufPysValues) {
  expect_golden_values(GgmlType::IQ4_XS, golden::kIQ4_XSBlocks, std::size(golden::kIQ4_XSBlocks),
                       golden::kIQ4_XSValues, std::size(golden::kIQ4_XSValues));
}

}  // namespace
}  // namespace slm
