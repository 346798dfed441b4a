// kernels::attend_head on every available instruction set against the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/attention.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {
namespace {

struct Case {
  int32_t head_dim;
  int32_t n_keys;
  bool f16;
};

class AttentionKernel : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionKernel, EveryIsaAgreesWithTheScalarReference) {
  const Case c = GetParam();
  const int64_t stride = c.head_dim * 3 + 5;  // rows of a wider cache: other heads sit between them
  std::mt19937 rng(1234 + c.head_dim * 100 + c.n_keys);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(size_t(c.head_dim)), keys(size_t(stride * c.n_keys)), values(keys.size());
  for (float& x : q) x = 2.0f * normal(rng);  // scores of a few units, like real attention
  for (float& x : keys) x = normal(rng);
  for (float& x : values) x = normal(rng);
  std::vector<uint16_t> keys16(keys.size()), values16(values.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    keys16[i] = fp32_to_fp16(keys[i]);
    values16[i] = fp32_to_fp16(values[i]);
  }
  auto run = [&](const IsaKernels& kernels) {
    std::vector<float> scores(size_t(c.n_keys)), out(size_t(c.head_dim), NAN);
    AttentionHead head;
    head.q = q.data();
    head.head_dim = c.head_dim;
    head.scale = 1.0f / std::sqrt(float(c.head_dim));
    if (c.f16) {
      head.keys_f16 = keys16.data();
      head.values_f16 = values16.data();
    } else {
      head.keys_f32 = keys.data();
      head.values_f32 = values.data();
    }
    head.stride = stride;
    head.n_keys = c.n_keys;
    head.scores = scores.data();
    head.out = out.data();
    kernels.attend_head(head);
    return out;
  };
  const std::vector<float> reference = run(kernels_for(Isa::Scalar));
  float max_abs_value = 0;
  for (float v : values) max_abs_value = std::max(max_abs_value, std::abs(v));
  // out is a convex combination of value rows. The SIMD softmax weights differ from the
  // scalar ones by a few float ulps (a polynomial exp within 2 ulp, FMA in the dots, a float
  // rather than double sum), and the accumulation over n_keys rows rounds once per row: the
  // bound is 4 * (16 + n_keys) ulps of the largest value.
  const float tolerance = 4.0f * float(16 + c.n_keys) * 0x1p-24f * max_abs_value;
  for (Isa isa : {Isa::Avx2, Isa::Neon}) {
    if (!isa_available(isa)) continue;
    const std::vector<float> out = run(kernels_for(isa));
    for (int32_t d = 0; d < c.head_dim; ++d)
      EXPECT_NEAR(out[size_t(d)], reference[size_t(d)], tolerance) << isa_name(isa) << " element " << d;
  }
  for (float v : reference) EXPECT_TRUE(std::isfinite(v));
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionKernel,
                         ::testing::Values(Case{8, 1, false}, Case{8, 7, false}, Case{8, 300, false},
                                           Case{64, 9, false}, Case{64, 129, true}, Case{128, 33, true},
                                           Case{6, 5, false}, Case{6, 17, true}, Case{80, 64, false},
                                           Case{128, 1, true}));

TEST(AttentionKernel, OneKeyReturnsItsValueRow) {
  const std::vector<float> q = {1, 2, 3}, key = {0.5f, -1, 2}, value = {4, -5, 6};
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Neon}) {
    if (!isa_available(isa)) continue;
    float score = 0, out[3] = {};
    AttentionHead head;
    head.q = q.data();
    head.head_dim = 3;
    head.keys_f32 = key.data();
    head.values_f32 = value.data();
    head.stride = 3;
    head.n_keys = 1;
    head.scores = &score;
    head.out = out;
    kernels_for(isa).attend_head(head);
    EXPECT_FLOAT_EQ(out[0], 4);
    EXPECT_FLOAT_EQ(out[1], -5);
    EXPECT_FLOAT_EQ(out[2], 6);
  }
}

}  // namespace
}  // namespace slm::kernels
