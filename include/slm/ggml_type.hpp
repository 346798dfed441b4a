// The GGML weight formats that GGUF files store, with their block geometry.
// This is a leaf header: kernels, the loader and the tools all share it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace slm {

// Values are the on-disk ggml_type ids.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_NL = 20,
  IQ4_XS = 23,
  BF16 = 30,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;
  uint32_t block_size;   // weights per block
  uint32_t block_bytes;  // bytes per block
  bool weight_format;    // may appear as a tensor type in a model file we load
};

inline constexpr GgmlTypeInfo kGgmlTypes[] = {
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::BF16, "BF16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", 32, 18, true},
    {GgmlType::Q4_1, "Q4_1", 32, 20, true},
    {GgmlType::Q5_0, "Q5_0", 32, 22, true},
    {GgmlType::Q5_1, "Q5_1", 32, 24, true},
    {GgmlType::Q8_0, "Q8_0", 32, 34, true},
    {GgmlType::Q8_1, "Q8_1", 32, 36, false},
    {GgmlType::Q2_K, "Q2_K", 256, 84, true},
    {GgmlType::Q3_K, "Q3_K", 256, 110, true},
    {GgmlType::Q4_K, "Q4_K", 256, 144, true},
    {GgmlType::Q5_K, "Q5_K", 256, 176, true},
    {GgmlType::Q6_K, "Q6_K", 256, 210, true},
    {GgmlType::Q8_K, "Q8_K", 256, 292, false},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18, true},
    {GgmlType::IQ4_XS, "IQ4_XS", 256, 136, true},
};

// The table entry for a raw on-disk type id, or nullopt for ids slm does not know.
inline constexpr std::optional<GgmlTypeInfo> ggml_type_info(uint32_t raw_type) {
  for (const auto& info : kGgmlTypes)
    if (static_cast<uint32_t>(info.type) == raw_type) return info;
  return std::nullopt;
}

inline constexpr GgmlTypeInfo ggml_type_info(GgmlType type) {
  return *ggml_type_info(static_cast<uint32_t>(type));
}

inline constexpr std::string_view ggml_type_name(GgmlType type) { return ggml_type_info(type).name; }

inline std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  for (const auto& info : kGgmlTypes)
    if (info.name == name) return info.type;
  return std::nullopt;
}

// Bytes of one row of n_elements weights; n_elements must be a multiple of the block size.
inline constexpr uint64_t ggml_row_bytes(GgmlType type, uint64_t n_elements) {
  const auto info = ggml_type_info(type);
  return n_elements / info.block_size * info.block_bytes;
}

}  // namespace slm
