// Model::load repacks the matrices the active kernels multiply faster from the 8-row
// interleaved layout (kernels/interleaved_blocks.hpp): every such matrix of a shared model is
// repacked, no other is, a repacked row reads back as the file's row, and a tied model looks
// its tokens up in the output matrix's tiles.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "kernels/dequantize.hpp"
#include "kernels/interleaved_blocks.hpp"
#include "kernels/matmul.hpp"
#include "lib/model/model_binding.hpp"
#include "lib/model/weights.hpp"
#include "slm/model.hpp"
#include "support/assets.hpp"
#include "support/gguf_bytes.hpp"  // quantize_tiny_llama

namespace slm::test {
namespace {

struct SharedModel {
  std::string stem;
  bool has_interleavable;  // matrices in Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS, Q2_K, Q3_K, Q4_K, Q5_K or Q6_K
};

class InterleavedModel : public ::testing::TestWithParam<SharedModel> {};

// Every matrix the kernels interleave is repacked, no other is, and its rows read back as the
// file's; has_interleavable: whether the file holds any matrix of a format with the layout.
void expect_repacked_as_the_kernels_interleave(const std::filesystem::path& path, bool has_interleavable) {
  const auto model = Model::load(path.string());
  int repacked = 0, interleavable = 0;
  std::vector<const ops::WeightMatrix*> matrices = repackable_matrices(model->weights());
  for (const ops::WeightMatrix* w : expert_matrices(model->weights())) matrices.push_back(w);  // a mixture's
  for (const ops::WeightMatrix* w : matrices) {
    interleavable += kernels::has_interleaved_layout(w->type) && w->n_out >= kernels::kInterleavedRows;
    const bool expected = kernels::interleaves(w->type) && w->n_out >= kernels::kInterleavedRows;
    ASSERT_EQ(w->interleaved != nullptr, expected) << ggml_type_name(w->type) << " " << w->n_out << " rows";
    if (!w->interleaved) continue;
    ++repacked;
    std::vector<float> from_tiles(size_t(w->n_in)), from_file(size_t(w->n_in));
    for (int64_t row : {int64_t(0), int64_t(5), w->n_out / 2, w->n_out - 1}) {
      ops::dequantize_matrix_row(*w, row, from_tiles.data());
      kernels::dequantize_row(w->type, w->data + uint64_t(row) * w->row_bytes, from_file.data(), w->n_in);
      ASSERT_EQ(from_tiles, from_file) << "row " << row;
    }
  }
  EXPECT_EQ(interleavable > 0, has_interleavable);
  const kernels::Isa isa = kernels::active_isa();
  if (isa == kernels::Isa::Avx2 || isa == kernels::Isa::AvxVnni || isa == kernels::Isa::Avx512)
    EXPECT_EQ(repacked, interleavable) << kernels::isa_name(isa) << " interleaves them all";
}

TEST_P(InterleavedModel, RepacksExactlyTheMatricesTheKernelsInterleaveAndKeepsEveryRow) {
  const auto path = shared_path("models/" + GetParam().stem + ".gguf");
  SLM_REQUIRE_ASSET(path);
  expect_repacked_as_the_kernels_interleave(path, GetParam().has_interleavable);
}

// IQ4_NL and IQ4_XS, which no shared file holds, made here from the F32 model by slm-quantize's
// code: their IQ4_NL matrices are repacked as Q4_0's are, their IQ4_XS ones as Q4_K's.
class InterleavedIq4Model : public ::testing::TestWithParam<FileType> {};

TEST_P(InterleavedIq4Model, RepacksItsMatricesAndKeepsEveryRow) {
  const auto input = shared_path("models/syn-llama-tiny-F32.gguf");
  SLM_REQUIRE_ASSET(input);
  const QuantizeRecipe& recipe = quantize_recipe(GetParam());
  const std::filesystem::path path = quantize_tiny_llama(GetParam(), "interleaved-model-" + std::string(recipe.name) + ".gguf");
  const auto model = Model::load(path.string());
  int of_its_type = 0;
  for (const ops::WeightMatrix* w : repackable_matrices(model->weights())) of_its_type += w->type == recipe.base_type;
  EXPECT_GT(of_its_type, 0);
  expect_repacked_as_the_kernels_interleave(path, true);
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Iq4, InterleavedIq4Model, ::testing::Values(FileType::IQ4_NL, FileType::IQ4_XS),
                         [](const auto& info) { return std::string(quantize_recipe(info.param).name); });

INSTANTIATE_TEST_SUITE_P(SharedModels, InterleavedModel,
                         ::testing::Values(SharedModel{"syn-llama-tiny-Q4_0", true}, SharedModel{"syn-llama-tiny-Q5_0", true},
                                           SharedModel{"syn-llama-tiny-Q4_1", true}, SharedModel{"syn-llama-tiny-Q5_1", true},
                                           SharedModel{"syn-llama-tiny-Q8_0", true}, SharedModel{"syn-qwen3-tiny-Q8_0", true},
                                           SharedModel{"syn-qwen2-tiny-Q4_K_M", true},
                                           SharedModel{"syn-llama-tiny-Q6_K", true}, SharedModel{"syn-llama-tiny-Q3_K_M", true},
                                           SharedModel{"syn-llama-tiny-Q2_K", true},
                                           SharedModel{"syn-llama-tiny-Q5_K_M", true}, SharedModel{"syn-llama-tiny-F16", false},
                                           SharedModel{"syn-qwen3moe-tiny-Q4_K_M", true}, SharedModel{"syn-qwen3moe-tiny-Q8_0", true}),
                         [](const auto& info) {
                           std::string name = info.param.stem;
                           for (char& c : name)
                             if (c == '-' || c == '.') c = '_';
                           return name;
                         });

// A tied model's token embedding is its output matrix: lookups read the output's tiles, so that
// no page of the file's table is mapped again (interleave_weights), and get the file's rows.
TEST(InterleavedModel, ATiedTokenEmbeddingIsLookedUpInTheOutputMatrixTiles) {
  const auto tied = shared_path("models/syn-qwen2-tiny-Q8_0.gguf");
  const auto untied = shared_path("models/syn-llama-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(tied);
  SLM_REQUIRE_ASSET(untied);
  const auto model = Model::load(tied.string());
  const ops::WeightMatrix& embedding = model->weights().token_embd;
  EXPECT_EQ(embedding.interleaved, model->weights().output.interleaved);
  std::vector<float> looked_up(size_t(embedding.n_in)), from_file(size_t(embedding.n_in));
  for (int64_t row = 0; row < embedding.n_out; ++row) {
    ops::dequantize_matrix_row(embedding, row, looked_up.data());
    kernels::dequantize_row(embedding.type, embedding.data + uint64_t(row) * embedding.row_bytes, from_file.data(),
                            embedding.n_in);
    ASSERT_EQ(looked_up, from_file) << "row " << row;
  }
  EXPECT_EQ(Model::load(untied.string())->weights().token_embd.interleaved, nullptr);  // rows of the mapped file
}

}  // namespace
}  // namespace slm::test
