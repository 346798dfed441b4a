// Readers for ../shared/golden (schema slm-golden/1; see golden/README.md there).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace slm::test {

struct GoldenPosition {
  std::vector<std::pair<int32_t, double>> top;  // [id, logprob], best first
  double logsumexp = 0;
};

struct GoldenSection {
  std::vector<GoldenPosition> positions;
  int32_t logits_n_positions = 0;  // rows of full logits (exact only, small vocabularies)
  std::vector<float> logits;       // [logits_n_positions][n_vocab]
  std::vector<int32_t> greedy_ids;
};

struct GoldenAgreement {
  int32_t n_positions = 0;
  double mean_kld = 0, max_kld = 0, top1_agree = 0, max_abs_dlogprob_top20 = 0;
  int32_t greedy_match_len = 0;
};

struct GoldenRecord {
  std::string model_file;  // file name in models/
  std::string prompt_id;
  std::string prompt;
  bool add_bos = false;
  bool parse_special = true;
  int32_t n_vocab = 0;
  std::vector<int32_t> tokens;
  GoldenSection exact, llama_cpp;
  GoldenAgreement agreement;
};

GoldenRecord read_golden(const std::filesystem::path& path);

// The schema of a prompt golden: one (model, prompt) pair, golden/<model stem>/<prompt id>.json.
inline constexpr std::string_view kPromptGoldenSchema = "slm-golden/1";

// A file in a folder of golden/ that is not a prompt golden, and why (for the tests to print).
struct SkippedGoldenFile {
  std::filesystem::path path;
  std::string reason;
};

// What golden/'s folders hold: the prompt goldens by model stem (a folder's name), and everything
// else (golden/arch's KL-divergence references, READMEs, files of a schema not known here).
struct GoldenFolders {
  std::map<std::string, std::vector<std::filesystem::path>> prompt_files_by_stem;  // each sorted
  std::vector<SkippedGoldenFile> skipped;
};

// Scans golden/ once per process: a prompt golden is a .json file whose top-level "schema" is
// kPromptGoldenSchema. Files directly in golden/ (prompts.json, perplexity.json, ...) are not
// looked at. Empty when golden/ is missing.
const GoldenFolders& golden_folders();
// Prints one line per skipped file: "  skipped golden/arch/summary.json: ...".
void print_skipped_golden_files();

// Model stems with at least one prompt golden (sorted): golden/arch and the like are not stems.
std::vector<std::string> golden_model_stems();
// The prompt goldens of one model stem, sorted by prompt id.
std::vector<std::filesystem::path> golden_files(const std::string& stem);

std::vector<uint8_t> base64_decode(std::string_view text);

}  // namespace slm::test
