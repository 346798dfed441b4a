// How the integer kernels round a layer's input before multiplying it with quantized weights:
// a model's load option (slm::LoadOptions), the same for every call, so that no result depends
// on the batch. Where a format or an instruction set has no integer kernels, activations stay
// float32 whatever this says.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace slm {

enum class ActivationPrecision : uint8_t {
  // 13 to 15 bits of magnitude per block (kernels/activation_blocks.hpp), 16 to 128 times finer
  // than llama.cpp's: the default.
  Int16,
  // 7 bits per block, as llama.cpp rounds them (kernels/matmul_int8.hpp): prompts up to twice as
  // fast, for the matrices whose format and instruction set have Int8 kernels.
  Int8,
};

// "int16" / "int8", as the tools' --activations flag spells them.
constexpr std::string_view activation_precision_name(ActivationPrecision p) {
  return p == ActivationPrecision::Int8 ? "int8" : "int16";
}
inline std::optional<ActivationPrecision> parse_activation_precision(std::string_view name) {
  if (name == "int16") return ActivationPrecision::Int16;
  if (name == "int8") return ActivationPrecision::Int8;
  return std::nullopt;
}

}  // namespace slm
