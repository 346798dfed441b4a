// slm-quantize: convert a GGUF model to another weight format, choosing each tensor's type by
// llama.cpp's rules (include/slm/quantize.hpp), the way llama-quantize does.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "slm/quantize.hpp"

namespace {

struct Options {
  std::string input_path, output_path, type_name;
  int threads = 0;
  bool dry_run = false;
};

std::string megabytes(uint64_t bytes) { return fmt::format("{:.1f} MB ({:.1f} MiB)", bytes / 1e6, bytes / 1048576.0); }

std::string recipe_help() {
  std::string text = "TYPE is one of:\n";
  for (const slm::QuantizeRecipe& recipe : slm::quantize_recipes())
    text += fmt::format("  {:<7} {}\n", recipe.name, recipe.description);
  text +=
      "\nEach tensor's type follows llama.cpp's rules: vectors (norms, biases), MoE routers and convolution\n"
      "kernels are copied unchanged; the output matrix (token_embd when the model ties it) gets Q6_K (Q8_0 in\n"
      "Q8_0 files, or when its rows do not fit 256-weight blocks); a K-quant whose 256-weight block does not\n"
      "divide a row falls back to Q5_0 (Q4_K), Q5_1 (Q5_K) or Q8_0 (Q6_K), and IQ4_XS to IQ4_NL. The input may\n"
      "be of any type. The output is written to OUT.tmp and renamed when complete; OUT may not be the input file.\n";
  return text;
}

// A bar that redraws one line on a terminal, or one plain line per finished tensor elsewhere.
class ProgressDisplay {
 public:
  ProgressDisplay() : terminal_(isatty(fileno(stderr)) != 0) {}

  void update(const slm::QuantizeProgress& p) {
    const slm::GgufTensor& source = *p.tensor->source;
    const std::string conversion = fmt::format("{} -> {}", slm::ggml_type_name(source.type), slm::ggml_type_name(p.tensor->type));
    if (terminal_) {
      constexpr int kWidth = 30;
      const double fraction = p.weights_total > 0 ? double(p.weights_done) / double(p.weights_total) : 1.0;
      const int filled = int(fraction * kWidth);
      std::fprintf(stderr, "\r\033[K[%s%s] %3d%%  %zu/%zu  %s  %s", std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), int(fraction * 100), p.tensor_index + 1, p.n_tensors,
                   source.name.c_str(), conversion.c_str());
      if (p.tensor_finished && p.tensor_index + 1 == p.n_tensors) std::fputc('\n', stderr);
    } else if (p.tensor_finished) {
      std::fprintf(stderr, "[%*zu/%zu] %-32s %-16s %-14s %9.2f MiB\n", int(std::to_string(p.n_tensors).size()),
                   p.tensor_index + 1, p.n_tensors, source.name.c_str(), source.shape_string().c_str(),
                   conversion.c_str(), p.tensor->n_bytes / 1048576.0);
    }
    std::fflush(stderr);
  }

 private:
  bool terminal_;
};

void print_type_table(const std::vector<slm::TypeTotal>& totals) {
  fmt::print("  {:<6} {:>7} {:>12}\n", "type", "tensors", "MiB");
  for (const slm::TypeTotal& total : totals)
    fmt::print("  {:<6} {:>7} {:>12.2f}\n", slm::ggml_type_name(total.type), total.n_tensors, total.n_bytes / 1048576.0);
}

int dry_run(const Options& o, const slm::QuantizeRecipe& recipe) {
  const slm::GgufFile input = slm::GgufFile::open(o.input_path);
  const std::vector<slm::PlannedTensor> plan = slm::plan_quantization(input, recipe.file_type);
  uint64_t total = 0;
  for (const slm::PlannedTensor& tensor : plan) {
    fmt::print("{:<32} {:<16} {:<5} -> {:<5}\n", tensor.source->name, tensor.source->shape_string(),
               slm::ggml_type_name(tensor.source->type), slm::ggml_type_name(tensor.type));
    total += tensor.n_bytes;
  }
  fmt::print("{} ({}): tensor data would be {}\n", o.input_path, recipe.name, megabytes(total));
  print_type_table(slm::totals_by_type(plan));
  return 0;
}

int run(const Options& o) {
  const std::optional<slm::FileType> file_type = slm::file_type_from_name(o.type_name);
  if (!file_type) {
    std::string names;
    for (const slm::QuantizeRecipe& recipe : slm::quantize_recipes()) names += (names.empty() ? "" : ", ") + std::string(recipe.name);
    throw slm::Error(fmt::format("unknown TYPE '{}' (one of: {})", o.type_name, names));
  }
  const slm::QuantizeRecipe& recipe = slm::quantize_recipe(*file_type);
  if (o.dry_run) return dry_run(o, recipe);

  ProgressDisplay display;
  slm::QuantizeOptions options;
  options.file_type = recipe.file_type;
  options.n_threads = o.threads;
  options.on_progress = [&](const slm::QuantizeProgress& progress) { display.update(progress); };
  const auto start = std::chrono::steady_clock::now();
  const slm::QuantizeSummary summary = slm::quantize_model(o.input_path, o.output_path, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  fmt::print("wrote {} ({}, general.file_type {}): {}\n", o.output_path, recipe.name, uint32_t(recipe.file_type),
             megabytes(summary.output_file_bytes));
  fmt::print("tensor data {} -> {} in {:.1f} s\n", megabytes(summary.input_tensor_bytes),
             megabytes(summary.output_tensor_bytes), seconds);
  print_type_table(summary.by_type);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-quantize", [&] {
    Options o;
    CLI::App app{"convert a GGUF model to another weight format with llama.cpp's per-tensor rules", "slm-quantize"};
    app.footer(recipe_help());
    app.add_option("IN", o.input_path, "the model to convert (any tensor types)")->required();
    app.add_option("OUT", o.output_path, "the file to write (not IN)")->required();
    app.add_option("TYPE", o.type_name, "the recipe: Q4_K_M, Q8_0, ... (case-insensitive; see below)")->required();
    app.add_option("-t,--threads", o.threads, "threads converting rows (default: physical cores)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--dry-run", o.dry_run, "print each tensor's type and the sizes; write nothing");
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    return run(o);
  });
}
