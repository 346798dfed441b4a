// Command-line parsing shared by the tools: --help prints the help and exits 0; a
// wrong flag prints one line "<tool>: error: <what> (see --help)" and exits 2.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "slm/model.hpp"
#include "slm/speculative.hpp"

namespace slm::tools {

// nullopt: go on; otherwise the exit code main() should return.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// --checkpoint-interval and --state-checkpoints: a hybrid model's recurrent-state checkpoints
// (slm/batch.hpp), into BatchDecoderOptions' or SessionOptions' fields of the same names.
void add_state_checkpoint_options(CLI::App& app, int32_t& checkpoint_interval, int32_t& max_checkpoints);

// --kv-type f16|f32|q8_0 (llama.cpp's -ctk / -ctv names; slm::kv_type_named reads them) into
// kv_type; `default_note` says the tool's default and why.
CLI::Option* add_kv_type_option(CLI::App& app, std::string& kv_type, const std::string& default_note);

// --activations int16|int8 (slm::LoadOptions::activations, slm/activation_precision.hpp).
template <class Target>
CLI::Option* add_activations_option(CLI::App& app, Target& activations) {
  return app
      .add_option("--activations", activations,
                  "how quantized matrices round each layer's input: int16 (default: 13-15 bits per block) or int8 "
                  "(7 bits per block, as llama.cpp: faster prompts, measured KL-divergence in the README; for the "
                  "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS, Q4_K, Q5_K and Q6_K matrices on x86, the others keep int16; "
                  "BF16 matrices take bf16 activations, as llama.cpp: vdpbf16ps where the CPU has AVX512_BF16)")
      ->type_name("PRECISION")->capture_default_str()->check(CLI::IsMember({"int16", "int8"}));
}

// Prints a repacking load's progress on stderr, for loads of 256 MiB of tiles or more (smaller
// ones take well under a second): a line per step with its size, the percentage in place on a
// terminal, and the seconds it took.
std::function<void(const LoadProgress&)> stderr_load_progress();

// The LoadOptions of an --activations value (checked by the option), with stderr_load_progress.
inline LoadOptions load_options(const std::string& activations) {
  LoadOptions options;
  options.activations = parse_activation_precision(activations).value_or(ActivationPrecision::Int16);
  options.on_progress = stderr_load_progress();
  return options;
}

// --model-draft FILE (described by `draft_help`), --draft-max, --draft-min, --draft-p-min,
// --draft-vocab and --lookup-ngram (slm/speculative.hpp), in the help's `group` (empty: the options').
void add_speculative_options(CLI::App& app, std::string& draft_path, SpeculativeOptions& options,
                             const std::string& draft_help, const std::string& group = "");

}  // namespace slm::tools
