// Scalar quantization to the non-linear 4-bit formats IQ4_NL and IQ4_XS: each weight becomes
// the nibble of the kIq4NlValues entry nearest weight / scale, and the scale is searched.
//
// The search, in the spirit of ggml's quantize_row_iq4_nl_impl (the results may differ bit-wise;
// the format is the same): the weight of largest magnitude is put on one end of the table or the
// other (-127 + t or 113 + t, t = -7..7), each such scale is refit by least squares to the values
// its weights took, and the candidate of least squared error wins. Candidates are scored with the
// scale rounded as it will be stored, so the error measured is the error written.
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/dequantize.hpp"  // check_row_length
#include "kernels/quantize.hpp"

namespace slm::kernels {
namespace {

constexpr int kSubBlock = 32;  // weights per scale: an IQ4_NL block, an IQ4_XS sub-block

// The index of the table value nearest v: how many midpoints between neighbours lie below v
// (a tie goes to the lower value).
int nearest_value_index(float v) {
  int index = 0;
  for (int k = 0; k < 15; ++k) index += v > 0.5f * float(kIq4NlValues[k] + kIq4NlValues[k + 1]);
  return index;
}

struct Coded {
  float scale = 0.0f;
  double squared_error = std::numeric_limits<double>::infinity();
};

// The squared error of x coded with `scale`, each weight on its nearest value; q gets the indices.
double code_with_scale(const float* x, float scale, uint8_t q[kSubBlock]) {
  const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
  double error = 0;
  for (int j = 0; j < kSubBlock; ++j) {
    q[j] = uint8_t(nearest_value_index(x[j] * inverse));
    const double e = double(x[j]) - double(scale) * kIq4NlValues[q[j]];
    error += e * e;
  }
  return error;
}

// The scale of least squared error among the candidates above, each passed through
// stored_scale (the rounding the file applies to it) before it is scored.
template <class StoredScale>
float search_scale(const float* x, StoredScale&& stored_scale) {
  float max = 0.0f;  // the weight of largest magnitude, with its sign
  for (int j = 0; j < kSubBlock; ++j)
    if (std::fabs(x[j]) > std::fabs(max)) max = x[j];
  if (max == 0.0f) return 0.0f;
  Coded best;
  uint8_t q[kSubBlock];
  const auto score = [&](float candidate) {
    const float scale = stored_scale(candidate);
    const double error = code_with_scale(x, scale, q);
    if (error < best.squared_error) best = {scale, error};
    return error;
  };
  for (const int end : {int(kIq4NlValues[0]), int(kIq4NlValues[15])})
    for (const int t : {0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -7, 7}) {  // t = 0 first: a grid block stays exact
      score(max / float(end + t));
      double sum_xv = 0, sum_vv = 0;  // the least-squares scale for the values just taken
      for (int j = 0; j < kSubBlock; ++j) {
        sum_xv += double(x[j]) * kIq4NlValues[q[j]];
        sum_vv += double(kIq4NlValues[q[j]]) * kIq4NlValues[q[j]];
      }
      if (sum_vv > 0) score(float(sum_xv / sum_vv));
    }
  return best.scale;
}

float fp16_rounded(float scale) { return fp16_to_fp32(fp32_to_fp16(scale)); }

// Index j of q to the low nibble of byte j (j < 16) or the high nibble of byte j - 16.
void pack_nibbles(const uint8_t q[kSubBlock], uint8_t qs[kSubBlock / 2]) {
  for (int j = 0; j < kSubBlock / 2; ++j) qs[j] = uint8_t(q[j] | (q[j + kSubBlock / 2] << 4));
}

}  // namespace

void quantize_row_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t n) {
  check_row_length("quantize_row_iq4_nl", n, kLegacyBlockSize);
  for (int64_t b = 0; b < n / kLegacyBlockSize; ++b, x += kLegacyBlockSize) {
    const float d = search_scale(x, fp16_rounded);
    uint8_t q[kSubBlock];
    code_with_scale(x, d, q);
    y[b].d = fp32_to_fp16(d);
    pack_nibbles(q, y[b].qs);
  }
}

// Each sub-block's scale is searched in float32, then coded as d * l with l in -32..31 against
// the super-block's fp16 d (the largest sub-block scale is l = -32); each sub-block then tries
// l - 1, l and l + 1 and keeps the least squared error.
void quantize_row_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t n) {
  check_row_length("quantize_row_iq4_xs", n, kSuperBlockSize);
  constexpr int kSubBlocks = kSuperBlockSize / kSubBlock;
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b, x += kSuperBlockSize) {
    float sub_scales[kSubBlocks], max_scale = 0.0f;
    for (int i = 0; i < kSubBlocks; ++i) {
      sub_scales[i] = search_scale(x + kSubBlock * i, [](float scale) { return scale; });
      if (std::fabs(sub_scales[i]) > std::fabs(max_scale)) max_scale = sub_scales[i];
    }
    BlockIQ4_XS& block = y[b];
    block.d = fp32_to_fp16(max_scale / -32.0f);
    const float d = fp16_to_fp32(block.d);
    block.scales_h = 0;
    std::memset(block.scales_l, 0, sizeof(block.scales_l));
    for (int i = 0; i < kSubBlocks; ++i) {
      const float* xi = x + kSubBlock * i;
      const int nearest = d != 0.0f ? int(std::lrintf(sub_scales[i] / d)) : 0;
      int best_l = 0;
      double best_error = std::numeric_limits<double>::infinity();
      uint8_t q[kSubBlock], best_q[kSubBlock] = {};
      for (int l = nearest - 1; l <= nearest + 1; ++l) {
        if (l < -32 || l > 31) continue;
        const double error = code_with_scale(xi, d * float(l), q);
        if (error < best_error) {
          best_error = error;
          best_l = l;
          std::memcpy(best_q, q, sizeof(q));
        }
      }
      const int ls = best_l + 32;
      block.scales_l[i / 2] |= uint8_t((ls & 0x0f) << (4 * (i % 2)));
      block.scales_h |= uint16_t((ls >> 4) << (2 * i));
      pack_nibbles(best_q, block.qs + 16 * i);
    }
  }
}

}  // namespace slm::kernels
