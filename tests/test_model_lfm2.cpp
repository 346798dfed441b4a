// LFM2 (lib/model/lfm2.cpp): the layer kinds come from the per-layer KV head counts, each conv
// layer keeps (L_cache - 1) x n_embd floats of state per sequence, and a hostile file (layer kinds
// that disagree with the tensors, a wrong conv shape, inconsistent KV head counts) is one clear
// error. Its logits do not depend on prompt chunking, the thread count or where the decoder's
// state checkpoints cut the forward passes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "slm/batch.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"
#include "support/editable_gguf.hpp"
#include "support/hybrid_invariance.hpp"

namespace slm::test {
namespace {

constexpr const char* kModel = "models/syn-lfm2-tiny-Q4_K_M.gguf";

TEST(Lfm2, LayerKindsAndStateSizeComeFromTheMetadata) {
  SLM_REQUIRE_ASSET(shared_path(kModel));
  const auto model = Model::load(shared_path(kModel).string());
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.arch, "lfm2");
  // attention.head_count_kv [0, 0, 2, 0, 0, 2]: attention at 2 and 5.
  EXPECT_EQ(c.recurrent_layers, (std::vector<bool>{true, true, false, true, true, false}));
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.n_kv_layers(), 2);
  EXPECT_EQ(c.short_conv_length, 3);
  BatchDecoder decoder(model, {.n_ctx = 64});
  EXPECT_EQ(decoder.state_bytes_per_sequence(), 4u * 2 * 256 * sizeof(float));  // 4 conv layers x (3 - 1) x 256
  decoder.add_sequence();
  EXPECT_EQ(decoder.state_bytes(), decoder.state_bytes_per_sequence());
}

class Lfm2Validation : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = std::filesystem::temp_directory_path() /
           ("slm_lfm2_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".gguf");
  }
  void TearDown() override { std::filesystem::remove(out_); }

  std::string load_error_after(const std::function<void(EditableModel&)>& edit) {
    return load_error_after_edit(shared_path(kModel), edit, out_);
  }

  static void set_kv_heads(EditableModel& m, std::vector<int64_t> per_layer) {
    GgufArray array{GgufValueType::INT32, std::move(per_layer), {}, {}};
    *m.value("lfm2.attention.head_count_kv") = GgufValue{GgufValueType::ARRAY, array};
  }

  std::filesystem::path out_;
};

TEST_F(Lfm2Validation, UnchangedCopyLoads) {
  SLM_REQUIRE_ASSET(shared_path(kModel));
  EXPECT_EQ(load_error_after([](EditableModel&) {}), "");
}

TEST_F(Lfm2Validation, ALayerKindThatDisagreesWithItsTensorsIsNamed) {
  SLM_REQUIRE_ASSET(shared_path(kModel));
  // Conv layer 0 said to be attention, attention layer 2 said to be a conv layer.
  expect_contains(load_error_after([](EditableModel& m) { set_kv_heads(m, {2, 0, 2, 0, 0, 2}); }), "missing tensor blk.0.attn_q.weight");
  expect_contains(load_error_after([](EditableModel& m) { set_kv_heads(m, {0, 0, 0, 0, 0, 2}); }), "missing tensor blk.2.shortconv.in_proj.weight");
}

TEST_F(Lfm2Validation, InconsistentKvHeadCountsAreRejected) {
  SLM_REQUIRE_ASSET(shared_path(kModel));
  expect_contains(load_error_after([](EditableModel& m) { set_kv_heads(m, {0, 0, 2, 0, 0, 1}); }), "head_count_kv[5] is 1, but an earlier attention layer has 2");
  expect_contains(load_error_after([](EditableModel& m) { set_kv_heads(m, {0, 0, 2, 0, 0}); }), "has 5 values, expected one integer per layer (6)");
  expect_contains(load_error_after([](EditableModel& m) { set_kv_heads(m, {0, 0, 2, 0, -1, 2}); }), "head_count_kv[4] is -1");
  expect_contains(load_error_after([](EditableModel& m) { set_kv_heads(m, {0, 0, 8, 0, 0, 8}); }), "head_count_kv[2] is 8, expected a value in [0, 4]");
}

TEST_F(Lfm2Validation, WrongConvShapesAreRejected) {
  SLM_REQUIRE_ASSET(shared_path(kModel));
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("lfm2.shortconv.l_cache", 4); }), "tensor blk.0.shortconv.conv.weight has shape [3, 256], expected [4, 256]");
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("lfm2.shortconv.l_cache", 1); }), "key lfm2.shortconv.l_cache is 1, expected a value in [2, 64]");
  expect_contains(load_error_after([](EditableModel& m) { m.remove_key("lfm2.shortconv.l_cache"); }), "missing key lfm2.shortconv.l_cache");
  expect_contains(load_error_after([](EditableModel& m) {
                EditableTensor& t = m.tensor("blk.1.shortconv.in_proj.weight");
                t.shape = {256, 512};
                t.data.resize(t.data.size() / 3 * 2);
              }), "tensor blk.1.shortconv.in_proj.weight has shape");
}

TEST_F(Lfm2Validation, AZeroKvHeadCountInAModelWithoutRecurrentLayersIsRejected) {
  const auto llama = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(llama);
  EditableModel m = read_editable(llama);
  GgufArray array{GgufValueType::INT32, {0, 4, 4, 4, 4}, {}, {}};
  *m.value("llama.attention.head_count_kv") = GgufValue{GgufValueType::ARRAY, array};
  m.write(out_);
  try {
    Model::load(out_.string());
    FAIL() << "loaded";
  } catch (const Error& e) {
    expect_contains(e.what(), "attention.head_count_kv[0] is 0, but llama has no recurrent layers");
  }
}

TEST(Lfm2, LogitsAreBitIdenticalAcrossChunkingThreadsAndCheckpoints) {
  SLM_REQUIRE_ASSET(shared_path(kModel));
  expect_hybrid_logits_invariant(Model::load(shared_path(kModel).string()), 150);
}

}  // namespace
}  // namespace slm::test
