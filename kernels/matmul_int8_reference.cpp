// The scalar reference of the Int8 activation formula (kernels/matmul_int8.hpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/activation_blocks.hpp"
#include "kernels/dequantize.hpp"
#include "kernels/matmul_int8.hpp"
#include "kernels/quant_blocks.hpp"

namespace slm::kernels {

Int8ActivationBlockRef quantize_int8_block_reference(const float* x, int n) {
  Int8ActivationBlockRef block;
  float amax = 0.0f;
  bool finite = true;
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) finite = false;
    amax = std::max(amax, std::fabs(x[i]));
  }
  if (!finite) {
    block.d = std::numeric_limits<float>::quiet_NaN();
    return block;
  }
  if (amax < kSmallestQuantizedMagnitude) return block;
  block.d = amax / float(kInt8ActivationMax);
  const float inverse = float(kInt8ActivationMax) / amax;
  for (int i = 0; i < n; ++i) {
    const float q = std::nearbyint(x[i] * inverse);  // the default rounding mode: to nearest even
    block.q[i] = static_cast<int8_t>(std::clamp(q, -float(kInt8ActivationMax), float(kInt8ActivationMax)));
  }
  for (int i = 0; i < n; ++i) {
    block.sum32[i / 32] += block.q[i];
    block.sum16[i / 16] += block.q[i];
  }
  return block;
}

namespace {

// The block's weights without its scale (w_int), exact in float: the block dequantized with
// d = 1 and dmin = m = 0, so that dequantize_row, the formats' specification, does the unpacking.
template <class Block>
void integer_weights(const uint8_t* bytes, GgmlType type, float* w_int) {
  Block block;
  std::memcpy(&block, bytes, sizeof(block));
  block.d = fp32_to_fp16(1.0f);
  if constexpr (requires { block.dmin; }) block.dmin = 0;
  if constexpr (requires { block.m; }) block.m = 0;
  dequantize_row(type, &block, w_int, ggml_type_info(type).block_size);
}

struct BlockScales {
  float d = 0.0f;
  float dmin = 0.0f;        // Q4_K, Q5_K
  int32_t mins[8] = {};     // their min_i
  float m = 0.0f;           // Q4_1, Q5_1
};

template <class Block>
constexpr bool kHasMins = std::is_same_v<Block, BlockQ4_K> || std::is_same_v<Block, BlockQ5_K>;

template <class Block>
BlockScales block_scales(const uint8_t* bytes) {
  Block block;
  std::memcpy(&block, bytes, sizeof(block));
  BlockScales s;
  s.d = fp16_to_fp32(block.d);
  if constexpr (kHasMins<Block>) {
    s.dmin = fp16_to_fp32(block.dmin);
    for (int i = 0; i < 8; ++i) s.mins[i] = k_quant_scale_min(block.scales, i).min;
  }
  if constexpr (requires { block.m; }) s.m = fp16_to_fp32(block.m);
  return s;
}

template <class Block>
void reference_rows(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                    int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const int n = int(ggml_type_info(type).block_size);
  const int64_t n_blocks = n_in / n;
  std::vector<Int8ActivationBlockRef> xq(size_t(n_tokens * n_blocks));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < n_blocks; ++b) xq[size_t(t * n_blocks + b)] = quantize_int8_block_reference(x + t * n_in + b * n, n);
  std::vector<float> w_int(static_cast<size_t>(n));
  for (int64_t o = row_begin; o < row_end; ++o) {
    std::vector<float> acc(size_t(n_tokens), 0.0f);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* block = weights + uint64_t(o) * row_bytes + uint64_t(b) * sizeof(Block);
      integer_weights<Block>(block, type, w_int.data());
      const BlockScales s = block_scales<Block>(block);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const Int8ActivationBlockRef& a = xq[size_t(t * n_blocks + b)];
        int64_t isum = 0;
        for (int i = 0; i < n; ++i) isum += int64_t(w_int[size_t(i)]) * a.q[i];
        float& out = acc[size_t(t)];
        out = std::fma(float(isum), s.d * a.d, out);
        if constexpr (kHasMins<Block>) {
          int64_t min_isum = 0;
          for (int i = 0; i < 8; ++i) min_isum += int64_t(s.mins[i]) * a.sum32[i];
          out = std::fma(float(min_isum), s.dmin * -a.d, out);
        }
        if constexpr (requires(const Block& block) { block.m; }) out = std::fma(float(a.sum32[0]), s.m * a.d, out);
      }
    }
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + o] = acc[size_t(t)];
  }
}

}  // namespace

void matmul_rows_int8_reference(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  check_row_length("matmul_rows_int8_reference", n_in, ggml_type_info(type).block_size);
  switch (type) {
    case GgmlType::Q4_0: return reference_rows<BlockQ4_0>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_0: return reference_rows<BlockQ5_0>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q4_1: return reference_rows<BlockQ4_1>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_1: return reference_rows<BlockQ5_1>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q8_0: return reference_rows<BlockQ8_0>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::IQ4_NL: return reference_rows<BlockIQ4_NL>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q4_K: return reference_rows<BlockQ4_K>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q5_K: return reference_rows<BlockQ5_K>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::IQ4_XS: return reference_rows<BlockIQ4_XS>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    case GgmlType::Q6_K: return reference_rows<BlockQ6_K>(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
    default:
      throw std::invalid_argument(std::string("matmul_rows_int8_reference: no Int8 formula for ") +
                                  std::string(ggml_type_name(type)));
  }
}

}  // namespace slm::kernels
