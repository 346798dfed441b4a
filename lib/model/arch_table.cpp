#include <string>

#include "lib/model/arch.hpp"

namespace slm {

static const ArchSpec* const kArchTable[] = {&kLlamaArch, &kQwen2Arch, &kQwen3Arch, &kPhi3Arch, &kQwen3MoeArch,
                                             &kGemma2Arch, &kGemma3Arch, &kLfm2Arch, &kQwen35Arch};

const ArchSpec* find_arch(std::string_view name) {
  for (const ArchSpec* spec : kArchTable)
    if (spec->name == name) return spec;
  return nullptr;
}

std::string supported_arch_names() {
  std::string names;
  for (const ArchSpec* spec : kArchTable) names += (names.empty() ? "" : ", ") + std::string(spec->name);
  return names;
}

}  // namespace slm
