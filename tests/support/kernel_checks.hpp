// Checks of each instruction set's kernels against the scalar reference, shared by the
// GoogleTest suite (tests/test_kernels_simd.cpp) and the cross-compiled NEON driver
// (tests/cross/kernel_check_main.cpp, which runs under qemu without GoogleTest).
// A check records what it verified and a message per failure in a CheckReport.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/activation_blocks.hpp"
#include "kernels/dequantize.hpp"
#include "kernels/matmul.hpp"
#include "kernels/matmul_bf16.hpp"
#include "kernels/matmul_isa.hpp"
#include "kernels/interleaved_blocks.hpp"
#include "kernels/quant_blocks.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels::checks {

struct CheckReport {
  int64_t passed = 0;
  int64_t failed = 0;
  std::vector<std::string> failures;  // the first 20 messages: one broken kernel fails thousands of pairs

  bool ok() const { return failed == 0; }
  void expect(bool passed_check, const std::string& message) {
    if (passed_check) {
      ++passed;
      return;
    }
    ++failed;
    if (failures.size() < 20) failures.push_back(message);
  }
  std::string summary() const {
    std::string text;
    for (const std::string& failure : failures) text += failure + "\n";
    const int64_t not_listed = failed - int64_t(failures.size());
    if (not_listed > 0) text += "... and " + std::to_string(not_listed) + " more\n";
    return text;
  }
};

// The formats a model's weights come in: every one has a SIMD decoder.
inline constexpr GgmlType kWeightFormats[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
    GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
    GgmlType::IQ4_NL, GgmlType::IQ4_XS};

inline std::vector<Isa> available_isas() {
  std::vector<Isa> isas;
  for (Isa isa : kAllIsas)
    if (isa_available(isa)) isas.push_back(isa);
  return isas;
}

// The x86 tiers, whose integer kernels are one source built three times (same bits).
inline bool is_x86_simd(Isa isa) { return isa == Isa::Avx2 || isa == Isa::AvxVnni || isa == Isa::Avx512; }

inline std::string describe(const IsaKernels& kernels, GgmlType type) {
  return std::string(kernels.name) + " " + std::string(ggml_type_name(type));
}

inline uint32_t float_bits(float f) { return std::bit_cast<uint32_t>(f); }

// ---------------------------------------------------------------------------
// Random inputs (fixed seeds)
// ---------------------------------------------------------------------------

// A random nonzero fp16 scale with magnitude in [2^-10, 2^-2), either sign: products with
// quants and activations stay far from overflow and from subnormals.
inline Fp16Bits random_scale(std::mt19937& rng) {
  std::uniform_real_distribution<float> magnitude_log2(-10.0f, -2.0f);
  const float magnitude = std::exp2(magnitude_log2(rng));
  return fp32_to_fp16(rng() % 2 ? magnitude : -magnitude);
}

// Random bytes for every quant bit (all bit patterns occur), then valid random fp16 scales.
template <class Block>
void randomize_blocks(uint8_t* bytes, int64_t n_blocks, std::mt19937& rng) {
  for (int64_t i = 0; i < n_blocks * int64_t(sizeof(Block)); ++i) bytes[i] = uint8_t(rng());
  for (int64_t b = 0; b < n_blocks; ++b) {
    auto& block = *reinterpret_cast<Block*>(bytes + b * int64_t(sizeof(Block)));
    block.d = random_scale(rng);
    if constexpr (requires { block.m; }) block.m = random_scale(rng);
    if constexpr (requires { block.dmin; }) block.dmin = random_scale(rng);
  }
}

struct RandomMatrix {
  GgmlType type;
  int64_t n_rows = 0, n_in = 0;
  uint64_t row_bytes = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> weights;  // [n_rows][n_in], dequantize_row of bytes: the scalar specification
};

inline RandomMatrix random_matrix(GgmlType type, int64_t n_rows, int64_t n_in, uint32_t seed) {
  RandomMatrix m{type, n_rows, n_in, ggml_row_bytes(type, uint64_t(n_in)), {}, {}};
  m.bytes.resize(m.row_bytes * uint64_t(n_rows));
  std::mt19937 rng(seed);
  const int64_t n = n_rows * n_in;
  const int64_t n_blocks = n / int64_t(ggml_type_info(type).block_size);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  uint8_t* out = m.bytes.data();
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < n; ++i) reinterpret_cast<float*>(out)[i] = normal(rng);
      break;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) reinterpret_cast<Fp16Bits*>(out)[i] = fp32_to_fp16(normal(rng));
      break;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) reinterpret_cast<Bf16Bits*>(out)[i] = fp32_to_bf16(normal(rng));
      break;
    case GgmlType::Q4_0: randomize_blocks<BlockQ4_0>(out, n_blocks, rng); break;
    case GgmlType::Q4_1: randomize_blocks<BlockQ4_1>(out, n_blocks, rng); break;
    case GgmlType::Q5_0: randomize_blocks<BlockQ5_0>(out, n_blocks, rng); break;
    case GgmlType::Q5_1: randomize_blocks<BlockQ5_1>(out, n_blocks, rng); break;
    case GgmlType::Q8_0: randomize_blocks<BlockQ8_0>(out, n_blocks, rng); break;
    case GgmlType::Q2_K: randomize_blocks<BlockQ2_K>(out, n_blocks, rng); break;
    case GgmlType::Q3_K: randomize_blocks<BlockQ3_K>(out, n_blocks, rng); break;
    case GgmlType::Q4_K: randomize_blocks<BlockQ4_K>(out, n_blocks, rng); break;
    case GgmlType::Q5_K: randomize_blocks<BlockQ5_K>(out, n_blocks, rng); break;
    case GgmlType::Q6_K: randomize_blocks<BlockQ6_K>(out, n_blocks, rng); break;
    case GgmlType::IQ4_NL: randomize_blocks<BlockIQ4_NL>(out, n_blocks, rng); break;
    case GgmlType::IQ4_XS: randomize_blocks<BlockIQ4_XS>(out, n_blocks, rng); break;
    default: std::abort();  // not a weight format
  }
  m.weights.resize(static_cast<size_t>(n));
  for (int64_t o = 0; o < n_rows; ++o)
    dequantize_row(type, out + uint64_t(o) * m.row_bytes, m.weights.data() + o * n_in, n_in);
  return m;
}

inline std::vector<float> random_activations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  return x;
}

// Row lengths: one block, a few, and past the 256-weight chunk the batched kernels decode at
// a time; the float formats add lengths that are not a multiple of 8.
inline std::vector<int64_t> test_row_lengths(GgmlType type) {
  const int64_t block = ggml_type_info(type).block_size;
  if (block == 1) return {1, 5, 8, 13, 64, 100, 300};
  // 2048: the AMX path (kernels/matmul_amx_avx512.cpp) splits 149 tokens into chunks there.
  if (block == 32) return {32, 64, 96, 288, 544, 2048};
  return {256, 512, 768, 2048};
}

// ---------------------------------------------------------------------------
// Matmul
// ---------------------------------------------------------------------------

// How far two float32 evaluations of one dot product may be apart. Each kernel sums 8 lanes
// of m = ceil(n/8) terms, then 3 pairwise additions, so every term meets at most m + 3
// roundings (product and additions; fewer with FMA) and each result lies within
// gamma(m + 3) * sum|w_i x_i| of the exact dot product, gamma(k) = k u / (1 - k u),
// u = 2^-24 (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1). The scalar
// and SIMD kernels decode identical weights and differ only in FMA and so may differ by
// twice that. With m <= n/8 + 1: 2 * gamma(n/8 + 4) * sum|w_i x_i|.
inline double dot_tolerance(int64_t n, double sum_abs_products) {
  const double u = std::ldexp(1.0, -24);
  const double k = double(n) / 8.0 + 4.0;
  return 2.0 * (k * u / (1.0 - k * u)) * sum_abs_products;
}

inline double sum_abs_products(const float* w, const float* x, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::fabs(double(w[i]) * double(x[i]));
  return sum;
}

// |dmin * min_i| of each weight of a Q4_K / Q5_K / Q2_K row, |m| of a Q4_1 / Q5_1 one (0 for
// other types): the integer kernels sum a weight's two parts, d * scale_i * q and -dmin * min_i
// (or d * q and m), separately, so their float roundings scale with |d * scale_i * q| +
// |dmin * min_i| <= |w| + 2 |dmin * min_i|.
inline std::vector<double> separately_summed_offsets(GgmlType type, const uint8_t* row, int64_t n_in) {
  std::vector<double> offsets(static_cast<size_t>(n_in), 0.0);
  if (type == GgmlType::Q2_K) {
    for (int64_t i = 0; i < n_in; ++i) {
      const auto& block = reinterpret_cast<const BlockQ2_K*>(row)[i / kSuperBlockSize];
      offsets[size_t(i)] = std::fabs(double(fp16_to_fp32(block.dmin)) * (block.scales[i % kSuperBlockSize / 16] >> 4));
    }
    return offsets;
  }
  if (type == GgmlType::Q4_1 || type == GgmlType::Q5_1) {
    const size_t block_bytes = ggml_type_info(type).block_bytes;
    for (int64_t i = 0; i < n_in; ++i) {
      Fp16Bits m;  // both blocks start with d, m
      std::memcpy(&m, row + size_t(i / kLegacyBlockSize) * block_bytes + sizeof(Fp16Bits), sizeof(m));
      offsets[size_t(i)] = std::fabs(double(fp16_to_fp32(m)));
    }
    return offsets;
  }
  if (type != GgmlType::Q4_K && type != GgmlType::Q5_K) return offsets;
  const size_t block_bytes = ggml_type_info(type).block_bytes;
  for (int64_t i = 0; i < n_in; ++i) {
    const uint8_t* block = row + size_t(i / kSuperBlockSize) * block_bytes;
    Fp16Bits dmin;  // both layouts start with d, dmin, then the 12 bytes of scales
    std::memcpy(&dmin, block + sizeof(Fp16Bits), sizeof(dmin));
    const ScaleAndMin sm = k_quant_scale_min(block + 2 * sizeof(Fp16Bits), int(i % kSuperBlockSize / 32));
    offsets[size_t(i)] = std::fabs(double(fp16_to_fp32(dmin)) * sm.min);
  }
  return offsets;
}

// How far an integer kernel (activations rounded to `bits` bits of magnitude) may be from the
// float reference: rounding activation i to d * q moves it by at most d / 2 (d: its block's
// activation_scale), which
// moves the dot product by at most sum_i |w_i| d_i / 2; the float roundings are bounded as in
// dot_tolerance, over the parts the kernel sums (see separately_summed_offsets) and with the
// rounded activations (|x| + d/2).
inline double integer_dot_tolerance(GgmlType type, int bits, const float* w, const uint8_t* row, const float* x,
                                    int64_t n) {
  const int64_t block = activation_block_size(type);
  const std::vector<double> offsets = separately_summed_offsets(type, row, n);
  double activation_rounding = 0, parts = 0;
  for (int64_t b = 0; b < n; b += block) {
    float amax = 0;
    for (int64_t i = b; i < b + block; ++i) amax = std::max(amax, std::fabs(x[i]));
    const double half_step = activation_scale(amax, bits).d / 2.0;
    for (int64_t i = b; i < b + block; ++i) {
      activation_rounding += std::fabs(double(w[i])) * half_step;
      parts += (std::fabs(double(w[i])) + 2 * offsets[size_t(i)]) * (std::fabs(double(x[i])) + half_step);
    }
  }
  return activation_rounding + dot_tolerance(n, parts);
}

// Every kernel of `isa` within dot_tolerance (integer_dot_tolerance for the integer kernels) of the scalar reference, for all 9 rows of a
// random matrix and 149 tokens (the float tiles take 24 at a time, the AVX2 integer tiles 144), at every
// test_row_lengths. Then calls over sub-ranges of rows (odd ones included) and of tokens
// (1..9, 25, 53, 149, at the start and at the end of the batch, with a y_stride wider than the
// rows) give bit-identical outputs to the full call, and leave every other element of y untouched.
// Whether y (rows of y_stride floats) holds expected's bits (rows of expected_stride) in tokens
// [first_token, first_token + n_tokens) x outputs [row_begin, row_end), and `sentinel` elsewhere.
struct WrittenBlock {
  bool identical = true, untouched = true;
};
inline WrittenBlock compare_written_block(const std::vector<float>& y, int64_t y_stride, const std::vector<float>& expected,
                                          int64_t expected_stride, int64_t first_token, int64_t n_tokens, int64_t row_begin,
                                          int64_t row_end, float sentinel) {
  WrittenBlock result;
  for (int64_t t = 0; t < int64_t(y.size()) / y_stride; ++t)
    for (int64_t o = 0; o < y_stride; ++o) {
      const bool written = t >= first_token && t < first_token + n_tokens && o >= row_begin && o < row_end;
      const float value = y[t * y_stride + o];
      if (written) result.identical &= float_bits(value) == float_bits(expected[t * expected_stride + o]);
      else result.untouched &= float_bits(value) == float_bits(sentinel);
    }
  return result;
}

inline void check_matmul(const IsaKernels& simd, GgmlType type, CheckReport& report) {
  // 19 rows: a prompt tile of 16 (AVX-512) or two of 8, then a short one.
  constexpr int64_t kRows = 19, kTokens = 149, kStride = kRows + 2;
  const IsaKernels& scalar = kernels_for(Isa::Scalar);
  const int activation_bits = simd.activation_bits(type);
  for (int64_t n_in : test_row_lengths(type)) {
    const RandomMatrix m = random_matrix(type, kRows, n_in, uint32_t(1000 + n_in));
    const std::vector<float> x = random_activations(kTokens * n_in, uint32_t(2000 + n_in));
    std::vector<float> expected(kTokens * kRows), full(kTokens * kRows);
    scalar.matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data(), kTokens, expected.data(), kRows, 0, kRows);
    simd.matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data(), kTokens, full.data(), kRows, 0, kRows);
    const std::string where = describe(simd, type) + " n_in " + std::to_string(n_in);
    for (int64_t t = 0; t < kTokens; ++t)
      for (int64_t o = 0; o < kRows; ++o) {
        const double bound =
            activation_bits > 0
                ? integer_dot_tolerance(type, activation_bits, &m.weights[o * n_in], m.bytes.data() + uint64_t(o) * m.row_bytes,
                                        &x[t * n_in], n_in)
                : dot_tolerance(n_in, sum_abs_products(&m.weights[o * n_in], &x[t * n_in], n_in));
        const double error = std::fabs(double(full[t * kRows + o]) - double(expected[t * kRows + o]));
        report.expect(error <= bound, where + " row " + std::to_string(o) + " token " + std::to_string(t) + ": " +
                                          std::to_string(full[t * kRows + o]) + " vs scalar " +
                                          std::to_string(expected[t * kRows + o]) + ", bound " + std::to_string(bound));
      }

    const float sentinel = std::bit_cast<float>(0x7fc0dead);  // a NaN no kernel produces
    const int64_t row_ranges[][2] = {{0, 19}, {0, 1}, {1, 8}, {3, 4}, {2, 7}, {5, 9}, {4, 9}, {1, 18}, {0, 16}, {3, 19}};
    for (const auto& range : row_ranges)
      for (int64_t n_tokens : {1, 2, 3, 4, 5, 6, 7, 8, 9, 25, 53, 149})
        for (int64_t first_token : {int64_t(0), kTokens - n_tokens}) {
          std::vector<float> y(kTokens * kStride, sentinel);
          simd.matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data() + first_token * n_in, n_tokens,
                           y.data() + first_token * kStride, kStride, range[0], range[1]);
          const auto [identical, untouched] =
              compare_written_block(y, kStride, full, kRows, first_token, n_tokens, range[0], range[1], sentinel);
          const std::string call = where + " rows [" + std::to_string(range[0]) + ", " + std::to_string(range[1]) +
                                   ") tokens " + std::to_string(first_token) + " + " + std::to_string(n_tokens);
          report.expect(identical, call + ": not bit-identical to the full call");
          report.expect(untouched, call + ": wrote outside its rows and tokens");
        }
  }
}

// With one-hot activations (token t is 1 at weight t, 0 elsewhere) every product but one
// is a zero, so each output is exactly one decoded weight: y[t][o] == W[o][t], bit for bit
// the scalar dequantize_row. Checked in one batch and one token at a time.
inline void check_one_hot_activations_give_the_exact_weights(const IsaKernels& simd, GgmlType type, CheckReport& report) {
  constexpr int64_t kRows = 5;
  const int64_t n_in = ggml_type_info(type).block_size == 1 ? 21 : 2 * ggml_type_info(type).block_size;
  const RandomMatrix m = random_matrix(type, kRows, n_in, 77);
  std::vector<float> x(n_in * n_in, 0.0f);
  for (int64_t t = 0; t < n_in; ++t) x[t * n_in + t] = 1.0f;
  std::vector<float> batched(n_in * kRows), single(n_in * kRows);
  simd.matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data(), n_in, batched.data(), kRows, 0, kRows);
  for (int64_t t = 0; t < n_in; ++t)
    simd.matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data() + t * n_in, 1, single.data() + t * kRows,
                     kRows, 0, kRows);
  for (int64_t o = 0; o < kRows; ++o)
    for (int64_t i = 0; i < n_in; ++i) {
      const float weight = m.weights[o * n_in + i];
      const std::string where = describe(simd, type) + " weight " + std::to_string(i) + " of row " + std::to_string(o) +
                                " (scalar " + std::to_string(weight) + "): ";
      report.expect(batched[i * kRows + o] == weight, where + "batched " + std::to_string(batched[i * kRows + o]));
      report.expect(single[i * kRows + o] == weight, where + "one token " + std::to_string(single[i * kRows + o]));
    }
}

// ---------------------------------------------------------------------------
// The 8-row interleaved layout (kernels/interleaved_blocks.hpp)
// ---------------------------------------------------------------------------

// The matrix's whole tiles of 8 rows, interleaved.
inline std::vector<uint8_t> interleaved_tiles(const RandomMatrix& m) {
  const uint64_t tile_bytes = interleaved_tile_bytes(m.type, m.n_in);
  std::vector<uint8_t> tiles(uint64_t(m.n_rows / kInterleavedRows) * tile_bytes);
  for (int64_t tile = 0; tile < m.n_rows / kInterleavedRows; ++tile)
    interleave_rows(m.type, m.bytes.data() + uint64_t(tile * kInterleavedRows) * m.row_bytes, m.row_bytes, m.n_in,
                    tiles.data() + uint64_t(tile) * tile_bytes);
  return tiles;
}

// interleave_rows then deinterleave_row gives back every row byte for byte, and a Q8_0 tile
// holds each weight in the slot the layout's specification names.
inline void check_interleave_round_trip(GgmlType type, CheckReport& report) {
  constexpr int64_t kRows = 2 * kInterleavedRows;
  for (int64_t n_in : test_row_lengths(type)) {
    const RandomMatrix m = random_matrix(type, kRows, n_in, uint32_t(3000 + n_in));
    const std::vector<uint8_t> tiles = interleaved_tiles(m);
    std::vector<uint8_t> row(m.row_bytes);
    for (int64_t o = 0; o < kRows; ++o) {
      deinterleave_row(type, tiles.data() + uint64_t(o / kInterleavedRows) * interleaved_tile_bytes(type, n_in), n_in,
                       int(o % kInterleavedRows), row.data());
      report.expect(std::memcmp(row.data(), m.bytes.data() + uint64_t(o) * m.row_bytes, m.row_bytes) == 0,
                    std::string(ggml_type_name(type)) + " n_in " + std::to_string(n_in) + " row " + std::to_string(o) +
                        ": deinterleave_row(interleave_rows) differs from the row");
    }
    if (type != GgmlType::Q8_0) continue;
    // Block b of the first tile: d[8] (16 bytes), then group m's slot j at byte 16 + 32 m + j.
    const auto* blocks = reinterpret_cast<const BlockQ8_0*>(m.bytes.data());
    const int64_t n_blocks = n_in / kLegacyBlockSize;
    for (int64_t b = 0; b < n_blocks; ++b)
      for (int g = 0; g < 8; ++g)
        for (int j = 0; j < 32; ++j) {
          const int r = (j % 16) / 2, weight = 4 * g + (j < 16 ? 0 : 2) + j % 2;
          const int8_t stored = int8_t(tiles[uint64_t(b) * 8 * sizeof(BlockQ8_0) + 16 + 32 * g + j]);
          report.expect(stored == blocks[r * n_blocks + b].qs[weight],
                        "Q8_0 block " + std::to_string(b) + " group " + std::to_string(g) + " slot " + std::to_string(j) +
                            " is not row " + std::to_string(r) + "'s weight " + std::to_string(weight));
        }
  }
}

// interleave_rows (a word at a time) writes the bytes of interleave_rows_reference, for rows
// of random bytes (every bit pattern of scales and quants) at an odd stride (unaligned words).
inline void check_interleave_matches_reference(GgmlType type, CheckReport& report) {
  std::mt19937 rng(uint32_t(5000 + int(type)));
  for (int64_t n_in : test_row_lengths(type)) {
    const uint64_t row_stride = ggml_row_bytes(type, uint64_t(n_in)) + 3;
    std::vector<uint8_t> rows(kInterleavedRows * row_stride);
    for (uint8_t& byte : rows) byte = uint8_t(rng());
    const uint64_t tile_bytes = interleaved_tile_bytes(type, n_in);
    std::vector<uint8_t> fast(tile_bytes + 1, 0xa5), reference(tile_bytes + 1, 0xa5);
    interleave_rows(type, rows.data(), row_stride, n_in, fast.data());
    interleave_rows_reference(type, rows.data(), row_stride, n_in, reference.data());
    for (uint64_t i = 0; i < fast.size(); ++i)
      report.expect(fast[i] == reference[i], std::string(ggml_type_name(type)) + " n_in " + std::to_string(n_in) +
                                                 " tile byte " + std::to_string(i) + ": " + std::to_string(fast[i]) +
                                                 ", the reference " + std::to_string(reference[i]));
  }
}

// Where an ISA multiplies `type` from the interleaved layout: every output has the bits its
// matmul_rows gives from the rows as stored, for ranges of whole tiles and any number of
// tokens, and nothing outside the range is written.
inline void check_matmul_interleaved(const IsaKernels& simd, GgmlType type, CheckReport& report) {
  if (!simd.interleaves(type)) return;
  constexpr int64_t kRows = 3 * kInterleavedRows, kTokens = 149, kStride = kRows + 3;
  for (int64_t n_in : test_row_lengths(type)) {
    const RandomMatrix m = random_matrix(type, kRows, n_in, uint32_t(4000 + n_in));
    const std::vector<uint8_t> tiles = interleaved_tiles(m);
    const std::vector<float> x = random_activations(kTokens * n_in, uint32_t(5000 + n_in));
    std::vector<float> from_rows(kTokens * kRows);
    simd.matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data(), kTokens, from_rows.data(), kRows, 0, kRows);
    const float sentinel = std::bit_cast<float>(0x7fc0dead);
    const int64_t row_ranges[][2] = {{0, 24}, {0, 8}, {8, 16}, {16, 24}, {8, 24}};
    for (const auto& range : row_ranges)
      for (int64_t n_tokens : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 15, 16, 17, 32, 33, 144, 149})
        for (int64_t first_token : {int64_t(0), kTokens - n_tokens}) {
          std::vector<float> y(kTokens * kStride, sentinel);
          simd.matmul_interleaved(type, tiles.data(), n_in, x.data() + first_token * n_in, n_tokens,
                                  y.data() + first_token * kStride, kStride, range[0], range[1]);
          const auto [identical, untouched] =
              compare_written_block(y, kStride, from_rows, kRows, first_token, n_tokens, range[0], range[1], sentinel);
          const std::string call = describe(simd, type) + " n_in " + std::to_string(n_in) + " interleaved rows [" +
                                   std::to_string(range[0]) + ", " + std::to_string(range[1]) + ") tokens " +
                                   std::to_string(first_token) + " + " + std::to_string(n_tokens);
          report.expect(identical, call + ": not bit-identical to matmul_rows on the rows as stored");
          report.expect(untouched, call + ": wrote outside its rows and tokens");
        }
  }
}

// The x86 tiers' integer kernels (avx2, avxvnni, avx512: one source built three times) give
// the bits of the AVX2 build, from the rows and from the interleaved tiles, for 1, 4, 8 and 149
// tokens, on 24 rows: a 16-row AVX-512 prompt tile and a short one.
inline void check_x86_isas_agree(Isa isa, GgmlType type, CheckReport& report) {
  if (!is_x86_simd(isa) || isa == Isa::Avx2) return;
  const IsaKernels& avx2 = kernels_for(Isa::Avx2);
  const IsaKernels& kernels = kernels_for(isa);
  constexpr int64_t kRows = 3 * kInterleavedRows, kTokens = 149;
  for (int64_t n_in : test_row_lengths(type)) {
    const RandomMatrix m = random_matrix(type, kRows, n_in, uint32_t(6000 + n_in));
    const std::vector<uint8_t> tiles = has_interleaved_layout(type) ? interleaved_tiles(m) : std::vector<uint8_t>();
    const std::vector<float> x = random_activations(kTokens * n_in, uint32_t(7000 + n_in));
    for (int64_t n_tokens : {int64_t(1), int64_t(4), int64_t(8), kTokens}) {
      std::vector<float> expected(size_t(n_tokens * kRows)), got(expected.size());
      avx2.matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, expected.data(), kRows, 0, kRows);
      kernels.matmul_rows(type, m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, got.data(), kRows, 0, kRows);
      const std::string where = describe(kernels, type) + " n_in " + std::to_string(n_in) + " tokens " +
                                std::to_string(n_tokens) + " against avx2";
      report.expect(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0, where + ": rows differ");
      report.expect(kernels.interleaves(type) == avx2.interleaves(type), where + ": interleaves differently");
      if (!kernels.interleaves(type)) continue;
      avx2.matmul_interleaved(type, tiles.data(), n_in, x.data(), n_tokens, expected.data(), kRows, 0, kRows);
      kernels.matmul_interleaved(type, tiles.data(), n_in, x.data(), n_tokens, got.data(), kRows, 0, kRows);
      report.expect(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0,
                    where + ": interleaved tiles differ");
    }
  }
}

// The checks above for an ISA's kernels, and the x86 tiers' agreement.
inline void check_matmul(Isa isa, GgmlType type, CheckReport& report) {
  check_matmul(kernels_for(isa), type, report);
  check_x86_isas_agree(isa, type, report);
}
inline void check_one_hot_activations_give_the_exact_weights(Isa isa, GgmlType type, CheckReport& report) {
  check_one_hot_activations_give_the_exact_weights(kernels_for(isa), type, report);
}
inline void check_matmul_interleaved(Isa isa, GgmlType type, CheckReport& report) {
  check_matmul_interleaved(kernels_for(isa), type, report);
}

// ---------------------------------------------------------------------------
// fp16 dot and axpy (attention over an F16 KV cache)
// ---------------------------------------------------------------------------

inline std::vector<Fp16Bits> random_halves(int64_t n, uint32_t seed) {
  const std::vector<float> values = random_activations(n, seed);
  std::vector<Fp16Bits> halves(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) halves[size_t(i)] = fp32_to_fp16(values[size_t(i)]);
  return halves;
}

inline const std::vector<int64_t>& fp16_test_lengths() {
  static const std::vector<int64_t> lengths = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 100, 128, 257};
  return lengths;
}

inline void check_dot_f16_f32(Isa isa, CheckReport& report) {
  for (int64_t n : fp16_test_lengths()) {
    const std::vector<Fp16Bits> a = random_halves(n, uint32_t(300 + n));
    const std::vector<float> b = random_activations(n, uint32_t(400 + n));
    std::vector<float> a_floats(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) a_floats[size_t(i)] = fp16_to_fp32(a[size_t(i)]);
    const float expected = kernels_for(Isa::Scalar).dot_f16_f32(a.data(), b.data(), n);
    const float got = kernels_for(isa).dot_f16_f32(a.data(), b.data(), n);
    const double bound = dot_tolerance(n, sum_abs_products(a_floats.data(), b.data(), n));
    report.expect(std::fabs(double(got) - double(expected)) <= bound,
                  std::string(isa_name(isa)) + " dot_f16_f32 n " + std::to_string(n) + ": " + std::to_string(got) +
                      " vs scalar " + std::to_string(expected));
  }
}

// y + a*x: the scalar kernel rounds the product and the sum, FMA only the sum; each is
// within u(|y| + |a x|) + u|a x| of the exact value, so they differ by at most 4u(|y| + |a x|).
inline void check_axpy_f16_f32(Isa isa, CheckReport& report) {
  const double u = std::ldexp(1.0, -24);
  for (int64_t n : fp16_test_lengths()) {
    const std::vector<Fp16Bits> x = random_halves(n, uint32_t(500 + n));
    const std::vector<float> y0 = random_activations(n + 1, uint32_t(600 + n));  // y0[n]: must stay untouched
    const float a = 0.37f;
    std::vector<float> expected = y0, got = y0;
    kernels_for(Isa::Scalar).axpy_f16_f32(a, x.data(), expected.data(), n);
    kernels_for(isa).axpy_f16_f32(a, x.data(), got.data(), n);
    bool close = true;
    for (int64_t i = 0; i < n; ++i) {
      const double product = std::fabs(double(a) * fp16_to_fp32(x[size_t(i)]));
      close &= std::fabs(double(got[size_t(i)]) - double(expected[size_t(i)])) <=
               4 * u * (std::fabs(double(y0[size_t(i)])) + product);
    }
    const std::string where = std::string(isa_name(isa)) + " axpy_f16_f32 n " + std::to_string(n);
    report.expect(close, where + ": differs from scalar by more than 4u(|y| + |a x|)");
    report.expect(float_bits(got[size_t(n)]) == float_bits(y0[size_t(n)]), where + ": wrote past y[n - 1]");
  }
}

// ---------------------------------------------------------------------------
// Choosing the instruction set
// ---------------------------------------------------------------------------

// Throws, as choose_isa does for a setting it cannot honour.
inline bool choice_throws(const char* setting) {
  try {
    choose_isa(setting);
  } catch (const std::runtime_error&) {
    return true;
  }
  return false;
}

inline void check_isa_choice(CheckReport& report) {
  Isa best = Isa::Scalar;
  for (Isa isa : {Isa::Avx512, Isa::AvxVnni, Isa::Avx2, Isa::Neon})
    if (isa_available(isa) && best == Isa::Scalar) best = isa;
  for (const char* unset : {static_cast<const char*>(nullptr), ""})
    report.expect(choose_isa(unset) == best, std::string("SLM_ISA unset or empty must choose ") + isa_name(best));
  for (Isa isa : kAllIsas) {
    const bool honoured = isa_available(isa) ? choose_isa(isa_name(isa)) == isa : choice_throws(isa_name(isa));
    report.expect(honoured, std::string("SLM_ISA=") + isa_name(isa) + " must choose " + isa_name(isa) +
                                " when available, else throw");
  }
  report.expect(choice_throws("sse9"), "SLM_ISA=sse9 must throw");
  report.expect(active_isa() == choose_isa(std::getenv("SLM_ISA")), "active_isa() must follow SLM_ISA");
}

// Every kernel check above for one ISA, over every weight format.
// BF16 under ActivationPrecision::Int8 (kernels/matmul_bf16.hpp): vdpbf16ps gives the bits of
// its reference; every other ISA runs the float kernels of BF16 on the rounded activations, and a
// product of two bf16 values is exact in float32, so a fused multiply-add rounds as a multiply
// then an add does: matmul_rows_scalar's bits on the rounded activations (normal values here).
inline void check_bf16_activations(Isa isa, CheckReport& report) {
  const IsaKernels& kernels = kernels_for(isa);
  const bool dot = isa == Isa::Avx512 && bf16_dot_available();
  const int64_t n_rows = 11;
  for (int64_t n_in : {1, 13, 64, 300, 1100})
    for (int64_t n_tokens : {1, 2, 5, 17, 30}) {
      const RandomMatrix m = random_matrix(GgmlType::BF16, n_rows, n_in, uint32_t(n_in));
      const std::vector<float> x = random_activations(n_tokens * n_in, uint32_t(n_tokens));
      std::vector<float> rounded(x.size()), expected(size_t(n_tokens * n_rows)), got(expected.size());
      for (size_t i = 0; i < x.size(); ++i) rounded[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
      if (dot)
        matmul_rows_bf16_dot_reference(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, expected.data(), n_rows,
                                       0, n_rows);
      else
        matmul_rows_scalar(GgmlType::BF16, m.bytes.data(), m.row_bytes, n_in, rounded.data(), n_tokens,
                           expected.data(), n_rows, 0, n_rows);
      kernels.matmul_rows_bf16_activations(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, got.data(), n_rows, 0,
                                           n_rows);
      for (size_t i = 0; i < got.size(); ++i) {
        const bool same = float_bits(got[i]) == float_bits(expected[i]);
        report.expect(same, same ? std::string() : std::string(kernels.name) + " BF16 Int8 n_in " + std::to_string(n_in) +
                                                       ", " + std::to_string(n_tokens) + " tokens: output " +
                                                       std::to_string(i) + " = " + std::to_string(got[i]) +
                                                       ", expected " + std::to_string(expected[i]));
      }
    }
}

inline void check_every_kernel(Isa isa, CheckReport& report) {
  for (GgmlType type : kWeightFormats) {
    check_matmul(isa, type, report);
    check_one_hot_activations_give_the_exact_weights(isa, type, report);
    check_matmul_interleaved(isa, type, report);
  }
  check_dot_f16_f32(isa, report);
  check_axpy_f16_f32(isa, report);
  check_bf16_activations(isa, report);
}

}  // namespace slm::kernels::checks
