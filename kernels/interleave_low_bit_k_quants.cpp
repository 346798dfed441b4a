// The 8-row interleaved layout of Q3_K and Q2_K (kernels/interleaved_blocks.hpp): the scalar
// specification, a weight at a time. Slot j of group m, as everywhere in the layout: row
// (j % 16) / 2, weight 4m + j % 2 (j < 16) or 4m + 2 + j % 2 (j >= 16) of a run of 32 weights.
// A run's 8 groups share 32-byte planes in which slot j of every group sits at the byte
// slot_of names: the order in which _mm256_unpacklo_epi8 / unpackhi_epi8 widen a plane to
// slots 0-15 and 16-31 in 16-bit lanes (interleaved_low_bit_k_quants_avx2.hpp). Loading
// repacks a word at a time instead (interleave_words.cpp), tested against these.
#include <cstring>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {
namespace {

constexpr int kScaleBytes = sizeof(Fp16Bits);
constexpr int kSubBlocks = 16;
constexpr int kRuns = kSuperBlockSize / 32;
constexpr int kPlaneBytes = 32;

// Where weight w (0..31) of a run of row r goes: its group, and its slot's byte in the planes.
struct Slot {
  int group, byte;
};
Slot slot_of(int row, int w) {
  const int e = w % 4;
  const int slot = (e < 2 ? 0 : 16) + 2 * row + e % 2;
  const int quarter = slot / 8;  // quarters 1 and 2 trade places
  return {w / 4, slot + (quarter == 1 ? 8 : quarter == 2 ? -8 : 0)};
}

// A run's low 2 bits: plane g / 4, bits 2 (g % 4) of the slot's byte.
void put_two_bits(uint8_t* run, Slot s, int value) { run[kPlaneBytes * (s.group / 4) + s.byte] |= uint8_t(value << (2 * (s.group % 4))); }
int two_bits(const uint8_t* run, Slot s) { return (run[kPlaneBytes * (s.group / 4) + s.byte] >> (2 * (s.group % 4))) & 3; }

// Weight w of a Q2_K/Q3_K block: its low 2 bits at bits 2k of qs[32h + l] (h = w / 128,
// k = (w % 128) / 32, l = w % 32); Q3_K's high bit at bit 4h + k = w / 32 of hmask[l].
struct TwoBitPosition {
  int byte, shift;
};
TwoBitPosition two_bit_position(int w) { return {32 * (w / 128) + w % 32, 2 * ((w % 128) / 32)}; }

// Q3_K: d[8], int8 scale[16][8] (scale_i, -32..31), then per run c of 32 weights 96 bytes: two
// planes of q + 4's low 2 bits (groups 0-3, 4-7), and one of its high bit (group g at bit g).
constexpr int kQ3KScalesOffset = kInterleavedRows * kScaleBytes;
constexpr int kQ3KQuantsOffset = kQ3KScalesOffset + kSubBlocks * kInterleavedRows;
constexpr int kQ3KRunBytes = 3 * kPlaneBytes;
static_assert(kQ3KQuantsOffset + kRuns * kQ3KRunBytes == kQ3KTileBlockBytes);

// Q2_K: d[8], dmin[8], the scale bytes [16][8] as the file's (scale_i | min_i << 4), then per
// run c two planes of q. Exactly 8 blocks.
constexpr int kQ2KScalesOffset = 2 * kInterleavedRows * kScaleBytes;
constexpr int kQ2KQuantsOffset = kQ2KScalesOffset + kSubBlocks * kInterleavedRows;
constexpr int kQ2KRunBytes = 2 * kPlaneBytes;
static_assert(kQ2KQuantsOffset + kRuns * kQ2KRunBytes == kQ2KTileBlockBytes);

}  // namespace

void interleave_q3_k_block(const BlockQ3_K* const (&rows)[kInterleavedRows], uint8_t* out) {
  std::memset(out, 0, kQ3KTileBlockBytes);
  for (int r = 0; r < kInterleavedRows; ++r) {
    const BlockQ3_K& block = *rows[r];
    std::memcpy(out + kScaleBytes * r, &block.d, kScaleBytes);
    for (int i = 0; i < kSubBlocks; ++i) out[kQ3KScalesOffset + i * kInterleavedRows + r] = uint8_t(int8_t(q3_k_scale(block.scales, i)));
    for (int w = 0; w < kSuperBlockSize; ++w) {
      const TwoBitPosition p = two_bit_position(w);
      const Slot s = slot_of(r, w % 32);
      uint8_t* run = out + kQ3KQuantsOffset + (w / 32) * kQ3KRunBytes;
      put_two_bits(run, s, (block.qs[p.byte] >> p.shift) & 3);
      run[2 * kPlaneBytes + s.byte] |= uint8_t(((block.hmask[w % 32] >> (w / 32)) & 1) << s.group);
    }
  }
}

void deinterleave_q3_k_block(const uint8_t* in, int row, BlockQ3_K& block) {
  std::memcpy(&block.d, in + kScaleBytes * row, kScaleBytes);
  int8_t scales[kSubBlocks];
  for (int i = 0; i < kSubBlocks; ++i) scales[i] = int8_t(in[kQ3KScalesOffset + i * kInterleavedRows + row]);
  pack_q3_k_scales(scales, block.scales);
  std::memset(block.qs, 0, sizeof(block.qs));
  std::memset(block.hmask, 0, sizeof(block.hmask));
  for (int w = 0; w < kSuperBlockSize; ++w) {
    const TwoBitPosition p = two_bit_position(w);
    const Slot s = slot_of(row, w % 32);
    const uint8_t* run = in + kQ3KQuantsOffset + (w / 32) * kQ3KRunBytes;
    block.qs[p.byte] |= uint8_t(two_bits(run, s) << p.shift);
    block.hmask[w % 32] |= uint8_t(((run[2 * kPlaneBytes + s.byte] >> s.group) & 1) << (w / 32));
  }
}

void interleave_q2_k_block(const BlockQ2_K* const (&rows)[kInterleavedRows], uint8_t* out) {
  std::memset(out, 0, kQ2KTileBlockBytes);
  for (int r = 0; r < kInterleavedRows; ++r) {
    const BlockQ2_K& block = *rows[r];
    std::memcpy(out + kScaleBytes * r, &block.d, kScaleBytes);
    std::memcpy(out + kScaleBytes * (kInterleavedRows + r), &block.dmin, kScaleBytes);
    for (int i = 0; i < kSubBlocks; ++i) out[kQ2KScalesOffset + i * kInterleavedRows + r] = block.scales[i];
    for (int w = 0; w < kSuperBlockSize; ++w) {
      const TwoBitPosition p = two_bit_position(w);
      put_two_bits(out + kQ2KQuantsOffset + (w / 32) * kQ2KRunBytes, slot_of(r, w % 32), (block.qs[p.byte] >> p.shift) & 3);
    }
  }
}

void deinterleave_q2_k_block(const uint8_t* in, int row, BlockQ2_K& block) {
  std::memcpy(&block.d, in + kScaleBytes * row, kScaleBytes);
  std::memcpy(&block.dmin, in + kScaleBytes * (kInterleavedRows + row), kScaleBytes);
  for (int i = 0; i < kSubBlocks; ++i) block.scales[i] = in[kQ2KScalesOffset + i * kInterleavedRows + row];
  std::memset(block.qs, 0, sizeof(block.qs));
  for (int w = 0; w < kSuperBlockSize; ++w) {
    const TwoBitPosition p = two_bit_position(w);
    block.qs[p.byte] |= uint8_t(two_bits(in + kQ2KQuantsOffset + (w / 32) * kQ2KRunBytes, slot_of(row, w % 32)) << p.shift);
  }
}

}  // namespace slm::kernels
