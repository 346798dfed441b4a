// Binding a model's tensors by name, checking each one's shape and type, for the loader and
// for the architecture files that bind tensors of their own.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/dequantize.hpp"
#include "lib/model/weights.hpp"
#include "slm/gguf.hpp"

namespace slm {

// Upper bounds well above any model slm targets, low enough that products of them cannot
// overflow 64 bits.
inline constexpr int64_t kMaxEmbd = 1 << 16;
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxHeads = 1024;
inline constexpr int64_t kMaxHeadDim = 1024;
inline constexpr int64_t kMaxFeedForward = 1 << 20;
inline constexpr int64_t kMaxContext = 1 << 24;
inline constexpr int64_t kMaxExperts = 1 << 12;

struct WeightBinder {
  const GgufFile& file;
  ModelWeights& weights;

  [[noreturn]] void fail(const std::string& message) const { throw Error(file.path() + ": " + message); }

  const GgufTensor& require(const std::string& name) const {
    const GgufTensor* tensor = file.find_tensor(name);
    if (!tensor) fail("missing tensor " + name);
    return *tensor;
  }

  void check_type(const GgufTensor& t) const {
    if (!ggml_type_info(t.type).weight_format)
      fail(fmt::format("tensor {} has type {}, which is not a weight format", t.name, ggml_type_name(t.type)));
  }

  ops::WeightMatrix matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
    return matrix_from(require(name), n_in, n_out);
  }

  ops::WeightMatrix matrix_from(const GgufTensor& t, int64_t n_in, int64_t n_out) const {
    check_type(t);
    if (t.ne[0] != uint64_t(n_in) || t.ne[1] != uint64_t(n_out) || t.ne[2] != 1 || t.ne[3] != 1)
      fail(fmt::format("tensor {} has shape {}, expected [{}, {}]", t.name, t.shape_string(), n_in, n_out));
    return {t.type, n_in, n_out, t.data, ggml_row_bytes(t.type, uint64_t(n_in))};
  }

  // A fused projection (phi3's attn_qkv, q then k then v rows): a matrix of sum(parts) rows, split
  // into consecutive row ranges of those sizes, each a matrix of its own over the file's rows
  // (the loader repacks each one like any other matrix).
  std::vector<ops::WeightMatrix> split_matrix(const std::string& name, int64_t n_in,
                                              std::initializer_list<int64_t> parts) const {
    int64_t n_out = 0;
    for (int64_t rows : parts) n_out += rows;
    const ops::WeightMatrix fused = matrix(name, n_in, n_out);
    std::vector<ops::WeightMatrix> matrices;
    int64_t first_row = 0;
    for (int64_t rows : parts) {
      matrices.push_back({fused.type, n_in, rows, fused.data + uint64_t(first_row) * fused.row_bytes, fused.row_bytes});
      first_row += rows;
    }
    return matrices;
  }

  // A 3-D tensor [n_in, n_out, n_matrices]: n_matrices views (a mixture's experts), matrix e at
  // data + e * n_out * row_bytes, each used where the file has it.
  std::vector<ops::WeightMatrix> matrix_stack(const std::string& name, int64_t n_in, int64_t n_out,
                                              int64_t n_matrices) const {
    const GgufTensor& t = require(name);
    check_type(t);
    if (t.ne[0] != uint64_t(n_in) || t.ne[1] != uint64_t(n_out) || t.ne[2] != uint64_t(n_matrices) || t.ne[3] != 1)
      fail(fmt::format("tensor {} has shape {}, expected [{}, {}, {}]", t.name, t.shape_string(), n_in, n_out,
                       n_matrices));
    const uint64_t row_bytes = ggml_row_bytes(t.type, uint64_t(n_in));
    std::vector<ops::WeightMatrix> matrices;
    for (int64_t e = 0; e < n_matrices; ++e)
      matrices.push_back({t.type, n_in, n_out, t.data + uint64_t(e) * uint64_t(n_out) * row_bytes, row_bytes});
    return matrices;
  }

  // A 1-D tensor of n values, copied to float.
  const float* vector(const std::string& name, int64_t n) const { return vector_from(require(name), n); }

  const float* optional_vector(const std::string& name, int64_t n) const {
    const GgufTensor* t = file.find_tensor(name);
    return t ? vector_from(*t, n) : nullptr;
  }

  const float* vector_from(const GgufTensor& t, int64_t n) const {
    check_type(t);
    if (t.n_elements() != uint64_t(n) || t.ne[0] != uint64_t(n))
      fail(fmt::format("tensor {} has shape {}, expected [{}]", t.name, t.shape_string(), n));
    auto values = std::make_unique<std::vector<float>>(size_t(n), 1.0f);
    // A file opened for its header only (GgufFile::open_header, slm-plan) has no data: its
    // vectors stay 1.0, a value every check of a norm or a rope factor accepts.
    if (t.data) kernels::dequantize_row(t.type, t.data, values->data(), n);
    const float* data = values->data();
    weights.float_copies.push_back(std::move(values));
    return data;
  }

  // The taps of a short causal convolution (lfm2's shortconv.conv, qwen35's ssm_conv1d): F32 in
  // the file (as llama.cpp's conv needs), channel-major, ne [taps, channels]; copied tap-major
  // ([taps][channels]), as ops::short_conv reads them.
  const float* conv_taps(const std::string& name, int64_t taps, int64_t channels) const {
    const GgufTensor& t = require(name);
    if (t.type != GgmlType::F32)
      fail(fmt::format("tensor {} has type {}, expected F32", t.name, ggml_type_name(t.type)));
    if (t.ne[0] != uint64_t(taps) || t.ne[1] != uint64_t(channels) || t.ne[2] != 1 || t.ne[3] != 1)
      fail(fmt::format("tensor {} has shape {}, expected [{}, {}] (taps, channels)", t.name, t.shape_string(), taps,
                       channels));
    auto tap_major = std::make_unique<std::vector<float>>(size_t(taps * channels));
    const auto* channel_major = reinterpret_cast<const float*>(t.data);  // nullptr: a header-only file
    for (int64_t ch = 0; ch < channels && channel_major; ++ch)
      for (int64_t k = 0; k < taps; ++k) (*tap_major)[size_t(k * channels + ch)] = channel_major[ch * taps + k];
    const float* data = tap_major->data();
    weights.float_copies.push_back(std::move(tap_major));
    return data;
  }
};


// A u32 hyperparameter in [min, max]; `fallback` when the key is absent (else an error).
inline int32_t checked_hparam(const GgufFile& file, const std::string& key, int64_t min, int64_t max,
                       std::optional<int64_t> fallback = std::nullopt) {
  std::optional<uint32_t> value = file.get_u32_opt(key);
  if (!value && !fallback) throw Error(file.path() + ": missing key " + key);
  const int64_t v = value ? int64_t(*value) : *fallback;
  if (v < min || v > max)
    throw Error(fmt::format("{}: key {} is {}, expected a value in [{}, {}]", file.path(), key, v, min, max));
  return int32_t(v);
}


}  // namespace slm
