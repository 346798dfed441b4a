// Phi-3 (lib/model/phi3.cpp) beyond test_arch_golden's comparison with llama.cpp: the fused
// matrices are row ranges of one tensor, LongRoPE's factors follow the run's context, and bad
// LongRoPE metadata gets a clear error. On syn-phi3-tiny-F32 (original context 64, MODELS.md).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <vector>

#include "slm/session.hpp"
#include "support/assets.hpp"
#include "support/editable_gguf.hpp"
#include "support/gguf_bytes.hpp"

namespace slm::test {
namespace {

constexpr int32_t kOriginalContext = 64;  // rope.scaling.original_context_length of the file
constexpr int32_t kTokens = 40;

std::filesystem::path phi3_model() { return shared_path("models/syn-phi3-tiny-F32.gguf"); }

// The model after `edit`, written to the scratch folder.
std::filesystem::path edited_phi3(const std::function<void(EditableModel&)>& edit) {
  EditableModel m = read_editable(phi3_model());
  edit(m);
  const std::filesystem::path path = scratch_dir() / "phi3-edited.gguf";
  m.write(path);
  return path;
}

// Success when Model::load throws slm::Error whose message contains `expected`.
::testing::AssertionResult model_load_fails_with(const std::filesystem::path& path, std::string_view expected) {
  try {
    Model::load(path.string());
  } catch (const Error& error) {
    const std::string message = error.what();
    if (message.find(expected) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "error \"" << message << "\" does not contain \"" << expected << "\"";
  }
  return ::testing::AssertionFailure() << "the model loaded, expected an error containing \"" << expected << "\"";
}

// Every position's logits of the same kTokens tokens, in a session of n_ctx positions.
std::vector<float> logits_of(const std::filesystem::path& path, int32_t n_ctx) {
  const auto model = Model::load(path.string());
  Session session(model, {.n_ctx = n_ctx, .n_threads = 1, .kv_type = KvType::F32});
  std::vector<TokenId> tokens(kTokens);
  for (int32_t i = 0; i < kTokens; ++i) tokens[size_t(i)] = (i * 37 + 1) % model->config().n_vocab;
  const std::span<const float> logits = session.eval(tokens, 0, /*all_logits=*/true);
  return {logits.begin(), logits.end()};
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Phi3, SeparateQkvProjectionsGiveTheFusedModelsLogits) {
  SLM_REQUIRE_ASSET(phi3_model());
  const std::vector<float> fused = logits_of(phi3_model(), 128);
  const auto separate = edited_phi3([](EditableModel& m) {
    const uint32_t n_embd = 256, q_rows = 256, kv_rows = 128;  // 4 heads, 2 KV heads of 64
    for (int layer = 0; layer < 2; ++layer) {
      const std::string p = "blk." + std::to_string(layer) + ".";
      const EditableTensor qkv = m.tensor(p + "attn_qkv.weight");
      ASSERT_EQ(qkv.shape, (std::vector<uint64_t>{n_embd, q_rows + 2 * kv_rows}));
      const size_t row_bytes = n_embd * sizeof(float);
      size_t first_row = 0;
      for (const auto& [name, rows] : {std::pair{"attn_q", q_rows}, {"attn_k", kv_rows}, {"attn_v", kv_rows}}) {
        const auto begin = qkv.data.begin() + ptrdiff_t(first_row * row_bytes);
        m.tensors.push_back({p + name + ".weight", qkv.type, {n_embd, rows},
                             std::vector<uint8_t>(begin, begin + ptrdiff_t(rows * row_bytes))});
        first_row += rows;
      }
      m.remove_tensor(p + "attn_qkv.weight");
    }
  });
  EXPECT_TRUE(same_bits(logits_of(separate, 128), fused));
}

TEST(Phi3, LongRopeFactorsFollowTheRunsContext) {
  SLM_REQUIRE_ASSET(phi3_model());
  const std::vector<float> short_factors = logits_of(phi3_model(), kOriginalContext);
  const std::vector<float> long_factors = logits_of(phi3_model(), kOriginalContext + 1);
  EXPECT_TRUE(same_bits(logits_of(phi3_model(), 48), short_factors));   // within the original context: short
  EXPECT_TRUE(same_bits(logits_of(phi3_model(), 128), long_factors));   // beyond it: long
  EXPECT_FALSE(same_bits(short_factors, long_factors));
}

TEST(Phi3, AttentionFactorOutOfRangeIsNamed) {
  SLM_REQUIRE_ASSET(phi3_model());
  EXPECT_TRUE(model_load_fails_with(edited_phi3([](EditableModel& m) {
    *m.value("phi3.rope.scaling.attn_factor") = GgufValue{GgufValueType::FLOAT32, -1.0};
  }), "phi3.rope.scaling.attn_factor is -1"));
}

TEST(Phi3, NonPositiveRopeFactorIsNamed) {
  SLM_REQUIRE_ASSET(phi3_model());
  EXPECT_TRUE(model_load_fails_with(edited_phi3([](EditableModel& m) {
    const float zero = 0.0f;
    std::memcpy(m.tensor("rope_factors_long.weight").data.data() + 3 * sizeof(float), &zero, sizeof zero);
  }), "rope_factors_long.weight[3] is 0, expected a positive factor"));
}

TEST(Phi3, FusedGateAndUpOfTheWrongShapeIsNamed) {
  SLM_REQUIRE_ASSET(phi3_model());
  EXPECT_TRUE(model_load_fails_with(edited_phi3([](EditableModel& m) {
    EditableTensor& up = m.tensor("blk.1.ffn_up.weight");
    up.shape[1] /= 2;  // up alone, without the gate rows
    up.data.resize(up.data.size() / 2);
  }), "tensor blk.1.ffn_up.weight has shape [256, 256], expected [256, 512]"));
}

}  // namespace
}  // namespace slm::test
