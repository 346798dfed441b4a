// Qwen3-MoE (lib/model/qwen3moe.cpp) beyond test_arch_golden's comparison with llama.cpp: the
// expert counts come from the metadata, each expert is a view of the mapped 3-D tensor (no
// copy), and inconsistent expert metadata gets an error naming the key or tensor. On
// syn-qwen3moe-tiny-Q4_K_M (4 experts, 2 used, expert width 256; MODELS.md).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "lib/model/weights.hpp"
#include "lib/ops/ops.hpp"
#include "slm/model.hpp"
#include "support/assets.hpp"
#include "support/editable_gguf.hpp"
#include "support/gguf_bytes.hpp"

namespace slm::test {
namespace {

std::filesystem::path qwen3moe_model() { return shared_path("models/syn-qwen3moe-tiny-Q4_K_M.gguf"); }

// Model::load's error after `edit`, or "" when the edited model loads.
std::string load_error_after(const std::function<void(EditableModel&)>& edit) {
  EditableModel m = read_editable(qwen3moe_model());
  edit(m);
  const std::filesystem::path path = scratch_dir() / "qwen3moe-edited.gguf";
  m.write(path);
  try {
    Model::load(path.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Each expert is a view of its slice of the 3-D tensor, repacked into tiles as a dense matrix
// of its shape and type would be (interleave_weights), on the ISAs that interleave.
TEST(Qwen3Moe, ExpertsAreViewsOfTheMappedTensorsRepackedAsDenseMatrices) {
  SLM_REQUIRE_ASSET(qwen3moe_model());
  const auto model = Model::load(qwen3moe_model().string());
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.n_expert, 4);
  EXPECT_EQ(c.n_expert_used, 2);
  EXPECT_EQ(c.n_ff_exp, 256);
  for (int32_t layer = 0; layer < c.n_layer; ++layer) {
    const ops::MoeWeights& moe = model->weights().layers[size_t(layer)].moe;
    ASSERT_EQ(moe.n_expert(), 4);
    EXPECT_EQ(moe.n_expert_used, 2);
    const GgufTensor* down = model->gguf().find_tensor("blk." + std::to_string(layer) + ".ffn_down_exps.weight");
    ASSERT_NE(down, nullptr);
    for (int32_t e = 0; e < 4; ++e) {
      const ops::WeightMatrix& w = moe.down[size_t(e)];
      EXPECT_EQ(w.data, down->data + uint64_t(e) * uint64_t(w.n_out) * w.row_bytes) << "expert " << e;
      EXPECT_EQ(w.interleaved != nullptr, ops::should_interleave(w)) << "expert " << e;
      EXPECT_EQ(w.n_in, 256);
      EXPECT_EQ(w.n_out, c.n_embd);
    }
  }
}

TEST(Qwen3Moe, ExpertWidthFallsBackToTheFeedForwardLengthOverTheExpertsUsed) {
  SLM_REQUIRE_ASSET(qwen3moe_model());
  EXPECT_EQ(load_error_after([](EditableModel& m) {
              m.remove_key("qwen3moe.expert_feed_forward_length");
              m.set_u32("qwen3moe.feed_forward_length", 512);  // 512 / 2 experts used = 256, llama.cpp's rule
            }),
            "");
}

TEST(Qwen3Moe, MoreExpertsUsedThanThereAreIsNamed) {
  SLM_REQUIRE_ASSET(qwen3moe_model());
  const std::string error = load_error_after([](EditableModel& m) { m.set_u32("qwen3moe.expert_used_count", 5); });
  EXPECT_NE(error.find("qwen3moe.expert_used_count is 5, expected a value in [1, 4]"), std::string::npos) << error;
}

TEST(Qwen3Moe, MissingExpertCountIsNamed) {
  SLM_REQUIRE_ASSET(qwen3moe_model());
  const std::string error = load_error_after([](EditableModel& m) { m.remove_key("qwen3moe.expert_count"); });
  EXPECT_NE(error.find("missing key qwen3moe.expert_count"), std::string::npos) << error;
}

TEST(Qwen3Moe, ExpertCountThatDisagreesWithTheTensorsIsNamed) {
  SLM_REQUIRE_ASSET(qwen3moe_model());
  const std::string error = load_error_after([](EditableModel& m) { m.set_u32("qwen3moe.expert_count", 8); });
  EXPECT_NE(error.find("tensor blk.0.ffn_gate_inp.weight has shape [256, 4], expected [256, 8]"), std::string::npos)
      << error;
}

TEST(Qwen3Moe, ExpertWidthThatDisagreesWithTheTensorsIsNamed) {
  SLM_REQUIRE_ASSET(qwen3moe_model());
  const std::string error =
      load_error_after([](EditableModel& m) { m.set_u32("qwen3moe.expert_feed_forward_length", 512); });
  EXPECT_NE(error.find("tensor blk.0.ffn_gate_exps.weight has shape [256, 256, 4], expected [256, 512, 4]"),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace slm::test
