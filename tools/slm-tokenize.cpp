// slm-tokenize: text -> token ids with a model's tokenizer, or ids -> text. Reads only the
// tokenizer metadata, so vocabulary-only GGUF files work too. The output formats are
// llama-tokenize's: "     1 -> '<s>'" lines, or with --ids one JSON array "[1, 15043, 3186]".
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "slm/gguf.hpp"
#include "slm/tokenizer.hpp"

namespace {

struct Options {
  std::string model_path;
  std::string input_file;
  std::string prompt;
  bool ids_only = false;
  bool no_bos = false;
  bool force_bos = false;
  bool parse_special = false;
  bool detokenize = false;
};

std::string read_input(const Options& options, const CLI::App& app) {
  if (app.count("-p") > 0) return options.prompt;
  if (!options.input_file.empty()) {
    std::ifstream in(options.input_file, std::ios::binary);
    if (!in) throw slm::Error("cannot open input file " + options.input_file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  return std::string(std::istreambuf_iterator<char>(std::cin), {});
}

// "[1, 2, 3]" or "1 2 3" (any mix of brackets, commas and whitespace between the ids).
std::vector<slm::TokenId> parse_ids(const std::string& text) {
  std::vector<slm::TokenId> ids;
  size_t pos = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    if (c == '[' || c == ']' || c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      ++pos;
      continue;
    }
    size_t end = pos;
    if (text[end] == '-') ++end;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    if (end == pos || (end == pos + 1 && text[pos] == '-')) {
      throw slm::Error(fmt::format("--detokenize: expected a token id at byte {} of the input, found '{}'", pos, c));
    }
    const std::string number = text.substr(pos, end - pos);
    const long long value = std::stoll(number.size() > 12 ? number.substr(0, 12) : number);
    if (value < INT32_MIN || value > INT32_MAX) throw slm::Error("--detokenize: token id " + number + " is out of range");
    ids.push_back(static_cast<slm::TokenId>(value));
    pos = end;
  }
  return ids;
}

int run(const Options& options, const CLI::App& app) {
  const slm::Tokenizer tokenizer = slm::Tokenizer::from_gguf(slm::GgufFile::open(options.model_path));
  const std::string input = read_input(options, app);

  if (options.detokenize) {
    const std::string text = tokenizer.detokenize(parse_ids(input));
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }

  std::vector<slm::TokenId> ids = tokenizer.tokenize(input, /*add_special=*/!options.no_bos, options.parse_special);
  if (options.force_bos && (ids.empty() || ids.front() != tokenizer.bos())) {
    if (tokenizer.bos() < 0) throw slm::Error("--bos: the tokenizer has no BOS token");
    ids.insert(ids.begin(), tokenizer.bos());
  }

  if (options.ids_only) {
    fmt::print("[{}]\n", fmt::join(ids, ", "));
    return 0;
  }
  for (const slm::TokenId id : ids) {
    const std::string piece = tokenizer.token_to_piece(id, /*render_special=*/true);
    fmt::print("{:6d} -> '", id);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    fmt::print("'\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-tokenize", [&] {
    Options options;
    CLI::App app{"slm-tokenize: turn text into a model's token ids, or ids back into text"};
    app.add_option("-m,--model", options.model_path, "GGUF file whose tokenizer.ggml.* metadata to use")->required();
    auto* file_option = app.add_option("-f,--file", options.input_file, "read the input from this file");
    auto* prompt_option = app.add_option("-p,--prompt", options.prompt, "the input text (default: read standard input)");
    file_option->excludes(prompt_option);
    app.add_flag("--ids", options.ids_only, "print only the ids, as one JSON array on one line: [1, 15043, 3186]");
    auto* no_bos = app.add_flag("--no-bos", options.no_bos, "add no BOS or EOS token at all");
    auto* bos = app.add_flag("--bos", options.force_bos,
                             "always start with the BOS token, even where the model does not add one "
                             "(default: add BOS/EOS as tokenizer.ggml.add_bos_token / add_eos_token say)");
    no_bos->excludes(bos);
    app.add_flag("--parse-special", options.parse_special,
                 "read special-token text such as <|im_start|> or <s> as that token (default: plain text)");
    app.add_flag("--detokenize", options.detokenize,
                 "the reverse: the input is token ids (a JSON array or whitespace-separated); print the text "
                 "exactly, special tokens rendered, with no newline added");
    if (const auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    return run(options, app);
  });
}
