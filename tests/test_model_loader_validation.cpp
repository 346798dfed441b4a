// Model-level validation: a file that parses as GGUF but lies about the model gets its
// own clear error from Model::load. Each test takes a real model (stories260K), changes
// one thing, writes it with GgufWriter and expects the matching message.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "slm/gguf.hpp"
#include "slm/model.hpp"
#include "slm/tokenizer.hpp"
#include "support/assets.hpp"
#include "support/editable_gguf.hpp"

namespace slm::test {
namespace {

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
    m.write(out_);
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


// Model::load builds the tokenizer on its own thread while the weights are bound: its error
// still comes first when the weights are broken too.
TEST_F(ModelValidation, ATokenizerErrorIsReportedBeforeAWeightError) {
  const auto error = load_error_after([](EditableModel& m) {
    m.set_u32("tokenizer.ggml.eos_token_id", 512);
    m.remove_tensor("blk.2.ffn_up.weight");
  });
  EXPECT_NE(error.find("eos"), std::string::npos) << error;
  EXPECT_EQ(error.find("missing tensor"), std::string::npos) << error;
}

TEST_F(ModelValidation, AWeightErrorWithASoundTokenizerIsStillNamed) {
  const auto error = load_error_after([](EditableModel& m) {
    m.remove_tensor("blk.2.ffn_up.weight");
    m.remove_key("tokenizer.ggml.scores");  // the tokenizer is sound without them
  });
  EXPECT_NE(error.find("missing tensor blk.2.ffn_up.weight"), std::string::npos) << error;
}

// The tokenizer Model::load builds beside the weights is the one built alone, token for token
// (the full Qwen2 BPE vocabulary with its merges, and a Llama 2 SentencePiece one).
TEST(ModelTokenizer, TheTokenizerBuiltBesideTheWeightsIsTheOneBuiltAlone) {
  for (const char* name : {"models/syn-qwen2-vocab-Q4_K_M.gguf", "models/syn-llama2-vocab-Q4_K_M.gguf"}) {
    SCOPED_TRACE(name);
    const std::filesystem::path path = shared_path(name);
    SLM_REQUIRE_ASSET(path);
    const std::shared_ptr<const Model> model = Model::load(path.string());
    const Tokenizer& beside = model->tokenizer();
    const Tokenizer alone = Tokenizer::from_gguf(GgufFile::open(path.string()));
    ASSERT_EQ(beside.n_vocab(), alone.n_vocab());
    EXPECT_GT(alone.n_vocab(), 30000);
    for (TokenId id = 0; id < alone.n_vocab(); ++id) {
      ASSERT_EQ(beside.token_text(id), alone.token_text(id)) << id;
      ASSERT_EQ(beside.token_to_piece(id), alone.token_to_piece(id)) << id;
      ASSERT_EQ(beside.token_type(id), alone.token_type(id)) << id;
      ASSERT_EQ(beside.token_score(id), alone.token_score(id)) << id;
      ASSERT_EQ(beside.find_token(alone.token_text(id)), alone.find_token(alone.token_text(id))) << id;
    }
    EXPECT_EQ(beside.end_of_generation_ids(), alone.end_of_generation_ids());
    EXPECT_EQ(std::vector<TokenId>({beside.bos(), beside.eos(), beside.eot(), beside.pad(), beside.unknown()}),
              std::vector<TokenId>({alone.bos(), alone.eos(), alone.eot(), alone.pad(), alone.unknown()}));
    const std::string text = "<|im_start|>user\nThe quick brown fox, 12345 \xF0\x9F\xA6\x99 jumps  over\tthe lazy dog's "
                             "back... \xC3\xA9t\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD<|im_end|>";
    for (const bool special : {false, true}) {
      const std::vector<TokenId> ids = alone.tokenize(text, special, special);
      EXPECT_EQ(beside.tokenize(text, special, special), ids);
      EXPECT_GT(ids.size(), 20u);
    }
  }
}

}  // namespace
}  // namespace slm::test
