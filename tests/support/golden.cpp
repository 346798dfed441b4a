#include "support/golden.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "support/assets.hpp"

namespace slm::test {

namespace {

GoldenSection read_section(const nlohmann::json& j) {
  GoldenSection s;
  for (const auto& p : j.at("positions")) {
    GoldenPosition pos;
    for (const auto& entry : p.at("top")) pos.top.emplace_back(entry.at(0).get<int32_t>(), entry.at(1).get<double>());
    pos.logsumexp = p.at("logsumexp").get<double>();
    s.positions.push_back(std::move(pos));
  }
  if (j.contains("logits_f32_b64")) {
    s.logits_n_positions = j.at("logits_n_positions").get<int32_t>();
    const std::vector<uint8_t> bytes = base64_decode(j.at("logits_f32_b64").get<std::string>());
    s.logits.resize(bytes.size() / sizeof(float));
    std::memcpy(s.logits.data(), bytes.data(), s.logits.size() * sizeof(float));
  }
  if (j.contains("greedy")) s.greedy_ids = j.at("greedy").at("ids").get<std::vector<int32_t>>();
  return s;
}

}  // namespace

GoldenRecord read_golden(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  const nlohmann::json j = nlohmann::json::parse(in);
  GoldenRecord r;
  r.model_file = j.at("model").get<std::string>();
  r.prompt_id = j.at("prompt_id").get<std::string>();
  r.prompt = j.at("prompt").get<std::string>();
  r.add_bos = j.at("add_bos").get<bool>();
  r.parse_special = j.at("parse_special").get<bool>();
  r.n_vocab = j.at("n_vocab").get<int32_t>();
  r.tokens = j.at("tokens").get<std::vector<int32_t>>();
  r.exact = read_section(j.at("exact"));
  r.llama_cpp = read_section(j.at("llama_cpp"));
  const auto& a = j.at("agreement");
  r.agreement.n_positions = a.at("n_positions").get<int32_t>();
  r.agreement.mean_kld = a.at("mean_kld").get<double>();
  r.agreement.max_kld = a.at("max_kld").get<double>();
  r.agreement.top1_agree = a.at("top1_agree").get<double>();
  r.agreement.max_abs_dlogprob_top20 = a.at("max_abs_dlogprob_top20").get<double>();
  r.agreement.greedy_match_len = a.at("greedy_match_len").get<int32_t>();
  return r;
}

std::vector<std::string> golden_model_stems() {
  std::vector<std::string> stems;
  const auto dir = shared_path("golden");
  if (!std::filesystem::is_directory(dir)) return stems;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_directory()) stems.push_back(entry.path().filename().string());
  std::sort(stems.begin(), stems.end());
  return stems;
}

std::vector<std::filesystem::path> golden_files(const std::string& stem) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(shared_path("golden") / stem))
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<uint8_t> base64_decode(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = value_of(c);
    if (v < 0) continue;  // padding and line breaks
    buffer = (buffer << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t(buffer >> bits));
    }
  }
  return out;
}

}  // namespace slm::test
