// The 8-row interleaved layout: see kernels/interleaved_blocks.hpp.
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {
namespace {

// Where a format keeps the quants of 32 weights: at qs (4-bit nibbles, or 8-bit bytes) and, for
// 5-bit quants, the 5th bits in a little-endian uint32 at qh. Offsets from the block's start;
// a tile's group is the same without the block's header: its fp16 d, and Q4_1/Q5_1's fp16 m.
struct QuantBytes {
  int bits;
  int qh_offset;
  int qs_offset;
};

QuantBytes block_quant_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return {4, 0, offsetof(BlockQ4_0, qs)};
    case GgmlType::IQ4_NL: return {4, 0, offsetof(BlockIQ4_NL, qs)};  // Q4_0's nibbles, table indices
    case GgmlType::Q5_0: return {5, offsetof(BlockQ5_0, qh), offsetof(BlockQ5_0, qs)};
    case GgmlType::Q8_0: return {8, 0, offsetof(BlockQ8_0, qs)};
    case GgmlType::Q4_1: return {4, 0, offsetof(BlockQ4_1, qs)};
    case GgmlType::Q5_1: return {5, offsetof(BlockQ5_1, qh), offsetof(BlockQ5_1, qs)};
    default: throw std::invalid_argument("interleaved layout: not a legacy format with a scale (and min) per block");
  }
}

constexpr int kScaleBytes = sizeof(Fp16Bits);

QuantBytes group_quant_bytes(GgmlType type) {
  QuantBytes group = block_quant_bytes(type);
  const int header = legacy_header_bytes(type);
  group.qh_offset -= header;
  group.qs_offset -= header;
  return group;
}

// A legacy block's header (d, then Q4_1/Q5_1's m) to or from a tile block, whose header is
// d[8], then m[8]: field f of row r at 2 (8f + r).
void copy_header_to_tile(GgmlType type, const uint8_t* block, int row, uint8_t* tile_block) {
  for (int f = 0; f < legacy_header_bytes(type) / kScaleBytes; ++f)
    std::memcpy(tile_block + kScaleBytes * (kInterleavedRows * f + row), block + kScaleBytes * f, kScaleBytes);
}
void copy_header_from_tile(GgmlType type, const uint8_t* tile_block, int row, uint8_t* block) {
  for (int f = 0; f < legacy_header_bytes(type) / kScaleBytes; ++f)
    std::memcpy(block + kScaleBytes * f, tile_block + kScaleBytes * (kInterleavedRows * f + row), kScaleBytes);
}

// The 32 quants stored at `bytes`: unsigned 4/5-bit values, or Q8_0's bytes.
void unpack_quants(const uint8_t* bytes, QuantBytes f, uint8_t (&q)[32]) {
  if (f.bits == 8) {
    std::memcpy(q, bytes + f.qs_offset, 32);
    return;
  }
  for (int i = 0; i < 16; ++i) {
    q[i] = bytes[f.qs_offset + i] & 0x0f;
    q[i + 16] = bytes[f.qs_offset + i] >> 4;
  }
  if (f.bits == 5) {
    uint32_t high_bits;
    std::memcpy(&high_bits, bytes + f.qh_offset, sizeof(high_bits));
    for (int i = 0; i < 32; ++i) q[i] |= uint8_t(((high_bits >> i) & 1u) << 4);
  }
}

// The inverse of unpack_quants.
void pack_quants(const uint8_t (&q)[32], QuantBytes f, uint8_t* bytes) {
  if (f.bits == 8) {
    std::memcpy(bytes + f.qs_offset, q, 32);
    return;
  }
  for (int i = 0; i < 16; ++i) bytes[f.qs_offset + i] = uint8_t((q[i] & 0x0f) | (q[i + 16] & 0x0f) << 4);
  if (f.bits == 5) {
    uint32_t high_bits = 0;
    for (int i = 0; i < 32; ++i) high_bits |= uint32_t((q[i] >> 4) & 1u) << i;
    std::memcpy(bytes + f.qh_offset, &high_bits, sizeof(high_bits));
  }
}

// The (row, weight) of slot j of group m.
struct SlotSource {
  int row;
  int weight;
};
SlotSource slot_source(int m, int j) {
  const int k = j % 16;
  return {k / 2, 4 * m + (j < 16 ? 0 : 2) + k % 2};
}

constexpr int kGroups = kLegacyBlockSize / 4;

// The 32 slots of group m (slot_source) from the 8 rows' quants, weights first .. first + 31:
// slots 2r, 2r+1 <- row r's weights 4m, 4m+1; slots 16+2r, 17+2r <- its weights 4m+2, 4m+3.
template <int kRowWeights>
void gather_slots(const uint8_t (&q)[kInterleavedRows][kRowWeights], int first, int m, uint8_t (&slots)[32]) {
  for (int r = 0; r < kInterleavedRows; ++r) {
    std::memcpy(slots + 2 * r, q[r] + first + 4 * m, 2);
    std::memcpy(slots + 16 + 2 * r, q[r] + first + 4 * m + 2, 2);
  }
}

// Row `row`'s 32 quants of the 8 groups at `groups` (group m at groups + m * group_bytes, its
// quants stored as f says): the inverse of gather_slots for one row.
void row_quants(const uint8_t* groups, int group_bytes, QuantBytes f, int row, uint8_t (&q)[32]) {
  for (int m = 0; m < kGroups; ++m) {
    uint8_t slots[32];
    unpack_quants(groups + m * group_bytes, f, slots);
    for (int j = 0; j < 32; ++j) {
      const SlotSource source = slot_source(m, j);
      if (source.row == row) q[source.weight] = slots[j];
    }
  }
}

// Q4_K, Q5_K: see interleaved_blocks.hpp. Weight 32i + l of a block (sub-block i) is the low
// (i even) or high nibble of qs[32(i / 2) + l]; Q5_K's 5th bit of it is bit i of qh[l].
constexpr int kQ4KSubBlocks = 8;
constexpr int kQ4KQuantsOffset = 2 * kInterleavedRows * kScaleBytes + 2 * kQ4KSubBlocks * kInterleavedRows;
constexpr QuantBytes kNibbles = {4, 0, 0};
constexpr QuantBytes kFiveBitGroup = {5, 0, sizeof(uint32_t)};  // as Q5_0's groups: qh, then qs
static_assert(kQ4KQuantsOffset + kQ4KSubBlocks * kGroups * 16 == kQ4KTileBlockBytes);
static_assert(kQ4KQuantsOffset + kQ4KSubBlocks * kGroups * 20 == kQ5KTileBlockBytes);

template <class Block>
constexpr bool kHasFifthBit = std::is_same_v<Block, BlockQ5_K>;
template <class Block>
constexpr QuantBytes kKGroup = kHasFifthBit<Block> ? kFiveBitGroup : kNibbles;
template <class Block>
constexpr int kKGroupBytes = kHasFifthBit<Block> ? 20 : 16;

template <class Block>
void interleave_k_nibble_block(const Block* const (&rows)[kInterleavedRows], uint8_t* out) {
  uint8_t q[kInterleavedRows][kSuperBlockSize];
  for (int r = 0; r < kInterleavedRows; ++r) {
    const Block& block = *rows[r];
    write_k_tile_scales(block, r, out);
    for (int i = 0; i < kQ4KSubBlocks; ++i)
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = block.qs[32 * (i / 2) + l];
        q[r][32 * i + l] = i % 2 == 0 ? byte & 0x0f : byte >> 4;
        if constexpr (kHasFifthBit<Block>) q[r][32 * i + l] |= uint8_t(((block.qh[l] >> i) & 1) << 4);
      }
  }
  for (int i = 0; i < kQ4KSubBlocks; ++i)
    for (int m = 0; m < kGroups; ++m) {
      uint8_t slots[32];
      gather_slots(q, 32 * i, m, slots);
      pack_quants(slots, kKGroup<Block>, out + kQ4KQuantsOffset + (i * kGroups + m) * kKGroupBytes<Block>);
    }
}

template <class Block>
void deinterleave_k_nibble_block(const uint8_t* in, int row, Block& block) {
  std::memcpy(&block.d, in + kScaleBytes * row, kScaleBytes);
  std::memcpy(&block.dmin, in + kScaleBytes * (kInterleavedRows + row), kScaleBytes);
  uint8_t scales[kQ4KSubBlocks], mins[kQ4KSubBlocks];
  for (int i = 0; i < kQ4KSubBlocks; ++i) {
    scales[i] = in[2 * kInterleavedRows * kScaleBytes + i * kInterleavedRows + row];
    mins[i] = in[2 * kInterleavedRows * kScaleBytes + (kQ4KSubBlocks + i) * kInterleavedRows + row];
  }
  pack_k_quant_scales_mins(scales, mins, block.scales);
  std::memset(block.qs, 0, sizeof(block.qs));
  if constexpr (kHasFifthBit<Block>) std::memset(block.qh, 0, sizeof(block.qh));
  for (int i = 0; i < kQ4KSubBlocks; ++i)
    for (int m = 0; m < kGroups; ++m) {
      uint8_t slots[32];
      unpack_quants(in + kQ4KQuantsOffset + (i * kGroups + m) * kKGroupBytes<Block>, kKGroup<Block>, slots);
      for (int j = 0; j < 32; ++j) {
        const SlotSource source = slot_source(m, j);
        if (source.row != row) continue;
        const uint8_t nibble = slots[j] & 0x0f;
        block.qs[32 * (i / 2) + source.weight] |= uint8_t(i % 2 == 0 ? nibble : nibble << 4);
        if constexpr (kHasFifthBit<Block>) block.qh[source.weight] |= uint8_t((slots[j] >> 4) << i);
      }
    }
}

// IQ4_XS: see interleaved_blocks.hpp. Sub-block i's 32 nibbles are an IQ4_NL block's quants
// at qs + 16i (weight j low in byte j, 16 + j high); its tile groups are Q4_K's.
constexpr int kIQ4XSQuantsOffset = kInterleavedRows * kScaleBytes + kQ4KSubBlocks * kInterleavedRows;
static_assert(kIQ4XSQuantsOffset + kQ4KSubBlocks * kGroups * 16 == kIQ4XSTileBlockBytes);

void interleave_iq4_xs_block(const BlockIQ4_XS* const (&rows)[kInterleavedRows], uint8_t* out) {
  uint8_t q[kInterleavedRows][kSuperBlockSize];
  for (int r = 0; r < kInterleavedRows; ++r) {
    write_iq4_xs_tile_scales(*rows[r], r, out);
    for (int i = 0; i < kQ4KSubBlocks; ++i) {
      uint8_t sub_block[32];
      unpack_quants(rows[r]->qs + 16 * i, kNibbles, sub_block);
      std::memcpy(q[r] + 32 * i, sub_block, sizeof(sub_block));
    }
  }
  for (int i = 0; i < kQ4KSubBlocks; ++i)
    for (int m = 0; m < kGroups; ++m) {
      uint8_t slots[32];
      gather_slots(q, 32 * i, m, slots);
      pack_quants(slots, kNibbles, out + kIQ4XSQuantsOffset + (i * kGroups + m) * 16);
    }
}

void deinterleave_iq4_xs_block(const uint8_t* in, int row, BlockIQ4_XS& block) {
  std::memcpy(&block.d, in + kScaleBytes * row, kScaleBytes);
  block.scales_h = 0;
  std::memset(block.scales_l, 0, sizeof(block.scales_l));
  for (int i = 0; i < kQ4KSubBlocks; ++i) {
    const int ls = int8_t(in[kInterleavedRows * kScaleBytes + i * kInterleavedRows + row]) + 32;
    block.scales_l[i / 2] |= uint8_t((ls & 0x0f) << (4 * (i % 2)));
    block.scales_h |= uint16_t((ls >> 4) << (2 * i));
  }
  for (int i = 0; i < kQ4KSubBlocks; ++i) {
    uint8_t sub_block[32];
    row_quants(in + kIQ4XSQuantsOffset + i * kGroups * 16, 16, kNibbles, row, sub_block);
    pack_quants(sub_block, kNibbles, block.qs + 16 * i);
  }
}

// Q6_K: see interleaved_blocks.hpp. Weight w of a block: half w / 128, group (w % 128) / 32
// and lane w % 32 locate its low nibble in ql and its top 2 bits in qh.
constexpr int kQ6KSubBlocks = 16;
constexpr int kQ6KQuantsOffset = kInterleavedRows * kScaleBytes + kQ6KSubBlocks * kInterleavedRows;
constexpr int kQ6KPairBytes = 48;  // two groups of 32 6-bit quants
static_assert(kQ6KQuantsOffset + kQ4KSubBlocks * kGroups / 2 * kQ6KPairBytes == kQ6KTileBlockBytes);

struct Q6KPosition {
  int low_byte, low_shift, high_byte, high_shift;
};
Q6KPosition q6_k_position(int w) {
  const int half = w / 128, group = (w % 128) / 32, lane = w % 32;
  return {64 * half + 32 * (group % 2) + lane, 4 * (group / 2), 32 * half + lane, 2 * group};
}

// A pair of groups, a and b (slots of 6-bit quants), as 16 little-endian words, word j
// a[j] | (b[16 + j] >> 2) << 6 | a[16 + j] << 10, then 16 bytes b[j] | (b[16 + j] & 3) << 6.
void pack_q6_k_pair(const uint8_t (&a)[32], const uint8_t (&b)[32], uint8_t* pair) {
  for (int j = 0; j < 16; ++j) {
    const auto word = uint16_t(a[j] | (b[16 + j] >> 2) << 6 | a[16 + j] << 10);
    std::memcpy(pair + 2 * j, &word, sizeof(word));
    pair[32 + j] = uint8_t(b[j] | (b[16 + j] & 3) << 6);
  }
}
void unpack_q6_k_pair(const uint8_t* pair, uint8_t (&a)[32], uint8_t (&b)[32]) {
  for (int j = 0; j < 16; ++j) {
    uint16_t word;
    std::memcpy(&word, pair + 2 * j, sizeof(word));
    a[j] = word & 0x3f;
    a[16 + j] = uint8_t(word >> 10);
    b[j] = pair[32 + j] & 0x3f;
    b[16 + j] = uint8_t((pair[32 + j] >> 6) | ((word >> 6) & 0x0f) << 2);
  }
}

void interleave_q6_k_block(const BlockQ6_K* const (&rows)[kInterleavedRows], uint8_t* out) {
  uint8_t q[kInterleavedRows][kSuperBlockSize];
  for (int r = 0; r < kInterleavedRows; ++r) {
    const BlockQ6_K& block = *rows[r];
    std::memcpy(out + kScaleBytes * r, &block.d, kScaleBytes);
    for (int i = 0; i < kQ6KSubBlocks; ++i)
      out[kInterleavedRows * kScaleBytes + i * kInterleavedRows + r] = uint8_t(block.scales[i]);
    for (int w = 0; w < kSuperBlockSize; ++w) {
      const Q6KPosition p = q6_k_position(w);
      q[r][w] = uint8_t(((block.ql[p.low_byte] >> p.low_shift) & 0x0f) | (((block.qh[p.high_byte] >> p.high_shift) & 3) << 4));
    }
  }
  for (int c = 0; c < kQ4KSubBlocks; ++c)
    for (int m = 0; m < kGroups; m += 2) {
      uint8_t a[32], b[32];
      gather_slots(q, 32 * c, m, a);
      gather_slots(q, 32 * c, m + 1, b);
      pack_q6_k_pair(a, b, out + kQ6KQuantsOffset + (c * kGroups + m) / 2 * kQ6KPairBytes);
    }
}

void deinterleave_q6_k_block(const uint8_t* in, int row, BlockQ6_K& block) {
  std::memcpy(&block.d, in + kScaleBytes * row, kScaleBytes);
  for (int i = 0; i < kQ6KSubBlocks; ++i) block.scales[i] = int8_t(in[kInterleavedRows * kScaleBytes + i * kInterleavedRows + row]);
  std::memset(block.ql, 0, sizeof(block.ql));
  std::memset(block.qh, 0, sizeof(block.qh));
  for (int c = 0; c < kQ4KSubBlocks; ++c)
    for (int m = 0; m < kGroups; m += 2) {
      uint8_t slots[2][32];
      unpack_q6_k_pair(in + kQ6KQuantsOffset + (c * kGroups + m) / 2 * kQ6KPairBytes, slots[0], slots[1]);
      for (int g = 0; g < 2; ++g)
        for (int j = 0; j < 32; ++j) {
          const SlotSource source = slot_source(m + g, j);
          if (source.row != row) continue;
          const Q6KPosition p = q6_k_position(32 * c + source.weight);
          block.ql[p.low_byte] |= uint8_t((slots[g][j] & 0x0f) << p.low_shift);
          block.qh[p.high_byte] |= uint8_t((slots[g][j] >> 4) << p.high_shift);
        }
    }
}

// The K-quant tiles, a super-block of the 8 rows at a time.
template <class Block>
void interleave_super_blocks(const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, uint8_t* tile,
                             int tile_block_bytes, void (*interleave_block)(const Block* const (&)[kInterleavedRows], uint8_t*)) {
  for (int64_t b = 0; b < n_in / kSuperBlockSize; ++b) {
    const Block* rows[kInterleavedRows];
    for (int r = 0; r < kInterleavedRows; ++r) rows[r] = reinterpret_cast<const Block*>(first_row + uint64_t(r) * row_bytes) + b;
    interleave_block(rows, tile + uint64_t(b) * tile_block_bytes);
  }
}

template <class Block>
void deinterleave_super_blocks(const uint8_t* tile, int64_t n_in, int row, uint8_t* out, int tile_block_bytes,
                               void (*deinterleave_block)(const uint8_t*, int, Block&)) {
  for (int64_t b = 0; b < n_in / kSuperBlockSize; ++b)
    deinterleave_block(tile + uint64_t(b) * tile_block_bytes, row, reinterpret_cast<Block*>(out)[b]);
}

}  // namespace

namespace {
template <class Block>
void write_scales(const Block& block, int row, uint8_t* tile_block) {
  std::memcpy(tile_block + kScaleBytes * row, &block.d, kScaleBytes);
  std::memcpy(tile_block + kScaleBytes * (kInterleavedRows + row), &block.dmin, kScaleBytes);
  for (int i = 0; i < kQ4KSubBlocks; ++i) {
    const ScaleAndMin sm = k_quant_scale_min(block.scales, i);
    tile_block[2 * kInterleavedRows * kScaleBytes + i * kInterleavedRows + row] = sm.scale;
    tile_block[2 * kInterleavedRows * kScaleBytes + (kQ4KSubBlocks + i) * kInterleavedRows + row] = sm.min;
  }
}
}  // namespace

void write_k_tile_scales(const BlockQ4_K& block, int row, uint8_t* tile_block) { write_scales(block, row, tile_block); }
void write_k_tile_scales(const BlockQ5_K& block, int row, uint8_t* tile_block) { write_scales(block, row, tile_block); }

void write_iq4_xs_tile_scales(const BlockIQ4_XS& block, int row, uint8_t* tile_block) {
  std::memcpy(tile_block + kScaleBytes * row, &block.d, kScaleBytes);
  for (int i = 0; i < kQ4KSubBlocks; ++i)
    tile_block[kInterleavedRows * kScaleBytes + i * kInterleavedRows + row] = uint8_t(iq4_xs_scale(block, i) - 32);
}

bool has_interleaved_layout(GgmlType type) {
  return type == GgmlType::Q4_0 || type == GgmlType::Q5_0 || type == GgmlType::Q8_0 || type == GgmlType::Q4_K ||
         type == GgmlType::Q5_K || type == GgmlType::Q6_K || type == GgmlType::Q3_K || type == GgmlType::Q2_K ||
         type == GgmlType::IQ4_NL || type == GgmlType::IQ4_XS || has_block_min(type);
}

bool has_block_min(GgmlType type) { return type == GgmlType::Q4_1 || type == GgmlType::Q5_1; }

int legacy_header_bytes(GgmlType type) { return (has_block_min(type) ? 2 : 1) * kScaleBytes; }

uint64_t interleaved_tile_bytes(GgmlType type, int64_t n_in) {
  if (type == GgmlType::Q4_K) return uint64_t(n_in / kSuperBlockSize) * kQ4KTileBlockBytes;
  if (type == GgmlType::Q5_K) return uint64_t(n_in / kSuperBlockSize) * kQ5KTileBlockBytes;
  if (type == GgmlType::IQ4_XS) return uint64_t(n_in / kSuperBlockSize) * kIQ4XSTileBlockBytes;
  if (type == GgmlType::Q6_K) return uint64_t(n_in / kSuperBlockSize) * kQ6KTileBlockBytes;
  if (type == GgmlType::Q3_K) return uint64_t(n_in / kSuperBlockSize) * kQ3KTileBlockBytes;
  if (type == GgmlType::Q2_K) return uint64_t(n_in / kSuperBlockSize) * kQ2KTileBlockBytes;
  return kInterleavedRows * ggml_row_bytes(type, uint64_t(n_in));
}

void interleave_rows_reference(GgmlType type, const uint8_t* first_row, uint64_t row_bytes, int64_t n_in, uint8_t* tile) {
  if (type == GgmlType::Q4_K)
    return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ4KTileBlockBytes, interleave_k_nibble_block<BlockQ4_K>);
  if (type == GgmlType::Q5_K)
    return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ5KTileBlockBytes, interleave_k_nibble_block<BlockQ5_K>);
  if (type == GgmlType::IQ4_XS)
    return interleave_super_blocks(first_row, row_bytes, n_in, tile, kIQ4XSTileBlockBytes, interleave_iq4_xs_block);
  if (type == GgmlType::Q6_K) return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ6KTileBlockBytes, interleave_q6_k_block);
  if (type == GgmlType::Q3_K) return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ3KTileBlockBytes, interleave_q3_k_block);
  if (type == GgmlType::Q2_K) return interleave_super_blocks(first_row, row_bytes, n_in, tile, kQ2KTileBlockBytes, interleave_q2_k_block);
  const QuantBytes block_bytes = block_quant_bytes(type), group_bytes = group_quant_bytes(type);
  const uint64_t block_size = ggml_type_info(type).block_bytes;
  const int header = legacy_header_bytes(type), group_size = int(block_size) - header;
  const int64_t n_blocks = n_in / kLegacyBlockSize;
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* out = tile + uint64_t(b) * kInterleavedRows * block_size;
    uint8_t q[kInterleavedRows][32];
    for (int r = 0; r < kInterleavedRows; ++r) {
      const uint8_t* block = first_row + uint64_t(r) * row_bytes + uint64_t(b) * block_size;
      copy_header_to_tile(type, block, r, out);
      unpack_quants(block, block_bytes, q[r]);
    }
    for (int m = 0; m < kGroups; ++m) {
      uint8_t slots[32];
      gather_slots(q, 0, m, slots);
      pack_quants(slots, group_bytes, out + kInterleavedRows * header + m * group_size);
    }
  }
}

void deinterleave_row(GgmlType type, const uint8_t* tile, int64_t n_in, int row, uint8_t* out) {
  if (type == GgmlType::Q4_K)
    return deinterleave_super_blocks(tile, n_in, row, out, kQ4KTileBlockBytes, deinterleave_k_nibble_block<BlockQ4_K>);
  if (type == GgmlType::Q5_K)
    return deinterleave_super_blocks(tile, n_in, row, out, kQ5KTileBlockBytes, deinterleave_k_nibble_block<BlockQ5_K>);
  if (type == GgmlType::IQ4_XS)
    return deinterleave_super_blocks(tile, n_in, row, out, kIQ4XSTileBlockBytes, deinterleave_iq4_xs_block);
  if (type == GgmlType::Q6_K) return deinterleave_super_blocks(tile, n_in, row, out, kQ6KTileBlockBytes, deinterleave_q6_k_block);
  if (type == GgmlType::Q3_K) return deinterleave_super_blocks(tile, n_in, row, out, kQ3KTileBlockBytes, deinterleave_q3_k_block);
  if (type == GgmlType::Q2_K) return deinterleave_super_blocks(tile, n_in, row, out, kQ2KTileBlockBytes, deinterleave_q2_k_block);
  const QuantBytes block_bytes = block_quant_bytes(type), group_bytes = group_quant_bytes(type);
  const uint64_t block_size = ggml_type_info(type).block_bytes;
  const int header = legacy_header_bytes(type), group_size = int(block_size) - header;
  const int64_t n_blocks = n_in / kLegacyBlockSize;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* in = tile + uint64_t(b) * kInterleavedRows * block_size;
    uint8_t* block = out + uint64_t(b) * block_size;
    copy_header_from_tile(type, in, row, block);
    uint8_t q[32];
    row_quants(in + kInterleavedRows * header, group_size, group_bytes, row, q);
    pack_quants(q, block_bytes, block);
  }
}

}  // namespace slm::kernels
