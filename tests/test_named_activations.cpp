// kernels::NamedActivations (kernels/matmul.hpp): under a name, a thread quantizes an x once for
// many row ranges. Every output keeps the bits of an unnamed call; a new name sees new contents
// at the same address; and formats that share a block size but not a quantizer (Q4_K's 14 bits,
// Q6_K's 13) each get their own quantization under one name.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/matmul.hpp"
#include "support/kernel_checks.hpp"

namespace slm::test {
namespace {

using kernels::checks::RandomMatrix;

constexpr int64_t kRows = 4 * kernels::kInterleavedRows, kTokens = 2, kIn = 512;

struct Interleaved {
  RandomMatrix m;
  std::vector<uint8_t> tiles;
};

Interleaved interleaved(GgmlType type, uint32_t seed) {
  RandomMatrix m = kernels::checks::random_matrix(type, kRows, kIn, seed);
  std::vector<uint8_t> tiles = kernels::checks::interleaved_tiles(m);
  return {std::move(m), std::move(tiles)};
}

// Rows [row_begin, row_end) of w x into y ([kTokens][kRows]).
void multiply(const Interleaved& w, const std::vector<float>& x, std::vector<float>& y, int64_t row_begin,
              int64_t row_end) {
  kernels::matmul_interleaved_rows(w.m.type, w.tiles.data(), kIn, x.data(), kTokens, y.data(), kRows, row_begin,
                                   row_end);
}

std::vector<float> unnamed_product(const Interleaved& w, const std::vector<float>& x) {
  std::vector<float> y(kTokens * kRows);
  multiply(w, x, y, 0, kRows);
  return y;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool interleaves_all(std::initializer_list<GgmlType> types) {
  for (GgmlType type : types)
    if (!kernels::interleaves(type)) return false;
  return true;
}

TEST(NamedActivations, RowRangesUnderOneNameGiveTheBitsOfOneUnnamedCall) {
  if (!interleaves_all({GgmlType::Q5_0})) GTEST_SKIP() << "the active kernels do not interleave Q5_0";
  const Interleaved w = interleaved(GgmlType::Q5_0, 1);
  const std::vector<float> x = kernels::checks::random_activations(kTokens * kIn, 2);
  std::vector<float> y(kTokens * kRows, -1.0f);
  {
    const kernels::NamedActivations named(kernels::new_activations_name());
    for (int64_t row = 0; row < kRows; row += kernels::kInterleavedRows)
      multiply(w, x, y, row, row + kernels::kInterleavedRows);
  }
  EXPECT_TRUE(same_bits(y, unnamed_product(w, x)));
}

TEST(NamedActivations, ANewNameSeesNewContentsAtTheSameAddress) {
  if (!interleaves_all({GgmlType::Q5_0})) GTEST_SKIP() << "the active kernels do not interleave Q5_0";
  const Interleaved w = interleaved(GgmlType::Q5_0, 3);
  std::vector<float> x = kernels::checks::random_activations(kTokens * kIn, 4);
  std::vector<float> first(kTokens * kRows), second(kTokens * kRows);
  {
    const kernels::NamedActivations named(kernels::new_activations_name());
    multiply(w, x, first, 0, kRows);
  }
  for (float& v : x) v = -2.0f * v;  // the next layer's activations, in the same buffer
  {
    const kernels::NamedActivations named(kernels::new_activations_name());
    multiply(w, x, second, 0, kRows);
  }
  EXPECT_TRUE(same_bits(second, unnamed_product(w, x)));
  EXPECT_FALSE(same_bits(second, first));
}

TEST(NamedActivations, FormatsWithOneBlockSizeAndTwoQuantizersEachGetTheirOwn) {
  if (!interleaves_all({GgmlType::Q4_K, GgmlType::Q6_K})) GTEST_SKIP() << "the active kernels do not interleave Q4_K and Q6_K";
  const Interleaved q4_k = interleaved(GgmlType::Q4_K, 5), q6_k = interleaved(GgmlType::Q6_K, 6);
  const std::vector<float> x = kernels::checks::random_activations(kTokens * kIn, 7);
  std::vector<float> y4(kTokens * kRows, -1.0f), y6(kTokens * kRows, -1.0f);
  {
    const kernels::NamedActivations named(kernels::new_activations_name());
    for (int64_t row = 0; row < kRows; row += kernels::kInterleavedRows) {  // alternating, as one loop's chunks
      multiply(q4_k, x, y4, row, row + kernels::kInterleavedRows);
      multiply(q6_k, x, y6, row, row + kernels::kInterleavedRows);
    }
  }
  EXPECT_TRUE(same_bits(y4, unnamed_product(q4_k, x)));
  EXPECT_TRUE(same_bits(y6, unnamed_product(q6_k, x)));
}

}  // namespace
}  // namespace slm::test
