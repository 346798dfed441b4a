// Qwen3.5 (lib/model/qwen35.cpp) beyond test_arch_golden's comparison with llama.cpp: the layer
// pattern, the DeltaNet sizes and the rope sections come from the metadata (a per-layer list wins
// over the interval, as in llama.cpp); each DeltaNet layer keeps its conv inputs and its heads'
// d x d matrices per sequence; the rope's fourth section does not rotate a text token; a hostile
// file is one clear error; and models of other shapes and layer patterns (written by
// synth_gguf.py when python3 and numpy are at hand) load and give the same logits whatever the
// chunking and thread count.
#include <gtest/gtest.h>

#include <filesystem>
#include <algorithm>
#include <functional>
#include <span>
#include <vector>

#include "lib/ops/ops.hpp"
#include "slm/batch.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"
#include "support/editable_gguf.hpp"
#include "support/gguf_bytes.hpp"
#include "support/hybrid_invariance.hpp"
#include "support/process.hpp"

namespace slm::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModel = "models/syn-qwen35-tiny-Q4_K_M.gguf";

TEST(Qwen35, LayerPatternSizesAndRopeSectionsComeFromTheMetadata) {
  SLM_REQUIRE_ASSET(shared_path(kModel));
  const auto model = Model::load(shared_path(kModel).string());
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.arch, "qwen35");
  // full_attention_interval 4: attention at 3 and 7.
  EXPECT_EQ(c.recurrent_layers, (std::vector<bool>{true, true, true, false, true, true, true, false}));
  EXPECT_EQ(c.n_kv_layers(), 2);
  EXPECT_EQ(c.short_conv_length, 4);
  EXPECT_EQ(c.ssm_head_dim, 32);
  EXPECT_EQ(c.ssm_n_k_heads, 4);
  EXPECT_EQ(c.ssm_n_v_heads, 8);
  EXPECT_EQ(c.n_rot, 16);
  EXPECT_EQ(c.rope_sections, (std::array<int32_t, 4>{3, 3, 2, 0}));
  BatchDecoder decoder(model, {.n_ctx = 64});
  // 6 DeltaNet layers x (3 conv inputs of q, k, v: 3 x (2 x 4 + 8) x 32, and 8 heads of 32 x 32).
  EXPECT_EQ(decoder.state_bytes_per_sequence(), 6u * (3 * 16 * 32 + 8 * 32 * 32) * sizeof(float));
}

TEST(Qwen35, RopeSectionsLeaveTheFourthSectionOfATextTokenUnrotated) {
  ModelConfig c;
  c.n_rot = 16;
  c.rope_freq_base = 1e4f;
  std::vector<float> plain(16), sectioned(16);
  ops::rope_angles(5, c, nullptr, plain.data());
  // 8 pairs, 4 sectors ([2, 1, 0, 1]): sector s = pair % 4 is t for s in {0, 3} (s % 3 == 0 and
  // s < 6), h for s = 1 (< 3), and e for s = 2 (w has no pairs): pairs 2 and 6 stay put.
  c.rope_sections = {2, 1, 0, 1};
  ops::rope_angles(5, c, nullptr, sectioned.data());
  for (int pair = 0; pair < 8; ++pair) {
    const bool extra = pair % 4 == 2;
    EXPECT_EQ(sectioned[size_t(2 * pair)], extra ? 1.0f : plain[size_t(2 * pair)]) << "pair " << pair;
    EXPECT_EQ(sectioned[size_t(2 * pair + 1)], extra ? 0.0f : plain[size_t(2 * pair + 1)]) << "pair " << pair;
  }
  // Sections that cover every pair (the files' default) are plain rope.
  c.rope_sections = {3, 3, 2, 0};
  ops::rope_angles(5, c, nullptr, sectioned.data());
  EXPECT_EQ(sectioned, plain);
}

class Qwen35Validation : public ::testing::Test {
 protected:
  void SetUp() override {
    SLM_REQUIRE_ASSET(shared_path(kModel));
    out_ = fs::temp_directory_path() /
           ("slm_qwen35_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".gguf");
  }
  void TearDown() override { fs::remove(out_); }

  std::string load_error_after(const std::function<void(EditableModel&)>& edit) {
    return load_error_after_edit(shared_path(kModel), edit, out_);
  }

  static void set_array(EditableModel& m, const std::string& key, GgufValueType type, std::vector<int64_t> values) {
    GgufArray array{type, std::move(values), {}, {}};
    if (GgufValue* existing = m.value(key)) *existing = GgufValue{GgufValueType::ARRAY, array};
    else m.metadata.push_back({key, GgufValue{GgufValueType::ARRAY, array}, 0});
  }

  fs::path out_;
};

TEST_F(Qwen35Validation, APerLayerListWinsOverTheInterval) {
  EXPECT_EQ(load_error_after([](EditableModel& m) {
              set_array(m, "qwen35.attention.recurrent_layers", GgufValueType::BOOL, {1, 1, 1, 0, 1, 1, 1, 0});
              m.set_u32("qwen35.full_attention_interval", 2);  // the converter writes both; llama.cpp reads the list
            }),
            "");
  // Layer 0 said to be attention, attention layer 3 said to be DeltaNet: the tensors disagree.
  expect_contains(load_error_after([](EditableModel& m) {
                    set_array(m, "qwen35.attention.recurrent_layers", GgufValueType::BOOL, {0, 1, 1, 0, 1, 1, 1, 0});
                  }),
                  "missing tensor blk.0.attn_q.weight");
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("qwen35.full_attention_interval", 2); }),
                  "missing tensor blk.1.attn_q.weight");
  expect_contains(load_error_after([](EditableModel& m) {
                    set_array(m, "qwen35.attention.recurrent_layers", GgufValueType::BOOL, {1, 1, 1, 0});
                  }),
                  "has 4 values, expected one bool per layer (8)");
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("qwen35.full_attention_interval", 0); }),
                  "qwen35.full_attention_interval is 0");
}

TEST_F(Qwen35Validation, InconsistentDeltaNetSizesAreRejected) {
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("qwen35.ssm.time_step_rank", 6); }),
                  "ssm.time_step_rank (6) is not a multiple of ssm.group_count (4)");
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("qwen35.ssm.inner_size", 512); }),
                  "ssm.inner_size is 512, expected time_step_rank x state_size (256)");
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("qwen35.ssm.conv_kernel", 1); }),
                  "qwen35.ssm.conv_kernel is 1, expected a value in [2, 64]");
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("qwen35.ssm.conv_kernel", 5); }),
                  "tensor blk.0.ssm_conv1d.weight has shape [4, 512], expected [5, 512]");
  expect_contains(load_error_after([](EditableModel& m) { m.remove_key("qwen35.ssm.state_size"); }),
                  "missing key qwen35.ssm.state_size");
  expect_contains(load_error_after([](EditableModel& m) { m.remove_tensor("blk.4.ssm_a"); }),
                  "missing tensor blk.4.ssm_a");
  expect_contains(load_error_after([](EditableModel& m) {
                    EditableTensor& t = m.tensor("blk.2.ssm_conv1d.weight");
                    t.type = GgmlType::F16;
                    t.data.resize(t.data.size() / 2);
                  }),
                  "tensor blk.2.ssm_conv1d.weight has type F16, expected F32");
}

// A file with multi-token-prediction blocks (nextn_predict_layers: the last blocks of block_count,
// where llama.cpp's converter writes them) loads, and the blocks are never run: the logits are
// those of the same file without them.
TEST_F(Qwen35Validation, MultiTokenPredictionBlocksLoadAndAreNotRun) {
  ASSERT_EQ(load_error_after([](EditableModel& m) {
              m.set_u32("qwen35.block_count", 9);
              m.set_u32("qwen35.nextn_predict_layers", 1);
              // a list may cover the MTP block too
              set_array(m, "qwen35.attention.recurrent_layers", GgufValueType::BOOL, {1, 1, 1, 0, 1, 1, 1, 0, 0});
              // An MTP block is an attention block (here layer 7's tensors) plus projections of its own.
              std::vector<EditableTensor> mtp_block;
              for (const EditableTensor& t : m.tensors)
                if (t.name.starts_with("blk.7.")) mtp_block.push_back({"blk.8." + t.name.substr(6), t.type, t.shape, t.data});
              EditableTensor enorm = m.tensor("blk.7.attn_norm.weight");
              enorm.name = "blk.8.nextn.enorm.weight";
              mtp_block.push_back(enorm);
              m.tensors.insert(m.tensors.end(), mtp_block.begin(), mtp_block.end());
            }),
            "");
  const auto plain = Model::load(shared_path(kModel).string());
  const auto with_mtp = Model::load(out_.string());
  EXPECT_EQ(with_mtp->config().n_layer, 8);
  EXPECT_EQ(with_mtp->config().n_layer_mtp, 1);
  EXPECT_EQ(with_mtp->config().recurrent_layers, plain->config().recurrent_layers);
  const std::vector<TokenId> prompt = {1, 17, 42, 5, 99, 3};
  Session a(plain, {.n_ctx = 32, .n_threads = 1}), b(with_mtp, {.n_ctx = 32, .n_threads = 1});
  const std::span<const float> logits_plain = a.eval(prompt, 0), logits_mtp = b.eval(prompt, 0);
  ASSERT_EQ(logits_plain.size(), logits_mtp.size());
  EXPECT_TRUE(std::equal(logits_plain.begin(), logits_plain.end(), logits_mtp.begin()));
  // At least one block is the model's own.
  expect_contains(load_error_after([](EditableModel& m) { m.set_u32("qwen35.nextn_predict_layers", 8); }),
                  "key qwen35.nextn_predict_layers is 8, expected a value in [0, 7]");
}

TEST_F(Qwen35Validation, BadRopeSectionsAreRejected) {
  expect_contains(load_error_after([](EditableModel& m) { m.remove_key("qwen35.rope.dimension_sections"); }),
                  "qwen35.rope.dimension_sections");
  expect_contains(load_error_after([](EditableModel& m) {
                    set_array(m, "qwen35.rope.dimension_sections", GgufValueType::INT32, {3, 3, 2});
                  }),
                  "has 3 values, expected 4 integers");
  expect_contains(load_error_after([](EditableModel& m) {
                    set_array(m, "qwen35.rope.dimension_sections", GgufValueType::INT32, {0, 0, 0, 5});
                  }),
                  "expected the first three not all 0");
  expect_contains(load_error_after([](EditableModel& m) {
                    set_array(m, "qwen35.rope.dimension_sections", GgufValueType::INT32, {3, -1, 2, 0});
                  }),
                  "qwen35.rope.dimension_sections[1] is -1");
}

TEST(Qwen35, LogitsAreBitIdenticalAcrossChunkingThreadsAndCheckpoints) {
  SLM_REQUIRE_ASSET(shared_path(kModel));
  expect_hybrid_logits_invariant(Model::load(shared_path(kModel).string()), 90);
}

// Held-out shapes: synth_gguf.py writes a model of another shape and layer pattern (skipped
// without python3 and numpy), which must load with that pattern and run as above.
struct HeldOutShape {
  const char* name;
  std::vector<std::string> args;
  std::vector<bool> recurrent;
};

TEST(Qwen35, ModelsOfOtherShapesAndLayerPatternsLoadAndRunDeterministically) {
  const fs::path synth = shared_path("tools/synth_gguf.py"), vocab = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(synth);
  SLM_REQUIRE_ASSET(vocab);
  const std::vector<HeldOutShape> shapes = {
      // A per-layer list: attention at 1 and 4 of 5; DeltaNet heads of 16, 2 q/k and 6 v heads, conv 3;
      // half the head rotated, in sections that leave the fourth unrotated.
      {"list", {"--n-layer", "5", "--attn-layers", "1,4", "--ssm-state", "16", "--ssm-groups", "2", "--ssm-heads", "6",
                "--ssm-conv", "3", "--head-dim", "32", "--rope-frac", "0.5", "--rope-sections", "2,1,1,0"},
       {true, false, true, true, false}},
      // Every second layer attends; one q/k head for four v heads, conv 2.
      {"interval", {"--n-layer", "4", "--attn-interval", "2", "--ssm-state", "32", "--ssm-groups", "1", "--ssm-heads",
                    "4", "--ssm-conv", "2", "--head-dim", "64"},
       {true, false, true, false}}};
  for (const HeldOutShape& shape : shapes) {
    SCOPED_TRACE(shape.name);
    const fs::path out = scratch_dir() / (std::string("qwen35-held-out-") + shape.name + ".gguf");
    std::vector<std::string> argv = {"/usr/bin/python3", synth.string(), "--arch", "qwen35", "--vocab", vocab.string(),
                                     "--n-embd", "128", "--n-ff", "192", "--n-head", "4", "--n-head-kv", "2",
                                     "--ctx", "4096", "--untied", "--type", "f32", "--seed", "7", "-o", out.string()};
    argv.insert(argv.end(), shape.args.begin(), shape.args.end());
    ProcessResult result;
    try {
      result = run_process(argv);
    } catch (const std::exception& e) {
      GTEST_SKIP() << "cannot run python3: " << e.what();
    }
    if (result.exit_code != 0) GTEST_SKIP() << "synth_gguf.py failed (python3 with numpy needed): " << result.stderr_text;
    const auto model = Model::load(out.string());
    EXPECT_EQ(model->config().recurrent_layers, shape.recurrent);
    expect_hybrid_logits_invariant(model, 40);
    fs::remove(out);
  }
}

}  // namespace
}  // namespace slm::test
