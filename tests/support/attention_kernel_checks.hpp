// Checks of each instruction set's attention kernels (attend_head, attend_queries) against the
// scalar reference on awkward shapes: head_dim 64, 80, 128, 256 and narrow odd ones, key counts
// that are not multiples of a key block, F32 and F16 caches, contiguous and paged rows, sliding
// windows and soft caps. Shared by the GoogleTest suite (tests/test_kernels_simd.cpp) and the
// cross-compiled NEON driver that runs under qemu (tests/cross/kernel_check_main.cpp).
#pragma once

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"
#include "support/kernel_checks.hpp"

namespace slm::kernels::checks {

// NEON's attention is the reference's arithmetic, fused multiply-adds where AArch64's compilers
// contract the reference's, so it gives the reference's bits; the x86 kernels use a polynomial exp
// and an online softmax (within attention_tolerance of it).
inline bool attention_gives_the_reference_bits(Isa isa) { return isa == Isa::Scalar || isa == Isa::Neon; }

struct AttentionShape {
  int32_t head_dim;
  int32_t n_tokens;
  int32_t n_heads;
  int32_t first_n_keys;  // the first token's keys; token t has first_n_keys + t
  bool f16;
  int32_t window = 0;
  float softcap = 0.0f;
};

inline const std::vector<AttentionShape>& attention_shapes() {
  static const std::vector<AttentionShape> shapes = {
      {64, 3, 2, 1, false},       {64, 2, 3, 100, true},         {80, 2, 2, 33, false},   {80, 1, 1, 129, true},
      {128, 3, 2, 61, true},      {128, 1, 4, 200, false, 0, 30.0f}, {256, 2, 2, 45, true}, {256, 1, 1, 97, false},
      {6, 4, 3, 63, true},        {3, 2, 1, 5, false},           {64, 4, 2, 90, true, 37}, {128, 3, 1, 70, false, 64, 2.5f},
      {80, 2, 2, 150, true, 33, 1.5f}};
  return shapes;
}

// Keys, values and queries of normal(0, 1) values (queries x2: scores of a few units, like real
// attention), in a cache whose rows are stride apart; and the same rows paged: logical block b of
// kKvBlockRows rows at physical block n_blocks - 1 - b, the unused slots NaN (never read).
struct AttentionInputs {
  int64_t stride, token_stride;
  std::vector<float> q, keys, values, paged_keys, paged_values;
  std::vector<uint16_t> keys16, values16, paged_keys16, paged_values16;
  std::vector<int32_t> blocks;
  float max_abs_value = 0;

  AttentionInputs(const AttentionShape& s, uint32_t seed)
      : stride(2 * s.head_dim + 3), token_stride(int64_t(s.n_heads + 1) * s.head_dim) {
    const int32_t n_rows = s.first_n_keys + s.n_tokens - 1;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    q.resize(size_t(token_stride * s.n_tokens));
    keys.resize(size_t(stride * n_rows));
    values.resize(keys.size());
    for (float& x : q) x = 2.0f * normal(rng);
    for (float& x : keys) x = normal(rng);
    for (float& x : values) x = normal(rng);
    for (float v : values) max_abs_value = std::max(max_abs_value, std::abs(v));
    const int32_t n_blocks = (n_rows + kKvBlockRows - 1) / kKvBlockRows;
    for (int32_t b = 0; b < n_blocks; ++b) blocks.push_back(n_blocks - 1 - b);
    paged_keys.assign(size_t(n_blocks) * kKvBlockRows * size_t(stride), NAN);
    paged_values = paged_keys;
    for (int32_t j = 0; j < n_rows; ++j) {
      const int64_t physical = int64_t(blocks[size_t(j / kKvBlockRows)]) * kKvBlockRows * stride + (j % kKvBlockRows) * stride;
      std::memcpy(&paged_keys[size_t(physical)], &keys[size_t(j * stride)], size_t(stride) * sizeof(float));
      std::memcpy(&paged_values[size_t(physical)], &values[size_t(j * stride)], size_t(stride) * sizeof(float));
    }
    keys16 = halves(keys);
    values16 = halves(values);
    paged_keys16 = halves(paged_keys);
    paged_values16 = halves(paged_values);
  }
  static std::vector<uint16_t> halves(const std::vector<float>& floats) {
    std::vector<uint16_t> h(floats.size());
    for (size_t i = 0; i < floats.size(); ++i) h[i] = fp32_to_fp16(floats[i]);
    return h;
  }
  KvRows rows(bool f16, bool paged) const {
    KvRows kv;
    if (f16) {
      kv.keys_f16 = paged ? paged_keys16.data() : keys16.data();
      kv.values_f16 = paged ? paged_values16.data() : values16.data();
    } else {
      kv.keys_f32 = paged ? paged_keys.data() : keys.data();
      kv.values_f32 = paged ? paged_values.data() : values.data();
    }
    kv.stride = stride;
    if (paged) {
      kv.blocks = blocks.data();
      kv.block_stride = kKvBlockRows * stride;
    }
    return kv;
  }
};

// The bound of tests/test_attention_kernel.cpp: out is a convex combination of value rows; a
// SIMD kernel's weights differ from the reference's by a few ulps (a polynomial exp, FMA in the
// dots, a float sum, the online softmax's rescaling per block) and the sum over n_keys rows
// rounds once per row.
inline float attention_tolerance(int32_t n_keys, float max_abs_value) {
  return 4.0f * float(16 + n_keys + 4 * (n_keys / 64 + 1)) * 0x1p-24f * max_abs_value;
}

// attend_queries on tokens [first_token, first_token + n_tokens) and heads [first_head, + n_heads)
// of the shape, writing into out (laid out as inputs.q).
inline void run_attend_queries(const IsaKernels& kernels, const AttentionShape& s, const AttentionInputs& in, bool paged,
                               int32_t first_token, int32_t n_tokens, int32_t first_head, int32_t n_heads,
                               std::vector<float>& out) {
  AttentionQueries a;
  const int64_t offset = first_token * in.token_stride + int64_t(first_head) * s.head_dim;
  a.q = in.q.data() + offset;
  a.out = out.data() + offset;
  a.token_stride = in.token_stride;
  a.n_tokens = n_tokens;
  a.n_heads = n_heads;
  a.head_dim = s.head_dim;
  a.scale = 1.0f / std::sqrt(float(s.head_dim));
  a.softcap = s.softcap;
  a.window = s.window;
  a.kv = in.rows(s.f16, paged);
  a.first_n_keys = s.first_n_keys + first_token;
  std::vector<float> scratch(size_t(attention_scratch_floats(a)));
  a.scratch = scratch.data();
  kernels.attend_queries(a);
}

// One query (token t, head h) with attend_head, as a decode step evaluates it.
inline std::vector<float> run_attend_head(const IsaKernels& kernels, const AttentionShape& s, const AttentionInputs& in,
                                          bool paged, int32_t t, int32_t h) {
  std::vector<float> out(size_t(s.head_dim), NAN), scores(size_t(s.first_n_keys + t));
  AttentionHead head;
  head.q = in.q.data() + t * in.token_stride + int64_t(h) * s.head_dim;
  head.head_dim = s.head_dim;
  head.scale = 1.0f / std::sqrt(float(s.head_dim));
  head.softcap = s.softcap;
  head.kv = in.rows(s.f16, paged);
  head.n_keys = s.first_n_keys + t;
  head.first_key = first_visible_key(head.n_keys, s.window);
  head.scores = scores.data();
  head.out = out.data();
  kernels.attend_head(head);
  return out;
}

// Every query of every shape, from contiguous and paged rows: attend_queries together and each
// query alone, and attend_head, against the reference (its bits where the ISA promises them, else
// within attention_tolerance); together, alone and paged give the same bits; the slots between
// the heads' rows are not written.
inline void check_attention(Isa isa, CheckReport& report) {
  const IsaKernels& kernels = kernels_for(isa);
  const bool exact = attention_gives_the_reference_bits(isa);
  for (const AttentionShape& s : attention_shapes()) {
    const AttentionInputs in(s, uint32_t(17 * s.head_dim + 31 * s.first_n_keys + s.n_tokens));
    const float tolerance = attention_tolerance(s.first_n_keys + s.n_tokens - 1, in.max_abs_value);
    std::vector<float> reference(in.q.size(), NAN), together(in.q.size(), NAN);
    run_attend_queries(kernels_for(Isa::Scalar), s, in, false, 0, s.n_tokens, 0, s.n_heads, reference);
    for (bool paged : {false, true}) {
      const std::string shape = std::string(isa_name(isa)) + " head_dim " + std::to_string(s.head_dim) + " keys " +
                                std::to_string(s.first_n_keys) + (s.f16 ? " f16" : " f32") + " window " +
                                std::to_string(s.window) + " softcap " + std::to_string(s.softcap) +
                                (paged ? " paged" : " contiguous");
      std::vector<float> got(in.q.size(), NAN);
      run_attend_queries(kernels, s, in, paged, 0, s.n_tokens, 0, s.n_heads, got);
      if (!paged) together = got;
      for (int32_t t = 0; t < s.n_tokens; ++t) {
        report.expect(std::isnan(got[size_t(t * in.token_stride + s.n_heads * s.head_dim)]),
                      shape + ": wrote between the heads' rows");
        for (int32_t h = 0; h < s.n_heads; ++h) {
          const std::string query = shape + " token " + std::to_string(t) + " head " + std::to_string(h);
          std::vector<float> alone(in.q.size(), NAN);
          run_attend_queries(kernels, s, in, paged, t, 1, h, 1, alone);
          const std::vector<float> head = run_attend_head(kernels, s, in, paged, t, h);
          bool close = true, same_alone = true, same_paged = true, head_close = true;
          for (int32_t d = 0; d < s.head_dim; ++d) {
            const size_t i = size_t(t * in.token_stride + h * s.head_dim + d);
            close &= exact ? float_bits(got[i]) == float_bits(reference[i]) : std::abs(got[i] - reference[i]) <= tolerance;
            head_close &= exact ? float_bits(head[size_t(d)]) == float_bits(reference[i])
                                : std::abs(head[size_t(d)] - reference[i]) <= tolerance;
            same_alone &= float_bits(alone[i]) == float_bits(got[i]);
            same_paged &= float_bits(got[i]) == float_bits(together[i]);
          }
          const std::string against = exact ? ": not the reference's bits" : ": further from the reference than tolerance";
          report.expect(close, query + " attend_queries" + against);
          report.expect(head_close, query + " attend_head" + against);
          report.expect(same_alone, query + ": alone, not the bits it has among the other queries");
          report.expect(same_paged, query + ": paged rows give other bits than contiguous ones");
        }
      }
    }
  }
}

}  // namespace slm::kernels::checks
