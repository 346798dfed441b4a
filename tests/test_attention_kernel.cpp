// kernels::attend_head on every available instruction set against the scalar reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>

#include "kernels/attention.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/quantize.hpp"

namespace slm::kernels {
namespace {

std::vector<uint16_t> to_fp16(const std::vector<float>& values) {
  std::vector<uint16_t> halves(values.size());
  for (size_t i = 0; i < values.size(); ++i) halves[i] = fp32_to_fp16(values[i]);
  return halves;
}

// The F16 or the F32 copy of keys and values, as a kernel reads them.
KvRows kv_rows(bool f16, const std::vector<float>& keys, const std::vector<float>& values,
               const std::vector<uint16_t>& keys16, const std::vector<uint16_t>& values16, int64_t stride) {
  KvRows kv;
  if (f16) {
    kv.keys_f16 = keys16.data();
    kv.values_f16 = values16.data();
  } else {
    kv.keys_f32 = keys.data();
    kv.values_f32 = values.data();
  }
  kv.stride = stride;
  return kv;
}

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
  const std::vector<uint16_t> keys16 = to_fp16(keys), values16 = to_fp16(values);
  auto run = [&](const IsaKernels& kernels) {
    std::vector<float> scores(size_t(c.n_keys)), out(size_t(c.head_dim), NAN);
    AttentionHead head;
    head.q = q.data();
    head.head_dim = c.head_dim;
    head.scale = 1.0f / std::sqrt(float(c.head_dim));
    head.kv = kv_rows(c.f16, keys, values, keys16, values16, stride);
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
  for (Isa isa : {Isa::Avx2, Isa::AvxVnni, Isa::Avx512, Isa::Neon}) {
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

// attend_queries: tokens x heads sharing a KV head, causal, against the scalar reference per
// query; and each query's output the same bits whether evaluated with the others or alone.
struct GroupCase {
  int32_t head_dim;
  int32_t n_tokens;
  int32_t n_heads;
  int32_t first_n_keys;
  bool f16;
  int32_t window = 0;     // sliding window
  float softcap = 0.0f;   // Gemma 2's logit soft cap
};

// The same rows in a paged cache: logical block b of kKvBlockRows rows stored at physical block
// blocks[b] (the reverse order), rows `stride` apart within a block.
struct PagedRows {
  std::vector<int32_t> blocks;
  std::vector<float> keys, values;
  std::vector<uint16_t> keys16, values16;

  PagedRows(const std::vector<float>& k, const std::vector<float>& v, int64_t stride, int32_t n_rows) {
    const int32_t n_blocks = (n_rows + kKvBlockRows - 1) / kKvBlockRows;
    for (int32_t b = 0; b < n_blocks; ++b) blocks.push_back(n_blocks - 1 - b);
    keys.assign(size_t(n_blocks) * kKvBlockRows * size_t(stride), NAN);
    values = keys;
    for (int32_t j = 0; j < n_rows; ++j)
      for (int64_t d = 0; d < stride; ++d) {
        const size_t physical = size_t(offset(j, stride) + d), logical = size_t(j * stride + d);
        keys[physical] = k[logical];
        values[physical] = v[logical];
      }
    keys16 = to_fp16(keys);
    values16 = to_fp16(values);
  }
  int64_t offset(int32_t j, int64_t stride) const {
    return int64_t(blocks[size_t(j / kKvBlockRows)]) * kKvBlockRows * stride + (j % kKvBlockRows) * stride;
  }
  KvRows rows(bool f16, int64_t stride) const {
    KvRows kv = kv_rows(f16, keys, values, keys16, values16, stride);
    kv.blocks = blocks.data();
    kv.block_stride = kKvBlockRows * stride;
    return kv;
  }
};

class AttentionQueriesKernel : public ::testing::TestWithParam<GroupCase> {};

TEST_P(AttentionQueriesKernel, EveryQueryAgreesWithTheReferenceAndDoesNotDependOnTheOthers) {
  const GroupCase c = GetParam();
  const int32_t n_keys_max = c.first_n_keys + c.n_tokens - 1;
  const int64_t stride = c.head_dim * 2 + 3;
  const int64_t token_stride = int64_t(c.n_heads + 1) * c.head_dim;  // room for another head's rows
  std::mt19937 rng(99 + c.head_dim * 7 + c.n_tokens * 13 + c.first_n_keys);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(size_t(token_stride * c.n_tokens)), keys(size_t(stride * n_keys_max)), values(keys.size());
  for (float& x : q) x = 2.0f * normal(rng);
  for (float& x : keys) x = normal(rng);
  for (float& x : values) x = normal(rng);
  const std::vector<uint16_t> keys16 = to_fp16(keys), values16 = to_fp16(values);
  const PagedRows paged(keys, values, stride, n_keys_max);
  bool use_paged = false;
  const auto queries_for = [&](int32_t first_token, int32_t n_tokens, int32_t first_head, int32_t n_heads, float* out) {
    AttentionQueries a;
    const int64_t offset = first_token * token_stride + int64_t(first_head) * c.head_dim;
    a.q = q.data() + offset;
    a.out = out + offset;
    a.token_stride = token_stride;
    a.n_tokens = n_tokens;
    a.n_heads = n_heads;
    a.head_dim = c.head_dim;
    a.scale = 1.0f / std::sqrt(float(c.head_dim));
    a.softcap = c.softcap;
    a.window = c.window;
    a.kv = use_paged ? paged.rows(c.f16, stride) : kv_rows(c.f16, keys, values, keys16, values16, stride);
    a.first_n_keys = c.first_n_keys + first_token;
    return a;
  };
  const auto run = [&](const IsaKernels& kernels, int32_t first_token, int32_t n_tokens, int32_t first_head,
                       int32_t n_heads, std::vector<float>& out) {
    AttentionQueries a = queries_for(first_token, n_tokens, first_head, n_heads, out.data());
    std::vector<float> scratch(size_t(attention_scratch_floats(a)));
    a.scratch = scratch.data();
    kernels.attend_queries(a);
  };
  std::vector<float> reference(q.size(), NAN);
  run(kernels_for(Isa::Scalar), 0, c.n_tokens, 0, c.n_heads, reference);
  float max_abs_value = 0;
  for (float v : values) max_abs_value = std::max(max_abs_value, std::abs(v));
  // As EveryIsaAgreesWithTheScalarReference, plus the online softmax's rescaling of the running
  // output by exp(M - M') once per block of 64 keys: a few ulps per block.
  const float tolerance = 4.0f * float(16 + n_keys_max + 4 * (n_keys_max / 64 + 1)) * 0x1p-24f * max_abs_value;
  std::vector<float> avx2_bits;  // the AVX-512 kernel does each query's operations in the same order
  for (Isa isa : kAllIsas) {
    if (!isa_available(isa)) continue;
    std::vector<float> together(q.size(), NAN);
    run(kernels_for(isa), 0, c.n_tokens, 0, c.n_heads, together);
    if (isa == Isa::Avx2) avx2_bits = together;
    if (isa == Isa::Avx512 && !avx2_bits.empty())
      for (size_t i = 0; i < q.size(); ++i)
        EXPECT_EQ(std::bit_cast<uint32_t>(together[i]), std::bit_cast<uint32_t>(avx2_bits[i])) << "avx512 vs avx2, float " << i;
    for (int32_t t = 0; t < c.n_tokens; ++t)
      for (int32_t h = 0; h < c.n_heads; ++h) {
        std::vector<float> alone(q.size(), NAN);
        run(kernels_for(isa), t, 1, h, 1, alone);
        for (int32_t d = 0; d < c.head_dim; ++d) {
          const size_t i = size_t(t * token_stride + h * c.head_dim + d);
          EXPECT_NEAR(together[i], reference[i], tolerance) << isa_name(isa) << " token " << t << " head " << h;
          EXPECT_EQ(std::bit_cast<uint32_t>(together[i]), std::bit_cast<uint32_t>(alone[i]))
              << isa_name(isa) << " token " << t << " head " << h << " element " << d;
        }
      }
    // The slots between the heads' rows are not written.
    for (int32_t t = 0; t < c.n_tokens; ++t)
      EXPECT_TRUE(std::isnan(together[size_t(t * token_stride + c.n_heads * c.head_dim)]));
    // The same rows in a paged cache give the same bits (the NaN rows of unused block slots are
    // never read).
    std::vector<float> from_pages(q.size(), NAN);
    use_paged = true;
    run(kernels_for(isa), 0, c.n_tokens, 0, c.n_heads, from_pages);
    use_paged = false;
    for (int32_t t = 0; t < c.n_tokens; ++t)
      for (int32_t i = 0; i < c.n_heads * c.head_dim; ++i)
        EXPECT_EQ(std::bit_cast<uint32_t>(from_pages[size_t(t * token_stride + i)]),
                  std::bit_cast<uint32_t>(together[size_t(t * token_stride + i)]))
            << isa_name(isa) << " paged, token " << t;
  }
}

// A window of w keys gives each query what attention over only its last w keys gives.
TEST(AttentionQueriesKernel, AWindowEqualsAttentionOverTheLastKeysAlone) {
  const int32_t head_dim = 64, n_keys = 150, window = 40;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(head_dim)), keys(static_cast<size_t>(head_dim * n_keys)), values(keys.size());
  for (float& x : q) x = 2.0f * normal(rng);
  for (float& x : keys) x = normal(rng);
  for (float& x : values) x = normal(rng);
  for (Isa isa : kAllIsas) {
    if (!isa_available(isa)) continue;
    const auto attend = [&](const float* k, const float* v, int32_t n, int32_t w) {
      std::vector<float> out(static_cast<size_t>(head_dim)), scratch;
      AttentionQueries a;
      a.q = q.data();
      a.out = out.data();
      a.token_stride = head_dim;
      a.n_tokens = 1;
      a.n_heads = 1;
      a.head_dim = head_dim;
      a.scale = 0.125f;
      a.window = w;
      a.kv.keys_f32 = k;
      a.kv.values_f32 = v;
      a.kv.stride = head_dim;
      a.first_n_keys = n;
      scratch.resize(size_t(attention_scratch_floats(a)));
      a.scratch = scratch.data();
      kernels_for(isa).attend_queries(a);
      return out;
    };
    const auto windowed = attend(keys.data(), values.data(), n_keys, window);
    const size_t skip = size_t(n_keys - window) * head_dim;
    const auto last_keys_only = attend(keys.data() + skip, values.data() + skip, window, 0);
    for (int32_t d = 0; d < head_dim; ++d)
      EXPECT_NEAR(windowed[size_t(d)], last_keys_only[size_t(d)], 1e-5f) << isa_name(isa) << " element " << d;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionQueriesKernel,
                         ::testing::Values(GroupCase{64, 8, 7, 1, true}, GroupCase{64, 3, 2, 100, false},
                                           GroupCase{128, 5, 4, 60, true}, GroupCase{8, 9, 1, 200, false},
                                           GroupCase{6, 4, 3, 63, true}, GroupCase{80, 2, 2, 129, false},
                                           GroupCase{64, 1, 7, 1000, true}, GroupCase{64, 9, 2, 100, true, 37},
                                           GroupCase{128, 8, 2, 70, false, 64, 0.0f}, GroupCase{64, 5, 3, 90, true, 0, 2.5f},
                                           GroupCase{32, 12, 2, 200, false, 33, 1.5f}, GroupCase{256, 3, 4, 100, true},
                                           // four queries or fewer: two keys per ymm register (odd
                                           // key counts leave half a pair; windows and caps mask
                                           // single keys of a pair)
                                           GroupCase{64, 1, 4, 1001, true}, GroupCase{256, 1, 4, 77, false},
                                           GroupCase{64, 2, 2, 63, true}, GroupCase{128, 1, 3, 95, true, 40},
                                           GroupCase{64, 4, 1, 30, false, 7, 2.5f}, GroupCase{16, 1, 2, 1, true},
                                           // decode steps of Qwen3.5 (F16 values converted where they
                                           // are used, heads 4 at a time) and of 5 heads (4 + 1)
                                           GroupCase{256, 1, 4, 77, true}, GroupCase{64, 1, 5, 300, true},
                                           // values summed for up to 7 heads of a token at once:
                                           // 8 heads as 4 + 4, 14 as 7 + 7, 6 and 7 heads whose
                                           // lanes span two query vectors, a head_dim of partial chunks
                                           GroupCase{64, 1, 8, 300, true}, GroupCase{64, 2, 14, 90, true},
                                           GroupCase{128, 3, 6, 150, false}, GroupCase{40, 2, 7, 70, true}));

TEST(AttentionKernel, OneKeyReturnsItsValueRow) {
  const std::vector<float> q = {1, 2, 3}, key = {0.5f, -1, 2}, value = {4, -5, 6};
  for (Isa isa : kAllIsas) {
    if (!isa_available(isa)) continue;
    float score = 0, out[3] = {};
    AttentionHead head;
    head.q = q.data();
    head.head_dim = 3;
    head.kv.keys_f32 = key.data();
    head.kv.values_f32 = value.data();
    head.kv.stride = 3;
    head.n_keys = 1;
    head.scores = &score;
    head.out = out;
    kernels_for(isa).attend_head(head);
    EXPECT_FLOAT_EQ(out[0], 4);
    EXPECT_FLOAT_EQ(out[1], -5);
    EXPECT_FLOAT_EQ(out[2], 6);
  }
}

// A Q8_0 cache's query rounding (attention.hpp): each element within half a step (dq / 2) of the
// query, the step amax / 32767 so that the largest element is +-32767; a zero block stays zero; and
// score_q8_0 is the block-by-block sum of the exact integer dot products times dq * dk.
TEST(AttentionQ8_0, QueriesRoundToInt16StepsAndScoresSumExactIntegerDots) {
  constexpr int32_t kHeadDim = 96;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> q(kHeadDim), key(kHeadDim);
  for (float& x : q) x = normal(rng);
  for (int32_t i = 32; i < 64; ++i) q[size_t(i)] = 0.0f;  // block 1 all zero
  for (float& x : key) x = normal(rng);
  std::vector<int16_t> q16(kHeadDim);
  float dq[kHeadDim / 32];
  quantize_query_q8_0(q.data(), kHeadDim, q16.data(), dq);
  EXPECT_EQ(dq[1], 0.0f);
  for (int32_t b = 0; b < kHeadDim / 32; ++b) {
    int32_t largest = 0;
    for (int32_t i = 32 * b; i < 32 * b + 32; ++i) {
      largest = std::max(largest, std::abs(int32_t(q16[size_t(i)])));
      EXPECT_LE(std::abs(float(q16[size_t(i)]) * dq[b] - q[size_t(i)]), 0.5001f * dq[b]) << i;
    }
    EXPECT_EQ(largest, b == 1 ? 0 : 32767) << b;
  }
  std::vector<BlockQ8_0> key8(kHeadDim / 32);
  quantize_row_q8_0(key.data(), key8.data(), kHeadDim);
  double expected = 0.0;
  for (int32_t b = 0; b < kHeadDim / 32; ++b) {
    int64_t dot = 0;
    for (int32_t i = 0; i < 32; ++i) dot += int64_t(q16[size_t(32 * b + i)]) * key8[size_t(b)].qs[i];
    expected += double(dot) * dq[b] * fp16_to_fp32(key8[size_t(b)].d);
  }
  const float score = score_q8_0(q16.data(), dq, key8.data(), kHeadDim);
  EXPECT_NEAR(score, expected, 1e-5 * std::abs(expected) + 1e-6);
  EXPECT_NE(score, 0.0f);
}

}  // namespace
}  // namespace slm::kernels
