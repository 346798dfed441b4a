// The architecture table: general.architecture -> what that family needs.
// Adding an architecture means adding one short file that fills an ArchSpec,
// and one line in arch_table.cpp.
#pragma once

#include <span>
#include <string_view>

#include "slm/model.hpp"

namespace slm {

struct SessionState;

// Runs the model over tokens at positions pos0.. and writes logits: the last token's
// (n_vocab floats) or, with all_logits, every token's ([n_tokens][n_vocab]).
using ForwardFn = void (*)(const Model& model, SessionState& state, std::span<const TokenId> tokens,
                           int32_t pos0, bool all_logits, float* logits);

struct ArchSpec {
  std::string_view name;     // general.architecture
  RopeStyle rope_style;
  bool qkv_bias;             // q/k/v projections carry biases (required tensors)
  bool qk_norm;              // per-head RMSNorm on q and k (required tensors)
  ForwardFn forward;
};

// The specs, one per file.
extern const ArchSpec kLlamaArch;
extern const ArchSpec kQwen2Arch;
extern const ArchSpec kQwen3Arch;

// nullptr for an architecture slm does not run.
const ArchSpec* find_arch(std::string_view name);
// "llama, qwen2, qwen3", for error messages.
std::string supported_arch_names();

// The Llama-family transformer (lib/model/llama.cpp); the other specs reuse it.
void forward_llama(const Model& model, SessionState& state, std::span<const TokenId> tokens, int32_t pos0,
                   bool all_logits, float* logits);

}  // namespace slm
