// Scalar quantization to the K-quants (super-blocks of 256 weights) and to Q8_K.
//
// Two kinds of sub-block code:
// - affine (Q2_K, Q4_K, Q5_K): w = scale * q - min, q in 0..q_max, scale >= 0, min >= 0;
// - symmetric (Q3_K, Q6_K):    w = scale * q, q in q_lowest..q_highest (e.g. -32..31).
// Each sub-block first gets the least-squares (scale, min) from a small search; the sub-block
// scales are then coded as small integers times an fp16 super-block scale, and finally every
// sub-block tries the codes one step around the rounded ones and keeps the pair with the least
// squared error, re-rounding its quants against exactly the scale the dequantizer will compute.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/dequantize.hpp"  // check_row_length
#include "kernels/quantize.hpp"

namespace slm::kernels {

namespace {

constexpr int kSuper = kSuperBlockSize;

int round_and_clamp(float v, int lowest, int highest) {
  return std::clamp(int(std::lrintf(v)), lowest, highest);  // lrintf: nearest, ties to even
}

// The starting points of a sub-block's scale search: the extreme weight is mapped to its end
// level times (1 + kSearchStepSize * step), i.e. within +-20% in steps of 1%. Mapping it past the
// end clips it and buys finer steps for the rest. (+-20% measured as enough: a finer or wider
// search lowers the error on normal data by less than 0.1%; Q6_K needs the width most.)
constexpr int kSearchSteps = 20;
constexpr float kSearchStepSize = 0.01f;

// ---------------------------------------------------------------------------
// Affine sub-blocks: w = scale * q - min
// ---------------------------------------------------------------------------

struct AffineScale {
  float scale;  // >= 0
  float min;    // >= 0: the dequantized range starts at -min
};

void quantize_affine(const float* x, int n, int q_max, AffineScale s, int* q) {
  const float inverse_scale = s.scale > 0.0f ? 1.0f / s.scale : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = round_and_clamp((x[i] + s.min) * inverse_scale, 0, q_max);
}

// Squared error of the weights as the dequantizer computes them: scale * q - min in float.
double affine_error(const float* x, int n, AffineScale s, const int* q) {
  double error = 0.0;
  for (int i = 0; i < n; ++i) {
    const double diff = double(s.scale * float(q[i]) - s.min) - double(x[i]);
    error += diff * diff;
  }
  return error;
}

// The least-squares scale and min for fixed quants, keeping min >= 0.
AffineScale fit_affine_to_quants(const float* x, int n, const int* q) {
  double sum_q = 0, sum_qq = 0, sum_x = 0, sum_qx = 0;
  for (int i = 0; i < n; ++i) {
    sum_q += q[i];
    sum_qq += double(q[i]) * q[i];
    sum_x += x[i];
    sum_qx += double(q[i]) * x[i];
  }
  const double determinant = n * sum_qq - sum_q * sum_q;
  if (determinant > 0) {
    const double scale = (n * sum_qx - sum_q * sum_x) / determinant;
    const double offset = (sum_x - scale * sum_q) / n;  // = -min
    if (scale >= 0 && offset <= 0) return {float(scale), float(-offset)};
  }
  // The unconstrained fit wants a positive offset (or the quants are all equal): pin min at 0.
  return {sum_qq > 0 ? float(std::max(0.0, sum_qx / sum_qq)) : 0.0f, 0.0f};
}

AffineScale search_affine_scale(const float* x, int n, int q_max) {
  const float lowest = std::min(0.0f, *std::min_element(x, x + n));
  const float highest = *std::max_element(x, x + n);
  if (highest <= lowest) return {0.0f, -lowest};

  int q[32];  // sub-blocks hold 16 or 32 weights
  AffineScale best{(highest - lowest) / float(q_max), -lowest};
  quantize_affine(x, n, q_max, best, q);
  double best_error = affine_error(x, n, best, q);
  for (int step = -kSearchSteps; step <= kSearchSteps; ++step) {
    const float top_level = float(q_max) * (1.0f + kSearchStepSize * float(step));
    quantize_affine(x, n, q_max, {(highest - lowest) / top_level, -lowest}, q);
    const AffineScale candidate = fit_affine_to_quants(x, n, q);
    const double error = affine_error(x, n, candidate, q);
    if (error < best_error) best = candidate, best_error = error;
  }
  // Alternate re-rounding and re-fitting while that still helps.
  for (int iteration = 0; iteration < 8; ++iteration) {
    quantize_affine(x, n, q_max, best, q);
    const AffineScale refit = fit_affine_to_quants(x, n, q);
    const double error = affine_error(x, n, refit, q);
    if (!(error < best_error)) break;
    best = refit, best_error = error;
  }
  return best;
}

// A super-block of affine sub-blocks with scale_i = d * scale_codes[i], min_i = dmin * min_codes[i].
struct AffineSuperBlock {
  Fp16Bits d;
  Fp16Bits dmin;
  uint8_t scale_codes[16];
  uint8_t min_codes[16];
  int q[kSuper];
};

AffineSuperBlock quantize_affine_super_block(const float* x, int sub_block_size, int q_max, int code_max) {
  const int n_sub_blocks = kSuper / sub_block_size;
  AffineScale fits[16];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int s = 0; s < n_sub_blocks; ++s) {
    fits[s] = search_affine_scale(x + s * sub_block_size, sub_block_size, q_max);
    max_scale = std::max(max_scale, fits[s].scale);
    max_min = std::max(max_min, fits[s].min);
  }
  AffineSuperBlock out;
  out.d = fp32_to_fp16(max_scale / float(code_max));
  out.dmin = fp32_to_fp16(max_min / float(code_max));
  const float d = fp16_to_fp32(out.d);
  const float dmin = fp16_to_fp32(out.dmin);

  for (int s = 0; s < n_sub_blocks; ++s) {
    const float* xs = x + s * sub_block_size;
    const int scale_code = d > 0.0f ? round_and_clamp(fits[s].scale / d, 0, code_max) : 0;
    const int min_code = dmin > 0.0f ? round_and_clamp(fits[s].min / dmin, 0, code_max) : 0;
    double best_error = std::numeric_limits<double>::infinity();
    for (int scale_step = -1; scale_step <= 1; ++scale_step) {
      for (int min_step = -1; min_step <= 1; ++min_step) {
        const int sc = scale_code + scale_step, mc = min_code + min_step;
        if (sc < 0 || sc > code_max || mc < 0 || mc > code_max) continue;
        const AffineScale coded{d * float(sc), dmin * float(mc)};  // as the dequantizer computes them
        int q[32];
        quantize_affine(xs, sub_block_size, q_max, coded, q);
        const double error = affine_error(xs, sub_block_size, coded, q);
        if (error < best_error) {
          best_error = error;
          out.scale_codes[s] = uint8_t(sc);
          out.min_codes[s] = uint8_t(mc);
          std::copy(q, q + sub_block_size, out.q + s * sub_block_size);
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Symmetric sub-blocks of 16: w = scale * q
// ---------------------------------------------------------------------------

constexpr int kSymmetricSubBlock = 16;

struct SymmetricRange {
  int q_lowest, q_highest;        // the quants: -4..3 (Q3_K), -32..31 (Q6_K)
  int code_lowest, code_highest;  // the sub-block scale codes: -32..31 (Q3_K), -128..127 (Q6_K)
};

void quantize_symmetric(const float* x, float scale, SymmetricRange r, int* q) {
  const float inverse_scale = scale != 0.0f ? 1.0f / scale : 0.0f;
  for (int i = 0; i < kSymmetricSubBlock; ++i) q[i] = round_and_clamp(x[i] * inverse_scale, r.q_lowest, r.q_highest);
}

double symmetric_error(const float* x, float scale, const int* q) {
  double error = 0.0;
  for (int i = 0; i < kSymmetricSubBlock; ++i) {
    const double diff = double(scale * float(q[i])) - double(x[i]);
    error += diff * diff;
  }
  return error;
}

float fit_symmetric_to_quants(const float* x, const int* q) {
  double sum_qx = 0, sum_qq = 0;
  for (int i = 0; i < kSymmetricSubBlock; ++i) {
    sum_qx += double(q[i]) * x[i];
    sum_qq += double(q[i]) * q[i];
  }
  return sum_qq > 0 ? float(sum_qx / sum_qq) : 0.0f;
}

float signed_absmax(const float* x, int n) {
  float result = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(result)) result = x[i];
  return result;
}

// The scale may come out negative: the extreme weight can sit at either end of the quant range.
float search_symmetric_scale(const float* x, SymmetricRange r) {
  const float extreme = signed_absmax(x, kSymmetricSubBlock);
  if (extreme == 0.0f) return 0.0f;
  int q[kSymmetricSubBlock];
  float best = extreme / float(r.q_lowest);
  quantize_symmetric(x, best, r, q);
  double best_error = symmetric_error(x, best, q);
  for (const int end_level : {r.q_lowest, r.q_highest}) {
    for (int step = -kSearchSteps; step <= kSearchSteps; ++step) {
      const float level = float(end_level) * (1.0f + kSearchStepSize * float(step));
      quantize_symmetric(x, extreme / level, r, q);
      const float candidate = fit_symmetric_to_quants(x, q);
      const double error = symmetric_error(x, candidate, q);
      if (error < best_error) best = candidate, best_error = error;
    }
  }
  for (int iteration = 0; iteration < 8; ++iteration) {
    quantize_symmetric(x, best, r, q);
    const float refit = fit_symmetric_to_quants(x, q);
    const double error = symmetric_error(x, refit, q);
    if (!(error < best_error)) break;
    best = refit, best_error = error;
  }
  return best;
}

// 16 symmetric sub-blocks with scale_i = d * scale_codes[i].
struct SymmetricSuperBlock {
  Fp16Bits d;
  int scale_codes[16];
  int q[kSuper];
};

SymmetricSuperBlock quantize_symmetric_super_block(const float* x, SymmetricRange r) {
  constexpr int n_sub_blocks = kSuper / kSymmetricSubBlock;
  float scales[n_sub_blocks];
  for (int s = 0; s < n_sub_blocks; ++s) scales[s] = search_symmetric_scale(x + s * kSymmetricSubBlock, r);
  // The sub-block scale of largest magnitude gets the most negative code.
  SymmetricSuperBlock out;
  out.d = fp32_to_fp16(signed_absmax(scales, n_sub_blocks) / float(r.code_lowest));
  const float d = fp16_to_fp32(out.d);

  for (int s = 0; s < n_sub_blocks; ++s) {
    const float* xs = x + s * kSymmetricSubBlock;
    const int code = d != 0.0f ? round_and_clamp(scales[s] / d, r.code_lowest, r.code_highest) : 0;
    double best_error = std::numeric_limits<double>::infinity();
    for (int step = -1; step <= 1; ++step) {
      const int c = code + step;
      if (c < r.code_lowest || c > r.code_highest) continue;
      const float coded = d * float(c);  // as the dequantizer computes it
      int q[kSymmetricSubBlock];
      quantize_symmetric(xs, coded, r, q);
      const double error = symmetric_error(xs, coded, q);
      if (error < best_error) {
        best_error = error;
        out.scale_codes[s] = c;
        std::copy(q, q + kSymmetricSubBlock, out.q + s * kSymmetricSubBlock);
      }
    }
  }
  return out;
}

// Q2_K, Q3_K and Q6_K keep weight 32*k + l of each 128-weight half at bits 2k..2k+1 of byte l
// of that half's 32 bytes (see quant_blocks.hpp).
void pack_two_bit_quants(const int q[kSuper], uint8_t qs[kSuper / 4]) {
  std::memset(qs, 0, kSuper / 4);
  for (int w = 0; w < kSuper; ++w) {
    const int half = w / 128, group = (w % 128) / 32, lane = w % 32;
    qs[32 * half + lane] |= uint8_t((q[w] & 0x03) << (2 * group));
  }
}

// Q4_K and Q5_K: in each 64 weights, the first 32 go to the low nibbles, the next 32 to the high.
void pack_k_quant_nibbles(const int q[kSuper], uint8_t qs[kSuper / 2]) {
  for (int pair = 0; pair < kSuper / 64; ++pair)
    for (int l = 0; l < 32; ++l)
      qs[32 * pair + l] = uint8_t((q[64 * pair + l] & 0x0f) | ((q[64 * pair + 32 + l] & 0x0f) << 4));
}

}  // namespace

void quantize_row_q2_k(const float* x, BlockQ2_K* y, int64_t n) {
  check_row_length("quantize_row_q2_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper) {
    // 16 sub-blocks of 16, q in 0..3, 4-bit scale and min codes.
    const AffineSuperBlock sb = quantize_affine_super_block(x, 16, 3, 15);
    y[b].d = sb.d;
    y[b].dmin = sb.dmin;
    for (int s = 0; s < 16; ++s) y[b].scales[s] = uint8_t(sb.scale_codes[s] | (sb.min_codes[s] << 4));
    pack_two_bit_quants(sb.q, y[b].qs);
  }
}

void quantize_row_q3_k(const float* x, BlockQ3_K* y, int64_t n) {
  check_row_length("quantize_row_q3_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper) {
    const SymmetricSuperBlock sb = quantize_symmetric_super_block(x, {-4, 3, -32, 31});
    y[b].d = sb.d;
    int8_t codes[16];
    for (int s = 0; s < 16; ++s) codes[s] = int8_t(sb.scale_codes[s]);
    pack_q3_k_scales(codes, y[b].scales);
    // Stored as q + 4 in 0..7: the low 2 bits in qs, bit 2 in hmask (byte l, bit 4*half + group).
    int stored[kSuper];
    std::memset(y[b].hmask, 0, sizeof(y[b].hmask));
    for (int w = 0; w < kSuper; ++w) {
      stored[w] = sb.q[w] + 4;
      const int half = w / 128, group = (w % 128) / 32, lane = w % 32;
      y[b].hmask[lane] |= uint8_t((stored[w] >> 2) << (4 * half + group));
    }
    pack_two_bit_quants(stored, y[b].qs);
  }
}

void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n) {
  check_row_length("quantize_row_q4_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper) {
    // 8 sub-blocks of 32, q in 0..15, 6-bit scale and min codes.
    const AffineSuperBlock sb = quantize_affine_super_block(x, 32, 15, 63);
    y[b].d = sb.d;
    y[b].dmin = sb.dmin;
    pack_k_quant_scales_mins(sb.scale_codes, sb.min_codes, y[b].scales);
    pack_k_quant_nibbles(sb.q, y[b].qs);
  }
}

void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n) {
  check_row_length("quantize_row_q5_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper) {
    // 8 sub-blocks of 32, q in 0..31, 6-bit scale and min codes; bit 4 of q goes to qh.
    const AffineSuperBlock sb = quantize_affine_super_block(x, 32, 31, 63);
    y[b].d = sb.d;
    y[b].dmin = sb.dmin;
    pack_k_quant_scales_mins(sb.scale_codes, sb.min_codes, y[b].scales);
    pack_k_quant_nibbles(sb.q, y[b].qs);
    std::memset(y[b].qh, 0, sizeof(y[b].qh));
    for (int w = 0; w < kSuper; ++w) y[b].qh[w % 32] |= uint8_t(((sb.q[w] >> 4) & 1) << (w / 32));
  }
}

void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n) {
  check_row_length("quantize_row_q6_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper) {
    const SymmetricSuperBlock sb = quantize_symmetric_super_block(x, {-32, 31, -128, 127});
    y[b].d = sb.d;
    for (int s = 0; s < 16; ++s) y[b].scales[s] = int8_t(sb.scale_codes[s]);
    // Stored as q + 32 in 0..63: low nibble in ql, top 2 bits in qh (see quant_blocks.hpp).
    std::memset(y[b].ql, 0, sizeof(y[b].ql));
    std::memset(y[b].qh, 0, sizeof(y[b].qh));
    for (int w = 0; w < kSuper; ++w) {
      const int stored = sb.q[w] + 32;
      const int half = w / 128, group = (w % 128) / 32, lane = w % 32;
      y[b].ql[64 * half + 32 * (group % 2) + lane] |= uint8_t((stored & 0x0f) << (4 * (group / 2)));
      y[b].qh[32 * half + lane] |= uint8_t((stored >> 4) << (2 * group));
    }
  }
}

// Exactly as ggml: the weight of largest magnitude maps to -127, d = 1 / inverse scale,
// q rounded to nearest (ties to even); bsums are the sums of each 16 consecutive q.
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n) {
  check_row_length("quantize_row_q8_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper) {
    BlockQ8_K& block = y[b];
    const float extreme = signed_absmax(x, kSuper);
    if (extreme == 0.0f) {
      std::memset(&block, 0, sizeof(block));
      continue;
    }
    const float inverse_scale = -127.0f / extreme;
    for (int w = 0; w < kSuper; ++w) block.qs[w] = int8_t(std::min(127, int(std::lrintf(inverse_scale * x[w]))));
    for (int g = 0; g < kSuper / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += block.qs[16 * g + i];
      block.bsums[g] = int16_t(sum);
    }
    block.d = 1.0f / inverse_scale;
  }
}

}  // namespace slm::kernels
