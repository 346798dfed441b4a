// slm-logits: evaluate a prompt in one batch and write, for every position, the top-N
// log-probabilities and the logsumexp, plus an optional greedy continuation. The field
// names are those of ../shared/golden (tokens, positions[i].top, positions[i].logsumexp,
// greedy.ids), so slm can be compared with any engine that writes the same file.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "slm/sampler.hpp"
#include "slm/session.hpp"

namespace {

struct Options {
  std::string model_path, prompt_file, output_path;
  bool force_bos = false, no_bos = false, parse_special = false;
  int top = 20, greedy = 0, threads = 0, context = 0;
  std::string kv_type = "f32";
  std::string activations = "int16";
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw slm::Error("cannot open prompt file " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

nlohmann::ordered_json position_json(std::span<const float> logits, int top) {
  double max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(double(l) - max_logit);
  const double logsumexp = max_logit + std::log(sum);
  std::vector<slm::TokenId> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = slm::TokenId(i);
  const size_t n_top = std::min(ids.size(), size_t(std::max(top, 0)));
  std::partial_sort(ids.begin(), ids.begin() + n_top, ids.end(), [&](slm::TokenId a, slm::TokenId b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (size_t i = 0; i < n_top; ++i) entries.push_back({ids[i], double(logits[ids[i]]) - logsumexp});
  return {{"top", entries}, {"logsumexp", logsumexp}};
}

std::string hex_of(const std::string& bytes) {
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

int run(const Options& o) {
  auto model = slm::Model::load(o.model_path, slm::tools::load_options(o.activations));
  const slm::Tokenizer& tokenizer = model->tokenizer();
  const std::string prompt = read_text_file(o.prompt_file);
  std::vector<slm::TokenId> tokens;
  if (o.force_bos) {
    if (tokenizer.bos() < 0) throw slm::Error("--bos: the model has no BOS token");
    tokens.push_back(tokenizer.bos());
    const auto rest = tokenizer.tokenize(prompt, false, o.parse_special);
    tokens.insert(tokens.end(), rest.begin(), rest.end());
  } else {
    tokens = tokenizer.tokenize(prompt, !o.no_bos, o.parse_special);
  }
  if (tokens.empty()) throw slm::Error("the prompt has no tokens (an empty prompt needs --bos)");

  slm::SessionOptions session_options;
  session_options.n_threads = o.threads;
  session_options.n_ctx = o.context > 0 ? o.context : std::min<int32_t>(model->config().n_ctx_train,
                                                                         std::max<int32_t>(4096, int32_t(tokens.size()) + o.greedy));
  session_options.kv_type = slm::kv_type_named(o.kv_type);
  slm::Session session(model, session_options);
  const int32_t n_vocab = model->config().n_vocab;
  std::span<const float> all = session.eval(tokens, 0, true);

  nlohmann::ordered_json out;
  out["model"] = model->config().name;
  out["n_vocab"] = n_vocab;
  out["prompt"] = prompt;
  out["tokens"] = tokens;
  out["positions"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < tokens.size(); ++i)
    out["positions"].push_back(position_json(all.subspan(i * size_t(n_vocab), size_t(n_vocab)), o.top));

  if (o.greedy > 0) {
    std::vector<slm::TokenId> ids;
    std::string text;
    std::span<const float> last = all.subspan((tokens.size() - 1) * size_t(n_vocab), size_t(n_vocab));
    for (int i = 0; i < o.greedy && session.n_past() < session.n_ctx(); ++i) {
      const slm::TokenId next = slm::argmax(last);
      ids.push_back(next);
      text += tokenizer.token_to_piece(next, true);
      if (i + 1 < o.greedy) last = session.eval(std::span<const slm::TokenId>(&next, 1));
    }
    out["greedy"] = {{"ids", ids}, {"text", text}, {"text_hex", hex_of(text)}};
  }
  const std::string json = out.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  if (o.output_path.empty() || o.output_path == "-") {
    fmt::print("{}", json);
  } else {
    std::ofstream file(o.output_path, std::ios::binary);
    if (!(file << json)) throw slm::Error("cannot write " + o.output_path);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-logits", [&] {
    Options o;
    CLI::App app{"evaluate a prompt in one batch and write per-position top-N log-probabilities as JSON", "slm-logits"};
    app.add_option("-m,--model", o.model_path, "GGUF model file")->required();
    app.add_option("-f,--file", o.prompt_file, "file holding the prompt text (UTF-8, used byte for byte)")->required();
    app.add_option("-o,--output", o.output_path, "output JSON file ('-' or absent: standard output)");
    auto* bos = app.add_flag("--bos", o.force_bos, "put BOS first, whatever the model's add_bos_token says");
    app.add_flag("--no-bos", o.no_bos, "add no BOS/EOS at all")->excludes(bos);
    app.add_flag("--parse-special", o.parse_special, "turn special-token text (<|im_start|>, <s>) into those tokens");
    app.add_option("--top", o.top, "log-probabilities to keep per position")->default_val(20)->check(CLI::Range(1, 1000));
    app.add_option("--greedy", o.greedy, "also generate N greedy tokens (argmax, lowest id on ties; no stop at EOS)")
        ->default_val(0)->check(CLI::Range(0, 100000));
    app.add_option("-t,--threads", o.threads, "threads (default: physical cores)")->check(CLI::NonNegativeNumber);
    app.add_option("-c,--ctx-size", o.context, "context size (default: prompt + greedy, at least 4096, at most the model's)")
        ->check(CLI::NonNegativeNumber);
    slm::tools::add_kv_type_option(app, o.kv_type, "default f32 here, for exact comparisons");
    slm::tools::add_activations_option(app, o.activations);
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    return run(o);
  });
}
