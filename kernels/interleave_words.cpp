// interleave_rows, a 32-bit word at a time: the layout of kernels/interleaved_blocks.hpp,
// whose scalar specification (interleave_rows_reference, kernels/interleave.cpp) unpacks every
// quant to a byte and packs the slots again. Here, 4 consecutive bytes of a row's quants hold
// its weights 4m .. 4m+3 of one group (two groups where nibbles hold two sub-blocks or halves),
// and the group wants them as the row's 2 bytes of slots 2r, 2r+1 (low nibbles: weights 4m,
// 4m+1; high nibbles: 4m+2, 4m+3): one word of the row gives those 2 bytes with a few shifts
// and masks. Loading repacks the whole file this way (808 MB for Llama-3.2-1B Q4_K_M), so the
// time to the first token is mostly this loop. Tested byte for byte against the reference.
#include <cstring>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/packed_scales.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {
namespace {

constexpr int kScaleBytes = sizeof(Fp16Bits);
constexpr int kGroups = kLegacyBlockSize / 4;

uint32_t load_word(const uint8_t* bytes) {
  uint32_t word;
  std::memcpy(&word, bytes, sizeof(word));
  return word;
}

void store_pair(uint8_t* bytes, uint32_t pair) {
  const auto value = uint16_t(pair);
  std::memcpy(bytes, &value, sizeof(value));
}

// Bytes s0..s3 of `word` hold 4 weights' nibbles (the low ones, or the high ones): the 2 bytes
// of a row's slots, s0's | s2's << 4 and s1's | s3's << 4.
uint32_t low_nibble_pair(uint32_t word) { return (word & 0x0f0fu) | ((word >> 12) & 0xf0f0u); }
uint32_t high_nibble_pair(uint32_t word) { return ((word >> 4) & 0x0f0fu) | ((word >> 16) & 0xf0f0u); }

// Groups of 16 bytes of nibbles, as Q4_0's (byte 2r + e: row r's weight 4m + e low, 4m + 2 + e
// high), from 32 bytes of each row whose low nibbles are one run of 32 weights and high nibbles
// the next: the low run's group m goes to low_out + m * stride, the high run's to high_out + ...
void interleave_nibble_runs(const uint8_t* const (&rows)[kInterleavedRows], int offset, uint8_t* low_out,
                            uint8_t* high_out, int stride) {
  for (int r = 0; r < kInterleavedRows; ++r)
    for (int m = 0; m < kGroups; ++m) {
      const uint32_t word = load_word(rows[r] + offset + 4 * m);
      store_pair(low_out + m * stride + 2 * r, low_nibble_pair(word));
      store_pair(high_out + m * stride + 2 * r, high_nibble_pair(word));
    }
}

// Groups 0..7 of 16 bytes of nibbles (group m at groups + m * stride), as Q4_0's, from 16 bytes
// of each row at `offset` in Q4_0's order (byte l: weight l low, 16 + l high): word m gives
// group m its low nibbles (weights 4m ..) and group m + 4 its high ones (16 + 4m ..).
void interleave_nibble_halves(const uint8_t* const (&rows)[kInterleavedRows], int offset, uint8_t* groups, int stride) {
  for (int r = 0; r < kInterleavedRows; ++r)
    for (int m = 0; m < kGroups / 2; ++m) {
      const uint32_t word = load_word(rows[r] + offset + 4 * m);
      store_pair(groups + m * stride + 2 * r, low_nibble_pair(word));
      store_pair(groups + (m + kGroups / 2) * stride + 2 * r, high_nibble_pair(word));
    }
}

// Q4_K and Q5_K: qs[32p + l] holds sub-block 2p's weight l in its low nibble and 2p+1's in its
// high one; a tile's group of kGroupBytes keeps its nibbles at kNibblesOffset (after Q5_K's qh).
template <class Block, int kGroupBytes, int kNibblesOffset>
void interleave_k_nibbles(const Block* const (&blocks)[kInterleavedRows], uint8_t* out) {
  constexpr int kSubBlocks = 8;
  constexpr int kQuantsOffset = 2 * kInterleavedRows * kScaleBytes + 2 * kSubBlocks * kInterleavedRows;
  const uint8_t* rows[kInterleavedRows];
  for (int r = 0; r < kInterleavedRows; ++r) {
    write_k_tile_scales(*blocks[r], r, out);
    rows[r] = blocks[r]->qs;
  }
  uint8_t* nibbles = out + kQuantsOffset + kNibblesOffset;
  for (int p = 0; p < kSubBlocks / 2; ++p)
    interleave_nibble_runs(rows, 32 * p, nibbles + 2 * p * kGroups * kGroupBytes, nibbles + (2 * p + 1) * kGroups * kGroupBytes,
                           kGroupBytes);
}

void interleave_q4_k_block(const BlockQ4_K* const (&blocks)[kInterleavedRows], uint8_t* out) {
  interleave_k_nibbles<BlockQ4_K, 16, 0>(blocks, out);
}

// Q5_K: Q4_K's nibbles, and the 5th bits as Q5_0's groups hold them: bit 2r + e of group (i,
// m)'s qh is row r's weight 4m + e of sub-block i, bit 16 + 2r + e its weight 4m + 2 + e. The
// block keeps weight l's at bit i of qh[l], so one word of qh holds a row's 4 weights of group
// m for every sub-block i, at bits i, 8 + i, 16 + i, 24 + i.
void interleave_q5_k_block(const BlockQ5_K* const (&blocks)[kInterleavedRows], uint8_t* out) {
  constexpr int kSubBlocks = 8, kGroupBytes = 20;
  constexpr int kQuantsOffset = 2 * kInterleavedRows * kScaleBytes + 2 * kSubBlocks * kInterleavedRows;
  static_assert(kQuantsOffset + kSubBlocks * kGroups * kGroupBytes == kQ5KTileBlockBytes);
  interleave_k_nibbles<BlockQ5_K, kGroupBytes, sizeof(uint32_t)>(blocks, out);
  for (int m = 0; m < kGroups; ++m) {
    uint32_t words[kInterleavedRows];
    for (int r = 0; r < kInterleavedRows; ++r) words[r] = load_word(blocks[r]->qh + 4 * m);
    for (int i = 0; i < kSubBlocks; ++i) {
      uint32_t high_bits = 0;
      for (int r = 0; r < kInterleavedRows; ++r) {
        const uint32_t bits = (words[r] >> i) & 0x01010101u;  // weights 4m .. 4m + 3 at bits 0, 8, 16, 24
        high_bits |= ((bits & 1u) | ((bits >> 7) & 2u)) << (2 * r) | (((bits >> 16) & 1u) | ((bits >> 23) & 2u)) << (16 + 2 * r);
      }
      std::memcpy(out + kQuantsOffset + (i * kGroups + m) * kGroupBytes, &high_bits, sizeof(high_bits));
    }
  }
}

// IQ4_XS: sub-block i's nibbles at qs + 16i in Q4_0's order, to Q4_K's groups after the scales.
void interleave_iq4_xs_block(const BlockIQ4_XS* const (&blocks)[kInterleavedRows], uint8_t* out) {
  constexpr int kSubBlocks = 8, kGroupBytes = 16;
  constexpr int kQuantsOffset = kInterleavedRows * kScaleBytes + kSubBlocks * kInterleavedRows;
  static_assert(kQuantsOffset + kSubBlocks * kGroups * kGroupBytes == kIQ4XSTileBlockBytes);
  const uint8_t* rows[kInterleavedRows];
  for (int r = 0; r < kInterleavedRows; ++r) {
    write_iq4_xs_tile_scales(*blocks[r], r, out);
    rows[r] = blocks[r]->qs;
  }
  for (int i = 0; i < kSubBlocks; ++i)
    interleave_nibble_halves(rows, 16 * i, out + kQuantsOffset + i * kGroups * kGroupBytes, kGroupBytes);
}

// Q6_K: a pair of groups a, b keeps 16 words a[j] | (b[16 + j] >> 2) << 6 | a[16 + j] << 10,
// then 16 bytes b[j] | (b[16 + j] & 3) << 6 (interleaved_blocks.hpp). Row r's slots are
// 2r + e and 16 + 2r + e (e = 0, 1): its words and bytes 2r, 2r + 1, from the row's quants of
// weights 4m .. 4m + 3 of each group, a byte each in words a and b (q6_k_quant_word).
void store_q6_k_row_pair(uint8_t* pair, int r, uint32_t a, uint32_t b) {
  for (int e = 0; e < 2; ++e) {
    const uint32_t a_low = (a >> 8 * e) & 0x3f, a_high = (a >> (16 + 8 * e)) & 0x3f;
    const uint32_t b_low = (b >> 8 * e) & 0x3f, b_high = (b >> (16 + 8 * e)) & 0x3f;
    store_pair(pair + 2 * (2 * r + e), a_low | (b_high >> 2) << 6 | a_high << 10);
    pair[32 + 2 * r + e] = uint8_t(b_low | (b_high & 3) << 6);
  }
}

// Weights 4m .. 4m + 3 of run c = 4h + g of 32 weights, a 6-bit quant a byte: low nibbles in
// ql[64h + 32(g % 2) + l] (high nibbles when g >= 2), top 2 bits at bit 2g of qh[32h + l].
uint32_t q6_k_quant_word(const BlockQ6_K& block, int c, int m) {
  const int h = c / 4, g = c % 4;
  const uint32_t low = (load_word(block.ql + 64 * h + 32 * (g % 2) + 4 * m) >> (4 * (g / 2))) & 0x0f0f0f0fu;
  const uint32_t top = (load_word(block.qh + 32 * h + 4 * m) >> (2 * g)) & 0x03030303u;
  return low | top << 4;
}

void interleave_q6_k_block(const BlockQ6_K* const (&blocks)[kInterleavedRows], uint8_t* out) {
  constexpr int kSubBlocks = 16, kQuantsOffset = kInterleavedRows * kScaleBytes + kSubBlocks * kInterleavedRows;
  constexpr int kPairBytes = 48, kRuns = 8;
  for (int r = 0; r < kInterleavedRows; ++r) {
    const BlockQ6_K& block = *blocks[r];
    std::memcpy(out + kScaleBytes * r, &block.d, kScaleBytes);
    for (int i = 0; i < kSubBlocks; ++i)
      out[kInterleavedRows * kScaleBytes + i * kInterleavedRows + r] = uint8_t(block.scales[i]);
    for (int c = 0; c < kRuns; ++c)
      for (int m = 0; m < kGroups; m += 2)
        store_q6_k_row_pair(out + kQuantsOffset + (c * kGroups + m) / 2 * kPairBytes, r, q6_k_quant_word(block, c, m),
                            q6_k_quant_word(block, c, m + 1));
  }
  static_assert(kRuns * kGroups / 2 * kPairBytes + kQuantsOffset == kQ6KTileBlockBytes);
}

// Q2_K and Q3_K (interleave_low_bit_k_quants.cpp): qs[32h + l] holds weight l of runs 4h .. 4h + 3
// (32 weights each) at bits 0, 2, 4, 6, and a tile's run keeps two planes of 32 bytes, plane
// p's byte of slot (r, e) holding at bits 2i row r's weight 16p + 4i + e of the run. Word i of
// the row's qs[32h + 16p ..] holds those weights at its bytes e: each run's field shifted down
// and then up to bits 2i, the 4 words OR to the row's 4 bytes e = 0..3, slots 2r, 2r + 1 and
// 16 + 2r, 17 + 2r, whose pairs sit together in a plane (plane_byte).
constexpr int plane_byte(int slot) { return slot + (slot / 8 == 1 ? 8 : slot / 8 == 2 ? -8 : 0); }

void store_row_slots(uint8_t* plane, int r, uint32_t bytes) {
  store_pair(plane + plane_byte(2 * r), bytes);
  store_pair(plane + plane_byte(16 + 2 * r), bytes >> 16);
}

void interleave_two_bit_planes(const uint8_t* const (&qs)[kInterleavedRows], uint8_t* runs, int run_bytes) {
  for (int r = 0; r < kInterleavedRows; ++r)
    for (int h = 0; h < 2; ++h)
      for (int p = 0; p < 2; ++p) {
        uint32_t words[4];
        for (int i = 0; i < 4; ++i) words[i] = load_word(qs[r] + 32 * h + 16 * p + 4 * i);
        for (int k = 0; k < 4; ++k) {
          uint32_t bytes = 0;
          for (int i = 0; i < 4; ++i) bytes |= ((words[i] >> (2 * k)) & 0x03030303u) << (2 * i);
          store_row_slots(runs + (4 * h + k) * run_bytes + 32 * p, r, bytes);
        }
      }
}

void interleave_q2_k_words(const BlockQ2_K* const (&blocks)[kInterleavedRows], uint8_t* out) {
  constexpr int kSubBlocks = 16, kScalesOffset = 2 * kInterleavedRows * kScaleBytes;
  constexpr int kQuantsOffset = kScalesOffset + kSubBlocks * kInterleavedRows, kRunBytes = 64;
  static_assert(kQuantsOffset + 8 * kRunBytes == kQ2KTileBlockBytes);
  const uint8_t* qs[kInterleavedRows];
  for (int r = 0; r < kInterleavedRows; ++r) {
    const BlockQ2_K& block = *blocks[r];
    std::memcpy(out + kScaleBytes * r, &block.d, kScaleBytes);
    std::memcpy(out + kScaleBytes * (kInterleavedRows + r), &block.dmin, kScaleBytes);
    for (int i = 0; i < kSubBlocks; ++i) out[kScalesOffset + i * kInterleavedRows + r] = block.scales[i];
    qs[r] = block.qs;
  }
  interleave_two_bit_planes(qs, out + kQuantsOffset, kRunBytes);
}

// Q3_K: Q2_K's planes of the low 2 bits, then a third plane per run c whose byte of slot
// (r, e) holds at bit g row r's high bit of weight 4g + e: bit c of hmask[4g + e], byte e of
// the row's hmask word g.
void interleave_q3_k_words(const BlockQ3_K* const (&blocks)[kInterleavedRows], uint8_t* out) {
  constexpr int kSubBlocks = 16, kScalesOffset = kInterleavedRows * kScaleBytes;
  constexpr int kQuantsOffset = kScalesOffset + kSubBlocks * kInterleavedRows, kRunBytes = 96, kRuns = 8;
  static_assert(kQuantsOffset + kRuns * kRunBytes == kQ3KTileBlockBytes);
  const uint8_t* qs[kInterleavedRows];
  for (int r = 0; r < kInterleavedRows; ++r) {
    const BlockQ3_K& block = *blocks[r];
    std::memcpy(out + kScaleBytes * r, &block.d, kScaleBytes);
    uint8_t plus_32[kSubBlocks];
    std::memcpy(plus_32, q3_k_scales_plus_32(block.scales).words, kSubBlocks);
    for (int i = 0; i < kSubBlocks; ++i) out[kScalesOffset + i * kInterleavedRows + r] = uint8_t(plus_32[i] - 32);
    qs[r] = block.qs;
    uint32_t words[8];
    for (int g = 0; g < 8; ++g) words[g] = load_word(block.hmask + 4 * g);
    for (int c = 0; c < kRuns; ++c) {
      uint32_t bytes = 0;
      for (int g = 0; g < 8; ++g) bytes |= ((words[g] >> c) & 0x01010101u) << g;
      store_row_slots(out + kQuantsOffset + c * kRunBytes + 64, r, bytes);
    }
  }
  interleave_two_bit_planes(qs, out + kQuantsOffset, kRunBytes);
}

// The 8 rows are 8 streams through memory the hardware prefetcher follows late: asking for
// the bytes a few blocks ahead took Llama-3.2-1B Q4_K_M's first token from 0.58 to 0.54 s.
void prefetch(const uint8_t* begin, uint64_t n_bytes) {
  for (uint64_t line = 0; line < n_bytes; line += 64) __builtin_prefetch(begin + line);
}

template <class Block>
void interleave_super_blocks(const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, uint8_t* tile,
                             int tile_block_bytes, void (*interleave_block)(const Block* const (&)[kInterleavedRows], uint8_t*)) {
  for (int64_t b = 0; b < n_in / kSuperBlockSize; ++b) {
    const Block* rows[kInterleavedRows];
    for (int r = 0; r < kInterleavedRows; ++r) rows[r] = reinterpret_cast<const Block*>(first_row + uint64_t(r) * row_bytes) + b;
    for (int r = 0; r < kInterleavedRows; ++r) prefetch(reinterpret_cast<const uint8_t*>(rows[r] + 2), sizeof(Block));
    interleave_block(rows, tile + uint64_t(b) * tile_block_bytes);
  }
}

// Q4_0, IQ4_NL, Q4_1, Q5_0, Q5_1, Q8_0: block b of the tile is d[8] (Q4_1, Q5_1: then m[8]),
// then 8 groups of the block's quant bytes.
void interleave_legacy_blocks(GgmlType type, const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, uint8_t* tile) {
  const int block_bytes = int(ggml_type_info(type).block_bytes), header = legacy_header_bytes(type);
  const int group_bytes = block_bytes - header;
  for (int64_t b = 0; b < n_in / kLegacyBlockSize; ++b) {
    uint8_t* out = tile + uint64_t(b) * kInterleavedRows * block_bytes;
    uint8_t* groups = out + kInterleavedRows * header;
    const uint8_t* rows[kInterleavedRows];
    for (int r = 0; r < kInterleavedRows; ++r) {
      rows[r] = first_row + uint64_t(r) * row_bytes + uint64_t(b) * block_bytes;
      std::memcpy(out + kScaleBytes * r, rows[r], kScaleBytes);
      if (has_block_min(type)) std::memcpy(out + kScaleBytes * (kInterleavedRows + r), rows[r] + kScaleBytes, kScaleBytes);
      prefetch(rows[r] + 256, 64);
    }
    if (type == GgmlType::Q8_0) {
      // Group m: bytes 2r, 2r+1 row r's weights 4m, 4m+1; bytes 16 + 2r, 17 + 2r its 4m+2, 4m+3.
      for (int r = 0; r < kInterleavedRows; ++r)
        for (int m = 0; m < kGroups; ++m) {
          const uint32_t word = load_word(rows[r] + offsetof(BlockQ8_0, qs) + 4 * m);
          store_pair(groups + m * group_bytes + 2 * r, word);
          store_pair(groups + m * group_bytes + 16 + 2 * r, word >> 16);
        }
      continue;
    }
    // Q4_0, IQ4_NL, Q4_1, Q5_0 and Q5_1: qs[l] holds weight l in its low nibble and weight 16 + l in its
    // high one: groups 0..3 and 4..7. The 5th bits (qh, just before qs): bit 2r + e of a group's
    // qh is row r's weight 4m + e, bit 16 + 2r + e its 4m + 2 + e.
    const bool fifth_bit = type == GgmlType::Q5_0 || type == GgmlType::Q5_1;
    const int qs_offset = header + (fifth_bit ? int(sizeof(uint32_t)) : 0), group_qs = qs_offset - header;
    interleave_nibble_halves(rows, qs_offset, groups + group_qs, group_bytes);
    if (!fifth_bit) continue;
    static_assert(offsetof(BlockQ5_0, qh) == sizeof(Fp16Bits) && offsetof(BlockQ5_1, qh) == 2 * sizeof(Fp16Bits));
    for (int m = 0; m < kGroups; ++m) {
      uint32_t high_bits = 0;
      for (int r = 0; r < kInterleavedRows; ++r) {
        const uint32_t fifth_bits = load_word(rows[r] + header) >> (4 * m);
        high_bits |= (fifth_bits & 3u) << (2 * r) | ((fifth_bits >> 2) & 3u) << (16 + 2 * r);
      }
      std::memcpy(groups + m * group_bytes, &high_bits, sizeof(high_bits));
    }
  }
}

}  // namespace

void interleave_rows(GgmlType type, const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, uint8_t* tile) {
  if (type == GgmlType::Q4_K) return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ4KTileBlockBytes, interleave_q4_k_block);
  if (type == GgmlType::Q5_K) return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ5KTileBlockBytes, interleave_q5_k_block);
  if (type == GgmlType::IQ4_XS)
    return interleave_super_blocks(first_row, row_bytes, n_in, tile, kIQ4XSTileBlockBytes, interleave_iq4_xs_block);
  if (type == GgmlType::Q6_K) return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ6KTileBlockBytes, interleave_q6_k_block);
  if (type == GgmlType::Q3_K) return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ3KTileBlockBytes, interleave_q3_k_words);
  if (type == GgmlType::Q2_K) return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ2KTileBlockBytes, interleave_q2_k_words);
  if (type != GgmlType::Q4_0 && type != GgmlType::IQ4_NL && type != GgmlType::Q5_0 && type != GgmlType::Q8_0 &&
      !has_block_min(type))
    return interleave_rows_reference(type, first_row, row_bytes, n_in, tile);  // the reference's error
  interleave_legacy_blocks(type, first_row, row_bytes, n_in, tile);
}

}  // namespace slm::kernels
