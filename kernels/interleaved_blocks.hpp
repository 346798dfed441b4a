// The 8-row interleaved layout of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS and Q2_K .. Q6_K, into which a model's
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
//                           IQ4_NL: as Q4_0 (its nibbles index kIq4NlValues)
//
// so a tile's block is exactly 8 of the format's blocks long. Q4_1 and Q5_1 (w = d * q + m) are
// Q4_0 and Q5_0 with the 8 rows' fp16 mins after the scales:
//   uint16 d[8], m[8], then the 8 groups as Q4_0's (Q4_1) or Q5_0's (Q5_1).
//
// Q4_K (blocks of 256: 8 sub-blocks of 32), a tile's block b is
//   uint16 d[8], dmin[8]            the 8 rows' fp16 scales
//   uint8 scale[8][8], min[8][8]    [sub-block i][row r], unpacked from the 12 packed bytes
//   for each sub-block i: 8 groups m of 16 bytes, as the Q4_0 groups, of weights 32i + 4m ..
// 1184 bytes where the 8 blocks take 1152: the scales unpacked once here, not every token.
//
// IQ4_XS (8 sub-blocks of 32 whose nibbles index kIq4NlValues, no mins), a tile's block b is
//   uint16 d[8]                     the 8 rows' fp16 scales
//   int8 scale[8][8]                [sub-block i][row r]: ls_i - 32, unpacked from scales_h, scales_l
//   for each sub-block i: 8 groups m of 16 bytes, as Q4_K's, of weights 32i + 4m ..
// 1104 bytes where the 8 blocks take 1088: Q4_K's layout without dmin and the mins.
//
// Q5_K (Q4_K with a 5th bit per weight), a tile's block b is Q4_K's 160 bytes of scales, then
// for each sub-block i 8 groups m of 20 bytes, as the Q5_0 groups (uint32 qh, then qs[16]), of
// weights 32i + 4m ..: 1440 bytes where the 8 blocks take 1408.
//
// Q6_K (16 sub-blocks of 16, 6-bit quants q), a tile's block b is
//   uint16 d[8]; int8 scale[16][8] ([sub-block i][row r])
//   for each 32 weights c = 0..7: 4 pairs p of groups a = 2p, b = 2p + 1 (weights 32c + 8p ..,
//     slots as above), 48 bytes each:
//       uint16 word[16] (little-endian)  a[j] | (b[16 + j] >> 2) << 6 | a[16 + j] << 10
//       uint8 byte[16]                   b[j] | (b[16 + j] & 3) << 6
//     where a[s] and b[s] are the quants of slot s: one and (a[j]), one shift (a[16 + j]) and
//     a widening and an and (b[j]) give three of a pair's four 16-lane vectors
// 1680 bytes, exactly 8 blocks.
//
// Q3_K (16 sub-blocks of 16, q + 4 in 0..7), a tile's block b is
//   uint16 d[8]; int8 scale[16][8] ([sub-block i][row r], scale_i in -32..31)
//   for each 32 weights c = 0..7, 96 bytes: three planes of 32 bytes, each holding a bit field
//     of the 32 slots of its groups m, slot j at byte j (j < 8 or j >= 24), j + 8 (8..15) or
//     j - 8 (16..23): the low 2 bits of groups 0-3 at bits 2m, of groups 4-7 at bits 2(m - 4),
//     then the high bit of group m at bit m
// 912 bytes where the 8 blocks take 880: the scales unpacked once here.
//
// Q2_K (16 sub-blocks of 16, q in 0..3), a tile's block b is
//   uint16 d[8], dmin[8]; uint8 scales[16][8] (the file's bytes: scale_i | min_i << 4)
//   for each 32 weights c, 64 bytes: the two planes of 2 bits as Q3_K's
// 672 bytes, exactly 8 blocks (kernels/interleave_low_bit_k_quants.cpp).
//
// Why this order: a group decodes
// to slots 0..15 and 16..31 as two vectors of 16 lanes of int16 (the group's 16 nibble bytes
// widened once: low nibbles, then high ones) = 8 rows x one pair of weights each, which
// _mm256_madd_epi16 multiplies with a broadcast pair of activations to give each row's sum in
// its own 32-bit lane: no horizontal additions (see kernels/matmul_int_avx2.hpp).
//
// The scalar functions here are the specification: interleave_rows_reference and
// deinterleave_row are exact inverses (tested byte for byte), and interleave_rows, which
// loading runs, writes the reference's bytes a word at a time (kernels/interleave_words.cpp).
#pragma once

#include <cstdint>

#include "slm/ggml_type.hpp"

namespace slm::kernels {

inline constexpr int kInterleavedRows = 8;
inline constexpr int kQ4KTileBlockBytes = 1184;  // d, dmin: 32; scales, mins: 128; quants: 1024
inline constexpr int kQ5KTileBlockBytes = 1440;  // d, dmin, scales, mins: 160; groups: 1280
inline constexpr int kIQ4XSTileBlockBytes = 1104;  // d: 16; scales: 64; quants: 1024
inline constexpr int kQ6KTileBlockBytes = 1680;  // d: 16; scales: 128; quants: 1536 (8 blocks of 210)
inline constexpr int kQ3KTileBlockBytes = 912;   // d: 16; scales: 128; quants: 768
inline constexpr int kQ2KTileBlockBytes = 672;   // d, dmin: 32; scales: 128; quants: 512 (8 blocks of 84)

// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K.
bool has_interleaved_layout(GgmlType type);

// Q4_1 and Q5_1: a legacy block with a min (w = d * q + m).
bool has_block_min(GgmlType type);

// The bytes before a legacy block's quants: d (2), or d and m (4, Q4_1 and Q5_1).
int legacy_header_bytes(GgmlType type);

// The bytes of one tile of 8 rows of n_in weights (a multiple of the block size).
uint64_t interleaved_tile_bytes(GgmlType type, int64_t n_in);

// The tile of the 8 rows first_row + r * row_bytes (r = 0..7), each n_in weights of `type`
// (a multiple of the block size), written to `tile`: interleaved_tile_bytes(type, n_in) bytes.
void interleave_rows(GgmlType type, const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, uint8_t* tile);
void interleave_rows_reference(GgmlType type, const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, uint8_t* tile);

// Row `row` (0..7) of a tile, in the format's own layout: ggml_row_bytes(type, n_in) bytes.
void deinterleave_row(GgmlType type, const uint8_t* tile, int64_t n_in, int row, uint8_t* out);

// Row r's part of a Q4_K or Q5_K tile block's first 160 bytes (d, dmin, the unpacked scales
// and mins), which the reference and the word-at-a-time repack both write.
struct BlockQ4_K;
struct BlockQ5_K;
void write_k_tile_scales(const BlockQ4_K& block, int row, uint8_t* tile_block);
void write_k_tile_scales(const BlockQ5_K& block, int row, uint8_t* tile_block);
// Row r's part of an IQ4_XS tile block's first 80 bytes (d, the unpacked signed scales).
struct BlockIQ4_XS;
void write_iq4_xs_tile_scales(const BlockIQ4_XS& block, int row, uint8_t* tile_block);

// One super-block of the 8 rows of a Q3_K or Q2_K tile, and row `row`'s block back from it
// (kernels/interleave_low_bit_k_quants.cpp).
struct BlockQ3_K;
struct BlockQ2_K;
void interleave_q3_k_block(const BlockQ3_K* const (&rows)[kInterleavedRows], uint8_t* out);
void deinterleave_q3_k_block(const uint8_t* in, int row, BlockQ3_K& block);
void interleave_q2_k_block(const BlockQ2_K* const (&rows)[kInterleavedRows], uint8_t* out);
void deinterleave_q2_k_block(const uint8_t* in, int row, BlockQ2_K& block);

}  // namespace slm::kernels
