#include "common/cli.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace slm::tools {

std::function<void(const LoadProgress&)> stderr_load_progress() {
  constexpr uint64_t kSmallestReported = uint64_t(256) << 20;
  struct Step {
    std::string name;
    std::chrono::steady_clock::time_point start;
    int shown_percent = -1;
  };
  auto step = std::make_shared<Step>();
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  return [step, terminal](const LoadProgress& p) {
    if (p.total_bytes < kSmallestReported) return;
    const unsigned long long mib = p.total_bytes >> 20;
    if (step->name != p.step) {
      *step = {p.step, std::chrono::steady_clock::now(), -1};
      if (step->name == "repacking")
        std::fprintf(stderr, "slm: repacking %llu MiB of weights into this CPU's layout...", mib);
      else
        std::fprintf(stderr, "slm: writing the %llu MiB of repacked weights to the tile cache for the next load...", mib);
    }
    const int percent = static_cast<int>(p.done_bytes * 100 / p.total_bytes);
    if (terminal && percent != step->shown_percent && percent < 100) std::fprintf(stderr, " %3d%%\b\b\b\b\b", percent);
    step->shown_percent = percent;
    if (p.done_bytes == p.total_bytes) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step->start).count();
      std::fprintf(stderr, " done in %.1f s\n", seconds);
    }
    std::fflush(stderr);
  };
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", app.get_name().c_str(), e.what());
    return 2;
  }
  return std::nullopt;
}

CLI::Option* add_kv_type_option(CLI::App& app, std::string& kv_type, const std::string& default_note) {
  return app
      .add_option("--kv-type", kv_type,
                  "KV cache type: f16, f32 or q8_0 (as llama.cpp's -ctk q8_0: blocks of 32 int8 and a scale, 53% "
                  "of f16's memory; for a head_dim that is a multiple of 32); " + default_note)
      ->type_name("TYPE")->check(CLI::IsMember({"f16", "f32", "q8_0"}));
}

void add_state_checkpoint_options(CLI::App& app, int32_t& checkpoint_interval, int32_t& max_checkpoints) {
  app.add_option("--checkpoint-interval", checkpoint_interval,
                 "hybrid models (lfm2, qwen35): keep a snapshot of the recurrent state every N positions of a "
                 "prompt, besides those at the end of each prompt and turn, so that a later prompt sharing a prefix "
                 "re-evaluates at most N tokens of it (0: only those)")
      ->type_name("N")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--state-checkpoints", max_checkpoints,
                 "hybrid models: snapshots kept per sequence (past it, the one closest to the one before goes); "
                 "each takes one recurrent state's memory (printed at start) (0: none, a changed prefix is "
                 "evaluated from the start)")
      ->type_name("N")->capture_default_str()->check(CLI::NonNegativeNumber);
}

void add_speculative_options(CLI::App& app, std::string& draft_path, SpeculativeOptions& options,
                             const std::string& draft_help, const std::string& group) {
  const std::string in_group = group.empty() ? "Options" : group;
  app.add_option("--model-draft", draft_path, draft_help)->group(in_group)->type_name("FILE");
  app.add_option("--draft-max", options.draft_max, "drafted tokens per check at most (adaptive below it)")
      ->group(in_group)->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--draft-min", options.draft_min,
                 "drafted tokens per check at least (0 lets drafting pause while drafts keep failing)")
      ->group(in_group)->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--draft-p-min", options.draft_p_min,
                 "the draft model stops drafting when its most likely token is below this probability")
      ->group(in_group)->capture_default_str()->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--draft-vocab", options.draft_vocab,
                 "cut the draft model's output head to token ids below N and the end tokens (BPE ids follow merge "
                 "rank, so these are the frequent ones): a cheaper draft token; the model still checks with its "
                 "whole head, so the output is the same (default: the whole head)")
      ->group(in_group)->type_name("N")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            int64_t n = 0;
            if (!CLI::detail::lexical_cast(text, n) || n < 1)
              return "must be a count of token ids of at least 1, not " + text + " (leave it out for the whole head)";
            return "";
          },
          "N >= 1"));
  app.add_option("--lookup-ngram", options.lookup_ngram,
                 "prompt lookup: draft what followed the longest recent match of the last N tokens in the prompt "
                 "and the reply (0: off)")
      ->group(in_group)->capture_default_str()->check(CLI::NonNegativeNumber);
}

}  // namespace slm::tools
