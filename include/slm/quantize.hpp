// Quantizing a model file: which type each tensor gets, and the conversion itself.
//
// The per-tensor rules are llama.cpp's (llama_tensor_get_type in src/llama-quant.cpp), so that
// a file slm writes has the same tensor types, and the same size, as llama-quantize's:
//
// - Only matrices are quantized: tensors of two or more dimensions (3-D expert stacks too) whose
//   name ends in "weight" and is not a norm ("_norm.weight"). Norms, biases and rope factors are
//   copied unchanged, and so are a few small matrices llama.cpp names: MoE routers
//   (ffn_gate_inp), the convolution kernels of recurrent layers (ssm_conv1d, shortconv.conv), and
//   the others in kKeptTensors (quantize_model.cpp).
// - The output matrix (output.weight, or token_embd.weight when the model ties them) gets Q6_K,
//   except for Q8_0 files, and Q8_0 when its rows are not a whole number of the base type's blocks.
// - Each recipe may give the attention values and ffn_down a bigger type in some blocks (the
//   table in quantize_model.cpp): Q4_K_M and Q5_K_M give Q6_K to the "use_more_bits" ones (the
//   first eighth, the last eighth and every third in between), Q4_K_S gives Q5_K to the first four
//   attention values and to ffn_down of the first eighth of the blocks. Attention values are
//   attn_v, and the fused attn_qkv and attn_kv_b that hold them; they are counted, not taken by
//   block, so a hybrid model with attention in some blocks only upgrades among those. ffn_down is
//   counted too in a dense model; in a mixture of experts it is taken by block.
// - Models with exactly 8 experts (Mixtral) get Q8_0 for attn_v and attn_k, and Q5_K for
//   attn_output in Q4_K_S and Q4_K_M files.
// - IQ4_NL and IQ4_XS give Q5_K to ffn_down of the first eighth of the blocks (as Q4_K_S), and to
//   every attention value of a model with 4 or more query heads per KV head.
// - A type whose block does not divide the row length falls back: Q4_K -> Q5_0, Q5_K -> Q5_1,
//   Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, IQ4_XS -> IQ4_NL; if that still does not divide it, F16. (llama.cpp refuses
//   a legacy type whose 32 does not divide the row; slm falls back to F16 there too.)
// - F32, F16 and BF16 files convert every matrix to that type, with no other rule.
//
// Not taken from llama.cpp: its Falcon-only and 70B-only rules, and the importance-matrix ones.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slm/ggml_type.hpp"
#include "slm/gguf.hpp"

namespace slm {

// llama.cpp's LLAMA_FTYPE values, stored in general.file_type: the recipes slm can write.
enum class FileType : uint32_t {
  F32 = 0,  // LLAMA_FTYPE_ALL_F32
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 7,
  Q5_0 = 8,
  Q4_K_S = 14,
  Q4_K_M = 15,
  Q5_K_M = 17,
  Q6_K = 18,
  IQ4_NL = 25,
  IQ4_XS = 30,
  BF16 = 32,
};

// Which attention values or ffn_down matrices a recipe gives a bigger type to: i is the tensor's
// index (TensorContext::attention_value_index, ffn_down_index, or the block in a MoE model), n the
// number of attention values, or of blocks for ffn_down.
enum class LayerSelection {
  None,
  UseMoreBits,  // i < n/8, i >= 7n/8, or (i - n/8) % 3 == 2: llama.cpp's use_more_bits
  FirstFour,    // i < 4
  FirstEighth,  // i < n/8
  GroupedQueries,  // every one, in a model with 4 or more query heads per KV head (n_gqa >= 4)
};

struct LayerUpgrade {
  LayerSelection layers = LayerSelection::None;
  GgmlType type = GgmlType::F32;
};

struct QuantizeRecipe {
  FileType file_type;
  std::string_view name;         // the TYPE argument of slm-quantize: "Q4_K_M"
  GgmlType base_type;            // every matrix no rule below names
  LayerUpgrade attn_v;           // the attention values: attn_v, attn_qkv, attn_kv_b
  LayerUpgrade ffn_down;
  std::optional<GgmlType> attn_output_with_8_experts;  // attn_output of a model with 8 experts
  std::string_view description;  // for --help
};

// Every recipe, in the order --help lists them.
const std::vector<QuantizeRecipe>& quantize_recipes();
const QuantizeRecipe& quantize_recipe(FileType file_type);
// Case-insensitive; nullopt for a name no recipe has.
std::optional<FileType> file_type_from_name(std::string_view name);

// llama.cpp's description of a general.file_type value ("Q4_K - Medium", "all F32"), for any
// value llama.cpp defines, not only those slm writes; "unknown" for others.
std::string file_type_description(uint32_t raw_file_type);

// What the rules need to know about one tensor.
struct TensorContext {
  std::string name;
  uint32_t n_dims = 2;
  uint64_t row_length = 0;       // ne[0]
  int32_t layer = -1;            // N of "blk.N.", -1 outside the blocks
  int32_t n_layer = 0;           // blocks in the model
  bool tied_embeddings = false;  // the model has no output.weight: token_embd is the output matrix
  uint32_t n_expert = 0;         // <arch>.expert_count: experts of a MoE layer, 0 in a dense model
  // llama.cpp's counters (i_attention_wv, n_attention_wv, i_ffn_down), set by
  // count_like_llama_cpp: this tensor's place among the model's attention values and among its
  // ffn_down matrices, in llama.cpp's tensor order. -1 for other tensors.
  int32_t attention_value_index = -1;
  int32_t n_attention_values = 0;
  int32_t ffn_down_index = -1;
  // <arch>.attention.head_count / head_count_kv, 0 when either is missing or not one number.
  uint32_t n_gqa = 0;
};

// The contexts of every tensor of a model file, in file order, counted by count_like_llama_cpp.
// n_layer is <arch>.block_count, or one more than the largest block index when that key is missing.
std::vector<TensorContext> tensor_contexts(const GgufFile& file);

// Sets the counters of every tensor of one model as llama-quantize counts them: it visits the
// tensors by block (the ones outside blocks first), then by name, whatever the file order.
void count_like_llama_cpp(std::vector<TensorContext>& tensors);

// False for the tensors that are copied unchanged (vectors, norms).
bool is_quantizable(const TensorContext& tensor);
// The type `tensor` gets in a file of the recipe; `current_type` is returned for the tensors
// that are not quantizable.
GgmlType choose_tensor_type(const QuantizeRecipe& recipe, const TensorContext& tensor, GgmlType current_type);

// One tensor of the output file.
struct PlannedTensor {
  const GgufTensor* source = nullptr;  // in the input file
  GgmlType type = GgmlType::F32;
  uint64_t n_bytes = 0;                // in the output file
};
std::vector<PlannedTensor> plan_quantization(const GgufFile& input, FileType file_type);

struct QuantizeProgress {
  size_t tensor_index = 0;  // into the plan
  size_t n_tensors = 0;
  const PlannedTensor* tensor = nullptr;
  uint64_t weights_done = 0;   // over the whole model, this tensor's finished rows included
  uint64_t weights_total = 0;
  bool tensor_finished = false;  // the last report for this tensor
};

struct QuantizeOptions {
  FileType file_type = FileType::Q4_K_M;
  int32_t n_threads = 0;  // 0: the number of physical cores
  // Called on the calling thread after each slice of a tensor (a few million weights) is done.
  std::function<void(const QuantizeProgress&)> on_progress;
};

struct TypeTotal {
  GgmlType type;
  size_t n_tensors = 0;
  uint64_t n_bytes = 0;
};

struct QuantizeSummary {
  std::vector<TypeTotal> by_type;  // in the order of kGgmlTypes
  uint64_t input_tensor_bytes = 0;
  uint64_t output_tensor_bytes = 0;
  uint64_t output_file_bytes = 0;
};

// Per-type tensor counts and bytes of a plan.
std::vector<TypeTotal> totals_by_type(const std::vector<PlannedTensor>& plan);

// Reads `input_path`, converts every tensor by plan_quantization, and writes `output_path` with
// all metadata kept and general.file_type and general.quantization_version set. The file is
// written as output_path + ".tmp" and renamed when complete; on any error the partial file is
// removed. Throws slm::Error when output_path is the input file, the input cannot be read, or
// the output cannot be written.
QuantizeSummary quantize_model(const std::string& input_path, const std::string& output_path,
                               const QuantizeOptions& options);

}  // namespace slm
