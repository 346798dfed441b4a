// Gemma 2 and Gemma 3 read everything they do from the file's metadata, with llama.cpp's
// defaults where a key is absent: the sliding window and which layers have it (a period or one
// bool per layer), the sliding layers' rope, the soft caps and the scales. Each test loads a
// shared tiny model, with one thing changed where it says so.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "slm/session.hpp"
#include "support/assets.hpp"
#include "support/editable_gguf.hpp"

namespace slm::test {
namespace {

namespace fs = std::filesystem;

class GemmaConfig : public ::testing::Test {
 protected:
  // The shared model `stem` after `edit`, written to a temporary file and loaded.
  std::shared_ptr<const Model> load_edited(const std::string& stem, const std::function<void(EditableModel&)>& edit) {
    EditableModel m = read_editable(shared_path("models/" + stem + ".gguf"));
    edit(m);
    const std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    out_ = fs::temp_directory_path() / ("slm_gemma_" + test_name + ".gguf");
    m.write(out_);
    return Model::load(out_.string());
  }
  std::string load_error(const std::string& stem, const std::function<void(EditableModel&)>& edit) {
    try {
      load_edited(stem, edit);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  void TearDown() override {
    if (!out_.empty()) fs::remove(out_);
  }
  fs::path out_;
};

std::vector<bool> flags(std::initializer_list<int> values) { return std::vector<bool>(values.begin(), values.end()); }

GgufValue bool_array(std::initializer_list<int> values) {
  GgufArray array{.element_type = GgufValueType::BOOL};
  for (int v : values) array.ints.push_back(v);
  return {GgufValueType::ARRAY, array};
}

// Logits of the last of 80 tokens (longer than the 32-position window).
std::vector<float> last_logits(const std::shared_ptr<const Model>& model) {
  std::vector<TokenId> tokens(80);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = TokenId((i * 37 + 11) % size_t(model->config().n_vocab));
  Session session(model, {.n_ctx = 128, .n_threads = 1, .kv_type = KvType::F32});
  const auto logits = session.eval(tokens, 0);
  return {logits.begin(), logits.end()};
}

TEST_F(GemmaConfig, Gemma2ReadsItsSoftCapsWindowAndAlternatingLayers) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-gemma2-tiny-F32.gguf"));
  const ModelConfig c = Model::load(shared_path("models/syn-gemma2-tiny-F32.gguf").string())->config();
  EXPECT_EQ(c.sliding_window, 32);
  EXPECT_EQ(c.sliding_layers, flags({1, 0}));  // no pattern key: every other layer, from layer 0
  EXPECT_FLOAT_EQ(c.attn_softcap, 5.0f);
  EXPECT_FLOAT_EQ(c.final_softcap, 12.0f);
  EXPECT_FLOAT_EQ(c.embedding_scale, 16.0f);  // sqrt(256)
  EXPECT_FLOAT_EQ(c.attention_scale, 1.0f / std::sqrt(128.0f));
  EXPECT_FLOAT_EQ(c.rope_freq_base, 10000.0f);  // no rope.freq_base key
  EXPECT_FLOAT_EQ(c.rope_freq_base_swa, 10000.0f);
  EXPECT_EQ(c.rope_style, RopeStyle::NeoX);
}

TEST_F(GemmaConfig, Gemma3ReadsItsLocalRopeAndFiveSlidingLayersOfSix) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-gemma3-tiny-F32.gguf"));
  const ModelConfig c = Model::load(shared_path("models/syn-gemma3-tiny-F32.gguf").string())->config();
  EXPECT_EQ(c.sliding_window, 32);
  EXPECT_EQ(c.sliding_layers, flags({1, 1, 1, 1, 1, 0}));
  EXPECT_FLOAT_EQ(c.rope_freq_base, 1e6f);
  EXPECT_FLOAT_EQ(c.rope_freq_scale, 1.0f / 8);  // global layers: linear scaling
  EXPECT_FLOAT_EQ(c.rope_freq_base_swa, 1e4f);
  EXPECT_FLOAT_EQ(c.rope_freq_scale_swa, 1.0f);  // local layers: none
  EXPECT_EQ(c.attn_softcap, 0.0f);
  EXPECT_EQ(c.final_softcap, 0.0f);
  EXPECT_FLOAT_EQ(c.attention_scale, 1.0f / 8);  // 1 / sqrt(head_dim 64)
  EXPECT_TRUE(c.has_qk_norm);
}

TEST_F(GemmaConfig, PatternIsAPeriodOrOneBoolPerLayer) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-gemma3-tiny-F32.gguf"));
  const std::string key = "gemma3.attention.sliding_window_pattern";
  const auto with_period = [&](uint32_t period) {
    return load_edited("syn-gemma3-tiny-F32", [&](EditableModel& m) { m.set_u32(key, period); })
        ->config()
        .sliding_layers;
  };
  EXPECT_EQ(with_period(2), flags({1, 0, 1, 0, 1, 0}));
  EXPECT_EQ(with_period(4), flags({1, 1, 1, 0, 1, 1}));
  EXPECT_EQ(with_period(1), flags({0, 0, 0, 0, 0, 0}));  // llama.cpp: period 1, every layer global
  EXPECT_EQ(with_period(0), flags({1, 1, 1, 1, 1, 1}));  // llama.cpp: period 0, none
  const auto model = load_edited("syn-gemma3-tiny-F32", [&](EditableModel& m) {
    m.metadata.push_back({key, bool_array({0, 1, 0, 0, 1, 1}), 0});
  });
  EXPECT_EQ(model->config().sliding_layers, flags({0, 1, 0, 0, 1, 1}));
}

TEST_F(GemmaConfig, PerLayerBoolsLikeTheDefaultPeriodGiveTheSameLogits) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-gemma3-tiny-F32.gguf"));
  const auto original = Model::load(shared_path("models/syn-gemma3-tiny-F32.gguf").string());
  const auto listed = load_edited("syn-gemma3-tiny-F32", [](EditableModel& m) {
    m.metadata.push_back({"gemma3.attention.sliding_window_pattern", bool_array({1, 1, 1, 1, 1, 0}), 0});
  });
  const auto a = last_logits(original), b = last_logits(listed);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST_F(GemmaConfig, Gemma3WithoutAWindowKeyHasOnlyGlobalLayers) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-gemma3-tiny-F32.gguf"));
  const auto original = Model::load(shared_path("models/syn-gemma3-tiny-F32.gguf").string());
  const auto global = load_edited("syn-gemma3-tiny-F32",
                                  [](EditableModel& m) { m.remove_key("gemma3.attention.sliding_window"); });
  EXPECT_EQ(global->config().sliding_window, 0);
  EXPECT_TRUE(global->config().sliding_layers.empty());
  EXPECT_NE(last_logits(original), last_logits(global));  // past 32 positions the window matters
}

TEST_F(GemmaConfig, Gemma2WithoutAWindowKeyTakes4096) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-gemma2-tiny-F32.gguf"));
  const auto model = load_edited("syn-gemma2-tiny-F32",
                                 [](EditableModel& m) { m.remove_key("gemma2.attention.sliding_window"); });
  EXPECT_EQ(model->config().sliding_window, 4096);
  EXPECT_EQ(model->config().sliding_layers, flags({1, 0}));
}

TEST_F(GemmaConfig, APatternOfTheWrongLengthIsAnErrorNamingTheKey) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-gemma3-tiny-F32.gguf"));
  const std::string error = load_error("syn-gemma3-tiny-F32", [](EditableModel& m) {
    m.metadata.push_back({"gemma3.attention.sliding_window_pattern", bool_array({1, 0}), 0});
  });
  EXPECT_NE(error.find("gemma3.attention.sliding_window_pattern is an array of 2 bool, expected one bool per layer (6)"),
            std::string::npos)
      << error;
}

TEST_F(GemmaConfig, ANegativeSoftCapIsAnErrorNamingTheKey) {
  SLM_REQUIRE_ASSET(shared_path("models/syn-gemma2-tiny-F32.gguf"));
  const std::string error = load_error("syn-gemma2-tiny-F32", [](EditableModel& m) {
    *m.value("gemma2.attn_logit_softcapping") = GgufValue{GgufValueType::FLOAT32, -5.0};
  });
  EXPECT_NE(error.find("gemma2.attn_logit_softcapping is -5"), std::string::npos) << error;
}

}  // namespace
}  // namespace slm::test
