// Model-level validation: a file that parses as GGUF but lies about the model gets its
// own clear error from Model::load. Each test takes a real model (stories260K), changes
// one thing, writes it with GgufWriter and expects the matching message.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "slm/gguf_writer.hpp"
#include "slm/model.hpp"
#include "support/assets.hpp"

namespace slm::test {
namespace {

struct EditableTensor {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> data;
};

struct EditableModel {
  std::vector<GgufKeyValue> metadata;
  std::vector<EditableTensor> tensors;

  GgufValue* value(const std::string& key) {
    for (auto& kv : metadata)
      if (kv.key == key) return &kv.value;
    return nullptr;
  }
  void set_u32(const std::string& key, uint32_t v) {
    if (GgufValue* existing = value(key)) *existing = GgufValue{GgufValueType::UINT32, int64_t(v)};
    else metadata.push_back({key, GgufValue{GgufValueType::UINT32, int64_t(v)}, 0});
  }
  void remove_key(const std::string& key) {
    std::erase_if(metadata, [&](const GgufKeyValue& kv) { return kv.key == key; });
  }
  EditableTensor& tensor(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }
  void remove_tensor(const std::string& name) {
    std::erase_if(tensors, [&](const EditableTensor& t) { return t.name == name; });
  }
};

EditableModel read_editable(const std::filesystem::path& path) {
  const GgufFile file = GgufFile::open(path.string());
  EditableModel m;
  m.metadata = file.metadata();
  for (const GgufTensor& t : file.tensors())
    m.tensors.push_back({t.name, t.type, std::vector<uint64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                         std::vector<uint8_t>(t.data, t.data + t.n_bytes)});
  return m;
}

class ModelValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = shared_path("models/stories260K.gguf");
    SLM_REQUIRE_ASSET(source_);
    out_ = std::filesystem::temp_directory_path() /
           ("slm_validation_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".gguf");
  }
  void TearDown() override { std::filesystem::remove(out_); }

  // Applies `edit` to stories260K and returns Model::load's error message ("" if it loads).
  std::string load_error_after(const std::function<void(EditableModel&)>& edit) {
    EditableModel m = read_editable(source_);
    edit(m);
    GgufWriter writer;
    for (auto& kv : m.metadata) writer.add(kv.key, kv.value);
    for (auto& t : m.tensors) writer.add_tensor(t.name, t.type, t.shape, t.data);
    writer.write_file(out_.string());
    try {
      Model::load(out_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  std::filesystem::path source_, out_;
};

TEST_F(ModelValidation, UnchangedCopyLoads) {
  EXPECT_EQ(load_error_after([](EditableModel&) {}), "");
}

TEST_F(ModelValidation, UnknownArchitectureIsNamed) {
  const auto error = load_error_after([](EditableModel& m) {
    *m.value("general.architecture") = GgufValue{GgufValueType::STRING, std::string("mamba")};
  });
  EXPECT_NE(error.find("unknown architecture 'mamba'"), std::string::npos) << error;
  EXPECT_NE(error.find("llama, qwen2, qwen3"), std::string::npos) << error;
}

TEST_F(ModelValidation, MissingHyperparameterIsNamed) {
  const auto error = load_error_after([](EditableModel& m) { m.remove_key("llama.block_count"); });
  EXPECT_NE(error.find("missing key llama.block_count"), std::string::npos) << error;
}

TEST_F(ModelValidation, HyperparameterOfTheWrongTypeIsNamed) {
  const auto error = load_error_after([](EditableModel& m) {
    *m.value("llama.block_count") = GgufValue{GgufValueType::STRING, std::string("five")};
  });
  EXPECT_NE(error.find("key llama.block_count is a string, expected uint32"), std::string::npos) << error;
}

TEST_F(ModelValidation, ZeroHeadsIsRejected) {
  const auto error = load_error_after([](EditableModel& m) { m.set_u32("llama.attention.head_count", 0); });
  EXPECT_NE(error.find("llama.attention.head_count is 0"), std::string::npos) << error;
}

TEST_F(ModelValidation, MoreKvHeadsThanHeadsIsRejected) {
  const auto error = load_error_after([](EditableModel& m) { m.set_u32("llama.attention.head_count_kv", 16); });
  EXPECT_NE(error.find("head_count_kv is 16"), std::string::npos) << error;
}

TEST_F(ModelValidation, KvHeadsThatDoNotDivideHeadsAreRejected) {
  const auto error = load_error_after([](EditableModel& m) { m.set_u32("llama.attention.head_count_kv", 3); });
  EXPECT_NE(error.find("not a multiple of head_count_kv (3)"), std::string::npos) << error;
}

TEST_F(ModelValidation, HeadsThatDoNotDivideTheEmbeddingAreRejected) {
  const auto error = load_error_after([](EditableModel& m) {
    m.set_u32("llama.attention.head_count", 7);
    m.set_u32("llama.attention.head_count_kv", 7);
  });
  EXPECT_NE(error.find("embedding_length (64) is not a multiple of attention.head_count (7)"), std::string::npos)
      << error;
}

TEST_F(ModelValidation, LayerCountSmallerThanTheTensorsIsRejected) {
  const auto error = load_error_after([](EditableModel& m) { m.set_u32("llama.block_count", 4); });
  EXPECT_NE(error.find("belongs to layer 4, but block_count is 4"), std::string::npos) << error;
}

TEST_F(ModelValidation, LayerCountLargerThanTheTensorsIsRejected) {
  const auto error = load_error_after([](EditableModel& m) { m.set_u32("llama.block_count", 6); });
  EXPECT_NE(error.find("missing tensor blk.5.attn_norm.weight"), std::string::npos) << error;
}

TEST_F(ModelValidation, HugeLyingHyperparameterIsRejectedBeforeAnyAllocation) {
  const auto error = load_error_after([](EditableModel& m) { m.set_u32("llama.embedding_length", 0xFFFFFFFFu); });
  EXPECT_NE(error.find("llama.embedding_length is 4294967295, expected a value in"), std::string::npos) << error;
}

TEST_F(ModelValidation, MissingTensorIsNamed) {
  const auto error = load_error_after([](EditableModel& m) { m.remove_tensor("blk.2.ffn_up.weight"); });
  EXPECT_NE(error.find("missing tensor blk.2.ffn_up.weight"), std::string::npos) << error;
}

TEST_F(ModelValidation, TensorOfTheWrongShapeIsNamed) {
  const auto error = load_error_after([](EditableModel& m) {
    EditableTensor& t = m.tensor("blk.0.attn_q.weight");  // [64, 64] F32
    t.shape = {32, 128};
  });
  EXPECT_NE(error.find("tensor blk.0.attn_q.weight has shape [32, 128], expected [64, 64]"), std::string::npos)
      << error;
}

TEST_F(ModelValidation, TiedOutputIsUsedWhenOutputWeightIsAbsent) {
  EXPECT_EQ(load_error_after([](EditableModel& m) { m.remove_tensor("output.weight"); }), "");
  EXPECT_TRUE(Model::load(out_.string())->config().tied_output);
}

TEST_F(ModelValidation, SpecialTokenOutsideTheVocabularyIsRejected) {
  const auto error = load_error_after([](EditableModel& m) { m.set_u32("tokenizer.ggml.eos_token_id", 512); });
  EXPECT_NE(error.find("eos"), std::string::npos) << error;
  EXPECT_NE(error.find("512"), std::string::npos) << error;
}

TEST_F(ModelValidation, VocabSizeThatDisagreesWithTheTokenizerIsRejected) {
  const auto error = load_error_after([](EditableModel& m) { m.set_u32("llama.vocab_size", 1000); });
  EXPECT_NE(error.find("llama.vocab_size is 1000, but the tokenizer has 512 tokens"), std::string::npos) << error;
}

TEST_F(ModelValidation, InsaneEpsilonIsRejected) {
  const auto error = load_error_after([](EditableModel& m) {
    *m.value("llama.attention.layer_norm_rms_epsilon") = GgufValue{GgufValueType::FLOAT32, 5.0};
  });
  EXPECT_NE(error.find("layer_norm_rms_epsilon is 5"), std::string::npos) << error;
}

TEST_F(ModelValidation, UnsupportedRopeScalingIsNamed) {
  const auto error = load_error_after([](EditableModel& m) {
    m.metadata.push_back({"llama.rope.scaling.type", GgufValue{GgufValueType::STRING, std::string("yarn")}, 0});
  });
  EXPECT_NE(error.find("rope.scaling.type 'yarn' is not supported"), std::string::npos) << error;
}

TEST_F(ModelValidation, ErrorsNameTheFile) {
  const auto error = load_error_after([](EditableModel& m) { m.remove_tensor("output_norm.weight"); });
  EXPECT_NE(error.find(out_.string()), std::string::npos) << error;
}

}  // namespace
}  // namespace slm::test
