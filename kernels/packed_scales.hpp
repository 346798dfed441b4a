// The packed 6-bit sub-block scales of Q3_K, Q4_K and Q5_K unpacked a 32-bit word at a
// time, for the SIMD decoders, which turn the 16 bytes into float vectors in one go. The
// per-scale specification is q3_k_scale / k_quant_scale_min in quant_blocks.hpp; the tests
// decode every weight both ways. Integer code only, so it is the same in every ISA's files.
#pragma once

#include <cstdint>
#include <cstring>

namespace slm::kernels {

// 16 bytes as 4 little-endian words: byte i is bits 8*(i%4) .. of word i/4.
struct SixteenBytes {
  uint32_t words[4];
};

namespace packed_scales_detail {
inline constexpr uint32_t kLow4 = 0x0f0f0f0f, kLow6 = 0x3f3f3f3f, kLow2 = 0x03030303;
inline void read_words(const uint8_t packed[12], uint32_t words[3]) { std::memcpy(words, packed, 12); }
}  // namespace packed_scales_detail

// Q4_K / Q5_K: bytes 0..7 the 8 scales, bytes 8..15 the 8 mins (each 0..63).
// Sub-blocks 0..3 are the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7
// take their low 4 bits from the nibbles of bytes 8..11 and their top 2 from the top bits
// of bytes 0..3 (scales) and 4..7 (mins).
inline SixteenBytes k_quant_scales_and_mins(const uint8_t packed[12]) {
  using namespace packed_scales_detail;
  uint32_t w[3];
  read_words(packed, w);
  return {{w[0] & kLow6, (w[2] & kLow4) | (((w[0] >> 6) & kLow2) << 4),  //
           w[1] & kLow6, ((w[2] >> 4) & kLow4) | (((w[1] >> 6) & kLow2) << 4)}};
}

// Q3_K: byte i is scale i + 32 (0..63). Scale i has its low 4 bits in nibble i/8 of byte i%8
// and its top 2 bits at bits 2*(i/4) of byte 8 + i%4.
inline SixteenBytes q3_k_scales_plus_32(const uint8_t packed[12]) {
  using namespace packed_scales_detail;
  uint32_t w[3];
  read_words(packed, w);
  return {{(w[0] & kLow4) | ((w[2] & kLow2) << 4), (w[1] & kLow4) | (((w[2] >> 2) & kLow2) << 4),
           ((w[0] >> 4) & kLow4) | (((w[2] >> 4) & kLow2) << 4),
           ((w[1] >> 4) & kLow4) | (((w[2] >> 6) & kLow2) << 4)}};
}

}  // namespace slm::kernels
