// slm's promise: logits are bit-identical whether a prompt is evaluated in one batch,
// in uneven batches or one token at a time, and whatever the thread count.
#include <gtest/gtest.h>

#include <cstring>

#include "slm/error.hpp"
#include "slm/quantize.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"
#include "support/gguf_bytes.hpp"  // quantize_tiny_llama

namespace slm::test {
namespace {

std::vector<float> logits_of(const std::shared_ptr<const Model>& model, const std::vector<TokenId>& tokens,
                             int threads, int32_t n_batch, bool one_at_a_time, KvType kv_type) {
  SessionOptions options;
  options.n_threads = threads;
  options.n_batch = n_batch;
  options.n_ctx = 256;
  options.kv_type = kv_type;
  Session session(model, options);
  const size_t n_vocab = size_t(model->config().n_vocab);
  if (!one_at_a_time) {
    const auto all = session.eval(tokens, 0, true);
    return {all.begin(), all.end()};
  }
  std::vector<float> out;
  for (TokenId t : tokens) {
    const auto row = session.eval(std::span<const TokenId>(&t, 1));
    EXPECT_EQ(row.size(), n_vocab);
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

std::vector<TokenId> prompt_tokens(const Model& model) {
  return model.tokenizer().tokenize("Lily and Tom went to the park. They saw a big dog and a small cat, and they", true, true);
}

class Determinism : public ::testing::TestWithParam<std::tuple<std::string, KvType, ActivationPrecision>> {};

void expect_bit_identical_logits(const std::filesystem::path& path, KvType kv_type, ActivationPrecision activations) {
  LoadOptions load_options;
  load_options.activations = activations;
  auto model = Model::load(path.string(), load_options);
  const auto tokens = prompt_tokens(*model);
  ASSERT_GT(tokens.size(), 10u);

  const auto reference = logits_of(model, tokens, 1, 512, false, kv_type);
  const auto check = [&](const std::vector<float>& other, const char* what) {
    ASSERT_EQ(other.size(), reference.size()) << what;
    EXPECT_EQ(std::memcmp(other.data(), reference.data(), reference.size() * sizeof(float)), 0) << what;
  };
  check(logits_of(model, tokens, 2, 512, false, kv_type), "one batch, 2 threads");
  check(logits_of(model, tokens, 2, 5, false, kv_type), "batches of 5, 2 threads");
  check(logits_of(model, tokens, 1, 512, true, kv_type), "one token at a time, 1 thread");
  check(logits_of(model, tokens, 2, 512, true, kv_type), "one token at a time, 2 threads");
}

TEST_P(Determinism, LogitsAreBitIdenticalAcrossBatchingAndThreads) {
  const auto [stem, kv_type, activations] = GetParam();
  const auto path = shared_path("models/" + stem + ".gguf");
  SLM_REQUIRE_ASSET(path);
  expect_bit_identical_logits(path, kv_type, activations);
}

// IQ4_NL and IQ4_XS, which no shared file holds: made here from the F32 model by slm-quantize's
// code. Int8 activations run their IQ4_NL and IQ4_XS matrices with the Int8 kernels (x86).
class DeterminismOfIq4 : public ::testing::TestWithParam<std::tuple<FileType, ActivationPrecision>> {};

TEST_P(DeterminismOfIq4, LogitsAreBitIdenticalAcrossBatchingAndThreads) {
  const auto [file_type, activations] = GetParam();
  const auto input = shared_path("models/syn-llama-tiny-F32.gguf");
  SLM_REQUIRE_ASSET(input);
  const std::filesystem::path path =
      quantize_tiny_llama(file_type, "determinism-" + std::string(quantize_recipe(file_type).name) + ".gguf");
  expect_bit_identical_logits(path, KvType::F16, activations);
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Iq4, DeterminismOfIq4,
                         ::testing::Combine(::testing::Values(FileType::IQ4_NL, FileType::IQ4_XS),
                                            ::testing::Values(ActivationPrecision::Int16, ActivationPrecision::Int8)),
                         [](const auto& info) {
                           return std::string(quantize_recipe(std::get<0>(info.param)).name) + "_" +
                                  std::string(activation_precision_name(std::get<1>(info.param)));
                         });

std::string test_name(const ::testing::TestParamInfo<std::tuple<std::string, KvType, ActivationPrecision>>& info) {
  std::string name = std::get<0>(info.param) + "_kv" + kv_type_name(std::get<1>(info.param));
  if (std::get<2>(info.param) != ActivationPrecision::Int16)
    name += "_" + std::string(activation_precision_name(std::get<2>(info.param)));
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(
    Models, Determinism,
    ::testing::Combine(::testing::Values("stories260K", "syn-llama-tiny-Q4_K_M", "syn-llama-tiny-Q4_1", "syn-llama-tiny-Q5_1",
                                         "syn-llama-tiny-Q5_K_M", "syn-qwen2-tiny-Q8_0",
                                         "syn-qwen3-tiny-Q4_K_M", "syn-llama3-tiny-Q8_0", "syn-llama-tiny-BF16",
                                         "syn-gemma2-tiny-Q4_K_M", "syn-gemma3-tiny-Q8_0", "syn-lfm2-tiny-Q8_0",
                                         "syn-qwen35-tiny-Q8_0", "syn-llama-tiny-Q3_K_M", "syn-llama-tiny-Q2_K",
                                         "syn-qwen3moe-tiny-Q4_K_M"),
                       ::testing::Values(KvType::F16, KvType::F32), ::testing::Values(ActivationPrecision::Int16)),
    test_name);

// Int8 activations (a load option): every format that has Int8 kernels, BF16 (bf16 activations),
// the files that mix them with Q3_K and Q2_K matrices, which keep Int16, and the architectures
// with soft caps (gemma2), recurrent layers (lfm2, qwen35) and experts (qwen3moe).
INSTANTIATE_TEST_SUITE_P(
    Int8Activations, Determinism,
    ::testing::Combine(::testing::Values("syn-llama-tiny-Q4_K_M", "syn-llama-tiny-Q4_0", "syn-llama-tiny-Q5_0",
                                         "syn-llama-tiny-Q4_1", "syn-llama-tiny-Q5_1", "syn-llama-tiny-Q5_K_M",
                                         "syn-llama-tiny-Q6_K", "syn-llama-tiny-Q8_0", "syn-llama-tiny-Q3_K_M",
                                         "syn-llama-tiny-Q2_K", "syn-llama-tiny-BF16", "syn-qwen2-tiny-Q4_K_M", "syn-gemma2-tiny-Q4_K_M",
                                         "syn-lfm2-tiny-Q8_0", "syn-qwen35-tiny-Q4_K_M", "syn-qwen3moe-tiny-Q4_K_M"),
                       ::testing::Values(KvType::F16), ::testing::Values(ActivationPrecision::Int8)),
    test_name);

// A Q8_0 cache, on the models whose head_dim is a multiple of 32 (stories260K's is 8: refused,
// QuantizedCache.NeedsAHeadDimOfWholeBlocks). gemma2 and gemma3 bring soft caps and windows.
INSTANTIATE_TEST_SUITE_P(
    QuantizedCache, Determinism,
    ::testing::Combine(::testing::Values("syn-llama-tiny-Q4_K_M", "syn-qwen2-tiny-Q8_0", "syn-qwen3-tiny-Q4_K_M",
                                         "syn-llama3-tiny-Q8_0", "syn-gemma2-tiny-Q4_K_M", "syn-gemma3-tiny-Q8_0",
                                         "syn-lfm2-tiny-Q8_0", "syn-qwen35-tiny-Q8_0"),
                       ::testing::Values(KvType::Q8_0), ::testing::Values(ActivationPrecision::Int16)),
    test_name);

TEST(QuantizedCache, NeedsAHeadDimOfWholeBlocks) {
  const auto path = shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(path);
  auto model = Model::load(path.string());
  ASSERT_EQ(model->config().head_dim, 8);
  try {
    Session session(model, {.n_ctx = 64, .n_threads = 1, .kv_type = KvType::Q8_0});
    FAIL() << "a q8_0 cache of head_dim 8 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim that is a multiple of 32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("is 8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slm::test
