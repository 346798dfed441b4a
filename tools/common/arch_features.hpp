// What a model file's architecture does beyond Llama's plain transformer, read from its keys and
// tensors alone (no weights loaded), for slm-info: "fused q/k/v projection (attn_qkv)",
// "LongRoPE: ...". The names are those of the README's architecture table.
#pragma once

#include <string>
#include <vector>

#include "slm/gguf.hpp"

namespace slm::tools {

// Empty for a file without general.architecture. A key of the wrong type is left out, never an error:
// slm-info shows any file.
std::vector<std::string> architecture_features(const GgufFile& gguf);

}  // namespace slm::tools
