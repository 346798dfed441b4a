// Readers for ../shared/golden (schema slm-golden/1; see golden/README.md there).
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
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

// Model stems that have a folder in golden/ (sorted); empty when the folder is missing.
std::vector<std::string> golden_model_stems();
// The golden files of one model stem, sorted by prompt id.
std::vector<std::filesystem::path> golden_files(const std::string& stem);

std::vector<uint8_t> base64_decode(std::string_view text);

}  // namespace slm::test
