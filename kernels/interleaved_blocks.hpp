// The 8-row interleaved layout of the legacy formats Q4_0, Q5_0 and Q8_0, into which a model's
// matrices are repacked once at load time for the kernels that multiply them faster that way
// (IsaKernels::interleaves; AVX2: one token 1.3x (Q5_0) to 1.7x (Q8_0) faster, measured with
// benchmarks/bench_matmul). Same bytes, other order: a tile of 8 rows keeps, for each block b,
//
//   uint16 d[8]           the 8 rows' fp16 scales of block b
//   8 groups m = 0..7     group m holds weights 4m .. 4m+3 of the 8 rows, as 32 slots:
//                           slot j < 16:  row j/2, weight 4m + j%2
//                           slot 16 + j:  row j/2, weight 4m + 2 + j%2
//                         each group stored as the format stores a block's quants, d left out:
//                           Q8_0: int8 q[32]                        (slot j in q[j])
//                           Q4_0: uint8 qs[16]                      (slot j in the low nibble of
//                                                                    qs[j], slot 16+j in its high one)
//                           Q5_0: uint32 qh (little-endian), qs[16] (5th bit of slot j in bit j)
//
// so a tile's block is exactly 8 of the format's blocks long. Why this order: a group decodes
// to the signed bytes of slots 0..31 in one register, whose two halves widen to 16 lanes of
// int16 each = 8 rows x one pair of weights, which _mm256_madd_epi16 multiplies with a
// broadcast pair of activations to give each row's sum in its own 32-bit lane: no horizontal
// additions (see kernels/matmul_int_avx2.hpp).
//
// The scalar functions here are the specification; interleave_rows and deinterleave_row are
// exact inverses (tested byte for byte).
#pragma once

#include <cstdint>

#include "slm/ggml_type.hpp"

namespace slm::kernels {

inline constexpr int kInterleavedRows = 8;

// Q4_0, Q5_0 and Q8_0.
bool has_interleaved_layout(GgmlType type);

// The tile of the 8 rows first_row + r * row_bytes (r = 0..7), each n_in weights of `type`
// (a multiple of 32), written to `tile`: 8 * ggml_row_bytes(type, n_in) bytes.
void interleave_rows(GgmlType type, const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, uint8_t* tile);

// Row `row` (0..7) of a tile, in the format's own layout: ggml_row_bytes(type, n_in) bytes.
void deinterleave_row(GgmlType type, const uint8_t* tile, int64_t n_in, int row, uint8_t* out);

}  // namespace slm::kernels
