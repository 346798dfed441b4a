// Checks of each instruction set's attention kernels (attend_head, attend_queries) against the
// scalar reference on awkward shapes: head_dim 64, 80, 128, 256 and narrow odd ones, key counts
// that are not multiples of a key block, F32 and F16 caches, contiguous and paged rows, sliding
// windows and soft caps; Q8_0 caches against the reference on the same rows, and against the
// same ISA's F32 kernel on the dequantized rows within what the queries' int16 rounding allows. Shared by the GoogleTest suite (tests/test_kernels_simd.cpp) and the
// cross-compiled NEON driver that runs under qemu (tests/cross/kernel_check_main.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/dequantize.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/quantize.hpp"
#include "support/kernel_checks.hpp"

namespace slm::kernels::checks {

// NEON's attention is the reference's arithmetic, fused multiply-adds where AArch64's compilers
// contract the reference's, so it gives the reference's bits; the x86 kernels use a polynomial exp
// and an online softmax (within attention_tolerance of it).
inline bool attention_gives_the_reference_bits(Isa isa) { return isa == Isa::Scalar || isa == Isa::Neon; }

enum class CacheType { F32, F16, Q8_0 };  // Q8_0: head_dim a multiple of 32

inline const char* cache_type_name(CacheType type) {
  return type == CacheType::F32 ? " f32" : type == CacheType::F16 ? " f16" : " q8_0";
}

struct AttentionShape {
  int32_t head_dim;
  int32_t n_tokens;
  int32_t n_heads;
  int32_t first_n_keys;  // the first token's keys; token t has first_n_keys + t
  CacheType cache;
  int32_t window = 0;
  float softcap = 0.0f;
};

inline const std::vector<AttentionShape>& attention_shapes() {
  using enum CacheType;
  static const std::vector<AttentionShape> shapes = {
      {64, 3, 2, 1, F32},         {64, 2, 3, 100, F16},          {80, 2, 2, 33, F32},     {80, 1, 1, 129, F16},
      {128, 3, 2, 61, F16},       {128, 1, 4, 200, F32, 0, 30.0f}, {256, 2, 2, 45, F16},  {256, 1, 1, 97, F32},
      {6, 4, 3, 63, F16},         {3, 2, 1, 5, F32},             {64, 4, 2, 90, F16, 37}, {128, 3, 1, 70, F32, 64, 2.5f},
      {80, 2, 2, 150, F16, 33, 1.5f},
      // Q8_0: one block per row, several, a count of blocks that is not a power of two (the AVX2
      // kernel's generic head_dim), key counts off the key blocks, a window and a soft cap.
      {32, 5, 1, 40, Q8_0},       {64, 3, 2, 1, Q8_0},           {64, 2, 3, 100, Q8_0},   {96, 2, 2, 77, Q8_0},
      {128, 3, 2, 61, Q8_0},      {256, 1, 1, 97, Q8_0},         {64, 4, 2, 90, Q8_0, 37}, {128, 3, 1, 70, Q8_0, 64, 2.5f}};
  return shapes;
}

// Keys, values and queries of normal(0, 1) values (queries x2: scores of a few units, like real
// attention), in a cache whose rows are stride apart; and the same rows paged: logical block b of
// kKvBlockRows rows at physical block n_blocks - 1 - b, the unused slots NaN (never read). For a
// Q8_0 shape, the rows are also quantized (stride8 blocks apart, NaN scales in the unused slots)
// and the float rows are their dequantized values.
struct AttentionInputs {
  int64_t stride, stride8, token_stride;
  std::vector<float> q, keys, values, paged_keys, paged_values;
  std::vector<uint16_t> keys16, values16, paged_keys16, paged_values16;
  std::vector<BlockQ8_0> keys8, values8, paged_keys8, paged_values8;
  std::vector<int32_t> blocks;
  float max_abs_value = 0;

  AttentionInputs(const AttentionShape& s, uint32_t seed)
      : stride(2 * s.head_dim + 3), stride8(2 * (s.head_dim / kLegacyBlockSize) + 1),
        token_stride(int64_t(s.n_heads + 1) * s.head_dim) {
    const int32_t n_rows = s.first_n_keys + s.n_tokens - 1;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    q.resize(size_t(token_stride * s.n_tokens));
    keys.resize(size_t(stride * n_rows));
    values.resize(keys.size());
    for (float& x : q) x = 2.0f * normal(rng);
    for (float& x : keys) x = normal(rng);
    for (float& x : values) x = normal(rng);
    if (s.cache == CacheType::Q8_0) {
      keys8 = quantized(keys, n_rows, s.head_dim);
      values8 = quantized(values, n_rows, s.head_dim);
    }
    for (float v : values) max_abs_value = std::max(max_abs_value, std::abs(v));
    const int32_t n_blocks = (n_rows + kKvBlockRows - 1) / kKvBlockRows;
    for (int32_t b = 0; b < n_blocks; ++b) blocks.push_back(n_blocks - 1 - b);
    paged_keys = paged(keys, stride, n_rows, NAN);
    paged_values = paged(values, stride, n_rows, NAN);
    keys16 = halves(keys);
    values16 = halves(values);
    paged_keys16 = halves(paged_keys);
    paged_values16 = halves(paged_values);
    if (s.cache == CacheType::Q8_0) {
      BlockQ8_0 unused{};
      unused.d = 0x7e00;  // an fp16 NaN
      paged_keys8 = paged(keys8, stride8, n_rows, unused);
      paged_values8 = paged(values8, stride8, n_rows, unused);
    }
  }
  // n_rows rows (row_stride apart) paged: row j in physical block blocks[j / kKvBlockRows], the
  // other slots `unused`.
  template <typename T>
  std::vector<T> paged(const std::vector<T>& rows, int64_t row_stride, int32_t n_rows, T unused) const {
    std::vector<T> out(blocks.size() * kKvBlockRows * size_t(row_stride), unused);
    for (int32_t j = 0; j < n_rows; ++j) {
      const int64_t physical = (int64_t(blocks[size_t(j / kKvBlockRows)]) * kKvBlockRows + j % kKvBlockRows) * row_stride;
      std::memcpy(&out[size_t(physical)], &rows[size_t(j * row_stride)], size_t(row_stride) * sizeof(T));
    }
    return out;
  }
  // Each row's first head_dim floats quantized (stride8 blocks apart) and replaced by their
  // dequantized values.
  std::vector<BlockQ8_0> quantized(std::vector<float>& rows, int32_t n_rows, int32_t head_dim) const {
    std::vector<BlockQ8_0> q8(size_t(n_rows * stride8));
    for (int32_t j = 0; j < n_rows; ++j) {
      quantize_row_q8_0(&rows[size_t(j * stride)], &q8[size_t(j * stride8)], head_dim);
      dequantize_row_q8_0(&q8[size_t(j * stride8)], &rows[size_t(j * stride)], head_dim);
    }
    return q8;
  }
  static std::vector<uint16_t> halves(const std::vector<float>& floats) {
    std::vector<uint16_t> h(floats.size());
    for (size_t i = 0; i < floats.size(); ++i) h[i] = fp32_to_fp16(floats[i]);
    return h;
  }
  KvRows rows(CacheType cache, bool paged) const {
    KvRows kv;
    kv.stride = stride;
    if (cache == CacheType::F16) {
      kv.keys_f16 = paged ? paged_keys16.data() : keys16.data();
      kv.values_f16 = paged ? paged_values16.data() : values16.data();
    } else if (cache == CacheType::Q8_0) {
      kv.keys_q8_0 = paged ? paged_keys8.data() : keys8.data();
      kv.values_q8_0 = paged ? paged_values8.data() : values8.data();
      kv.stride = stride8;
    } else {
      kv.keys_f32 = paged ? paged_keys.data() : keys.data();
      kv.values_f32 = paged ? paged_values.data() : values.data();
    }
    if (paged) {
      kv.blocks = blocks.data();
      kv.block_stride = kKvBlockRows * kv.stride;
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

// How far a Q8_0 cache's output may lie from an F32 cache holding the same (dequantized) rows: its
// queries are rounded to int16 per 32 elements (attention.hpp), each by at most amax / 65534, so a
// score moves by at most delta = scale * head_dim * max|q| * max|k| / 65534; each softmax weight
// then by a factor within e^(+-2 delta), and the output, a convex combination of value rows, by at
// most 2 (e^(2 delta) - 1) max|v|; plus the float kernels' own tolerance. A wrong block scale or
// pair would move the output by about max|v|, far outside it.
inline float q8_0_query_bound(const AttentionShape& s, const AttentionInputs& in, float tolerance) {
  float max_q = 0.0f, max_k = 0.0f;
  for (float x : in.q) max_q = std::max(max_q, std::abs(x));
  for (float x : in.keys) max_k = std::isnan(x) ? max_k : std::max(max_k, std::abs(x));
  const float delta = float(s.head_dim) * max_q * max_k / std::sqrt(float(s.head_dim)) / 65534.0f;
  return tolerance + 2.0f * (std::exp(2.0f * delta) - 1.0f) * in.max_abs_value;
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
  a.kv = in.rows(s.cache, paged);
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
  head.kv = in.rows(s.cache, paged);
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
// the heads' rows are not written. A Q8_0 cache stays within q8_0_query_bound of the same ISA's
// kernels on an F32 cache of the dequantized rows.
inline void check_attention(Isa isa, CheckReport& report) {
  const IsaKernels& kernels = kernels_for(isa);
  const bool exact = attention_gives_the_reference_bits(isa);
  for (const AttentionShape& s : attention_shapes()) {
    const AttentionInputs in(s, uint32_t(17 * s.head_dim + 31 * s.first_n_keys + s.n_tokens));
    const float tolerance = attention_tolerance(s.first_n_keys + s.n_tokens - 1, in.max_abs_value);
    std::vector<float> reference(in.q.size(), NAN), together(in.q.size(), NAN);
    run_attend_queries(kernels_for(Isa::Scalar), s, in, false, 0, s.n_tokens, 0, s.n_heads, reference);
    AttentionShape as_f32 = s;
    as_f32.cache = CacheType::F32;
    const bool quantized = s.cache == CacheType::Q8_0;
    const float f32_bound = quantized ? q8_0_query_bound(s, in, tolerance) : 0.0f;
    std::vector<float> f32_rows(in.q.size(), NAN);
    if (quantized) run_attend_queries(kernels, as_f32, in, false, 0, s.n_tokens, 0, s.n_heads, f32_rows);
    for (bool paged : {false, true}) {
      const std::string shape = std::string(isa_name(isa)) + " head_dim " + std::to_string(s.head_dim) + " keys " +
                                std::to_string(s.first_n_keys) + cache_type_name(s.cache) + " window " +
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
          const std::vector<float> head_f32 = quantized ? run_attend_head(kernels, as_f32, in, paged, t, h) : head;
          bool close = true, same_alone = true, same_paged = true, head_close = true, near_f32 = true;
          for (int32_t d = 0; d < s.head_dim; ++d) {
            const size_t i = size_t(t * in.token_stride + h * s.head_dim + d);
            close &= exact ? float_bits(got[i]) == float_bits(reference[i]) : std::abs(got[i] - reference[i]) <= tolerance;
            head_close &= exact ? float_bits(head[size_t(d)]) == float_bits(reference[i])
                                : std::abs(head[size_t(d)] - reference[i]) <= tolerance;
            same_alone &= float_bits(alone[i]) == float_bits(got[i]);
            same_paged &= float_bits(got[i]) == float_bits(together[i]);
            near_f32 &= std::abs(got[i] - f32_rows[i]) <= f32_bound && std::abs(head[size_t(d)] - head_f32[size_t(d)]) <= f32_bound;
          }
          if (quantized) report.expect(near_f32, query + ": further from the F32 kernels on the dequantized rows than the queries' rounding allows");
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
