// Model quantization: llama.cpp's per-tensor type rules (see include/slm/quantize.hpp) and the
// conversion of a GGUF file, row by row in parallel, into a new one.
#include "slm/quantize.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include "kernels/dequantize.hpp"
#include "kernels/quantize.hpp"
#include "slm/gguf_writer.hpp"
#include "slm/session.hpp"

namespace slm {
namespace {

// ggml's GGML_QNT_VERSION, which llama-quantize writes to general.quantization_version.
constexpr uint32_t kQuantizationVersion = 2;

// Rows are converted in slices of about this many weights, so that progress moves smoothly
// through large tensors (token_embd of a 150k vocabulary is 136 M weights).
constexpr uint64_t kWeightsPerSlice = uint64_t(1) << 22;

using enum GgmlType;

}  // namespace

const std::vector<QuantizeRecipe>& quantize_recipes() {
  static const std::vector<QuantizeRecipe> recipes = {
      {FileType::Q4_0, "Q4_0", Q4_0, {}, {}, {}, "4.5 bits/weight, legacy 32-weight blocks"},
      {FileType::Q5_0, "Q5_0", Q5_0, {}, {}, {}, "5.5 bits/weight, legacy 32-weight blocks"},
      {FileType::Q8_0, "Q8_0", Q8_0, {}, {}, {}, "8.5 bits/weight, nearly lossless"},
      {FileType::Q4_K_S, "Q4_K_S", Q4_K, {LayerSelection::FirstFour, Q5_K}, {LayerSelection::FirstEighth, Q5_K}, Q5_K,
       "Q4_K; attn_v of blocks 0-3 and ffn_down of the first 1/8 blocks Q5_K"},
      {FileType::Q4_K_M, "Q4_K_M", Q4_K, {LayerSelection::UseMoreBits, Q6_K}, {LayerSelection::UseMoreBits, Q6_K}, Q5_K,
       "Q4_K; attn_v and ffn_down Q6_K in about half the blocks (the usual choice)"},
      {FileType::Q5_K_M, "Q5_K_M", Q5_K, {LayerSelection::UseMoreBits, Q6_K}, {LayerSelection::UseMoreBits, Q6_K}, {},
       "Q5_K; attn_v and ffn_down Q6_K in about half the blocks"},
      {FileType::Q6_K, "Q6_K", Q6_K, {}, {}, {}, "6.56 bits/weight"},
      {FileType::IQ4_NL, "IQ4_NL", IQ4_NL, {LayerSelection::GroupedQueries, Q5_K}, {LayerSelection::FirstEighth, Q5_K},
       Q5_K, "4.5 bits/weight, 16 non-linear levels per 32 weights; attn_v Q5_K if n_gqa >= 4, ffn_down as Q4_K_S"},
      {FileType::IQ4_XS, "IQ4_XS", IQ4_XS, {LayerSelection::GroupedQueries, Q5_K}, {LayerSelection::FirstEighth, Q5_K},
       Q5_K, "4.25 bits/weight, IQ4_NL's levels with 6-bit scales per 32 in 256-weight blocks; the rest as IQ4_NL"},
      {FileType::F16, "F16", F16, {}, {}, {}, "16-bit floats"},
      {FileType::BF16, "BF16", BF16, {}, {}, {}, "bfloat16"},
      {FileType::F32, "F32", F32, {}, {}, {}, "32-bit floats (no loss; dequantizes a quantized file)"},
  };
  return recipes;
}

const QuantizeRecipe& quantize_recipe(FileType file_type) {
  for (const QuantizeRecipe& recipe : quantize_recipes())
    if (recipe.file_type == file_type) return recipe;
  throw Error(fmt::format("no quantization recipe for file type {}", uint32_t(file_type)));
}

std::optional<FileType> file_type_from_name(std::string_view name) {
  const auto same_letters = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
           });
  };
  for (const QuantizeRecipe& recipe : quantize_recipes())
    if (same_letters(recipe.name, name)) return recipe.file_type;
  return std::nullopt;
}

std::string file_type_description(uint32_t raw_file_type) {
  // llama.cpp's llama_model_ftype_name for the llama_ftype values of the formats slm reads.
  struct Description {
    uint32_t file_type;
    std::string_view text;
  };
  static constexpr Description descriptions[] = {
      {0, "all F32"},       {1, "F16"},           {2, "Q4_0"},          {3, "Q4_1"},
      {7, "Q8_0"},          {8, "Q5_0"},          {9, "Q5_1"},          {10, "Q2_K - Medium"},
      {11, "Q3_K - Small"}, {12, "Q3_K - Medium"}, {13, "Q3_K - Large"}, {14, "Q4_K - Small"},
      {15, "Q4_K - Medium"}, {16, "Q5_K - Small"}, {17, "Q5_K - Medium"}, {18, "Q6_K"},
      {21, "Q2_K - Small"}, {25, "IQ4_NL - 4.5 bpw"}, {30, "IQ4_XS - 4.25 bpw"}, {32, "BF16"},
  };
  for (const Description& d : descriptions)
    if (d.file_type == raw_file_type) return std::string(d.text);
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

namespace {

// Names of matrices llama.cpp never quantizes (tensor_allows_quantization): small ones, or ones
// read by something other than a matmul. A tensor is kept when its name contains one of these.
constexpr std::string_view kKeptTensors[] = {
    "ffn_gate_inp.weight",      // MoE router: picks the experts, so its errors change which run
    "ffn_gate_tid2eid.weight",  // DeepSeek-V4's token-to-expert table (integers)
    "ssm_conv1d",               // Mamba and Gated DeltaNet (qwen35) causal convolution kernels:
    "shortconv.conv.weight",    //   LFM2's; rows of 3-4 taps, read by a convolution
    "altup",                    // Gemma 3n: altup and laurel are tiny (4x4), the per-layer
    "laurel",                   //   projection small
    "per_layer_model_proj",
    "indexer.k_proj.weight",    // MiniMax's small indexer projections
    "indexer.q_proj.weight",
    "time_mix_first.weight",    // RWKV's small 2-D mixing weights
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",        // T5's relative position bias
};

// Tensors kept by their whole name: BERT's positional and token-type embeddings.
constexpr std::string_view kKeptTensorNames[] = {"position_embd.weight", "token_types.weight"};

// The tensors the rules single out, by name as llama.cpp's tensor_get_category finds them, in
// its order (the first match wins).
enum class TensorRole { TokenEmbedding, Output, AttentionValue, AttentionKey, AttentionOutput, FfnDown, Other };

TensorRole tensor_role(std::string_view name) {
  const auto has = [&](std::string_view part) { return name.find(part) != std::string_view::npos; };
  if (name == "output.weight") return TensorRole::Output;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return TensorRole::TokenEmbedding;
  // A fused q/k/v matrix (phi3, the in-projection of a DeltaNet layer) and MLA's compressed k/v
  // (attn_kv_b) hold the values: llama.cpp treats and counts them as attn_v.
  if (has("attn_qkv.weight") || has("attn_kv_b.weight") || has("attn_v.weight")) return TensorRole::AttentionValue;
  if (has("attn_k.weight")) return TensorRole::AttentionKey;
  if (has("attn_output.weight")) return TensorRole::AttentionOutput;
  if (has("ffn_down")) return TensorRole::FfnDown;  // ffn_down_exps and ffn_down_shexp too
  return TensorRole::Other;
}

bool is_quantized_type(GgmlType type) { return type != F32 && type != F16 && type != BF16; }

bool layer_selected(LayerSelection selection, int32_t index, int32_t count, uint32_t n_gqa) {
  switch (selection) {
    case LayerSelection::None: return false;
    case LayerSelection::GroupedQueries: return n_gqa >= 4;
    case LayerSelection::UseMoreBits:
      return index < count / 8 || index >= 7 * count / 8 || (index - count / 8) % 3 == 2;
    case LayerSelection::FirstFour: return index < 4;
    case LayerSelection::FirstEighth: return index < count / 8;
  }
  return false;
}

bool row_fits(GgmlType type, uint64_t row_length) { return row_length % ggml_type_info(type).block_size == 0; }

// llama.cpp's tensor_type_fallback: a type of similar size whose 32-weight block fits the row.
GgmlType fallback_type(GgmlType type, uint64_t row_length) {
  if (row_fits(type, row_length)) return type;
  GgmlType fallback = F16;
  switch (type) {
    case Q2_K:
    case Q3_K: fallback = Q4_0; break;
    case Q4_K: fallback = Q5_0; break;
    case Q5_K: fallback = Q5_1; break;
    case Q6_K: fallback = Q8_0; break;
    case IQ4_XS: fallback = IQ4_NL; break;
    default: break;
  }
  return row_fits(fallback, row_length) ? fallback : F16;
}

// llama.cpp: the output matrix gets Q6_K unless the file is Q8_0 (it keeps Q8_0) or the base
// type's block does not divide the row (Q8_0).
GgmlType output_matrix_type(GgmlType base_type, uint64_t row_length) {
  if (base_type == Q8_0 || !row_fits(base_type, row_length)) return Q8_0;
  return Q6_K;
}

}  // namespace

bool is_quantizable(const TensorContext& tensor) {
  const std::string_view name = tensor.name;
  if (tensor.n_dims < 2 || !name.ends_with("weight") || name.find("_norm.weight") != std::string_view::npos)
    return false;
  for (const std::string_view kept : kKeptTensors)
    if (name.find(kept) != std::string_view::npos) return false;
  for (const std::string_view kept : kKeptTensorNames)
    if (name == kept) return false;
  return true;
}

GgmlType choose_tensor_type(const QuantizeRecipe& recipe, const TensorContext& tensor, GgmlType current_type) {
  if (!is_quantizable(tensor)) return current_type;
  if (!is_quantized_type(recipe.base_type)) return recipe.base_type;

  // llama.cpp: "for the 8-expert model, bumping this to Q8_0 trades just ~128MB" (Mixtral).
  const bool eight_experts = tensor.n_expert == 8;
  GgmlType type = recipe.base_type;
  switch (tensor_role(tensor.name)) {
    case TensorRole::Output: type = output_matrix_type(recipe.base_type, tensor.row_length); break;
    case TensorRole::TokenEmbedding:
      // A tied token_embd is the output matrix too, and is quantized like one.
      if (tensor.tied_embeddings) type = output_matrix_type(recipe.base_type, tensor.row_length);
      break;
    case TensorRole::AttentionValue:
      if (layer_selected(recipe.attn_v.layers, tensor.attention_value_index, tensor.n_attention_values, tensor.n_gqa))
        type = recipe.attn_v.type;
      if (eight_experts) type = Q8_0;
      break;
    case TensorRole::AttentionKey:
      if (eight_experts) type = Q8_0;
      break;
    case TensorRole::AttentionOutput:
      if (eight_experts && recipe.attn_output_with_8_experts) type = *recipe.attn_output_with_8_experts;
      break;
    case TensorRole::FfnDown: {
      // The experts of one block need not be stored together, so in a MoE model llama.cpp takes
      // the block from the name; in a dense model it counts. Both are out of the block count.
      const int32_t index = tensor.n_expert > 1 ? tensor.layer : tensor.ffn_down_index;
      if (layer_selected(recipe.ffn_down.layers, index, tensor.n_layer, tensor.n_gqa)) type = recipe.ffn_down.type;
      break;
    }
    case TensorRole::Other: break;
  }
  return fallback_type(type, tensor.row_length);
}

void count_like_llama_cpp(std::vector<TensorContext>& tensors) {
  // llama.cpp's weight_name_comparer: block index first (-1 outside the blocks), then name.
  std::vector<TensorContext*> order;
  for (TensorContext& tensor : tensors) order.push_back(&tensor);
  std::stable_sort(order.begin(), order.end(), [](const TensorContext* a, const TensorContext* b) {
    return a->layer != b->layer ? a->layer < b->layer : a->name < b->name;
  });
  int32_t n_attention_values = 0, n_ffn_down = 0;
  for (TensorContext* tensor : order) {
    tensor->attention_value_index = tensor->ffn_down_index = -1;
    // llama.cpp's rules, and so its counters, only see the tensors it quantizes.
    if (!is_quantizable(*tensor)) continue;
    const TensorRole role = tensor_role(tensor->name);
    if (role == TensorRole::AttentionValue) tensor->attention_value_index = n_attention_values++;
    if (role == TensorRole::FfnDown) tensor->ffn_down_index = n_ffn_down++;
  }
  for (TensorContext& tensor : tensors) tensor.n_attention_values = n_attention_values;
}

std::vector<TensorContext> tensor_contexts(const GgufFile& file) {
  const auto block_index = [](std::string_view name) -> int32_t {
    if (!name.starts_with("blk.")) return -1;
    name.remove_prefix(4);
    int32_t index = -1;
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), index);
    return error == std::errc() && end != name.data() + name.size() && *end == '.' ? index : -1;
  };

  std::optional<uint32_t> n_layer, n_expert, n_head, n_head_kv;
  if (const std::string* arch = file.get_string_opt("general.architecture")) {
    n_layer = file.get_u32_opt(*arch + ".block_count");
    n_expert = file.get_u32_opt(*arch + ".expert_count");
    // Hybrid models give head counts per layer, as arrays: no one n_gqa, no rule taken from it.
    const auto one_count = [&](const std::string& key) -> std::optional<uint32_t> {
      const GgufValue* value = file.find(key);
      if (!value || value->type == GgufValueType::ARRAY) return std::nullopt;
      return file.get_u32_opt(key);
    };
    n_head = one_count(*arch + ".attention.head_count");
    n_head_kv = one_count(*arch + ".attention.head_count_kv");
  }
  const uint32_t n_gqa = n_head && n_head_kv && *n_head_kv > 0 ? *n_head / *n_head_kv : 0;
  const bool tied = file.find_tensor("output.weight") == nullptr;

  std::vector<TensorContext> contexts;
  int32_t max_layer = -1;
  for (const GgufTensor& t : file.tensors()) {
    TensorContext context{t.name, t.n_dims, t.ne[0], block_index(t.name), 0, tied, n_expert.value_or(0)};
    max_layer = std::max(max_layer, context.layer);
    contexts.push_back(std::move(context));
  }
  for (TensorContext& context : contexts) {
    context.n_layer = n_layer ? int32_t(*n_layer) : max_layer + 1;
    context.n_gqa = n_gqa;
  }
  count_like_llama_cpp(contexts);
  return contexts;
}

std::vector<PlannedTensor> plan_quantization(const GgufFile& input, FileType file_type) {
  const QuantizeRecipe& recipe = quantize_recipe(file_type);
  const std::vector<TensorContext> contexts = tensor_contexts(input);
  std::vector<PlannedTensor> plan;
  for (size_t i = 0; i < contexts.size(); ++i) {
    const GgufTensor& source = input.tensors()[i];
    const GgmlType type = choose_tensor_type(recipe, contexts[i], source.type);
    plan.push_back({&source, type, ggml_row_bytes(type, source.ne[0]) * source.n_rows()});
  }
  return plan;
}

std::vector<TypeTotal> totals_by_type(const std::vector<PlannedTensor>& plan) {
  std::vector<TypeTotal> totals;
  for (const GgmlTypeInfo& info : kGgmlTypes) {
    TypeTotal total{info.type};
    for (const PlannedTensor& tensor : plan) {
      if (tensor.type != info.type) continue;
      ++total.n_tensors;
      total.n_bytes += tensor.n_bytes;
    }
    if (total.n_tensors > 0) totals.push_back(total);
  }
  return totals;
}

// ---------------------------------------------------------------------------------------------
// Conversion
// ---------------------------------------------------------------------------------------------

namespace {

// Converts one tensor into `out`, `n_threads` rows at a time, reporting after each slice.
void convert_tensor(const PlannedTensor& planned, std::vector<uint8_t>& out, int32_t n_threads,
                    const std::function<void(uint64_t rows_done)>& on_slice) {
  const GgufTensor& source = *planned.source;
  const uint64_t row_length = source.ne[0];
  const uint64_t n_rows = source.n_rows();
  out.resize(planned.n_bytes);
  if (planned.type == source.type || n_rows == 0) {  // nothing to convert: the bytes are the same
    std::memcpy(out.data(), source.data, source.n_bytes);
    on_slice(n_rows);
    return;
  }
  const uint64_t in_row_bytes = ggml_row_bytes(source.type, row_length);
  const uint64_t out_row_bytes = ggml_row_bytes(planned.type, row_length);
  const uint64_t rows_per_slice = std::max<uint64_t>(1, kWeightsPerSlice / std::max<uint64_t>(row_length, 1));
  for (uint64_t first = 0; first < n_rows; first += rows_per_slice) {
    const int64_t end = int64_t(std::min(n_rows, first + rows_per_slice));
    std::exception_ptr failure;
#pragma omp parallel num_threads(n_threads)
    {
      std::vector<float> row(row_length);
#pragma omp for schedule(dynamic, 1)
      for (int64_t r = int64_t(first); r < end; ++r) {
        try {
          kernels::dequantize_row(source.type, source.data + uint64_t(r) * in_row_bytes, row.data(), int64_t(row_length));
          kernels::quantize_row(planned.type, row.data(), out.data() + uint64_t(r) * out_row_bytes, int64_t(row_length));
        } catch (...) {
#pragma omp critical(slm_quantize_failure)
          if (!failure) failure = std::current_exception();
        }
      }
    }
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        throw Error(fmt::format("tensor {}: {} -> {}: {}", source.name, ggml_type_name(source.type),
                                ggml_type_name(planned.type), e.what()));
      }
    }
    on_slice(uint64_t(end));
  }
}

// The input's metadata with general.file_type and general.quantization_version set (in place
// when the input has them, else appended).
std::vector<GgufKeyValue> output_metadata(const GgufFile& input, FileType file_type) {
  const auto u32_value = [](uint32_t value) { return GgufValue{GgufValueType::UINT32, int64_t(value)}; };
  const std::pair<std::string_view, GgufValue> updates[] = {
      {"general.quantization_version", u32_value(kQuantizationVersion)},
      {"general.file_type", u32_value(uint32_t(file_type))},
  };
  std::vector<GgufKeyValue> metadata = input.metadata();
  for (const auto& update : updates) {  // not a structured binding: clang 14 cannot capture one in a lambda
    const std::string_view key = update.first;
    auto found = std::find_if(metadata.begin(), metadata.end(), [&](const GgufKeyValue& kv) { return kv.key == key; });
    if (found != metadata.end())
      found->value = update.second;
    else
      metadata.push_back({std::string(key), update.second, 0});
  }
  return metadata;
}

void refuse_overwriting_input(const std::string& input_path, const std::string& output_path) {
  namespace fs = std::filesystem;
  // Same path spelled differently, or another name (a hard or symbolic link) for the same file.
  const auto same_file = [](const fs::path& a, const fs::path& b) {
    std::error_code error_a, error_b;
    if (fs::equivalent(a, b, error_a)) return true;
    const fs::path canonical_a = fs::weakly_canonical(a, error_a), canonical_b = fs::weakly_canonical(b, error_b);
    return !error_a && !error_b && canonical_a == canonical_b;
  };
  if (same_file(input_path, output_path))
    throw Error(fmt::format("{}: the output file is the input file; choose another output path", output_path));
  if (same_file(input_path, output_path + ".tmp"))
    throw Error(fmt::format("{}: the temporary output {}.tmp is the input file", output_path, output_path));
}

// Removes the temporary file unless released (the rename happened).
struct TemporaryFile {
  std::string path;
  bool keep = false;
  ~TemporaryFile() {
    if (!keep) std::remove(path.c_str());
  }
};

}  // namespace

QuantizeSummary quantize_model(const std::string& input_path, const std::string& output_path,
                               const QuantizeOptions& options) {
  refuse_overwriting_input(input_path, output_path);
  const QuantizeRecipe& recipe = quantize_recipe(options.file_type);
  const GgufFile input = GgufFile::open(input_path);
  const std::vector<PlannedTensor> plan = plan_quantization(input, recipe.file_type);
  const int32_t n_threads = options.n_threads > 0 ? options.n_threads : default_thread_count();

  GgufWriter writer;
  for (GgufKeyValue& kv : output_metadata(input, recipe.file_type)) writer.add(std::move(kv.key), std::move(kv.value));

  QuantizeSummary summary;
  uint64_t weights_total = 0;
  for (const PlannedTensor& tensor : plan) weights_total += tensor.source->n_elements();
  uint64_t weights_before = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& planned = plan[i];
    const GgufTensor& source = *planned.source;
    const uint64_t n_rows = source.n_rows();
    std::vector<uint8_t> data;
    convert_tensor(planned, data, n_threads, [&](uint64_t rows_done) {
      if (!options.on_progress) return;
      options.on_progress({i, plan.size(), &planned, weights_before + rows_done * source.ne[0], weights_total,
                           rows_done == n_rows});
    });
    weights_before += source.n_elements();
    summary.input_tensor_bytes += source.n_bytes;
    summary.output_tensor_bytes += planned.n_bytes;
    writer.add_tensor(source.name, planned.type, std::vector<uint64_t>(source.ne.begin(), source.ne.begin() + source.n_dims),
                      std::move(data));
  }
  summary.by_type = totals_by_type(plan);

  TemporaryFile temporary{output_path + ".tmp"};
  writer.write_file(temporary.path);
  std::error_code error;
  std::filesystem::rename(temporary.path, output_path, error);
  if (error) throw Error(fmt::format("{}: cannot rename {} to it: {}", output_path, temporary.path, error.message()));
  temporary.keep = true;
  summary.output_file_bytes = std::filesystem::file_size(output_path);
  return summary;
}

}  // namespace slm
