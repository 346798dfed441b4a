// slm-info, run as a built tool: its text and JSON reports, abbreviation, and the
// one-line error and non-zero exit for a malformed file.
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <string>

#include "slm/gguf_writer.hpp"
#include "support/assets.hpp"
#include "support/gguf_bytes.hpp"

namespace slm {
namespace {

struct ToolRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs bin/slm-info with `arguments` (already shell-quoted where needed).
ToolRun run_slm_info(const std::string& arguments) {
  const auto out_path = test::scratch_dir() / "slm-info.out";
  const auto err_path = test::scratch_dir() / "slm-info.err";
  const std::string command = "'" + (test::bin_dir() / "slm-info").string() + "' " + arguments + " >'" +
                              out_path.string() + "' 2>'" + err_path.string() + "'";
  const int status = std::system(command.c_str());
  ToolRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = test::read_file(out_path);
  run.err = test::read_file(err_path);
  return run;
}

std::string quoted_path(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// The "  features: ..." line of slm-info's text report, with its newline; "" when there is none.
std::string features_line(const ToolRun& run) {
  const size_t begin = run.out.find("  features:");
  return begin == std::string::npos ? "" : run.out.substr(begin, run.out.find('\n', begin) + 1 - begin);
}

#define SLM_REQUIRE_SLM_INFO()                                                              \
  do {                                                                                      \
    if (!std::filesystem::exists(test::bin_dir() / "slm-info"))                             \
      GTEST_SKIP() << "slm-info is not built (configure with -DSLM_BUILD_TOOLS=ON)";        \
  } while (0)

TEST(SlmInfo, TextReportShowsMetadataTensorsAndSummary) {
  SLM_REQUIRE_SLM_INFO();
  const auto model = test::shared_path("models/stories260K.gguf");
  SLM_REQUIRE_ASSET(model);
  const ToolRun run = run_slm_info(quoted_path(model));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_TRUE(contains(run.out, "GGUF v3, 1,185,376 bytes, alignment 32")) << run.out;
  EXPECT_TRUE(contains(run.out, "* 19 key/value pairs"));
  EXPECT_TRUE(contains(run.out, "      5: STRING     |        1 | general.architecture = \"llama\"\n"));
  EXPECT_TRUE(contains(run.out, "     17: UINT32     |        1 | llama.block_count = 5\n"));
  EXPECT_TRUE(contains(run.out, "llama.attention.layer_norm_rms_epsilon = 1e-05\n"));
  EXPECT_TRUE(contains(run.out, "tokenizer.ggml.tokens = [\"<unk>\", \"<s>\", \"</s>\", \"<0x00>\""));
  EXPECT_TRUE(contains(run.out, "... (512 total)]\n"));
  EXPECT_TRUE(contains(run.out, "* 48 tensors"));
  EXPECT_TRUE(contains(run.out, "| F32     |        131072 | token_embd.weight\n"));
  EXPECT_TRUE(contains(run.out, "  architecture:    llama\n"));
  EXPECT_TRUE(contains(run.out, "  parameters:      292,800 (292.80 K)\n"));
  EXPECT_TRUE(contains(run.out, "  bits per weight: 32.00\n"));
}

TEST(SlmInfo, SummaryNamesTheArchitecturesFeatures) {
  SLM_REQUIRE_SLM_INFO();
  const auto model = test::shared_path("models/syn-phi3-tiny-F32.gguf");  // MODELS.md: its phi3 features
  SLM_REQUIRE_ASSET(model);
  const ToolRun run = run_slm_info(quoted_path(model));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(features_line(run),
            "  features:        fused q/k/v projection (attn_qkv); fused gate+up (ffn_up: gate rows, then up); "
            "partial rotary: 48 of 64 dims per head; LongRoPE: long factors for a context over 64 tokens, "
            "else short; attention factor 1.4142; sliding window 262144 in the file, not applied (llama.cpp "
            "disables Phi's); tied output\n");
  const ToolRun json = run_slm_info("--json " + quoted_path(model));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out)["summary"]["features"].size(), 6u);
}

TEST(SlmInfo, SummaryNamesGemmasFeaturesWithLlamaCppsDefaults) {
  SLM_REQUIRE_SLM_INFO();
  const auto model = test::shared_path("models/syn-gemma2-tiny-Q8_0.gguf");  // no pattern key: every other layer
  SLM_REQUIRE_ASSET(model);
  EXPECT_EQ(features_line(run_slm_info(quoted_path(model))),
            "  features:        token embeddings x sqrt(n_embd); RMSNorm after attention and after the FFN "
            "(post_attention_norm, post_ffw_norm); GeGLU FFN (GELU, tanh approximation); sliding window 32 on every "
            "layer but one in 2, which rotate with rope base 10000; attention scores soft-capped at 5; logits "
            "soft-capped at 12; tied output\n");
}

TEST(SlmInfo, JsonReportHoldsTheSameContent) {
  SLM_REQUIRE_SLM_INFO();
  const auto model = test::shared_path("models/syn-llama-tiny-Q4_K_M.gguf");
  SLM_REQUIRE_ASSET(model);
  const ToolRun run = run_slm_info("--json " + quoted_path(model));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto report = nlohmann::json::parse(run.out);
  const GgufFile gguf = GgufFile::open(model.string());
  EXPECT_EQ(report["version"], 3);
  EXPECT_EQ(report["file_size"], gguf.file_size());
  ASSERT_EQ(report["metadata"].size(), gguf.metadata().size());
  EXPECT_EQ(report["metadata"][0]["key"], gguf.metadata()[0].key);
  ASSERT_EQ(report["tensors"].size(), gguf.tensors().size());
  EXPECT_EQ(report["tensors"][0]["name"], gguf.tensors()[0].name);
  EXPECT_EQ(report["summary"]["architecture"], "llama");
  uint64_t parameters = 0, bytes = 0;
  for (const GgufTensor& tensor : gguf.tensors()) parameters += tensor.n_elements(), bytes += tensor.n_bytes;
  EXPECT_EQ(report["summary"]["parameters"], parameters);
  EXPECT_EQ(report["summary"]["tensor_bytes"], bytes);
  EXPECT_DOUBLE_EQ(report["summary"]["bits_per_weight"].get<double>(), 8.0 * double(bytes) / double(parameters));
  EXPECT_EQ(report["summary"]["by_type"]["Q4_K"]["tensors"], 13);  // MODELS.md: F32×5 Q4_K×13 Q6_K×3

  for (const auto& entry : report["metadata"]) {
    if (entry["key"] != "tokenizer.ggml.tokens") continue;
    EXPECT_EQ(entry["count"], 512);
    EXPECT_EQ(entry["value"].size(), 8u);
    EXPECT_EQ(entry["truncated"], true);
  }
}

TEST(SlmInfo, LongValuesAreAbbreviatedUnlessFull) {
  SLM_REQUIRE_SLM_INFO();
  GgufWriter writer;
  writer.add_string("general.architecture", "llama");
  const std::string chat_template = std::string(200, 'x') + "{{ end }}";
  writer.add_string("tokenizer.chat_template", chat_template);
  writer.add_array("tokenizer.ggml.tokens", GgufArray{GgufValueType::STRING, {}, {}, std::vector<std::string>(20, "t")});
  const auto path = test::write_scratch_file("long_values.gguf", writer.to_bytes());

  const ToolRun shortened = run_slm_info(quoted_path(path));
  ASSERT_EQ(shortened.exit_code, 0) << shortened.err;
  EXPECT_TRUE(contains(shortened.out, "tokenizer.chat_template = \"" + std::string(80, 'x') + "\"... (209 bytes total)\n"))
      << shortened.out;
  EXPECT_TRUE(contains(shortened.out, "\"t\", ... (20 total)]"));
  EXPECT_TRUE(contains(shortened.out, "bits per weight: n/a (no tensors)"));

  const ToolRun full = run_slm_info("--full " + quoted_path(path));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  EXPECT_TRUE(contains(full.out, "tokenizer.chat_template = \"" + chat_template + "\"\n"));
  EXPECT_FALSE(contains(full.out, "total)"));

  const auto full_json = nlohmann::json::parse(run_slm_info("--json --full " + quoted_path(path)).out);
  EXPECT_EQ(full_json["metadata"][1]["value"], chat_template);
  EXPECT_EQ(full_json["metadata"][2]["value"].size(), 20u);
  EXPECT_FALSE(full_json["metadata"][1].contains("truncated"));
  EXPECT_TRUE(full_json["summary"]["bits_per_weight"].is_null());
}

TEST(SlmInfo, MalformedFileGivesOneLineErrorAndNonZeroExit) {
  SLM_REQUIRE_SLM_INFO();
  const test::GgufBytes truncated = test::file_with_tensors({{"blk.0.attn_q.weight", {8}, 0, 64}}, 64);
  const auto path = test::write_scratch_file("bad.gguf", truncated.bytes());
  for (const std::string flags : {"", "--json "}) {
    const ToolRun run = run_slm_info(flags + quoted_path(path));
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_EQ(run.out, "");
    EXPECT_EQ(run.err, "slm-info: error: " + path.string() +
                           ": tensor 'blk.0.attn_q.weight' at offset 68: data [192, 224) extends past the end of "
                           "the file (size 192)\n");
  }
}

TEST(SlmInfo, MissingFileAndMissingArgumentFail) {
  SLM_REQUIRE_SLM_INFO();
  const ToolRun missing = run_slm_info(quoted_path(test::scratch_dir() / "absent.gguf"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.err, "absent.gguf: cannot open: No such file or directory\n")) << missing.err;
  EXPECT_EQ(run_slm_info("").exit_code, 2);
}

TEST(SlmInfo, HelpExplainsEveryFlag) {
  SLM_REQUIRE_SLM_INFO();
  const ToolRun run = run_slm_info("--help");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_TRUE(contains(run.out, "--json")) << run.out;
  EXPECT_TRUE(contains(run.out, "print one JSON object"));
  EXPECT_TRUE(contains(run.out, "--full"));
  EXPECT_TRUE(contains(run.out, "print long strings and arrays in full"));
  EXPECT_TRUE(contains(run.out, "GGUF file to inspect"));
}

}  // namespace
}  // namespace slm
