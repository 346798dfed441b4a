// slm-quantize beyond the dense Llama shape: mixtures of experts, fused q/k/v, and the hybrids
// with recurrent layers (qwen35, lfm2). First the rules, each on a small model file built here
// and each citing the llama.cpp rule it follows (src/llama-quant.cpp); then whole files: every
// F32 model in ../shared/models, quantized by slm, gets tensor for tensor the types of each file
// llama-quantize made from it, by the library and by the slm-quantize tool.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "slm/gguf_writer.hpp"
#include "slm/quantize.hpp"
#include "support/assets.hpp"
#include "support/gguf_bytes.hpp"
#include "support/process.hpp"

namespace {

namespace fs = std::filesystem;
using slm::FileType;

// ---------------------------------------------------------------------------------------------
// The rules, on model files built in memory
// ---------------------------------------------------------------------------------------------

struct TensorShape {
  std::string name;
  std::vector<uint64_t> ne;  // ne[0] is the row length
};

// A GGUF of architecture `arch` with `n_layer` blocks (and `n_expert` experts, 0: dense) holding
// zero-filled F32 tensors of these shapes, in this order.
slm::GgufFile model_file(const std::string& arch, uint32_t n_layer, uint32_t n_expert,
                         const std::vector<TensorShape>& tensors) {
  slm::GgufWriter writer;
  writer.add_string("general.architecture", arch);
  writer.add_u32(arch + ".block_count", n_layer);
  if (n_expert > 0) writer.add_u32(arch + ".expert_count", n_expert);
  for (const TensorShape& t : tensors) {
    uint64_t n_elements = 1;
    for (const uint64_t n : t.ne) n_elements *= n;
    writer.add_tensor(t.name, slm::GgmlType::F32, t.ne, std::vector<uint8_t>(n_elements * 4));
  }
  return slm::GgufFile::from_bytes(writer.to_bytes(), arch + " test model");
}

// The type slm-quantize's plan gives each tensor, by name.
std::map<std::string, std::string> planned_types(const slm::GgufFile& file, FileType file_type) {
  std::map<std::string, std::string> types;
  for (const slm::PlannedTensor& planned : slm::plan_quantization(file, file_type))
    types[planned.source->name] = std::string(slm::ggml_type_name(planned.type));
  return types;
}

std::string block(int i, const std::string& tensor) { return fmt::format("blk.{}.{}", i, tensor); }

// Expects `tensor` of every block in `blocks` to get `upgraded` and of the others `otherwise`.
void expect_blocks(const std::map<std::string, std::string>& types, const std::string& tensor, int n_layer,
                   const std::set<int>& blocks, const std::string& upgraded, const std::string& otherwise) {
  for (int i = 0; i < n_layer; ++i) {
    const auto found = types.find(block(i, tensor));
    if (found == types.end()) continue;  // a block without this tensor (hybrid models)
    EXPECT_EQ(found->second, blocks.contains(i) ? upgraded : otherwise) << found->first;
  }
}

TEST(QuantizeArchitectureRules, ConvolutionKernelsAndExpertRoutersKeepTheirType) {
  // llama.cpp, tensor_allows_quantization: "do not quantize Mamba/Kimi's small conv1d weights"
  // (names holding "ssm_conv1d" or "shortconv.conv.weight") and "do not quantize expert gating
  // tensors" (ffn_gate_inp.weight). They are 2-D, yet no recipe converts them, F16 included.
  // ssm_alpha/ssm_beta (Gated DeltaNet's per-head gates) are small matrices that are quantized.
  const slm::GgufFile file = model_file("hybrid", 1, 4,
                                        {{"blk.0.ssm_conv1d.weight", {4, 512}},
                                         {"blk.0.shortconv.conv.weight", {3, 256}},
                                         {"blk.0.ffn_gate_inp.weight", {256, 4}},
                                         {"blk.0.ssm_a", {8}},
                                         {"blk.0.ssm_alpha.weight", {256, 8}},
                                         {"blk.0.shortconv.in_proj.weight", {256, 768}}});
  for (const FileType file_type : {FileType::Q4_K_M, FileType::Q8_0, FileType::F16}) {
    const auto types = planned_types(file, file_type);
    const std::string base(slm::ggml_type_name(slm::quantize_recipe(file_type).base_type));
    EXPECT_EQ(types.at("blk.0.ssm_conv1d.weight"), "F32") << base;
    EXPECT_EQ(types.at("blk.0.shortconv.conv.weight"), "F32") << base;
    EXPECT_EQ(types.at("blk.0.ffn_gate_inp.weight"), "F32") << base;
    EXPECT_EQ(types.at("blk.0.ssm_a"), "F32") << base;
    EXPECT_EQ(types.at("blk.0.ssm_alpha.weight"), base);
    EXPECT_EQ(types.at("blk.0.shortconv.in_proj.weight"), base);
  }
}

TEST(QuantizeArchitectureRules, OtherTensorsLlamaCppKeepsAreKept) {
  // The rest of tensor_allows_quantization's list, for architectures slm may meet in a file:
  // Gemma 3n's altup/laurel, RWKV's time_mix_* weights, T5's relative position bias, BERT's
  // position and token-type embeddings.
  const slm::GgufFile file = model_file("any", 1, 0,
                                        {{"blk.0.altup_proj.weight", {256, 4}},
                                         {"blk.0.laurel_l.weight", {256, 64}},
                                         {"blk.0.time_mix_w1.weight", {256, 64}},
                                         {"blk.0.attn_rel_b.weight", {256, 32}},
                                         {"position_embd.weight", {256, 512}},
                                         {"token_types.weight", {256, 2}}});
  for (const auto& [name, type] : planned_types(file, FileType::Q4_K_M)) EXPECT_EQ(type, "F32") << name;
}

TEST(QuantizeArchitectureRules, ExpertStacksAreQuantizedAndTheirFfnDownGoesByBlock) {
  // llama.cpp quantizes "only 2D and 3D tensors (experts)"; 3-D stacks get the base type. For
  // ffn_down in a MoE model its layer_info takes the block from the name ("experts ... are not
  // consecutive ... we need to resort to parsing the tensor name"), so ffn_down_exps and the
  // shared expert's ffn_down_shexp of one block are both upgraded by use_more_bits(block, 8):
  // blocks 0, 3, 6, 7 (n/8 = 1, 7n/8 = 7, (i - 1) % 3 == 2).
  std::vector<TensorShape> tensors;
  for (int i = 0; i < 8; ++i) {
    for (const char* m : {"ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"})
      tensors.push_back({block(i, m), {256, 256, 4}});
    tensors.push_back({block(i, "ffn_down_shexp.weight"), {256, 256}});
  }
  const auto types = planned_types(model_file("qwen2moe", 8, 4, tensors), FileType::Q4_K_M);
  expect_blocks(types, "ffn_down_exps.weight", 8, {0, 3, 6, 7}, "Q6_K", "Q4_K");
  expect_blocks(types, "ffn_down_shexp.weight", 8, {0, 3, 6, 7}, "Q6_K", "Q4_K");
  expect_blocks(types, "ffn_gate_exps.weight", 8, {}, "", "Q4_K");
  expect_blocks(types, "ffn_up_exps.weight", 8, {}, "", "Q4_K");
}

TEST(QuantizeArchitectureRules, FusedQkvAndCompressedKvCountAsAttentionValues) {
  // llama.cpp's category_is_attn_v: attn_v, attn_qkv (phi3's fused q/k/v) and attn_kv_b (MLA)
  // take attn_v's rule and are counted in n_attention_wv. Two phi3 blocks: use_more_bits(i, 2)
  // holds for block 1 only; Q4_K_S upgrades the first four (i_attention_wv < 4).
  const slm::GgufFile phi3 =
      model_file("phi3", 2, 0, {{"blk.0.attn_qkv.weight", {256, 768}}, {"blk.1.attn_qkv.weight", {256, 768}}});
  expect_blocks(planned_types(phi3, FileType::Q4_K_M), "attn_qkv.weight", 2, {1}, "Q6_K", "Q4_K");
  expect_blocks(planned_types(phi3, FileType::Q5_K_M), "attn_qkv.weight", 2, {1}, "Q6_K", "Q5_K");
  expect_blocks(planned_types(phi3, FileType::Q4_K_S), "attn_qkv.weight", 2, {0, 1}, "Q5_K", "Q4_K");
  // Four MLA blocks: use_more_bits(i, 4) holds for 2 and 3.
  std::vector<TensorShape> mla;
  for (int i = 0; i < 4; ++i) mla.push_back({block(i, "attn_kv_b.weight"), {512, 256}});
  expect_blocks(planned_types(model_file("deepseek2", 4, 0, mla), FileType::Q4_K_M), "attn_kv_b.weight", 4, {2, 3},
                "Q6_K", "Q4_K");
}

TEST(QuantizeArchitectureRules, HybridModelsCountOnlyTheBlocksWithAttention) {
  // llama.cpp upgrades by use_more_bits(i_attention_wv, n_attention_wv): the count of attention
  // values, not the block. LFM2 with attention in blocks 2 and 5 of 6 has two: the second (block
  // 5) is upgraded, block 2 is not (by block index, use_more_bits(2, 6) would have held).
  std::vector<TensorShape> lfm2;
  for (int i = 0; i < 6; ++i)
    lfm2.push_back(i == 2 || i == 5 ? TensorShape{block(i, "attn_v.weight"), {256, 128}}
                                    : TensorShape{block(i, "shortconv.in_proj.weight"), {256, 768}});
  expect_blocks(planned_types(model_file("lfm2", 6, 0, lfm2), FileType::Q4_K_M), "attn_v.weight", 6, {5}, "Q6_K",
                "Q4_K");
  // Qwen3.5: DeltaNet blocks have a fused attn_qkv, attention blocks (3 and 7) attn_v: all eight
  // are attention values, counted in block order, so blocks 0, 3, 6 and 7 are upgraded.
  std::vector<TensorShape> qwen35;
  for (int i = 0; i < 8; ++i)
    qwen35.push_back({block(i, i % 4 == 3 ? "attn_v.weight" : "attn_qkv.weight"), {256, i % 4 == 3 ? 128u : 512u}});
  const auto types = planned_types(model_file("qwen35", 8, 0, qwen35), FileType::Q4_K_M);
  expect_blocks(types, "attn_qkv.weight", 8, {0, 6}, "Q6_K", "Q4_K");
  expect_blocks(types, "attn_v.weight", 8, {3, 7}, "Q6_K", "Q4_K");
}

TEST(QuantizeArchitectureRules, DenseFfnDownIsCountedOutOfTheBlockCount) {
  // Without experts, llama.cpp's layer_info gives (i_ffn_down, n_ffn_down): the count of ffn_down
  // matrices so far, out of the block count. Four blocks, block 0 without an FFN: blocks 1-3 are
  // ffn_down 0-2, and use_more_bits(i, 4) holds for i = 2 (block 3) only, not for block 2.
  std::vector<TensorShape> tensors = {{"blk.0.attn_v.weight", {256, 256}}};
  for (int i = 1; i < 4; ++i) tensors.push_back({block(i, "ffn_down.weight"), {256, 256}});
  expect_blocks(planned_types(model_file("llama", 4, 0, tensors), FileType::Q4_K_M), "ffn_down.weight", 4, {3},
                "Q6_K", "Q4_K");
}

TEST(QuantizeArchitectureRules, CountsFollowBlockOrderNotFileOrder) {
  // llama-quantize visits tensors in its loader's order (weight_name_comparer: block number, then
  // name), so a file written blk.0, blk.1, blk.10, blk.11, blk.2 ... counts in block order.
  // Twelve blocks: use_more_bits(i, 12) holds for 0, 3, 6, 9, 10, 11.
  std::vector<TensorShape> tensors;
  for (const int i : {0, 1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9}) tensors.push_back({block(i, "attn_v.weight"), {256, 256}});
  expect_blocks(planned_types(model_file("llama", 12, 0, tensors), FileType::Q4_K_M), "attn_v.weight", 12,
                {0, 3, 6, 9, 10, 11}, "Q6_K", "Q4_K");
}

TEST(QuantizeArchitectureRules, EightExpertModelsGiveAttentionMoreBits) {
  // llama.cpp, for n_expert == 8 (Mixtral): attn_v and attn_k get Q8_0 ("bumping this to Q8_0
  // trades just ~128MB"), and attn_output Q5_K in Q4_K_S and Q4_K_M files. Other expert counts
  // (qwen3moe's 128, the shared syn-qwen3moe's 4) get no such rule.
  std::vector<TensorShape> tensors;
  for (int i = 0; i < 4; ++i)
    for (const char* m : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"})
      tensors.push_back({block(i, m), {256, 256}});
  const auto mixtral = planned_types(model_file("llama", 4, 8, tensors), FileType::Q4_K_M);
  expect_blocks(mixtral, "attn_v.weight", 4, {}, "", "Q8_0");
  expect_blocks(mixtral, "attn_k.weight", 4, {}, "", "Q8_0");
  expect_blocks(mixtral, "attn_output.weight", 4, {}, "", "Q5_K");
  expect_blocks(mixtral, "attn_q.weight", 4, {}, "", "Q4_K");
  expect_blocks(planned_types(model_file("llama", 4, 8, tensors), FileType::Q5_K_M), "attn_output.weight", 4, {}, "",
                "Q5_K");
  const auto four_experts = planned_types(model_file("llama", 4, 4, tensors), FileType::Q4_K_M);
  expect_blocks(four_experts, "attn_v.weight", 4, {2, 3}, "Q6_K", "Q4_K");
  expect_blocks(four_experts, "attn_k.weight", 4, {}, "", "Q4_K");
  expect_blocks(four_experts, "attn_output.weight", 4, {}, "", "Q4_K");
}

// ---------------------------------------------------------------------------------------------
// Whole files: slm's quantization of each shared F32 model against llama-quantize's
// ---------------------------------------------------------------------------------------------

// Compares a file slm wrote with the one llama-quantize made from the same input: the same tensors
// with the same types (llama-quantize writes them in its own order, so they are matched by name),
// and the same size. Returns the number of tensors compared.
size_t expect_same_types(const fs::path& slm_path, const fs::path& llama_cpp_path) {
  const slm::GgufFile ours = slm::GgufFile::open(slm_path.string());
  const slm::GgufFile theirs = slm::GgufFile::open(llama_cpp_path.string());
  const std::string label = llama_cpp_path.filename().string();
  EXPECT_EQ(ours.tensors().size(), theirs.tensors().size()) << label;
  for (const slm::GgufTensor& tensor : theirs.tensors()) {
    const slm::GgufTensor* mine = ours.find_tensor(tensor.name);
    if (mine == nullptr) {
      ADD_FAILURE() << label << ": " << tensor.name << " missing from slm's file";
      continue;
    }
    EXPECT_EQ(slm::ggml_type_name(mine->type), slm::ggml_type_name(tensor.type)) << label << ": " << tensor.name;
    EXPECT_EQ(mine->ne, tensor.ne) << label << ": " << tensor.name;
  }
  EXPECT_EQ(fs::file_size(slm_path), fs::file_size(llama_cpp_path)) << label;
  return theirs.tensors().size();
}

// Each models/<stem>-F32.gguf with the llama-quantize files made from it (<stem>-<TYPE>.gguf for
// a TYPE slm-quantize has), sorted.
std::map<fs::path, std::vector<FileType>> f32_models_with_llama_cpp_files() {
  std::map<fs::path, std::vector<FileType>> models;
  for (const auto& entry : fs::directory_iterator(slm::test::shared_path("models"))) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with("-F32.gguf")) continue;
    const std::string stem = name.substr(0, name.size() - std::string("-F32.gguf").size());
    std::vector<FileType>& types = models[entry.path()];
    for (const slm::QuantizeRecipe& recipe : slm::quantize_recipes())
      if (recipe.file_type != FileType::F32 &&
          fs::exists(entry.path().parent_path() / (stem + "-" + std::string(recipe.name) + ".gguf")))
        types.push_back(recipe.file_type);
  }
  return models;
}

fs::path llama_cpp_file(const fs::path& f32_path, FileType file_type) {
  std::string name = f32_path.filename().string();
  name.replace(name.size() - std::string("F32.gguf").size(), std::string::npos,
               std::string(slm::quantize_recipe(file_type).name) + ".gguf");
  return f32_path.parent_path() / name;
}

TEST(QuantizeSharedModels, EveryF32ModelGetsTheTypesLlamaQuantizeChose) {
  SLM_REQUIRE_ASSET(slm::test::shared_path("models"));
  size_t n_files = 0, n_tensors = 0;
  std::set<std::string> architectures;
  for (const auto& [f32_path, file_types] : f32_models_with_llama_cpp_files()) {
    const std::string name = f32_path.filename().string();
    if (file_types.empty()) {
      std::printf("  skipped %s: no file llama-quantize made from it with a recipe slm has\n", name.c_str());
      continue;
    }
    std::optional<slm::GgufFile> input;
    try {
      input.emplace(slm::GgufFile::open(f32_path.string()));
    } catch (const slm::Error& e) {
      std::printf("  skipped %s: slm cannot read it (%s)\n", name.c_str(), e.what());
      continue;
    }
    architectures.insert(input->get_string("general.architecture"));
    for (const FileType file_type : file_types) {
      const fs::path llama_cpp_path = llama_cpp_file(f32_path, file_type);
      const fs::path output_path = slm::test::scratch_dir() / ("slm-" + llama_cpp_path.filename().string());
      slm::quantize_model(f32_path.string(), output_path.string(), {file_type, 2, {}});
      n_tensors += expect_same_types(output_path, llama_cpp_path);
      std::printf("  %s: slm-quantize %s compared with %s\n", name.c_str(),
                  std::string(slm::quantize_recipe(file_type).name).c_str(), llama_cpp_path.filename().string().c_str());
      fs::remove(output_path);
      ++n_files;
    }
  }
  std::printf("  %zu files, %zu tensors, %zu architectures\n", n_files, n_tensors, architectures.size());
  // The shared folder's F32 models: llama in every type; gemma2, gemma3, phi3, qwen3moe, qwen35
  // and lfm2 in Q8_0 and Q4_K_M.
  EXPECT_GE(n_files, 20u);
  for (const char* arch : {"llama", "gemma2", "gemma3", "phi3", "qwen3moe", "qwen35", "lfm2"})
    EXPECT_TRUE(architectures.contains(arch)) << arch;
}

TEST(QuantizeSharedModels, TheToolQuantizesHybridsAndExpertsLikeLlamaQuantize) {
  // The same through slm-quantize itself, for the three architectures with tensors a dense model
  // lacks: DeltaNet (qwen35), short convolutions (lfm2), experts and a router (qwen3moe).
  const fs::path tool = slm::test::bin_dir() / "slm-quantize";
  if (!fs::exists(tool)) GTEST_SKIP() << "slm-quantize not built";
  for (const char* stem : {"syn-qwen35-tiny", "syn-lfm2-tiny", "syn-qwen3moe-tiny"}) {
    const fs::path input = slm::test::shared_path(std::string("models/") + stem + "-F32.gguf");
    const fs::path reference = slm::test::shared_path(std::string("models/") + stem + "-Q4_K_M.gguf");
    if (!fs::exists(input) || !fs::exists(reference)) {
      std::printf("  skipped %s: shared asset missing\n", stem);
      continue;
    }
    const fs::path output = slm::test::scratch_dir() / (std::string("tool-") + stem + "-Q4_K_M.gguf");
    const slm::test::ProcessResult run =
        slm::test::run_process({tool.string(), input.string(), output.string(), "Q4_K_M", "-t", "2"});
    ASSERT_EQ(run.exit_code, 0) << stem << "\n" << run.stderr_text;
    expect_same_types(output, reference);
    fs::remove(output);
  }
}

}  // namespace
