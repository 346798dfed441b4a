#include "support/golden.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
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

namespace {

// Reads a JSON document only as far as its top-level "schema" string: prompt goldens are large
// (base64 logits), and every test process lists them.
class SchemaReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::optional<std::string> schema;
  bool is_object = false;
  bool malformed = false;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool string(string_t& text) override {
    if (depth_ == 1 && key_is_schema_) {
      schema = text;
      return false;  // found: stop reading
    }
    return value();
  }
  bool start_object(std::size_t) override {
    if (depth_ == 0) is_object = true;
    return enter();
  }
  bool key(string_t& name) override {
    key_is_schema_ = depth_ == 1 && name == "schema";
    return true;
  }
  bool end_object() override { return leave(); }
  bool start_array(std::size_t) override { return depth_ > 0 && enter(); }  // a top-level array: not a golden
  bool end_array() override { return leave(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    malformed = true;
    return false;
  }

 private:
  bool value() {
    key_is_schema_ = false;
    return depth_ > 0;  // a document that is a bare value: nothing more to read
  }
  bool enter() {
    key_is_schema_ = false;
    ++depth_;
    return true;
  }
  bool leave() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  bool key_is_schema_ = false;
};

// Why `path` is not a prompt golden, or nullopt when it is one.
std::optional<std::string> why_not_a_prompt_golden(const std::filesystem::path& path) {
  if (path.extension() != ".json") return "not a .json file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot be opened";
  SchemaReader reader;
  nlohmann::json::sax_parse(in, &reader);
  if (reader.malformed && !reader.schema) return "not valid JSON";
  if (!reader.is_object) return "not a JSON object";
  if (!reader.schema) return std::string("no \"schema\" key, expected \"") + std::string(kPromptGoldenSchema) + "\"";
  if (*reader.schema != kPromptGoldenSchema)
    return "schema \"" + *reader.schema + "\", not the prompt golden's \"" + std::string(kPromptGoldenSchema) + "\"";
  return std::nullopt;
}

GoldenFolders scan_golden_folders() {
  GoldenFolders folders;
  const auto dir = shared_path("golden");
  if (!std::filesystem::is_directory(dir)) return folders;
  for (const auto& folder : std::filesystem::directory_iterator(dir)) {
    if (!folder.is_directory()) continue;
    for (const auto& entry : std::filesystem::directory_iterator(folder.path())) {
      if (const auto reason = why_not_a_prompt_golden(entry.path()))
        folders.skipped.push_back({entry.path(), *reason});
      else
        folders.prompt_files_by_stem[folder.path().filename().string()].push_back(entry.path());
    }
  }
  for (auto& [stem, files] : folders.prompt_files_by_stem) std::sort(files.begin(), files.end());
  std::sort(folders.skipped.begin(), folders.skipped.end(),
            [](const SkippedGoldenFile& a, const SkippedGoldenFile& b) { return a.path < b.path; });
  return folders;
}

}  // namespace

const GoldenFolders& golden_folders() {
  static const GoldenFolders folders = scan_golden_folders();
  return folders;
}

void print_skipped_golden_files() {
  for (const SkippedGoldenFile& file : golden_folders().skipped)
    std::printf("  skipped %s: %s\n", std::filesystem::relative(file.path, shared_dir()).c_str(), file.reason.c_str());
}

std::vector<std::string> golden_model_stems() {
  std::vector<std::string> stems;
  for (const auto& [stem, files] : golden_folders().prompt_files_by_stem) stems.push_back(stem);
  return stems;
}

std::vector<std::filesystem::path> golden_files(const std::string& stem) {
  const auto& by_stem = golden_folders().prompt_files_by_stem;
  const auto found = by_stem.find(stem);
  return found == by_stem.end() ? std::vector<std::filesystem::path>{} : found->second;
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
