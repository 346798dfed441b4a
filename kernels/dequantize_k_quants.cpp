// Scalar dequantization of the K-quants: super-blocks of 256 weights.
// Each loop walks the weights of a super-block in order (w = 0..255) and reads
// that weight's bits where the layout (see quant_blocks.hpp) puts them.
#include "kernels/dequantize.hpp"

namespace slm::kernels {

namespace {

// Q2_K, Q3_K and Q6_K split each super-block into two halves of 128 weights. In a half,
// weight 32*k + l (k = 0..3, l = 0..31) keeps its 2 low bits at bits 2k..2k+1 of byte l
// of that half's 32 bytes.
struct HalfPosition {
  int half;   // 0 or 1
  int group;  // k: 0..3, the 32-weight group inside the half
  int lane;   // l: 0..31
};

HalfPosition half_position(int w) { return {w / 128, (w % 128) / 32, w % 32}; }

int two_bit_quant(const uint8_t* qs, int w) {
  const auto p = half_position(w);
  return (qs[32 * p.half + p.lane] >> (2 * p.group)) & 0x03;
}

}  // namespace

void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q2_k", n, kSuperBlockSize);
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b, y += kSuperBlockSize) {
    const BlockQ2_K& block = x[b];
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int sub = 0; sub < 16; ++sub) {
      const float scale = d * float(block.scales[sub] & 0x0f);
      const float min = dmin * float(block.scales[sub] >> 4);
      for (int w = 16 * sub; w < 16 * sub + 16; ++w) y[w] = scale * float(two_bit_quant(block.qs, w)) - min;
    }
  }
}

void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q3_k", n, kSuperBlockSize);
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b, y += kSuperBlockSize) {
    const BlockQ3_K& block = x[b];
    const float d = fp16_to_fp32(block.d);
    for (int sub = 0; sub < 16; ++sub) {
      const float scale = d * float(q3_k_scale(block.scales, sub));
      for (int w = 16 * sub; w < 16 * sub + 16; ++w) {
        const auto p = half_position(w);
        const bool high_bit = (block.hmask[p.lane] >> (4 * p.half + p.group)) & 1;
        const int q = two_bit_quant(block.qs, w) - (high_bit ? 0 : 4);
        y[w] = scale * float(q);
      }
    }
  }
}

void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q4_k", n, kSuperBlockSize);
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b, y += kSuperBlockSize) {
    const BlockQ4_K& block = x[b];
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int sub = 0; sub < 8; ++sub) {
      const ScaleAndMin sm = k_quant_scale_min(block.scales, sub);
      const float scale = d * float(sm.scale);
      const float min = dmin * float(sm.min);
      // Sub-blocks 2p and 2p+1 share the 32 bytes qs[32p .. 32p+31]: low, then high nibbles.
      const uint8_t* qs = block.qs + 32 * (sub / 2);
      const int shift = 4 * (sub % 2);
      for (int l = 0; l < 32; ++l) y[32 * sub + l] = scale * float((qs[l] >> shift) & 0x0f) - min;
    }
  }
}

void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q5_k", n, kSuperBlockSize);
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b, y += kSuperBlockSize) {
    const BlockQ5_K& block = x[b];
    const float d = fp16_to_fp32(block.d);
    const float dmin = fp16_to_fp32(block.dmin);
    for (int sub = 0; sub < 8; ++sub) {
      const ScaleAndMin sm = k_quant_scale_min(block.scales, sub);
      const float scale = d * float(sm.scale);
      const float min = dmin * float(sm.min);
      const uint8_t* qs = block.qs + 32 * (sub / 2);  // nibbles as in Q4_K
      const int shift = 4 * (sub % 2);
      for (int l = 0; l < 32; ++l) {
        const int q = ((qs[l] >> shift) & 0x0f) | (((block.qh[l] >> sub) & 1) << 4);
        y[32 * sub + l] = scale * float(q) - min;
      }
    }
  }
}

void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q6_k", n, kSuperBlockSize);
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b, y += kSuperBlockSize) {
    const BlockQ6_K& block = x[b];
    const float d = fp16_to_fp32(block.d);
    for (int sub = 0; sub < 16; ++sub) {
      const float scale = d * float(block.scales[sub]);
      for (int w = 16 * sub; w < 16 * sub + 16; ++w) {
        const auto p = half_position(w);
        const uint8_t low_byte = block.ql[64 * p.half + 32 * (p.group % 2) + p.lane];
        const int low = (low_byte >> (4 * (p.group / 2))) & 0x0f;
        const int high = (block.qh[32 * p.half + p.lane] >> (2 * p.group)) & 0x03;
        y[w] = scale * float((low | (high << 4)) - 32);
      }
    }
  }
}

void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t n) {
  check_row_length("dequantize_row_q8_k", n, kSuperBlockSize);
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b, y += kSuperBlockSize)
    for (int w = 0; w < kSuperBlockSize; ++w) y[w] = x[b].d * float(x[b].qs[w]);
}

}  // namespace slm::kernels
