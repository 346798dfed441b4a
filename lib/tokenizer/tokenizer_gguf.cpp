// Tokenizer::from_gguf: the tokenizer.ggml.* keys -> TokenizerMetadata.
#include <string>

#include "slm/gguf.hpp"
#include "slm/tokenizer.hpp"

namespace slm {

namespace {

std::string where(const GgufFile& file, std::string_view key) { return file.path() + ": key " + std::string(key); }

enum class ElementKind { String, Integer, Float };

// An array whose elements are of the expected kind (any width of integer or float).
const GgufArray* array_of(const GgufFile& file, std::string_view key, ElementKind kind, bool required) {
  const GgufArray* array = file.get_array_opt(key);
  if (array == nullptr) {
    if (required) throw Error(file.path() + ": missing key " + std::string(key));
    return nullptr;
  }
  const size_t elements = kind == ElementKind::String    ? array->strings.size()
                          : kind == ElementKind::Integer ? array->ints.size()
                                                         : array->floats.size();
  if (elements != array->size()) {
    static constexpr std::string_view kKindNames[] = {"strings", "integers", "floats"};
    throw Error(where(file, key) + " is an array of " + std::string(gguf_value_type_name(array->element_type)) +
                ", expected " + std::string(kKindNames[static_cast<int>(kind)]));
  }
  return array;
}

// Special token ids are written as uint32 by llama.cpp's converter and sometimes as int32;
// the value is checked against the vocabulary later.
std::optional<int64_t> token_id_of(const GgufFile& file, std::string_view key) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return std::nullopt;
  if (const auto* integer = std::get_if<int64_t>(&value->value)) return *integer;
  throw Error(where(file, key) + " is a " + std::string(gguf_value_type_name(value->type)) + ", expected an integer");
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  TokenizerMetadata metadata;
  metadata.model = file.get_string("tokenizer.ggml.model");
  if (const std::string* pre = file.get_string_opt("tokenizer.ggml.pre")) metadata.pre = *pre;
  if (const std::string* name = file.get_string_opt("general.name")) metadata.model_name = *name;

  metadata.tokens = array_of(file, "tokenizer.ggml.tokens", ElementKind::String, true)->strings;
  if (const GgufArray* scores = array_of(file, "tokenizer.ggml.scores", ElementKind::Float, false)) {
    metadata.scores.assign(scores->floats.begin(), scores->floats.end());
  }
  if (const GgufArray* types = array_of(file, "tokenizer.ggml.token_type", ElementKind::Integer, false)) {
    metadata.token_types.reserve(types->ints.size());
    for (const int64_t type : types->ints) metadata.token_types.push_back(static_cast<int32_t>(type));
  }
  if (metadata.model == "gpt2" || metadata.model == "gemma4") {
    // llama.cpp lets a Kimi-K2 file go without merges (its words are then single characters
    // or their bytes); every other BPE file needs them.
    const bool required = metadata.pre != "kimi-k2";
    if (const GgufArray* merges = array_of(file, "tokenizer.ggml.merges", ElementKind::String, required)) {
      metadata.merges = merges->strings;
    }
  }

  metadata.bos_id = token_id_of(file, "tokenizer.ggml.bos_token_id");
  metadata.eos_id = token_id_of(file, "tokenizer.ggml.eos_token_id");
  metadata.eot_id = token_id_of(file, "tokenizer.ggml.eot_token_id");
  metadata.eom_id = token_id_of(file, "tokenizer.ggml.eom_token_id");
  metadata.unknown_id = token_id_of(file, "tokenizer.ggml.unknown_token_id");
  metadata.padding_id = token_id_of(file, "tokenizer.ggml.padding_token_id");
  metadata.add_bos = file.get_bool_opt("tokenizer.ggml.add_bos_token");
  metadata.add_eos = file.get_bool_opt("tokenizer.ggml.add_eos_token");
  metadata.add_space_prefix = file.get_bool_opt("tokenizer.ggml.add_space_prefix");
  return from_metadata(std::move(metadata), file.path());
}

}  // namespace slm
