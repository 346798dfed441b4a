// Draft/target pairs with controlled agreement; see include/slm/draft_pair.hpp.
#include "slm/draft_pair.hpp"

#include <fmt/format.h>

#include <charconv>
#include <optional>
#include <vector>

#include "kernels/dequantize.hpp"
#include "kernels/quantize.hpp"
#include "slm/gguf.hpp"
#include "slm/gguf_writer.hpp"

namespace slm {

namespace {

// The layer of a "blk.N.*" tensor, or nullopt.
std::optional<int32_t> layer_of(const std::string& name) {
  if (!name.starts_with("blk.")) return std::nullopt;
  int32_t layer = 0;
  const char* begin = name.data() + 4;
  const auto [end, error] = std::from_chars(begin, name.data() + name.size(), layer);
  if (error != std::errc() || end == begin) return std::nullopt;
  return layer;
}

bool is_residual_output(const std::string& name) {
  return name.ends_with(".attn_output.weight") || name.ends_with(".ffn_down.weight") ||
         name.ends_with(".ffn_down_exps.weight");
}

// The tensor's rows multiplied by `scale`, written in `type`.
std::vector<uint8_t> converted_copy(const GgufTensor& tensor, float scale, GgmlType type) {
  if (!kernels::can_quantize(type))
    throw Error(fmt::format("{}: cannot write {} tensors", tensor.name, ggml_type_name(type)));
  const int64_t n = int64_t(tensor.ne[0]);
  const uint32_t block_size = ggml_type_info(type).block_size;
  if (!ggml_type_info(type).weight_format || n % block_size != 0)
    throw Error(fmt::format("{}: rows of {} cannot be written as {} weights (blocks of {})", tensor.name, n,
                            ggml_type_name(type), block_size));
  const uint64_t row_bytes = ggml_row_bytes(tensor.type, tensor.ne[0]);
  const uint64_t out_row_bytes = ggml_row_bytes(type, tensor.ne[0]);
  std::vector<uint8_t> out(size_t(out_row_bytes * tensor.n_rows()));
  std::vector<float> row(size_t(n), 0.0f);
  for (uint64_t r = 0; r < tensor.n_rows(); ++r) {
    kernels::dequantize_row(tensor.type, tensor.data + r * row_bytes, row.data(), n);
    if (scale != 1.0f)
      for (float& x : row) x *= scale;
    kernels::quantize_row(type, row.data(), out.data() + r * out_row_bytes, n);
  }
  return out;
}

// Adds `tensor` scaled by `scale` in `type`, or as it is when neither changes it.
void add_tensor(GgufWriter& writer, const GgufTensor& tensor, float scale, GgmlType type) {
  const std::vector<uint64_t> shape(tensor.ne.begin(), tensor.ne.begin() + tensor.n_dims);
  if (scale == 1.0f && type == tensor.type)
    writer.add_tensor(tensor.name, tensor.type, shape, {tensor.data, tensor.data + tensor.n_bytes});
  else
    writer.add_tensor(tensor.name, type, shape, converted_copy(tensor, scale, type));
}

}  // namespace

void write_draft_pair(const std::string& input_path, const std::string& target_path, const std::string& draft_path,
                      const DraftPairOptions& options) {
  const GgufFile input = GgufFile::open(input_path);
  const std::string& arch = input.get_string("general.architecture");
  const std::string block_count_key = arch + ".block_count";
  const int32_t n_layer = int32_t(input.get_u32(block_count_key));
  if (options.draft_layers < 1 || options.draft_layers >= n_layer)
    throw Error(fmt::format("{}: the draft must keep 1 to {} of the {} layers, not {}", input_path, n_layer - 1, n_layer,
                            options.draft_layers));
  const std::string* name = input.get_string_opt("general.name");
  const std::string base_name = name ? *name : "model";

  GgufWriter target, draft;
  for (const GgufKeyValue& kv : input.metadata()) {
    if (kv.key == "general.name") continue;
    target.add(kv.key, kv.value);
    if (kv.key == block_count_key) draft.add_u32(kv.key, uint32_t(options.draft_layers));
    else draft.add(kv.key, kv.value);
  }
  target.add_string("general.name", fmt::format("{} target (layers {}+ x{})", base_name, options.draft_layers,
                                                options.residual_scale));
  draft.add_string("general.name", fmt::format("{} draft ({} layers)", base_name, options.draft_layers));

  const bool has_output = input.find_tensor("output.weight") != nullptr;
  const std::string head_name = has_output ? "output.weight" : "token_embd.weight";
  for (const GgufTensor& tensor : input.tensors()) {
    const std::optional<int32_t> layer = layer_of(tensor.name);
    const bool later = layer && *layer >= options.draft_layers;
    const float attention = tensor.name.ends_with(".attn_output.weight") ? options.attention_scale : 1.0f;
    const float residual = later && is_residual_output(tensor.name) ? options.residual_scale : 1.0f;
    add_tensor(target, tensor, attention * residual, tensor.type);
    if (later) continue;
    const bool head = tensor.name == head_name && options.draft_head_type;
    add_tensor(draft, tensor, attention, head ? *options.draft_head_type : tensor.type);
  }
  target.write_file(target_path);
  draft.write_file(draft_path);
}

}  // namespace slm
