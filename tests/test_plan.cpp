// slm-plan's library side (include/slm/plan.hpp): the memory breakdown of shared models against
// a hand computation from their shapes (MODELS.md), files cut short after the tensor table, and
// bad headers, which must fail with the loader's own message. Speed is not timed here
// (benchmarks/plan_accuracy.sh compares predictions with slm-bench): what a prediction counts
// is checked with a machine made up for the test.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "lib/ops/kv_pool.hpp"
#include "slm/error.hpp"
#include "slm/gguf.hpp"
#include "slm/plan.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"
#include "support/gguf_bytes.hpp"

namespace {

using slm::plan::MemoryPlan;
using slm::plan::PlanOptions;

std::vector<uint8_t> file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

MemoryPlan plan_memory(const std::filesystem::path& path, PlanOptions options = {}) {
  return slm::plan::plan_model(path.string(), options, nullptr).memory;
}

// The error Model::load's GGUF reader gives for `path`, or "" when it opens.
std::string loader_error(const std::filesystem::path& path) {
  try {
    slm::GgufFile::open(path.string());
  } catch (const slm::Error& e) {
    return e.what();
  }
  return "";
}

std::string plan_error(const std::filesystem::path& path) {
  try {
    plan_memory(path);
  } catch (const slm::Error& e) {
    return e.what();
  }
  return "";
}

uint64_t q8_0_bytes(uint64_t n_weights) { return n_weights / 32 * 34; }  // 32 weights: fp16 scale + 32 int8

TEST(PlanMemory, WeightBytesOfSynLlamaTinyQ8_0MatchItsShape) {
  const auto path = slm::test::shared_path("models/syn-llama-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  // MODELS.md: n_embd 256, 2 layers, 4 heads / 2 KV heads of 64, n_ff 768, 512 tokens, untied
  // output; Q8_0 matrices, F32 norms.
  const uint64_t E = 256, kv = 2 * 64, F = 768, V = 512, L = 2;
  const uint64_t layer_weights = E * E + E * kv + E * kv + E * E + 3 * E * F;
  const uint64_t matrices = q8_0_bytes(E * V) * 2 + L * q8_0_bytes(layer_weights);
  const uint64_t vectors = (1 + 2 * L) * E * 4;
  PlanOptions one_row;
  one_row.n_batch = 1;
  const MemoryPlan m = plan_memory(path, one_row);
  EXPECT_EQ(m.weights_file_bytes, matrices + vectors);
  ASSERT_EQ(m.weights_by_type.size(), 2u);
  EXPECT_EQ(m.weights_by_type[0].type, slm::GgmlType::F32);
  EXPECT_EQ(m.weights_by_type[0].n_tensors, 5);
  EXPECT_EQ(m.weights_by_type[0].file_bytes, vectors);
  EXPECT_EQ(m.weights_by_type[1].type, slm::GgmlType::Q8_0);
  EXPECT_EQ(m.weights_by_type[1].n_tensors, 16);
  // Untied: the token embedding is read a row per token from the mapped file, one 64 KiB
  // fault-around window for a pass of one row; the norms are held twice (the file's pages and
  // their float copies).
  const uint64_t window = 64 * 1024;
  EXPECT_EQ(m.paged_embedding_bytes, q8_0_bytes(E * V) - window);
  EXPECT_EQ(m.weights_by_type[0].resident_bytes, 2 * vectors);
  const uint64_t other_matrices = matrices - q8_0_bytes(E * V) + window;
  EXPECT_GE(m.weights_by_type[1].resident_bytes, other_matrices);  // repacked tiles are never smaller
  EXPECT_LE(m.weights_by_type[1].resident_bytes, other_matrices + other_matrices / 20);
  EXPECT_EQ(m.file_bytes, std::filesystem::file_size(path));
}

TEST(PlanMemory, KvCacheIsContextTimesParallelInWholeBlocksOfEveryLayer) {
  struct Case {
    const char* model;
    uint64_t bytes_per_position_f16;  // 2 (K and V) x layers x KV heads x head_dim x 2 bytes, from MODELS.md
  };
  const Case cases[] = {
      {"models/syn-llama-tiny-Q8_0.gguf", 2 * 2 * 2 * 64 * 2},
      {"models/syn-gemma3-tiny-Q4_K_M.gguf", 2 * 6 * 1 * 64 * 2},  // sliding layers keep every position too
      {"models/syn-qwen3moe-tiny-Q4_K_M.gguf", 2 * 2 * 1 * 64 * 2},
      {"models/syn-qwen3-tiny-Q8_0.gguf", 2 * 2 * 4 * 64 * 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model);
    const auto path = slm::test::shared_path(c.model);
    SLM_REQUIRE_ASSET(path);
    PlanOptions options;
    options.n_ctx = 100;
    options.n_parallel = 3;  // 300 positions: 10 blocks of 32
    MemoryPlan m = plan_memory(path, options);
    EXPECT_EQ(m.kv_positions, 320);
    EXPECT_EQ(m.kv_bytes, 320 * c.bytes_per_position_f16);
    options.kv_type = slm::KvType::F32;
    m = plan_memory(path, options);
    EXPECT_EQ(m.kv_bytes, 320 * c.bytes_per_position_f16 * 2);
    EXPECT_EQ(m.total_bytes, m.weights_bytes + m.kv_bytes + m.scratch_bytes + m.runtime_bytes);
    options.kv_type = slm::KvType::Q8_0;  // 34 bytes (32 int8, an fp16 scale) per 32 elements of 2 bytes
    m = plan_memory(path, options);
    EXPECT_EQ(m.kv_bytes, 320 * c.bytes_per_position_f16 / 64 * 34);
    EXPECT_EQ(m.total_bytes, m.weights_bytes + m.kv_bytes + m.scratch_bytes + m.runtime_bytes);
  }
}

// What a pool of n positions allocates is what the plan (and slm-server's --kv-memory) counts.
TEST(PlanMemory, TheKvPoolHoldsTheBytesPerTokenThePlanCounts) {
  const auto path = slm::test::shared_path("models/syn-qwen3-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  const auto model = slm::Model::load(path.string());
  const slm::ModelConfig& c = model->config();
  for (slm::KvType type : {slm::KvType::F16, slm::KvType::F32, slm::KvType::Q8_0}) {
    SCOPED_TRACE(slm::kv_type_name(type));
    const slm::ops::KvPool pool(type, 10, c.n_kv_layers(), c.n_head_kv, c.head_dim);
    EXPECT_EQ(pool.bytes(), 10 * slm::ops::kKvBlockRows * slm::kv_bytes_per_token(c, type));
  }
  EXPECT_EQ(slm::kv_bytes_per_token(c, slm::KvType::Q8_0) * 64, slm::kv_bytes_per_token(c, slm::KvType::F16) * 34);
}

TEST(PlanMemory, DefaultContextIsASessionsAndTheVerdictFollowsAvailableMemory) {
  const auto path = slm::test::shared_path("models/syn-qwen3-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  const MemoryPlan m = plan_memory(path);
  EXPECT_EQ(m.n_ctx, 4096);  // min(training context 4096, 4096)
  EXPECT_EQ(m.kv_positions, 4096);
  ASSERT_GT(m.available_bytes, 0u);  // Linux: /proc/meminfo
  EXPECT_EQ(m.fit, m.total_bytes <= m.available_bytes ? slm::plan::Fit::Yes : slm::plan::Fit::No);
  EXPECT_LE(m.largest_fitting_ctx, m.n_ctx_train);
  EXPECT_EQ(m.largest_fitting_ctx % 32, 0);
}

TEST(PlanMemory, ATiedModelHoldsItsOutputMatrixAsTilesAndMapsNoRowOfIt) {
  const auto path = slm::test::shared_path("models/syn-qwen2-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  const MemoryPlan m = plan_memory(path);
  // Its lookups read the tiles (interleave_weights): of the mapped file only the vectors' pages
  // are counted, n_embd 256, 2 layers: the output norm, then per layer two norms and the q, k
  // and v biases (256, 128, 128).
  const uint64_t vectors = (256 + 2 * (256 + 256 + 256 + 128 + 128)) * 4;
  EXPECT_EQ(m.paged_embedding_bytes, 0u);
  EXPECT_EQ(m.mapped_weights_bytes, vectors);
  EXPECT_GE(m.weights_bytes, m.weights_file_bytes);
}

TEST(PlanMemory, ScratchOfAPromptPassIsItsRowsTheLogitsAndTheKernelsActivationBuffers) {
  const auto path = slm::test::shared_path("models/syn-qwen2-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  PlanOptions options;
  options.n_ctx = 512;
  options.n_threads = 2;
  options.n_parallel = 3;
  const MemoryPlan m = plan_memory(path, options);
  // MODELS.md: n_embd 256, 4 heads / 2 KV heads of 64, n_ff 768, 512 tokens, Q8_0 matrices.
  // A pass of 512 rows holds per row x, x_norm and block_out (n_embd each), q and attn (4 x 64),
  // k and v (2 x 64), gate and up (n_ff) and the rope angles (64), as floats.
  const uint64_t rows = 512 * (3 * 256 + 2 * 256 + 2 * 128 + 2 * 768 + 64) * 4;
  const uint64_t logits = 3 * 512 * 4;  // a row of n_vocab per sequence
  // Each thread quantizes the pass's rows for the widest Q8_0 input (ffn_down's n_ff) into
  // blocks of 32 int16 with a scale and a sum, 96 bytes per 32 activations.
  const uint64_t activations = 2 * 512 * 768 / 32 * 96;
  EXPECT_EQ(m.scratch_bytes, rows + logits + activations);
}

TEST(PlanMemory, AHybridModelHoldsEachSequencesStateAndItsCheckpoints) {
  struct Case {
    const char* model;
    uint64_t state_bytes_per_copy;
  };
  const Case cases[] = {
      // 6 DeltaNet layers: the conv's last 3 inputs of (4 + 4 + 8 heads) x 32 channels, and 8 v
      // heads' 32 x 32 states.
      {"models/syn-qwen35-tiny-Q8_0.gguf", 6 * (3 * 16 * 32 + 8 * 32 * 32) * 4},
      // 4 short-conv layers: the last 2 of n_embd 256 (shortconv.l_cache 3).
      {"models/syn-lfm2-tiny-Q8_0.gguf", 4 * 2 * 256 * 4},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model);
    const auto path = slm::test::shared_path(c.model);
    SLM_REQUIRE_ASSET(path);
    PlanOptions options;
    options.n_ctx = 1000;
    options.n_parallel = 2;
    const MemoryPlan m = plan_memory(path, options);
    // The state, and checkpoints before the prompt, at 512 and at its end (1000).
    EXPECT_EQ(m.state_copies, 4);
    EXPECT_EQ(m.state_bytes, 2 * 4 * c.state_bytes_per_copy);
    EXPECT_EQ(m.total_bytes, m.weights_bytes + m.kv_bytes + m.state_bytes + m.scratch_bytes + m.runtime_bytes);
    options.n_ctx = 100000;  // at most 8 checkpoints
    EXPECT_EQ(plan_memory(path, options).state_copies, 9);
  }
  const auto dense = slm::test::shared_path("models/syn-llama-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(dense);
  EXPECT_EQ(plan_memory(dense).state_bytes, 0u);
}

TEST(PlanMemory, AFileCutAfterItsTensorTableStillPlans) {
  const auto path = slm::test::shared_path("models/syn-qwen3moe-tiny-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(path);
  const std::vector<uint8_t> bytes = file_bytes(path);
  const uint64_t data_offset = slm::GgufFile::open(path.string()).data_offset();
  const MemoryPlan whole = plan_memory(path);
  // Cut where the data section starts, just after, and half-way through it.
  for (const uint64_t cut : {data_offset, data_offset + 1, data_offset + (bytes.size() - data_offset) / 2}) {
    SCOPED_TRACE(cut);
    const auto cut_path = slm::test::write_scratch_file(
        "cut-" + std::to_string(cut) + ".gguf", std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(cut)));
    const slm::plan::Plan plan = slm::plan::plan_model(cut_path.string(), {}, nullptr);
    EXPECT_FALSE(plan.complete_file);
    EXPECT_EQ(plan.memory.file_bytes, bytes.size());
    EXPECT_EQ(plan.memory.weights_file_bytes, whole.weights_file_bytes);
    EXPECT_EQ(plan.memory.weights_bytes, whole.weights_bytes);
    EXPECT_EQ(plan.memory.kv_bytes, whole.kv_bytes);
    EXPECT_FALSE(loader_error(cut_path).empty());  // the loader itself refuses it
  }
}

TEST(PlanMemory, AHeaderCutShortFailsWithTheLoadersMessage) {
  const auto path = slm::test::shared_path("models/syn-llama-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  const std::vector<uint8_t> bytes = file_bytes(path);
  const uint64_t data_offset = slm::GgufFile::open(path.string()).data_offset();
  for (const uint64_t cut : {uint64_t(3), uint64_t(10), uint64_t(30), data_offset / 3, data_offset / 2, data_offset - 40}) {
    SCOPED_TRACE(cut);
    const auto cut_path = slm::test::write_scratch_file(
        "header-" + std::to_string(cut) + ".gguf", std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(cut)));
    const std::string error = plan_error(cut_path);
    EXPECT_NE(error.find("the file"), std::string::npos) << error;  // "...the file ends at N (truncated)" or "...(size N)"
    EXPECT_NE(error.find(std::to_string(cut)), std::string::npos) << error;
    EXPECT_EQ(error, loader_error(cut_path));
  }
}

TEST(PlanMemory, HostileTensorTablesFailWithTheLoadersMessage) {
  using slm::test::TensorInfoSpec;
  const std::vector<std::vector<TensorInfoSpec>> tables = {
      {{"a", {1ull << 40, 1ull << 40}, 0, 0}},                      // more bytes than 2^64
      {{"a", {64}, 0, 0}, {"b", {64}, 0, 128}, {"a", {64}, 0, 256}},  // a duplicate name
      {{"a", {64}, 0, 0}, {"b", {64}, 0, 64}},                       // overlapping data
      {{"a", {33}, 8, 0}},                                           // a row that is not whole Q8_0 blocks
      {{"a", {64}, 99, 0}},                                          // an unknown type
  };
  for (size_t i = 0; i < tables.size(); ++i) {
    SCOPED_TRACE(i);
    const auto path = slm::test::write_scratch_file("hostile-" + std::to_string(i) + ".gguf",
                                                    slm::test::file_with_tensors(tables[i], 1024).bytes());
    const std::string error = plan_error(path);
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(error, loader_error(path));
  }
}

TEST(PlanMemory, AModelFileWithoutItsHyperparametersFailsLikeTheLoader) {
  using slm::test::TensorInfoSpec;
  const auto path = slm::test::write_scratch_file(
      "no-arch.gguf", slm::test::file_with_tensors({{"token_embd.weight", {64, 8}, 0, 0}}, 4096).bytes());
  EXPECT_NE(plan_error(path).find("unknown architecture 'test'"), std::string::npos) << plan_error(path);
  EXPECT_NE(plan_error("/nonexistent/model.gguf").find("cannot open"), std::string::npos);
}

TEST(PlanMemory, BadOptionsAreErrors) {
  const auto path = slm::test::shared_path("models/syn-llama-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  PlanOptions options;
  options.n_parallel = 0;
  EXPECT_THROW(slm::plan::plan_model(path.string(), options, nullptr), slm::Error);
  options = {};
  options.n_ctx = 1 << 20;  // beyond the model's 2048
  EXPECT_THROW(slm::plan::plan_model(path.string(), options, nullptr), slm::Error);
}

// ---- speed, with a machine made up for the test (nothing is timed here) ----------------------

// Every type in both layouts at `seconds_per_byte` and no cost for anything else.
slm::plan::MachineCapability machine_costing_only_bytes(double seconds_per_byte) {
  slm::plan::MachineCapability machine;
  machine.n_threads = 2;
  for (const slm::GgmlTypeInfo& info : slm::kGgmlTypes)
    for (const bool interleaved : {false, true}) machine.rates.push_back({info.type, interleaved, seconds_per_byte});
  return machine;
}

TEST(PlanSpeed, TheArithmeticRateFollowsTheRowLengthBetweenTheMeasuredOnes) {
  slm::plan::KernelRate rate;
  std::copy_n(std::array{1e-12, 2e-12, 4e-12}.begin(), 3, rate.seconds_per_flop_at);  // at 1024, 2048, 4096 inputs
  EXPECT_DOUBLE_EQ(rate.seconds_per_flop(2048), 2e-12);
  EXPECT_DOUBLE_EQ(rate.seconds_per_flop(4096), 4e-12);
  EXPECT_NEAR(rate.seconds_per_flop(2896), 3e-12, 1e-15);  // 2048 * sqrt(2): halfway in log2
  EXPECT_DOUBLE_EQ(rate.seconds_per_flop(896), 1e-12);     // shorter rows: the shortest measured
  EXPECT_DOUBLE_EQ(rate.seconds_per_flop(8192), 4e-12);    // longer: the longest
}

TEST(PlanSpeed, EveryRowOfEveryMatrixCostsItsInputsConversion) {
  const auto path = slm::test::shared_path("models/syn-llama-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  slm::plan::MachineCapability machine = machine_costing_only_bytes(0);
  for (slm::plan::KernelRate& rate : machine.rates) rate.seconds_per_input = 1e-9;
  // A token converts each matrix's inputs once; a prompt each row's, but the output matrix's
  // for its last row only.
  double inputs = 0, output_inputs = 0;
  const slm::GgufFile file = slm::GgufFile::open(path.string());
  for (const slm::GgufTensor& t : file.tensors())
    if (t.n_dims == 2 && t.name != "token_embd.weight") (t.name == "output.weight" ? output_inputs : inputs) += double(t.ne[0]);
  ASSERT_GT(output_inputs, 0);
  const slm::plan::Plan plan = slm::plan::plan_model(path.string(), {}, &machine);
  ASSERT_TRUE(plan.speed);
  EXPECT_NEAR(plan.speed->tg128_tokens_per_second, 1 / ((inputs + output_inputs) * 1e-9), 1e-6);
  EXPECT_NEAR(plan.speed->pp512_tokens_per_second, 512 / ((512 * inputs + output_inputs) * 1e-9), 1e-6);
}

TEST(PlanSpeed, ACalibrationStoresEachRatesArithmeticAtEveryRowLengthAndItsConversion) {
  slm::plan::MachineCapability machine;
  slm::plan::KernelRate rate{slm::GgmlType::Q8_0, true, 5e-11, {3e-12, 4e-12, 5e-12}, 6e-10};
  machine.rates.push_back(rate);
  const std::filesystem::path cache = std::filesystem::temp_directory_path() / "slm-test-plan-calibration.json";
  slm::plan::save_calibration(machine, cache.string());
  const nlohmann::json stored = nlohmann::json::parse(std::ifstream(cache));
  std::filesystem::remove(cache);
  const nlohmann::json& q8 = stored.at("rates").at(0);
  EXPECT_EQ(q8.at("type"), "Q8_0");
  EXPECT_EQ(q8.at("seconds_per_flop_at"), nlohmann::json({3e-12, 4e-12, 5e-12}));
  EXPECT_EQ(q8.at("seconds_per_input"), 6e-10);
}

TEST(PlanSpeed, AGeneratedTokenReadsEveryMatrixOnceTheHybridLayersIncluded) {
  for (const char* model : {"models/syn-qwen35-tiny-Q8_0.gguf", "models/syn-lfm2-tiny-Q4_K_M.gguf",
                            "models/syn-llama-tiny-Q8_0.gguf"}) {
    SCOPED_TRACE(model);
    const auto path = slm::test::shared_path(model);
    SLM_REQUIRE_ASSET(path);
    // Every matrix but the token embedding (looked up by row) and the convolutions' taps (copied
    // to float): qwen35's attn_qkv, attn_gate, ssm_alpha, ssm_beta and ssm_out, lfm2's in_proj
    // and out_proj, the attention layers' and the feed-forward blocks' matrices, the output.
    uint64_t matrix_bytes = 0;
    const slm::GgufFile file = slm::GgufFile::open(path.string());
    for (const slm::GgufTensor& t : file.tensors())
      if (t.n_dims == 2 && t.name != "token_embd.weight" && !t.name.ends_with("conv.weight") &&
          !t.name.ends_with("ssm_conv1d.weight"))
        matrix_bytes += t.n_bytes;
    const slm::plan::MachineCapability machine = machine_costing_only_bytes(1e-9);
    const slm::plan::Plan plan = slm::plan::plan_model(path.string(), {}, &machine);
    ASSERT_TRUE(plan.speed);
    EXPECT_EQ(plan.speed->tg_bytes_per_token, matrix_bytes);
    EXPECT_NEAR(plan.speed->tg128_tokens_per_second, 1 / (double(matrix_bytes) * 1e-9), 1e-6 / (double(matrix_bytes) * 1e-9));
  }
}

TEST(PlanSpeed, ADeltaNetLayerCostsItsStatePerRow) {
  const auto path = slm::test::shared_path("models/syn-qwen35-tiny-Q8_0.gguf");
  SLM_REQUIRE_ASSET(path);
  slm::plan::MachineCapability machine = machine_costing_only_bytes(0);
  machine.delta_rule_token_seconds_per_element = 1e-9;  // one row, its state from memory
  machine.delta_rule_seconds_per_element = 2e-9;        // a prompt's rows
  const slm::plan::Plan plan = slm::plan::plan_model(path.string(), {}, &machine);
  ASSERT_TRUE(plan.speed);
  const double state = 6 * 8 * 32 * 32;  // 6 DeltaNet layers of 8 v heads' 32 x 32 states
  EXPECT_NEAR(plan.speed->tg128_tokens_per_second, 1 / (state * 1e-9), 1e-6);
  EXPECT_NEAR(plan.speed->pp512_tokens_per_second, 1 / (state * 2e-9), 1e-6);
}

}  // namespace
