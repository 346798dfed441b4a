// The loop structure of the SIMD matmul, shared by every instruction set and weight format.
// Included only by the *_avx2.cpp / *_neon.cpp files, which supply two things:
//
//   Simd    - 8 float lanes:  Vec; zero(); load(p); store(p, v); fma(w, x, acc) = acc + w*x
//             rounded once; reduce(v) = the lanes summed (0+4, 1+5, 2+6, 3+7), (0+2, 1+3), 0+1.
//   Format  - one weight format: kWeights weights in kBytes bytes per block (the float formats
//             use blocks of 8), decoded in kPieces pieces of 32 (or 8) weights:
//             unpack_scales(block) gives a Scales (a K-quant block's sub-block scales as floats,
//             unpacked once for all pieces); decode(block, scales, piece, sink) calls
//             sink(offset, w) for the piece's weights in order, offset counting from the block's
//             start, w being the exact float values of weights offset .. offset + 7 (what
//             dequantize_row gives). Pieces let the one-token kernel interleave several rows
//             inside a 256-weight block.
//
// Every (row, token) pair is computed the same way whichever path or tile it falls in:
// acc = fma(w[i..i+7], x[i..i+7], acc) for i = 0, 8, 16, ... (a row's last 8 zero-padded),
// then reduce(acc). Only how often a weight block is decoded, and where the decoded floats
// wait (registers or a small L1 buffer), depends on the batch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace slm::kernels::tiling {

inline constexpr int kLanes = 8;
inline constexpr int kCacheLine = 64;
inline constexpr int kRowsPerGroup = 4;         // rows decoded together and sharing each activation load
inline constexpr int64_t kChunkWeights = 256;   // weights per row decoded into the L1 buffer at a time
inline constexpr int kTokensPerTile = 24;       // tokens that reuse one decoded chunk
inline constexpr int kTokensPerPass = 3;        // tokens per register tile: 4 rows x 3 tokens = 12 FMA chains
// One token of a float format: one row at a time is one chain of FMAs, 8 weights per 4 cycles
// on Zen 4 (F16: 4 bytes a cycle, ~13 GB/s a core), under the memory's speed. Adjacent rows
// side by side give more chains but several streams within each page, which Zen 4's prefetchers
// follow badly (2 or 4 adjacent rows: 0.55-0.86x of one row). So a range is cut into
// kFloatStreams parts and one row of each is read at a time: as many chains, each part a
// sequential stream of its own.
inline constexpr int kFloatStreams = 4;

// Asks for n bytes to be brought to the cache. The kernels prefetch the next group of rows
// while working on one: the hardware prefetchers alone leave a one-token matmul of quantized
// weights well below the memory bandwidth (measured: Q4_K 4 GB/s -> 9 GB/s on one Zen core).
inline void prefetch(const uint8_t* bytes, int64_t n) {
  for (int64_t offset = 0; offset < n; offset += kCacheLine) __builtin_prefetch(bytes + offset);
}

// For the formats whose decode reads its block's one scale itself (float and legacy formats).
struct ScalesReadByDecode {
  struct Scales {};
  static Scales unpack_scales(const uint8_t* /*block*/) { return {}; }
};

// Decodes a block of which only the first n_valid weights exist (the end of a float-format
// row whose length is not a multiple of 8) as if the missing weights were zeros.
template <class Format, class Sink>
void decode_partial_block(const uint8_t* block, int64_t n_valid, Sink&& sink) {
  uint8_t padded[Format::kBytes] = {};
  static_assert(Format::kWeights == kLanes, "only float-format rows end in a partial block");
  std::memcpy(padded, block, static_cast<size_t>(n_valid * Format::kBytes / Format::kWeights));
  Format::decode(padded, Format::unpack_scales(padded), 0, sink);
}

// ---------------------------------------------------------------------------
// One token (generation): kRows rows at a time, each block decoded into registers and
// multiplied at once, so every weight byte is read once and never stored. A pair's sums form
// one chain of dependent FMAs, so the rows are interleaved piece by piece: kRows chains in
// flight. The quantized formats take kRows adjacent rows; the float formats take rows far
// apart (kFloatStreams below).
// ---------------------------------------------------------------------------

// The group's rows are rows_apart rows from one to the next (weights and y alike); with
// rows_apart 1, n_next_rows (<= kRows) rows follow the group and are prefetched.
template <class Simd, class Format, int kRows>
void dot_row_group(const uint8_t* first_row, uint64_t row_bytes, int64_t rows_apart, int n_next_rows, int64_t n_in,
                   const float* x, float* y) {
  const uint64_t group_row_bytes = uint64_t(rows_apart) * row_bytes;
  using Vec = typename Simd::Vec;
  Vec acc[kRows];
  for (Vec& a : acc) a = Simd::zero();
  const auto accumulate_into = [](Vec& a, const float* x_block) {
    return [&a, x_block](int offset, Vec w) { a = Simd::fma(w, Simd::load(x_block + offset), a); };
  };
  const int64_t n_blocks = n_in / Format::kWeights;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = first_row + b * Format::kBytes;
    for (int r = 0; r < n_next_rows; ++r) prefetch(block + (kRows + r) * row_bytes, Format::kBytes);
    typename Format::Scales scales[kRows];
    for (int r = 0; r < kRows; ++r) scales[r] = Format::unpack_scales(block + r * group_row_bytes);
    for (int piece = 0; piece < Format::kPieces; ++piece) {
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r)
        Format::decode(block + r * group_row_bytes, scales[r], piece, accumulate_into(acc[r], x + b * Format::kWeights));
    }
  }
  if constexpr (Format::kWeights == kLanes) {
    if (const int64_t tail = n_in % kLanes) {
      float x_padded[kLanes] = {};
      std::memcpy(x_padded, x + n_blocks * kLanes, static_cast<size_t>(tail) * sizeof(float));
      for (int r = 0; r < kRows; ++r)
        decode_partial_block<Format>(first_row + r * group_row_bytes + n_blocks * Format::kBytes, tail,
                                     accumulate_into(acc[r], x_padded));
    }
  }
  for (int r = 0; r < kRows; ++r) y[r * rows_apart] = Simd::reduce(acc[r]);
}

// ---------------------------------------------------------------------------
// Several tokens (prompt processing): a group of kRowsPerGroup rows is decoded chunk by
// chunk into an L1 buffer, and each chunk serves a tile of up to kTokensPerTile tokens.
// ---------------------------------------------------------------------------

// acc[r][first_token + t] += decoded row r . activations of token t, for t < kTokens, over
// n_steps steps of 8 weights. decoded holds kRowsPerGroup rows kChunkWeights apart;
// x_tokens[t] points at token t's activations for the same weights.
template <class Simd, int kTokens>
void accumulate_register_tile(const float* decoded, const float* const* x_tokens, int64_t n_steps,
                              typename Simd::Vec (*acc)[kTokensPerTile], int first_token) {
  using Vec = typename Simd::Vec;
  Vec sum[kRowsPerGroup][kTokens];
  for (int r = 0; r < kRowsPerGroup; ++r)
    for (int t = 0; t < kTokens; ++t) sum[r][t] = acc[r][first_token + t];
  for (int64_t s = 0; s < n_steps; ++s) {
    Vec x[kTokens];
    for (int t = 0; t < kTokens; ++t) x[t] = Simd::load(x_tokens[t] + s * kLanes);
    for (int r = 0; r < kRowsPerGroup; ++r) {
      const Vec w = Simd::load(decoded + r * kChunkWeights + s * kLanes);
      for (int t = 0; t < kTokens; ++t) sum[r][t] = Simd::fma(w, x[t], sum[r][t]);
    }
  }
  for (int r = 0; r < kRowsPerGroup; ++r)
    for (int t = 0; t < kTokens; ++t) acc[r][first_token + t] = sum[r][t];
}

// Runs accumulate_register_tile over n_tokens tokens (<= kTokensPerTile), kTokensPerPass at a time.
template <class Simd>
void accumulate_token_tile(const float* decoded, const float* const* x_tokens, int n_tokens, int64_t n_steps,
                           typename Simd::Vec (*acc)[kTokensPerTile]) {
  static_assert(kTokensPerPass == 3);
  int t = 0;
  for (; t + 3 <= n_tokens; t += 3) accumulate_register_tile<Simd, 3>(decoded, x_tokens + t, n_steps, acc, t);
  if (n_tokens - t == 2) accumulate_register_tile<Simd, 2>(decoded, x_tokens + t, n_steps, acc, t);
  if (n_tokens - t == 1) accumulate_register_tile<Simd, 1>(decoded, x_tokens + t, n_steps, acc, t);
}

// Writes `count` weights starting at weight `first` (a multiple of the block size) of `row`
// as floats to out, zero-padded to a multiple of 8.
template <class Simd, class Format>
void decode_chunk(const uint8_t* row, int64_t first, int64_t count, float* out) {
  const uint8_t* block = row + first / Format::kWeights * Format::kBytes;
  int64_t done = 0;
  const auto store_at = [](float* base) {
    return [base](int offset, typename Simd::Vec w) { Simd::store(base + offset, w); };
  };
  for (; done + Format::kWeights <= count; done += Format::kWeights, block += Format::kBytes) {
    const typename Format::Scales scales = Format::unpack_scales(block);
    for (int piece = 0; piece < Format::kPieces; ++piece) Format::decode(block, scales, piece, store_at(out + done));
  }
  if constexpr (Format::kWeights == kLanes)
    if (done < count) decode_partial_block<Format>(block, count - done, store_at(out + done));
}

// What one thread's batched matmul keeps in L1: 4 KiB of decoded weights, 3 KiB of sums.
template <class Simd>
struct BatchScratch {
  // Rows of a group past the matrix's end stay zero (or keep an earlier group's finite
  // weights); their sums are computed and dropped.
  alignas(64) float decoded[kRowsPerGroup * kChunkWeights] = {};
  typename Simd::Vec acc[kRowsPerGroup][kTokensPerTile];
  alignas(32) float x_tail[kTokensPerTile][kLanes];
};

// Rows [0, n_rows) of the group at first_row; n_next_rows rows after the group are prefetched.
template <class Simd, class Format>
void matmul_row_group(const uint8_t* first_row, uint64_t row_bytes, int n_rows, int n_next_rows, int64_t n_in,
                      const float* x, int64_t n_tokens, float* y, int64_t y_stride, BatchScratch<Simd>& scratch) {
  using Vec = typename Simd::Vec;
  const float* x_tokens[kTokensPerTile];
  const float* x_tail_tokens[kTokensPerTile];
  for (int t = 0; t < kTokensPerTile; ++t) x_tail_tokens[t] = scratch.x_tail[t];

  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokensPerTile) {
    const int tile_tokens = static_cast<int>(std::min<int64_t>(kTokensPerTile, n_tokens - t0));
    for (auto& row_acc : scratch.acc)
      for (Vec& a : row_acc) a = Simd::zero();
    for (int64_t k0 = 0; k0 < n_in; k0 += kChunkWeights) {
      const int64_t count = std::min(kChunkWeights, n_in - k0);
      const int64_t chunk_offset = k0 / Format::kWeights * Format::kBytes;
      const int64_t chunk_bytes = (count + Format::kWeights - 1) / Format::kWeights * Format::kBytes;
      for (int r = 0; r < n_next_rows; ++r)
        prefetch(first_row + (kRowsPerGroup + r) * row_bytes + chunk_offset, chunk_bytes);
      for (int r = 0; r < n_rows; ++r)
        decode_chunk<Simd, Format>(first_row + r * row_bytes, k0, count, scratch.decoded + r * kChunkWeights);
      const int64_t full_steps = count / kLanes;
      for (int t = 0; t < tile_tokens; ++t) x_tokens[t] = x + (t0 + t) * n_in + k0;
      accumulate_token_tile<Simd>(scratch.decoded, x_tokens, tile_tokens, full_steps, scratch.acc);
      if (const int64_t tail = count % kLanes) {
        // The last 8 weights of a float-format row: activations zero-padded like the weights.
        for (int t = 0; t < tile_tokens; ++t) {
          std::memset(scratch.x_tail[t], 0, sizeof(scratch.x_tail[t]));
          std::memcpy(scratch.x_tail[t], x_tokens[t] + full_steps * kLanes, static_cast<size_t>(tail) * sizeof(float));
        }
        accumulate_token_tile<Simd>(scratch.decoded + full_steps * kLanes, x_tail_tokens, tile_tokens, 1, scratch.acc);
      }
    }
    for (int t = 0; t < tile_tokens; ++t)
      for (int r = 0; r < n_rows; ++r) y[(t0 + t) * y_stride + r] = Simd::reduce(scratch.acc[r][t]);
  }
}

// ---------------------------------------------------------------------------
// The kernel: y[t * y_stride + o] for o in [row_begin, row_end), t in [0, n_tokens).
// ---------------------------------------------------------------------------

// matmul_rows<Simd, Format> as a function pointer, for the per-ISA switch over the types.
using FormatKernel = void (*)(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                              int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

template <class Simd, class Format>
void matmul_rows(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x, int64_t n_tokens,
                 float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const auto rows_from = [row_end](int64_t o) {
    return static_cast<int>(std::clamp<int64_t>(row_end - o, 0, kRowsPerGroup));
  };
  int64_t o = row_begin;
  if (n_tokens == 1) {
    if constexpr (Format::kWeights == kLanes) {
      // The float formats: kFloatStreams parts of the range, one row of each at a time.
      const int64_t rows_per_stream = (row_end - o) / kFloatStreams;
      for (int64_t k = 0; k < rows_per_stream; ++k)
        dot_row_group<Simd, Format, kFloatStreams>(weights + (o + k) * row_bytes, row_bytes, rows_per_stream, 0, n_in,
                                                   x, y + o + k);
      o += kFloatStreams * rows_per_stream;
    }
    for (; o + kRowsPerGroup <= row_end; o += kRowsPerGroup)
      dot_row_group<Simd, Format, kRowsPerGroup>(weights + o * row_bytes, row_bytes, 1, rows_from(o + kRowsPerGroup),
                                                 n_in, x, y + o);
    for (; o < row_end; ++o) dot_row_group<Simd, Format, 1>(weights + o * row_bytes, row_bytes, 1, 0, n_in, x, y + o);
    return;
  }
  BatchScratch<Simd> scratch;
  for (; o < row_end; o += kRowsPerGroup)
    matmul_row_group<Simd, Format>(weights + o * row_bytes, row_bytes, rows_from(o), rows_from(o + kRowsPerGroup), n_in,
                                   x, n_tokens, y + o, y_stride, scratch);
}

}  // namespace slm::kernels::tiling
